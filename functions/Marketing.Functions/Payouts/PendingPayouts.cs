using System.Text.Json.Nodes;
using Marketing.Functions.Approvals;
using Marketing.Functions.Hosting;

namespace Marketing.Functions.Payouts;

/// <summary>
/// The approvers' queue of payout batches (kind "payout"): batches whose plan's total is above the threshold, awaiting
/// finance (<see cref="PayoutStore.ListAwaitingApprovalAsync"/>: one index-served cross-partition query per page). What is
/// approved is the total, against nothing.
/// </summary>
public sealed class PendingPayouts(PayoutStore payouts, ILogger<PendingPayouts> log) : IApprovalQueue
{
    public string Kind => ApprovalItem.Kinds.Payout;
    public string DecidedBy => Identity.Roles.Finance;

    public async Task<Page<ApprovalItem>> PendingAsync(int pageSize, string? pageToken, CancellationToken ct)
    {
        var page = await payouts.ListAwaitingApprovalAsync(pageSize, pageToken, log, ct);
        return new Page<ApprovalItem>([.. page.Items.Select(batch => new ApprovalItem
        {
            Kind = Kind,
            State = batch.State == PayoutBatch.Paying ? ApprovalItem.States.Unfinished : ApprovalItem.States.Pending,
            Id = batch.BatchId,
            Title = $"Payout batch {batch.BatchId}: {batch.Lines ?? 0} promoters, minimum {batch.Minimum}",
            RequestedBy = batch.CreatedBy,
            RequestedAt = batch.CreatedAt,
            Makers = [batch.CreatedBy],
            Amount = batch.Total,
            Currency = batch.Currency,
            Changes = [new FieldChange("total", null, JsonValue.Create(batch.Total ?? 0))],
            Routes = new ApprovalRoutes($"payouts/{batch.BatchId}/approve", $"payouts/{batch.BatchId}/reject"),
        })], page.ContinuationToken);
    }
}
