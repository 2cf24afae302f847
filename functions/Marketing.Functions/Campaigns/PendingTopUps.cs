using System.Text.Json.Nodes;
using Marketing.Functions.Approvals;
using Marketing.Functions.Hosting;

namespace Marketing.Functions.Campaigns;

/// <summary>
/// The approvers' queue of top-up requests (kind "top_up"): every top-up whose approval is pending, across campaigns
/// (<see cref="StockStore.ListPendingTopUpsAsync"/>: one index-served cross-partition query per page). What is being
/// approved is the amount, against nothing: a top-up adds, it changes no earlier figure.
/// </summary>
public sealed class PendingTopUps(StockStore stock, CampaignCache campaigns) : IApprovalQueue
{
    public string Kind => ApprovalItem.Kinds.TopUp;
    public string DecidedBy => Identity.Roles.Approver;

    public async Task<Page<ApprovalItem>> PendingAsync(int pageSize, string? pageToken, CancellationToken ct)
    {
        var page = await stock.ListPendingTopUpsAsync(pageSize, pageToken, ct);
        var items = new List<ApprovalItem>(page.Items.Count);
        foreach (var topUp in page.Items)
        {
            // The campaign's name and currency from the cached catalog (a page of requests names few campaigns).
            var campaign = await campaigns.FindAsync(topUp.CampaignId, ct);
            items.Add(new ApprovalItem
            {
                Kind = Kind,
                State = topUp.Approval?.Status == TopUpApproval.Approved ? ApprovalItem.States.Unfinished : ApprovalItem.States.Pending,
                Id = $"{topUp.CampaignId}/{topUp.Key}",
                Title = $"Top-up of {campaign?.Terms.Name ?? topUp.CampaignId}: {topUp.Reason}",
                RequestedBy = topUp.By,
                RequestedAt = topUp.At,
                Makers = [topUp.By],
                Amount = topUp.Amount,
                Currency = campaign?.Terms.Currency,
                Changes = [new FieldChange("amount", null, JsonValue.Create(topUp.Amount))],
                Routes = new ApprovalRoutes($"campaigns/{topUp.CampaignId}/budget/top-ups/{topUp.Key}/approve",
                    $"campaigns/{topUp.CampaignId}/budget/top-ups/{topUp.Key}/reject"),
            });
        }
        return new Page<ApprovalItem>(items, page.ContinuationToken);
    }
}
