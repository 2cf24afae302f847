using System.Net;
using System.Text.Json.Serialization;
using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Campaigns;

/// <summary>
/// A campaign's stock counter. <see cref="Issued"/> + <see cref="Remaining"/> = <see cref="Total"/> holds
/// inside this one document at all times, because every change moves both in one atomic patch.
/// <see cref="Open"/> is the authoritative "claims allowed" switch (published ⇔ open), so a pause takes
/// effect at once on every instance even while they still hold the campaign in their cache.
/// </summary>
public sealed record Stock
{
    public const string DocumentId = "stock";

    public string Id { get; init; } = DocumentId;
    public required string CampaignId { get; init; }
    public required int Total { get; init; }
    public required int Remaining { get; init; }
    public required int Issued { get; init; }
    public required bool Open { get; init; }
    /// <summary>Last time a claim took or gave back a unit; reconciliation waits until this is old.</summary>
    public DateTimeOffset? LastClaimAt { get; init; }
    /// <summary>When reconciliation last checked <see cref="Issued"/> against the coupons really issued.</summary>
    public DateTimeOffset? ReconciledAt { get; init; }
    /// <summary>
    /// The last <see cref="GiveBackMemory"/> give-backs (coupon ids of refused claims), newest first: a give-back
    /// whose id is here is refused, so one the SDK sends twice returns its unit once. Fixed length (each give-back
    /// adds one at the front and drops the last), so the counter never grows.
    /// </summary>
    public List<string> GivenBack { get; init; } = [.. Enumerable.Repeat("", GiveBackMemory)];

    /// <summary>
    /// Give-backs remembered. The SDK re-sends a write within one call's deadline; only this many give-backs of
    /// the same campaign landing in that window (rare: a give-back follows a refused claim) could let a re-sent
    /// one through, and even then the recount of ReconcileStock restores the counter.
    /// </summary>
    public const int GiveBackMemory = 16;

    // Sharded campaigns only (null on an unsharded campaign's counter, which stays exactly as before sharding):
    // which campaign this shard belongs to (CampaignId is the shard's partition key, "<campaign>~<k>" for k > 0),
    // its number and how many the campaign has, so the sold-out query can group shards by campaign.
    public string? ShardOf { get; init; }
    public int? Shard { get; init; }
    public int? Shards { get; init; }

    /// <summary>The campaign this counter (or shard) belongs to.</summary>
    [JsonIgnore] public string ForCampaign => ShardOf ?? CampaignId;
    /// <summary>This counter's shard number (0 for an unsharded campaign's one counter).</summary>
    [JsonIgnore] public int ShardNumber => Shard ?? 0;

    [JsonPropertyName("_etag")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ETag { get; init; }
}

/// <summary>
/// How a campaign's stock is split across shards (docs/claiming.md, "Hot campaigns"). Shard 0 is the counter
/// an unsharded campaign has always had (partition key = the campaign id); shard k &gt; 0 lives in its own
/// logical partition "&lt;campaign&gt;~&lt;k&gt;" (campaign ids are "cmp_" + [a-z0-9], so no campaign's key is another's
/// shard). The total is split as evenly as possible, and each shard's split only grows with the total, so a
/// quantity increase adds to every shard and never takes from one.
/// </summary>
public static class StockSharding
{
    public const int Max = 64;

    public static string Key(string campaignId, int shard) => shard == 0 ? campaignId : $"{campaignId}~{shard}";

    /// <summary>Shard <paramref name="shard"/>'s part of <paramref name="total"/>: the first total % shards shards get one more.</summary>
    public static int Share(int total, int shards, int shard) => total / shards + (shard < total % shards ? 1 : 0);
}

/// <summary>What a take did, and from which shard (0 on an unsharded campaign).</summary>
public readonly record struct StockTake(TakeOutcome Outcome, int Shard);

/// <summary>A campaign whose every shard is open, empty and quiet (the expiry timer's sold-out candidates).</summary>
public sealed record SoldOutCampaign(string CampaignId, int Shards);

public enum TakeOutcome { Taken, SoldOut, Closed, Missing }

/// <summary>How a redemption step moves an order's discount between the budget's buckets.</summary>
public enum BudgetMove
{
    /// <summary>Confirm: reserved → spent.</summary>
    Spend,
    /// <summary>Cancel or lapse of a lock: reserved → left.</summary>
    Release,
    /// <summary>Refund of a used coupon: spent → left.</summary>
    Refund,
}

/// <summary>
/// Container "stock", partitioned by /campaignId: each campaign's counter lives in its own logical
/// partition, so hot campaigns do not compete with each other or with the catalog. The campaign's budget
/// (its shards and top-ups) lives here too: see StockStore.Budget.cs.
/// </summary>
public sealed partial class StockStore(Database database, CampaignCache campaigns, IOptions<StockOptions> options, ILogger<StockStore>? logger = null)
{
    // Not indexed: the budget's per-order map (one property per order id: the index would churn with every
    // order) and its in-flight top-ups, the old shape's top-up lists, and the counter's recent give-backs (only
    // read by the give-back patch's own filter). The queries (ListSoldOutAsync, a sharded claim's or reservation's
    // refusal path, the top-up list) filter on id, open, remaining, lastClaimAt, campaignId and appliedAt.
    public static readonly ContainerSpec Spec = new("stock", "/campaignId",
        ["/orders/*", "/applying/*", "/topUps/*", "/topUpKeys/*", "/givenBack/*", "/\"_etag\"/?"]);

    private readonly Container container = database.GetContainer(Spec.Name);
    private readonly ILogger log = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger<StockStore>.Instance;

    /// <summary>
    /// Takes one unit of an unsharded campaign in a single round trip: a patch that decrements only while open and
    /// not empty. Atomic on the server, so any number of instances can never take more than the total.
    /// </summary>
    public async Task<TakeOutcome> TryTakeAsync(string campaignId, DateTimeOffset now, CancellationToken ct = default)
    {
        try
        {
            return await TryTakeShardAsync(campaignId, 0, now, ct) ? TakeOutcome.Taken : TakeOutcome.Missing;
        }
        catch (CosmosException e) when (e.StatusCode == HttpStatusCode.PreconditionFailed)
        {
            // Refusal path only: one read to tell the caller why.
            var stock = await FindAsync(campaignId, ct);
            return stock is null ? TakeOutcome.Missing : !stock.Open ? TakeOutcome.Closed : TakeOutcome.SoldOut;
        }
    }

    /// <summary>
    /// Takes one unit of a campaign whose stock is split in <paramref name="shards"/> shards. Common path: one
    /// round trip, the same filtered patch on a shard picked at random (so concurrent claims spread evenly over the
    /// shards' partitions). Only when that shard refuses does one query read every shard's open switch and what it
    /// has left; the open shards that still have units are then tried in a random order. Sold out only when every
    /// shard was seen empty (refused, or read at 0); closed when no shard is open. Each shard's patch is the
    /// unsharded argument unchanged, so no shard can give more than its total: no oversell.
    /// </summary>
    public async Task<StockTake> TryTakeAsync(string campaignId, int shards, DateTimeOffset now, CancellationToken ct = default)
    {
        if (shards <= 1) return new StockTake(await TryTakeAsync(campaignId, now, ct), 0);
        var first = Random.Shared.Next(shards);
        if (await TryTakeOrRefuseAsync(campaignId, first, now, ct))
            return new StockTake(TakeOutcome.Taken, first);

        var states = await ReadShardStatesAsync(campaignId, shards, ct);
        var open = states.Where(s => s.Open).ToList();
        if (open.Count == 0)
            return new StockTake(states.Count == 0 ? TakeOutcome.Missing : TakeOutcome.Closed, first);
        var candidates = open.Where(s => s.Remaining > 0).Select(s => s.Shard ?? 0).ToArray();
        Random.Shared.Shuffle(candidates);
        foreach (var shard in candidates)
        {
            if (await TryTakeOrRefuseAsync(campaignId, shard, now, ct))
                return new StockTake(TakeOutcome.Taken, shard);
        }
        return new StockTake(TakeOutcome.SoldOut, first);
    }

    /// <summary>The take patch on one shard; false when its filter refused (empty or closed) or the shard is missing.</summary>
    private async Task<bool> TryTakeOrRefuseAsync(string campaignId, int shard, DateTimeOffset now, CancellationToken ct)
    {
        try
        {
            return await TryTakeShardAsync(campaignId, shard, now, ct);
        }
        catch (CosmosException e) when (e.StatusCode == HttpStatusCode.PreconditionFailed)
        {
            return false;
        }
    }

    /// <summary>The take patch: false when the shard is missing; a refused filter throws 412 (412 handling is the caller's).</summary>
    private async Task<bool> TryTakeShardAsync(string campaignId, int shard, DateTimeOffset now, CancellationToken ct)
    {
        try
        {
            await container.PatchItemAsync<Stock>(Stock.DocumentId, new PartitionKey(StockSharding.Key(campaignId, shard)),
                [PatchOperation.Increment("/remaining", -1), PatchOperation.Increment("/issued", 1), PatchOperation.Set("/lastClaimAt", now)],
                new PatchItemRequestOptions { FilterPredicate = "FROM c WHERE c.open = true AND c.remaining > 0", EnableContentResponseOnWrite = false }, ct);
            return true;
        }
        catch (CosmosException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }
    }

    private sealed record ShardState(int? Shard, bool Open, int Remaining);

    /// <summary>
    /// Every shard's switch and what it has left, in one query naming the shards' partition keys (the SDK sends it
    /// only to the physical partitions that hold them: one request while the container has one).
    /// </summary>
    private async Task<List<ShardState>> ReadShardStatesAsync(string campaignId, int shards, CancellationToken ct)
    {
        var keys = Enumerable.Range(0, shards).Select(k => "@k" + k).ToArray();
        var query = new QueryDefinition($"SELECT c.shard, c.open, c.remaining FROM c WHERE c.id = @id AND c.campaignId IN ({string.Join(", ", keys)})")
            .WithParameter("@id", Stock.DocumentId);
        for (var k = 0; k < shards; k++) query = query.WithParameter(keys[k], StockSharding.Key(campaignId, k));
        var results = new List<ShardState>();
        using var iterator = container.GetItemQueryIterator<ShardState>(query,
            requestOptions: new QueryRequestOptions { EnableOptimisticDirectExecution = true });
        while (iterator.HasMoreResults)
            results.AddRange(await iterator.ReadNextAsync(ct));
        return results;
    }

    /// <summary>
    /// Returns the unit taken by the claim of <paramref name="couponId"/> that was then refused (limit reached,
    /// duplicate key), once: the patch is filtered on the id not being among the recent give-backs and records it
    /// there, so a re-sent patch is refused. False when refused (already given back).
    /// </summary>
    public Task<bool> GiveBackAsync(string campaignId, string couponId, DateTimeOffset now, CancellationToken ct = default)
        => GiveBackAsync(campaignId, 0, couponId, now, ct);

    /// <summary>The give-back of a sharded campaign: to the shard the unit came from (each shard remembers its own).</summary>
    public Task<bool> GiveBackAsync(string campaignId, int shard, string couponId, DateTimeOffset now, CancellationToken ct = default)
        // Coupon ids are ours ([a-z0-9_]), so the literal is safe.
        => PatchWhereAsync<Stock>(Stock.DocumentId, new PartitionKey(StockSharding.Key(campaignId, shard)),
            [PatchOperation.Increment("/remaining", 1), PatchOperation.Increment("/issued", -1), PatchOperation.Set("/lastClaimAt", now),
             PatchOperation.Add("/givenBack/0", couponId), PatchOperation.Remove($"/givenBack/{Stock.GiveBackMemory}")],
            $"c.issued > 0 AND NOT ARRAY_CONTAINS(c.givenBack, \"{couponId}\")", ct);

    /// <summary>An unsharded campaign's counter (a sharded campaign's shard 0).</summary>
    public Task<Stock?> FindAsync(string campaignId, CancellationToken ct = default) => FindShardAsync(campaignId, 0, ct);

    public async Task<Stock?> FindShardAsync(string campaignId, int shard, CancellationToken ct = default)
    {
        try
        {
            var response = await container.ReadItemAsync<Stock>(Stock.DocumentId, new PartitionKey(StockSharding.Key(campaignId, shard)), cancellationToken: ct);
            return response.Resource with { ETag = response.ETag };
        }
        catch (CosmosException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>Every shard of the campaign that exists, by shard number (point reads in parallel, with etags).</summary>
    public async Task<List<Stock>> FindShardsAsync(string campaignId, int shards, CancellationToken ct = default)
    {
        var found = await Task.WhenAll(Enumerable.Range(0, shards).Select(k => FindShardAsync(campaignId, k, ct)));
        return [.. found.OfType<Stock>()];
    }

    /// <summary>
    /// Writes the closed counters a draft being published needs, and never touches counters in use. A counter
    /// may already exist: from an earlier publish that failed before the status changed (possibly with a
    /// quantity the draft has since changed), or from a concurrent publish (or its retry) that got there first
    /// and may already have opened it. Only a counter that is closed and has issued nothing is rewritten; the
    /// budget only alongside it, and only while nothing was reserved, spent or topped up. Every write is a
    /// create-if-absent or a filtered set, so it is also safe when the SDK sends it twice.
    /// With <paramref name="shards"/> &gt; 1 every shard is prepared this way (in parallel), and the budget only when
    /// none of them was in use.
    /// </summary>
    public async Task PrepareForPublishAsync(string campaignId, int total, long? budget, int shards = 1, CancellationToken ct = default)
    {
        var prepared = await Task.WhenAll(Enumerable.Range(0, shards).Select(k => PrepareShardAsync(campaignId, k, shards, total, ct)));
        if (!prepared.All(p => p))
            return; // in use: a concurrent publish won, and its counters stand
        if (budget is { } amount)
            await Task.WhenAll(Enumerable.Range(0, shards).Select(k => PrepareBudgetShardAsync(campaignId, k, shards, amount, ct)));
    }

    private async Task<bool> PrepareShardAsync(string campaignId, int shard, int shards, int total, CancellationToken ct)
    {
        var share = StockSharding.Share(total, shards, shard);
        var sharded = shards > 1;
        var fresh = new Stock
        {
            CampaignId = StockSharding.Key(campaignId, shard), Total = share, Remaining = share, Issued = 0, Open = false,
            ShardOf = sharded ? campaignId : null, Shard = sharded ? shard : null, Shards = sharded ? shards : null,
        };
        if (await container.TryCreateAsync(fresh, fresh.CampaignId, ct)) return true;
        // A leftover of an earlier publish may have had another shard count: its shard fields are set too (for an
        // unsharded campaign to the values an absent field means), so the sold-out query groups it right.
        return await PatchWhereAsync<Stock>(Stock.DocumentId, new PartitionKey(fresh.CampaignId),
            [PatchOperation.Set("/total", share), PatchOperation.Set("/remaining", share),
             PatchOperation.Set("/shardOf", campaignId), PatchOperation.Set("/shard", shard), PatchOperation.Set("/shards", shards)],
            "c.open = false AND c.issued = 0", ct);
    }

    /// <summary>
    /// A patch filtered on <paramref name="filter"/>; false when the filter refused it or the document is missing.
    /// Not stamped (unlike ContainerExtensions.TryPatchAsync): these documents are hot, so each filter itself makes
    /// a repeat harmless (per-order entries, recent give-backs, top-up keys, or sets of the same values).
    /// </summary>
    private async Task<bool> PatchWhereAsync<T>(string id, PartitionKey key, IReadOnlyList<PatchOperation> operations, string filter, CancellationToken ct)
    {
        try
        {
            await container.PatchItemAsync<T>(id, key, operations,
                new PatchItemRequestOptions { FilterPredicate = "FROM c WHERE " + filter, EnableContentResponseOnWrite = false }, ct);
            return true;
        }
        catch (CosmosException e) when (e.StatusCode is HttpStatusCode.PreconditionFailed or HttpStatusCode.NotFound)
        {
            return false;
        }
    }

    /// <summary>
    /// Open counters with nothing left and no claim for <paramref name="quietSince"/>: sold-out campaigns the
    /// expiry timer closes. Cross-partition, timer only, served by the index (reads only the sold-out ones).
    /// </summary>
    /// A sharded campaign is sold out when every one of its shards is: the query returns shards, which are grouped by
    /// campaign here and kept only when all of a campaign's shards came back (each shard records how many there are).
    /// A campaign part-way through selling out returns fewer rows than its shards: at most shards - 1 small rows.
    public async Task<List<SoldOutCampaign>> ListSoldOutAsync(DateTimeOffset quietSince, CancellationToken ct = default)
    {
        var query = new QueryDefinition("SELECT c.campaignId, c.shardOf, c.shards FROM c WHERE c.id = @id AND c.open = true AND c.remaining <= 0 AND c.lastClaimAt <= @quiet")
            .WithParameter("@id", Stock.DocumentId).WithParameter("@quiet", UtcInstantConverter.Text(quietSince));
        var empty = new List<EmptyShard>();
        using var iterator = container.GetItemQueryIterator<EmptyShard>(query,
            requestOptions: new QueryRequestOptions { EnableOptimisticDirectExecution = true });
        while (iterator.HasMoreResults)
            empty.AddRange(await iterator.ReadNextAsync(ct));
        return [.. empty.GroupBy(s => s.ShardOf ?? s.CampaignId)
            .Where(g => g.Count() >= g.Max(s => s.Shards ?? 1))
            .Select(g => new SoldOutCampaign(g.Key, g.Max(s => s.Shards ?? 1)))];
    }

    private sealed record EmptyShard(string CampaignId, string? ShardOf, int? Shards);

    /// <summary>Opens or closes an unsharded campaign's counter.</summary>
    public Task SetOpenAsync(string campaignId, bool open, CancellationToken ct = default) => SetOpenAsync(campaignId, 1, open, ct);

    /// <summary>
    /// Opens or closes every shard (in parallel). Done when every shard is: a close that returns has closed them
    /// all, so the lifecycle's "close before the status, open after it" ordering holds shard by shard.
    /// </summary>
    public Task SetOpenAsync(string campaignId, int shards, bool open, CancellationToken ct = default)
        => Task.WhenAll(Enumerable.Range(0, shards).Select(k => SetShardOpenAsync(campaignId, k, open, ct)));

    public Task SetShardOpenAsync(string campaignId, int shard, bool open, CancellationToken ct = default)
        => container.PatchItemAsync<Stock>(Stock.DocumentId, new PartitionKey(StockSharding.Key(campaignId, shard)), [PatchOperation.Set("/open", open)],
            new PatchItemRequestOptions { EnableContentResponseOnWrite = false }, ct);

    /// <summary>
    /// Moves the total from <paramref name="fromTotal"/> to <paramref name="toTotal"/>, adding the difference
    /// to what remains. Conditional on the current total, so a retry or a concurrent reconciliation applies
    /// it at most once. False when the total was not <paramref name="fromTotal"/>.
    /// </summary>
    public Task<bool> TryChangeTotalAsync(string campaignId, int fromTotal, int toTotal, CancellationToken ct = default)
        => TryChangeShardTotalAsync(campaignId, 0, fromTotal, toTotal, ct);

    /// <summary>
    /// A campaign total change spread over its shards: each shard moves from its share of the old total to its share
    /// of the new one (shares only grow with the total), each patch conditional on that shard's old share, so each
    /// applies at most once. True when every shard moved.
    /// </summary>
    public async Task<bool> TryChangeTotalAsync(string campaignId, int shards, int fromTotal, int toTotal, CancellationToken ct = default)
    {
        var moved = await Task.WhenAll(Enumerable.Range(0, shards).Select(k =>
        {
            var (from, to) = (StockSharding.Share(fromTotal, shards, k), StockSharding.Share(toTotal, shards, k));
            return from == to ? Task.FromResult(true) : TryChangeShardTotalAsync(campaignId, k, from, to, ct);
        }));
        return moved.All(m => m);
    }

    /// <summary>One shard's total from <paramref name="fromTotal"/> to <paramref name="toTotal"/>, conditional on its current total.</summary>
    public async Task<bool> TryChangeShardTotalAsync(string campaignId, int shard, int fromTotal, int toTotal, CancellationToken ct = default)
    {
        try
        {
            await container.PatchItemAsync<Stock>(Stock.DocumentId, new PartitionKey(StockSharding.Key(campaignId, shard)),
                [PatchOperation.Set("/total", toTotal), PatchOperation.Increment("/remaining", toTotal - fromTotal)],
                new PatchItemRequestOptions { FilterPredicate = $"FROM c WHERE c.total = {fromTotal}", EnableContentResponseOnWrite = false }, ct);
            return true;
        }
        catch (CosmosException e) when (e.StatusCode is HttpStatusCode.PreconditionFailed or HttpStatusCode.NotFound)
        {
            return false;
        }
    }

    /// <summary>
    /// Sets the counters from a count of the coupons really issued, only if the document is unchanged
    /// since <paramref name="read"/> (any claim in between changes its etag and cancels the repair).
    /// </summary>
    public async Task<bool> TryRepairAsync(Stock read, int issued, DateTimeOffset now, CancellationToken ct = default)
    {
        try
        {
            await container.PatchItemAsync<Stock>(Stock.DocumentId, new PartitionKey(read.CampaignId),
                [PatchOperation.Set("/issued", issued), PatchOperation.Set("/remaining", read.Total - issued), PatchOperation.Set("/reconciledAt", now)],
                new PatchItemRequestOptions { IfMatchEtag = read.ETag, EnableContentResponseOnWrite = false }, ct);
            return true;
        }
        catch (CosmosException e) when (e.StatusCode == HttpStatusCode.PreconditionFailed)
        {
            return false;
        }
    }
}
