using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Payouts;

/// <summary>
/// A payout batch's header: what the operator asked for, what the plan came to and, once completed, what it paid.
/// building (holding promoters and writing their lines) → paying → completed; a plan whose total is above
/// Approvals:PayoutThreshold goes building → awaiting_approval, then finance approves (→ paying → completed) or rejects
/// (→ rejected: holds released, nothing paid). Nothing is paid before the header says paying.
/// </summary>
public sealed record PayoutBatch
{
    public const string HeaderId = "batch";
    public const string Building = "building";
    public const string AwaitingApproval = "awaiting_approval";
    public const string Paying = "paying";
    public const string Completed = "completed";
    public const string Rejected = "rejected";

    public string Id => HeaderId;
    public required string BatchId { get; init; }
    public required long Minimum { get; init; }
    public required string Currency { get; init; }
    public required string State { get; init; }
    public required string CreatedBy { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? CompletedAt { get; init; }
    /// <summary>Promoters over the minimum that another batch was paying at the time (paid by that batch instead).</summary>
    public IReadOnlyList<string> Skipped { get; init; } = [];
    /// <summary>The plan's total (the lines' sum) and how many lines, fixed when planning ends (absent on older batches).</summary>
    public long? Total { get; init; }
    public int? Lines { get; init; }
    /// <summary>Set when the plan's total was above the threshold: finance's decision (docs/approvals.md, "Money").</summary>
    public PayoutApproval? Approval { get; init; }
}

/// <summary>Finance's decision on a batch over the threshold: pending, then approved or rejected (final).</summary>
public sealed record PayoutApproval
{
    public const string Pending = "pending";
    public const string Approved = "approved";
    public const string Rejected = "rejected";

    public required string Status { get; init; }
    public string? DecidedBy { get; init; }
    public DateTimeOffset? DecidedAt { get; init; }
    public string? Reason { get; init; }
}

/// <summary>
/// One promoter in a batch: the amount and how many ledger entries it pays. Which entries is fixed before any
/// is paid, in the line's parts (<see cref="PayoutPart"/>, written first; the line's creation commits them), so a
/// resumed batch pays the same entries, never a recomputed set. The line itself does not grow with the entries:
/// the parts hold at most <see cref="PayoutPart.MaxEntries"/> ids each, and the ledger names the batch of every
/// entry it paid (the reconciliation checks that the ledger's sum and count for the batch are the line's).
/// </summary>
public sealed record PayoutLine
{
    public const string Paying = "paying";
    public const string Paid = "paid";
    /// <summary>Its batch was rejected: nothing paid, the promoter's hold released.</summary>
    public const string Rejected = "rejected";

    public string Id => LineId(PromoterId);
    public required string BatchId { get; init; }
    public required string PromoterId { get; init; }
    public required long Amount { get; init; }
    public required string Currency { get; init; }
    public required string State { get; init; }
    /// <summary>How many ledger entries the line pays.</summary>
    public int Entries { get; init; }
    /// <summary>How many parts list them (parts 0 to Parts − 1 of <see cref="PlanId"/>).</summary>
    public int Parts { get; init; }
    /// <summary>Names this line's parts: a plan that lost to a concurrent run of the same batch left parts under another id, never read.</summary>
    public string? PlanId { get; init; }
    /// <summary>Lines written before parts existed listed their entries here; still read (and paid, if resumed), never written.</summary>
    public IReadOnlyList<string>? EntryIds { get; init; }

    public static string LineId(string promoterId) => "line:" + promoterId;
}

/// <summary>
/// Up to <see cref="MaxEntries"/> of the entries a line pays, with their sum: a bounded piece of the line's fixed
/// set (at most ~100 KB at the longest entry ids, ~25 KB typically).
/// </summary>
public sealed record PayoutPart
{
    public const int MaxEntries = 500;

    public string Id => PartId(PromoterId, PlanId, Index);
    public required string BatchId { get; init; }
    public required string PromoterId { get; init; }
    public required string PlanId { get; init; }
    public required int Index { get; init; }
    public required long Amount { get; init; }
    public required IReadOnlyList<string> EntryIds { get; init; }

    public static string PartId(string promoterId, string planId, int index) => $"part:{promoterId}:{planId}:{index}";
}

/// <summary>
/// Container "payouts", partitioned by /batchId: a batch's header, its lines (read together with one query) and
/// the lines' parts (read one by one, only to pay them).
/// </summary>
public sealed class PayoutStore(Database database)
{
    public static readonly ContainerSpec Spec = new("payouts", "/batchId", ["/entryIds/*", "/skipped/*", "/\"_etag\"/?"]);

    private readonly Container container = database.GetContainer(Spec.Name);

    public async Task<PayoutBatch?> FindAsync(string batchId, CancellationToken ct)
        => Ids.IsWellFormed(batchId) ? (await container.ReadOrNullAsync<PayoutBatch>(PayoutBatch.HeaderId, batchId, ct))?.Resource : null;

    /// <summary>Creates the batch; false when a batch with this id exists.</summary>
    public Task<bool> TryCreateAsync(PayoutBatch batch, CancellationToken ct) => container.TryCreateAsync(batch, batch.BatchId, ct);

    /// <summary>Creates the line; false when the batch already has one for this promoter (a resumed or concurrent run of the batch).</summary>
    public Task<bool> TryCreateLineAsync(PayoutLine line, CancellationToken ct) => container.TryCreateAsync(line, line.BatchId, ct);

    /// <summary>Writes a part of a line not created yet (its plan id is new, so nothing else writes this id).</summary>
    public Task WritePartAsync(PayoutPart part, CancellationToken ct) => container.TryCreateAsync(part, part.BatchId, ct);

    public async Task<PayoutPart> ReadPartAsync(string batchId, string promoterId, string planId, int index, CancellationToken ct)
        => (await container.ReadItemAsync<PayoutPart>(PayoutPart.PartId(promoterId, planId, index), new PartitionKey(batchId), cancellationToken: ct)).Resource;

    public async Task<PayoutLine?> FindLineAsync(string batchId, string promoterId, CancellationToken ct)
        => (await container.ReadOrNullAsync<PayoutLine>(PayoutLine.LineId(promoterId), batchId, ct))?.Resource is { } line ? Normalized(line) : null;

    public Task MarkLinePaidAsync(string batchId, string promoterId, CancellationToken ct)
        => container.PatchItemAsync<PayoutLine>(PayoutLine.LineId(promoterId), new PartitionKey(batchId), [PatchOperation.Set("/state", PayoutLine.Paid)],
            new PatchItemRequestOptions { EnableContentResponseOnWrite = false }, ct);

    /// <summary>Marks the line of a rejected batch (only while unpaid: a repeat, or a paid line, is left as it is).</summary>
    public Task<bool> MarkLineRejectedAsync(string batchId, string promoterId, CancellationToken ct)
        => container.TryPatchAsync<PayoutLine>(PayoutLine.LineId(promoterId), batchId, [PatchOperation.Set("/state", PayoutLine.Rejected)],
            $"c.state = '{PayoutLine.Paying}'", ct);

    /// <summary>
    /// Ends planning: the header moves from building to <paramref name="state"/> (paying, or awaiting_approval with a pending
    /// approval) with the plan's total, line count and skipped promoters. Filtered on building, so of two runs of the
    /// same batch one decides; false for the other (it reads the header again and follows it).
    /// </summary>
    public Task<bool> TryEndPlanAsync(string batchId, string state, long total, int lines, IReadOnlyList<string> skipped, PayoutApproval? approval,
        CancellationToken ct)
    {
        List<PatchOperation> operations = [PatchOperation.Set("/state", state), PatchOperation.Set("/total", total), PatchOperation.Set("/lines", lines),
            PatchOperation.Set("/skipped", skipped)];
        if (approval is not null) operations.Add(PatchOperation.Set("/approval", approval));
        return container.TryPatchAsync<PayoutBatch>(PayoutBatch.HeaderId, batchId, operations, $"c.state = '{PayoutBatch.Building}'", ct);
    }

    /// <summary>Finance's decision: awaiting_approval → <paramref name="state"/> (paying or rejected) with the decision; false when not awaiting.</summary>
    public Task<bool> TryDecideAsync(string batchId, string state, PayoutApproval approval, CancellationToken ct)
        => container.TryPatchAsync<PayoutBatch>(PayoutBatch.HeaderId, batchId, [PatchOperation.Set("/state", state), PatchOperation.Set("/approval", approval)],
            $"c.state = '{PayoutBatch.AwaitingApproval}'", ct);

    /// <summary>
    /// One page of the batches awaiting finance's approval, across batches (the approvers' queue). Cross-partition, served
    /// by the index on state: only a batch header is ever in state awaiting_approval (lines are paying, paid or rejected),
    /// so each physical partition answers from its index and reads nothing else.
    /// </summary>
    public Task<Page<PayoutBatch>> ListAwaitingApprovalAsync(int pageSize, string? pageToken, ILogger log, CancellationToken ct)
        => container.ReadCrossPartitionPageAsync<PayoutBatch>(AwaitingApproval("SELECT * FROM c"), pageSize, pageToken, log, ct);

    /// <summary>How many batches finance's queue holds (<see cref="ListAwaitingApprovalAsync"/>'s filter): one cross-partition query.</summary>
    public Task<long> CountAwaitingApprovalAsync(CancellationToken ct)
        => container.CountAsync(AwaitingApproval("SELECT VALUE 1 FROM c"), null, ct);

    // Awaiting, and approved but not finished paying (the approving call stopped: approving again resumes it). Only a
    // header has an approval: lines are paying too, without one.
    private static QueryDefinition AwaitingApproval(string select)
        => new QueryDefinition(select + " WHERE c.state = @awaiting OR (c.state = @paying AND c.approval.status = @approved)")
            .WithParameter("@awaiting", PayoutBatch.AwaitingApproval).WithParameter("@paying", PayoutBatch.Paying)
            .WithParameter("@approved", PayoutApproval.Approved);

    /// <summary>
    /// One page of the batch headers, newest first. Each batch is its own partition, so the list is across partitions by
    /// nature; the filter is on the header's fixed id (served by the index on id: lines and parts are never read) and the
    /// order by the index on createdAt (fixed-width UTC text, so ordering the text orders the instants). Direct execution,
    /// as the audit list: in Azure the SDK falls back to its full (query plan) pipeline once the container has more than
    /// one partition range, where ORDER BY merges across them; a token taken before a split may then be refused
    /// (400 invalid-page-token: start again), never misread. The emulator has one range.
    /// </summary>
    public Task<Page<PayoutBatch>> ListBatchesAsync(int pageSize, string? pageToken, ILogger log, CancellationToken ct)
        => container.ReadPageAsync<PayoutBatch>(
            new QueryDefinition("SELECT * FROM c WHERE c.id = @header ORDER BY c.createdAt DESC").WithParameter("@header", PayoutBatch.HeaderId),
            null, pageSize, pageToken, log, ct, optimisticDirectExecution: true);

    public Task CompleteAsync(string batchId, IReadOnlyList<string> skipped, DateTimeOffset now, CancellationToken ct)
        => container.PatchItemAsync<PayoutBatch>(PayoutBatch.HeaderId, new PartitionKey(batchId),
            [PatchOperation.Set("/state", PayoutBatch.Completed), PatchOperation.Set("/completedAt", now), PatchOperation.Set("/skipped", skipped)],
            new PatchItemRequestOptions { EnableContentResponseOnWrite = false }, ct);

    public async Task<List<PayoutLine>> ListLinesAsync(string batchId, CancellationToken ct)
    {
        var query = new QueryDefinition("SELECT * FROM c WHERE c.batchId = @b AND STARTSWITH(c.id, 'line:')").WithParameter("@b", batchId);
        var results = new List<PayoutLine>();
        using var iterator = container.GetItemQueryIterator<PayoutLine>(query, requestOptions: new QueryRequestOptions { PartitionKey = new PartitionKey(batchId) });
        while (iterator.HasMoreResults)
            results.AddRange((await iterator.ReadNextAsync(ct)).Select(Normalized));
        return results;
    }

    /// <summary>A line in the shape before parts counts the entries it lists.</summary>
    private static PayoutLine Normalized(PayoutLine line) => line.EntryIds is { } legacy && line.Parts == 0 ? line with { Entries = legacy.Count } : line;
}
