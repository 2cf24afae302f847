using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Payouts;

/// <summary>A payout batch's header: what the operator asked for and, once completed, what it paid.</summary>
public sealed record PayoutBatch
{
    public const string HeaderId = "batch";
    public const string Building = "building";
    public const string Completed = "completed";

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
}

/// <summary>
/// One promoter in a batch: the amount and exactly which ledger entries it pays. Written before the entries
/// are marked paid, so a resumed batch pays the same entries, never a recomputed set.
/// </summary>
public sealed record PayoutLine
{
    public const string Paying = "paying";
    public const string Paid = "paid";

    public string Id => LineId(PromoterId);
    public required string BatchId { get; init; }
    public required string PromoterId { get; init; }
    public required long Amount { get; init; }
    public required string Currency { get; init; }
    public required IReadOnlyList<string> EntryIds { get; init; }
    public required string State { get; init; }

    public static string LineId(string promoterId) => "line:" + promoterId;
}

/// <summary>Container "payouts", partitioned by /batchId: a batch's header and its lines, read together with one query.</summary>
public sealed class PayoutStore(Database database)
{
    public static readonly ContainerSpec Spec = new("payouts", "/batchId", ["/entryIds/*", "/skipped/*", "/\"_etag\"/?"]);

    private readonly Container container = database.GetContainer(Spec.Name);

    public async Task<PayoutBatch?> FindAsync(string batchId, CancellationToken ct)
        => Ids.IsWellFormed(batchId) ? (await container.ReadOrNullAsync<PayoutBatch>(PayoutBatch.HeaderId, batchId, ct))?.Resource : null;

    /// <summary>Creates the batch; false when a batch with this id exists.</summary>
    public Task<bool> TryCreateAsync(PayoutBatch batch, CancellationToken ct) => container.TryCreateAsync(batch, batch.BatchId, ct);

    /// <summary>Creates the line; false when the batch already has one for this promoter (a resumed batch).</summary>
    public Task<bool> TryCreateLineAsync(PayoutLine line, CancellationToken ct) => container.TryCreateAsync(line, line.BatchId, ct);

    public async Task<PayoutLine?> FindLineAsync(string batchId, string promoterId, CancellationToken ct)
        => (await container.ReadOrNullAsync<PayoutLine>(PayoutLine.LineId(promoterId), batchId, ct))?.Resource;

    public Task MarkLinePaidAsync(string batchId, string promoterId, CancellationToken ct)
        => container.PatchItemAsync<PayoutLine>(PayoutLine.LineId(promoterId), new PartitionKey(batchId), [PatchOperation.Set("/state", PayoutLine.Paid)],
            new PatchItemRequestOptions { EnableContentResponseOnWrite = false }, ct);

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
            results.AddRange(await iterator.ReadNextAsync(ct));
        return results;
    }
}
