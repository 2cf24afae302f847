using System.Text.Json;
using System.Text.Json.Nodes;
using Marketing.Functions.Approvals;
using Marketing.Functions.Hosting;

namespace Marketing.Functions.Campaigns;

/// <summary>
/// The approvers' queue of campaigns (kind "campaign"): the submitted ones, a page of the catalog's single-partition status
/// query at a time. Each item carries what the approver approves: the field-level diff of the submitted terms against the
/// last approved revision's (against nothing on a first approval: every field, before null), its makers and submitter (who
/// may not decide it), and its budget (the initial budget is approved with the campaign).
/// </summary>
public sealed class CampaignApprovalQueue(CampaignStore store) : IApprovalQueue
{
    public string Kind => ApprovalItem.Kinds.Campaign;
    public string DecidedBy => Identity.Roles.Approver;

    public async Task<Page<ApprovalItem>> PendingAsync(int pageSize, string? pageToken, CancellationToken ct)
    {
        var page = await store.ListAsync(CampaignStatus.Submitted, pageSize, pageToken, ct);
        return new Page<ApprovalItem>([.. page.Items.Select(Item)], page.ContinuationToken);
    }

    public static ApprovalItem Item(Campaign campaign) => new()
    {
        Kind = ApprovalItem.Kinds.Campaign,
        Id = campaign.Id,
        Title = campaign.Terms.Name,
        RequestedBy = campaign.SubmittedBy ?? campaign.UpdatedBy,
        RequestedAt = campaign.SubmittedAt ?? campaign.UpdatedAt,
        Makers = campaign.CurrentMakers,
        Amount = campaign.Terms.Budget,
        Currency = campaign.Terms.Currency,
        Changes = Changes(campaign),
        Revision = campaign.Revision,
        Routes = new ApprovalRoutes($"campaigns/{campaign.Id}/approve", $"campaigns/{campaign.Id}/reject", $"campaigns/{campaign.Id}/return"),
    };

    /// <summary>The submitted terms against the last approved ones, field by field, as the API writes terms.</summary>
    public static List<FieldChange> Changes(Campaign campaign)
        => JsonDiff.Of(campaign.LastApproved is { } approved ? JsonSerializer.SerializeToNode(approved.Terms, Json.Options) : new JsonObject(),
            JsonSerializer.SerializeToNode(campaign.Terms, Json.Options));
}
