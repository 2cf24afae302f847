using System.Net;
using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Commissions;

/// <summary>pending → available (ReleaseCommissions, at availableAt) → paid (a payout batch). Never back.</summary>
public enum LedgerStatus { Pending, Available, Paid }

/// <summary>
/// One line of a promoter's ledger: a commission (positive) or a reversal of one (negative), for one order
/// line and level. Entries are only ever appended and moved forward in status; a refund after payout is a
/// new negative entry, never a change to the paid one. The id is derived from (order, event, line, level),
/// so writing an entry twice is a conflict, not a second entry: that is what makes settlement idempotent.
/// </summary>
public sealed record LedgerEntry
{
    public required string Id { get; init; }
    public required string PromoterId { get; init; }
    public required string OrderId { get; init; }
    public required string EventId { get; init; }
    public required string LineId { get; init; }
    public required string Category { get; init; }
    /// <summary>1: the promoter brought the buyer; 2: the promoter invited the promoter who did.</summary>
    public required int Level { get; init; }
    /// <summary>"commission" or "reversal".</summary>
    public required string Kind { get; init; }
    /// <summary>Minor units (cents/fen); negative for reversals.</summary>
    public required long Amount { get; init; }
    public required string Currency { get; init; }
    public required LedgerStatus Status { get; init; }
    public required DateTimeOffset AvailableAt { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? ReleasedAt { get; init; }
    public string? PayoutBatchId { get; init; }
    public DateTimeOffset? PaidAt { get; init; }

    public const string Commission = "commission";
    public const string Reversal = "reversal";
}

/// <summary>A ledger entry's id and amount: all a payout plan needs of it.</summary>
public sealed record EntryAmount(string Id, long Amount);

public sealed record Balance(long Pending, long Available, long Paid)
{
    /// <summary>Everything earned, net of reversals, whatever its status.</summary>
    public long Net => Pending + Available + Paid;
}

/// <summary>
/// Container "ledger", partitioned by /promoterId: a promoter's entries, balance and payout candidates are
/// single-partition reads. Status changes are patches filtered on the status they leave, so each happens once.
/// </summary>
public sealed class LedgerStore(Database database, ILogger<LedgerStore>? logger = null)
{
    public static readonly ContainerSpec Spec = new("ledger", "/promoterId", ["/\"_etag\"/?"]);

    private readonly Container container = database.GetContainer(Spec.Name);
    private readonly ILogger log = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger<LedgerStore>.Instance;

    public static string Wire(LedgerStatus status) => status switch
    {
        LedgerStatus.Pending => "pending",
        LedgerStatus.Available => "available",
        _ => "paid",
    };

    /// <summary>Writes the entry unless it exists (then false: an earlier delivery wrote it).</summary>
    public Task<bool> CreateIfAbsentAsync(LedgerEntry entry, CancellationToken ct) => container.TryCreateAsync(entry, entry.PromoterId, ct);

    /// <summary>pending → available; false when the entry is not pending (already released) or not there.</summary>
    public Task<bool> TryReleaseAsync(string promoterId, string id, DateTimeOffset now, CancellationToken ct)
        => TryMoveAsync(promoterId, id, LedgerStatus.Pending,
            [PatchOperation.Set("/status", Wire(LedgerStatus.Available)), PatchOperation.Set("/releasedAt", now)], ct);

    /// <summary>available → paid in <paramref name="batchId"/>; false when the entry is not available.</summary>
    public Task<bool> TryPayAsync(string promoterId, string id, string batchId, DateTimeOffset now, CancellationToken ct)
        => TryMoveAsync(promoterId, id, LedgerStatus.Available,
            [PatchOperation.Set("/status", Wire(LedgerStatus.Paid)), PatchOperation.Set("/payoutBatchId", batchId), PatchOperation.Set("/paidAt", now)], ct);

    private Task<bool> TryMoveAsync(string promoterId, string id, LedgerStatus from, IReadOnlyList<PatchOperation> operations, CancellationToken ct)
        // Stamped: a move the SDK sends twice still counts as ours (a payout must pay every entry it marked paid).
        => container.TryPatchAsync<LedgerEntry>(id, promoterId, operations, $"c.status = '{Wire(from)}'", ct);

    /// <summary>
    /// One page of a promoter's entries, newest first, optionally of one status; <paramref name="pageToken"/> is an
    /// opaque token of an earlier page of the same list (<see cref="Paging"/>: throws <see cref="InvalidPageTokenException"/> for any other).
    /// An entry that cannot be read is skipped and logged (for display only: payouts and checks use <see cref="ListAllAsync"/>, which fails instead).
    /// </summary>
    public Task<Page<LedgerEntry>> ListAsync(string promoterId, LedgerStatus? status, int pageSize, string? pageToken, CancellationToken ct)
    {
        var sql = "SELECT * FROM c WHERE c.promoterId = @p" + (status is null ? "" : " AND c.status = @status") + " ORDER BY c.createdAt DESC";
        var query = new QueryDefinition(sql).WithParameter("@p", promoterId);
        if (status is not null) query = query.WithParameter("@status", Wire(status.Value));
        return container.ReadPageAsync<LedgerEntry>(query, new PartitionKey(promoterId), pageSize, pageToken, log, ct, optimisticDirectExecution: true);
    }

    /// <summary>Every entry of the promoter, or every one in a status (payouts: what can be paid).</summary>
    public async Task<List<LedgerEntry>> ListAllAsync(string promoterId, LedgerStatus? status, CancellationToken ct)
    {
        var query = new QueryDefinition("SELECT * FROM c WHERE c.promoterId = @p" + (status is null ? "" : " AND c.status = @status"))
            .WithParameter("@p", promoterId);
        if (status is not null) query = query.WithParameter("@status", Wire(status.Value));
        var results = new List<LedgerEntry>();
        using var iterator = container.GetItemQueryIterator<LedgerEntry>(query,
            requestOptions: new QueryRequestOptions { PartitionKey = new PartitionKey(promoterId) });
        while (iterator.HasMoreResults)
            results.AddRange(await iterator.ReadNextAsync(ct));
        return results;
    }

    /// <summary>
    /// One page (at most <paramref name="pageSize"/>) of the promoter's available entries, id and amount only:
    /// what a payout batch plans to pay, a page at a time, so a promoter with any number of entries is planned in
    /// bounded memory. <paramref name="continuationToken"/> is the previous page's (null for the first).
    /// </summary>
    public async Task<(List<EntryAmount> Entries, string? ContinuationToken)> ListAvailableAsync(string promoterId, int pageSize,
        string? continuationToken, CancellationToken ct)
    {
        var query = new QueryDefinition("SELECT c.id, c.amount FROM c WHERE c.promoterId = @p AND c.status = @status")
            .WithParameter("@p", promoterId).WithParameter("@status", Wire(LedgerStatus.Available));
        using var iterator = container.GetItemQueryIterator<EntryAmount>(query, continuationToken,
            new QueryRequestOptions { PartitionKey = new PartitionKey(promoterId), MaxItemCount = pageSize });
        var page = await iterator.ReadNextAsync(ct);
        return (page.Resource.ToList(), page.ContinuationToken);
    }

    /// <summary>
    /// Which of <paramref name="ids"/> (at most a payout part's worth) are still available: a resumed batch pays
    /// only those, so that repeating an interrupted batch gets further each time instead of re-trying every entry
    /// it already paid (each such try is a refused patch and a read).
    /// </summary>
    public async Task<List<string>> StillAvailableAsync(string promoterId, IReadOnlyList<string> ids, CancellationToken ct)
    {
        var query = new QueryDefinition("SELECT VALUE c.id FROM c WHERE c.promoterId = @p AND c.status = @status AND ARRAY_CONTAINS(@ids, c.id)")
            .WithParameter("@p", promoterId).WithParameter("@status", Wire(LedgerStatus.Available)).WithParameter("@ids", ids);
        var results = new List<string>();
        using var iterator = container.GetItemQueryIterator<string>(query, requestOptions: new QueryRequestOptions { PartitionKey = new PartitionKey(promoterId) });
        while (iterator.HasMoreResults)
            results.AddRange(await iterator.ReadNextAsync(ct));
        return results;
    }

    /// <summary>
    /// What the ledger says a payout batch paid the promoter: the sum and number of entries paid in it, counted by
    /// Cosmos inside the partition. The batch's line must say the same (the reconciliation checks it).
    /// </summary>
    public async Task<(long Amount, long Entries)> PaidInBatchAsync(string promoterId, string batchId, CancellationToken ct)
    {
        const string Where = " FROM c WHERE c.promoterId = @p AND c.status = @status AND c.payoutBatchId = @batch";
        async Task<long> ScalarAsync(string select)
        {
            var query = new QueryDefinition(select + Where).WithParameter("@p", promoterId)
                .WithParameter("@status", Wire(LedgerStatus.Paid)).WithParameter("@batch", batchId);
            using var iterator = container.GetItemQueryIterator<long?>(query, requestOptions: new QueryRequestOptions
            {
                PartitionKey = new PartitionKey(promoterId),
                EnableOptimisticDirectExecution = true,
            });
            long total = 0;
            while (iterator.HasMoreResults)
                foreach (var value in await iterator.ReadNextAsync(ct))
                    total += value ?? 0;
            return total;
        }
        return (await ScalarAsync("SELECT VALUE SUM(c.amount)"), await ScalarAsync("SELECT VALUE COUNT(1)"));
    }

    /// <summary>The promoter's balance: sums by status, computed by Cosmos inside the partition.</summary>
    public async Task<Balance> BalanceAsync(string promoterId, CancellationToken ct)
    {
        var sums = await Task.WhenAll(Enum.GetValues<LedgerStatus>().Select(s => SumAsync(promoterId, s, ct)));
        return new Balance(sums[0], sums[1], sums[2]);
    }

    public async Task<long> SumAsync(string promoterId, LedgerStatus status, CancellationToken ct)
    {
        var query = new QueryDefinition("SELECT VALUE SUM(c.amount) FROM c WHERE c.promoterId = @p AND c.status = @status")
            .WithParameter("@p", promoterId).WithParameter("@status", Wire(status));
        using var iterator = container.GetItemQueryIterator<long?>(query, requestOptions: new QueryRequestOptions
        {
            PartitionKey = new PartitionKey(promoterId),
            EnableOptimisticDirectExecution = true,
        });
        long sum = 0;
        while (iterator.HasMoreResults)
            foreach (var value in await iterator.ReadNextAsync(ct))
                sum += value ?? 0;
        return sum;
    }
}
