using System.Net;
using System.Text;
using System.Text.Json.Serialization;
using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Campaigns;

/// <summary>
/// One shard of a campaign's money budget (minor units), next to the stock counter of the same shard in that
/// shard's partition (<see cref="StockSharding.Key"/>) but in its own document, so claims never carry it. A campaign
/// with stockShards K has K budget shards, each holding its split of the money; an unsharded campaign has exactly one
/// (id "budget" in the campaign's partition, as before shards). Budget = Left + Reserved + Spent holds inside each
/// shard because every change moves two of them in one atomic patch, and a lock reserves only while Left covers its
/// discount: exact under any concurrency.
/// <see cref="Orders"/> makes every move happen once per order however often it is retried: it holds an entry only
/// while a move needs one — "reserved:&lt;coupon&gt;" while a lock is open, "refund" while a refund is being applied
/// (removed once the redemption committed it) — and every move is filtered on that entry. <see cref="Holds"/> counts
/// those entries and caps the open reservations, so no shard grows with orders (docs/redemption.md, "Budgets").
/// </summary>
public sealed record CampaignBudget
{
    public const string DocumentId = "budget";

    public string Id { get; init; } = DocumentId;
    /// <summary>The partition key: the campaign id for shard 0, "&lt;campaign&gt;~&lt;k&gt;" for shard k.</summary>
    public required string CampaignId { get; init; }
    public required long Budget { get; init; }
    public required long Left { get; init; }
    public long Reserved { get; init; }
    public long Spent { get; init; }
    /// <summary>
    /// Entries of <see cref="Orders"/> written by this shape (open reservations and refunds being applied). Documents
    /// of the old shape lack it (the patch's increment creates it); their entries from before count nowhere.
    /// </summary>
    public int Holds { get; init; }
    public Dictionary<string, string> Orders { get; init; } = [];
    /// <summary>Top-ups being applied to this shard: key → amount added here, removed once the top-up is marked applied.</summary>
    public Dictionary<string, long> Applying { get; init; } = [];
    /// <summary>Money top-ups added to this shard (so a publish retried on a leftover can tell it was topped up).</summary>
    public long ToppedUp { get; init; }
    /// <summary>Shard 0 only: the whole campaign's budget (the shards' sum), so one filter can cap top-ups.</summary>
    public long? Whole { get; init; }
    /// <summary>Old shape only (read, never appended): top-ups recorded inside the document before they had their own.</summary>
    public List<BudgetTopUp>? TopUps { get; init; }
    /// <summary>Old shape only: the keys of <see cref="TopUps"/>.</summary>
    public List<string>? TopUpKeys { get; init; }

    // Sharding, as on Stock: the campaign, this shard's number and how many there are (absent on documents of the
    // old shape: one shard).
    public string? ShardOf { get; init; }
    public int? Shard { get; init; }
    public int? Shards { get; init; }

    [JsonIgnore] public int ShardNumber => Shard ?? 0;
    [JsonIgnore] public int ShardCount => Shards ?? 1;
}

/// <summary>One top-up of a campaign's budget as the old shape recorded it inside the budget document.</summary>
public sealed record BudgetTopUp(string Key, long Amount, string Reason, string By, DateTimeOffset At, string RequestHash);

/// <summary>
/// A top-up in its own document (id "topup:&lt;key&gt;", the campaign's partition of the stock container): created
/// if absent (that is the Idempotency-Key check), applied to every budget shard under a lease, then marked applied.
/// </summary>
public sealed record TopUp
{
    public const string IdPrefix = "topup:";

    public string Id => IdPrefix + Key;
    public required string CampaignId { get; init; }
    public required string Key { get; init; }
    public required long Amount { get; init; }
    public required string Reason { get; init; }
    public required string By { get; init; }
    public required DateTimeOffset At { get; init; }
    public required string RequestHash { get; init; }
    /// <summary>
    /// While not applied: the instant until which the request that holds it may still be moving money. Nobody else
    /// applies it before this (plus <see cref="StockStore.LeaseMargin"/>), and the holder's moves are cancelled by then.
    /// </summary>
    public DateTimeOffset? LeaseUntil { get; init; }
    /// <summary>Set once the money was added to every shard: from then on no one moves money for it again.</summary>
    public DateTimeOffset? AppliedAt { get; init; }
    /// <summary>
    /// Set when the top-up was above Approvals:TopUpThreshold: a request an approver decides (docs/approvals.md, "Money").
    /// Nothing applies it, and no one takes a lease on it, unless <see cref="TopUpApproval.Status"/> is approved.
    /// Absent: the top-up needed no approval (at or below the threshold, or written before approvals existed).
    /// </summary>
    public TopUpApproval? Approval { get; init; }

    /// <summary>May money move for it: it needed no approval, or it was approved.</summary>
    [JsonIgnore] public bool MayApply => Approval is null || Approval.Status == TopUpApproval.Approved;

    /// <summary>Where it stands, as the API says it (<see cref="TopUpStates"/>).</summary>
    [JsonIgnore]
    public string State => AppliedAt is not null ? TopUpStates.Applied : Approval?.Status switch
    {
        TopUpApproval.Pending => TopUpStates.PendingApproval,
        TopUpApproval.Approved => TopUpStates.Approved,
        TopUpApproval.Rejected => TopUpStates.Rejected,
        TopUpApproval.Refused => TopUpStates.Refused,
        _ => TopUpStates.Applying,
    };

    [JsonPropertyName("_etag")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ETag { get; init; }
}

/// <summary>
/// The decision on a top-up request. pending → approved (then applied, exactly once) or rejected; approved → refused only
/// when applying it would take the budget past Limits.MaxMoney (nothing was added). Every decision is final.
/// </summary>
public sealed record TopUpApproval
{
    public const string Pending = "pending";
    public const string Approved = "approved";
    public const string Rejected = "rejected";
    public const string Refused = "refused";

    public required string Status { get; init; }
    public string? DecidedBy { get; init; }
    public DateTimeOffset? DecidedAt { get; init; }
    /// <summary>The approver's reason for a rejection; why the budget refused an approved top-up.</summary>
    public string? Reason { get; init; }
}

/// <summary>A top-up's state in the API.</summary>
public static class TopUpStates
{
    public const string Applied = "applied";
    /// <summary>No approval needed; its request is adding it to the budget's shards right now.</summary>
    public const string Applying = "applying";
    public const string PendingApproval = "pending_approval";
    /// <summary>Approved, being applied (a crash here is finished by the next approve or replay of its key).</summary>
    public const string Approved = "approved";
    public const string Rejected = "rejected";
    /// <summary>Approved, but the budget would pass the maximum: nothing was added.</summary>
    public const string Refused = "refused";
}

/// <summary>A reservation could not be placed now though the money is there: every shard that could take it is at its cap.</summary>
public sealed class BudgetBusyException() : RetryLaterException("Every budget shard that could cover this discount holds as many open reservations as allowed.");

public sealed partial class StockStore
{
    private readonly CampaignCache campaignCache = campaigns;
    private readonly StockOptions stockOptions = options.Value;

    /// <summary>The entry a refund writes (see <see cref="MoveBudgetAsync"/>), until the redemption has committed the refund.</summary>
    public const string Refunding = "refund";

    /// <summary>A budget move for a record whose shard is not known (a pending lock): wherever its reservation is.</summary>
    public const int AnyShard = -1;

    /// <summary>How long a request holding a refund's or a top-up's lease may move money for it.</summary>
    public static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);

    /// <summary>Beyond <see cref="Lease"/>: clock skew between instances and a request already on the wire.</summary>
    public static readonly TimeSpan LeaseMargin = TimeSpan.FromSeconds(10);

    /// <summary>The shard an order's reservation tries first: FNV-1a of its id (stable across processes), mod the shards.</summary>
    public static int PreferredBudgetShard(string orderId, int shards) => (int)(StableHash.Fnv1a(orderId) % (uint)shards);

    /// <summary>Shard <paramref name="shard"/>'s part of an amount of money: the first amount % shards shards get one more.</summary>
    public static long MoneyShare(long amount, int shards, int shard) => amount / shards + (shard < amount % shards ? 1 : 0);

    private async Task PrepareBudgetShardAsync(string campaignId, int shard, int shards, long amount, CancellationToken ct)
    {
        var share = MoneyShare(amount, shards, shard);
        var fresh = new CampaignBudget
        {
            CampaignId = StockSharding.Key(campaignId, shard), Budget = share, Left = share,
            Whole = shard == 0 ? amount : null,
            ShardOf = shards > 1 ? campaignId : null, Shard = shards > 1 ? shard : null, Shards = shards > 1 ? shards : null,
        };
        if (await container.TryCreateAsync(fresh, fresh.CampaignId, ct)) return;
        // A leftover of an earlier publish (maybe with another amount or shard count): rewritten only while nothing was
        // ever reserved, spent or topped up in it (old shape: its key list; new shape: what top-ups added).
        List<PatchOperation> set = [PatchOperation.Set("/budget", share), PatchOperation.Set("/left", share),
            PatchOperation.Set("/shardOf", campaignId), PatchOperation.Set("/shard", shard), PatchOperation.Set("/shards", shards)];
        if (shard == 0) set.Add(PatchOperation.Set("/whole", amount));
        await PatchWhereAsync<CampaignBudget>(CampaignBudget.DocumentId, new PartitionKey(fresh.CampaignId), set,
            "c.reserved = 0 AND c.spent = 0 AND (NOT IS_DEFINED(c.topUpKeys) OR ARRAY_LENGTH(c.topUpKeys) = 0) AND (NOT IS_DEFINED(c.toppedUp) OR c.toppedUp = 0)", ct);
    }

    /// <summary>One budget shard as stored; null when missing.</summary>
    public async Task<CampaignBudget?> FindBudgetShardAsync(string campaignId, int shard, CancellationToken ct = default)
    {
        try
        {
            return (await container.ReadItemAsync<CampaignBudget>(CampaignBudget.DocumentId, new PartitionKey(StockSharding.Key(campaignId, shard)),
                cancellationToken: ct)).Resource;
        }
        catch (CosmosException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>Every shard of the campaign's budget, by shard number (shard 0 says how many there are); empty when it has none.</summary>
    public async Task<List<CampaignBudget>> FindBudgetShardsAsync(string campaignId, CancellationToken ct = default)
    {
        var first = await FindBudgetShardAsync(campaignId, 0, ct);
        if (first is null) return [];
        var others = await Task.WhenAll(Enumerable.Range(1, first.ShardCount - 1).Select(k => FindBudgetShardAsync(campaignId, k, ct)));
        return [first, .. others.OfType<CampaignBudget>()];
    }

    /// <summary>
    /// The campaign's whole budget (operators and tests): the shards' sums, every shard's entries, and the old shape's
    /// top-up list (only ever on shard 0). Null when the campaign has no budget.
    /// </summary>
    public async Task<CampaignBudget?> FindBudgetAsync(string campaignId, CancellationToken ct = default)
    {
        var shards = await FindBudgetShardsAsync(campaignId, ct);
        if (shards.Count == 0) return null;
        var first = shards[0];
        return first with
        {
            CampaignId = campaignId,
            Budget = shards.Sum(s => s.Budget), Left = shards.Sum(s => s.Left), Reserved = shards.Sum(s => s.Reserved), Spent = shards.Sum(s => s.Spent),
            Holds = shards.Sum(s => s.Holds), ToppedUp = shards.Sum(s => s.ToppedUp),
            Orders = shards.SelectMany(s => s.Orders).ToDictionary(),
            Applying = shards.SelectMany(s => s.Applying).GroupBy(a => a.Key).ToDictionary(g => g.Key, g => g.Sum(a => a.Value)),
        };
    }

    /// <summary>How many budget shards a campaign's reservations spread over: its stock shards (the campaign is held by the cache).</summary>
    private async Task<int> BudgetShardCountAsync(string campaignId, CancellationToken ct)
        => (await campaignCache.FindAsync(campaignId, ct))?.Terms.ShardCount ?? 1;

    /// <summary>
    /// Reserves <paramref name="amount"/> for the order's coupon: one filtered patch on the order's shard (stable hash)
    /// while what is left there covers it, the shard holds fewer than Stock:BudgetHoldsPerShard open entries and the
    /// order has no entry yet. The entry names the coupon ("reserved:&lt;coupon&gt;"), so of two locks of one order with
    /// different coupons racing, the loser can never release or spend the winner's reservation. On refusal, one query
    /// reads every shard (what is left, its entries count, this order's entry) and the shards that can cover it are
    /// tried, the fullest first. Returns the shard holding the reservation; a reservation this coupon already holds (an
    /// earlier attempt, a re-sent patch) counts as made. Null only when no shard can cover it; when some could but all of
    /// those are at their cap, <see cref="BudgetBusyException"/> (503, retry). <paramref name="resuming"/>: an
    /// interrupted lock resumed, whose earlier attempt may have reserved in any shard, so the query comes first.
    /// </summary>
    public async Task<int?> TryReserveBudgetAsync(string campaignId, string orderId, string couponId, long amount, CancellationToken ct = default,
        bool resuming = false)
    {
        var shards = await BudgetShardCountAsync(campaignId, ct);
        var entry = Reserved(couponId);
        if (!(resuming && shards > 1))
        {
            var first = shards == 1 ? 0 : PreferredBudgetShard(orderId, shards);
            if (await TryReserveInAsync(campaignId, first, orderId, entry, amount, ct))
                return first;
        }
        var states = await ReadBudgetShardStatesAsync(campaignId, shards, orderId, ct);
        if (states.FirstOrDefault(s => s.Entry is not null) is { } held)
            return held.Entry == entry ? held.ShardNumber : null; // ours already, or this order reserved for another coupon
        var busy = false;
        foreach (var state in states.Where(s => s.Remaining >= amount).OrderByDescending(s => s.Remaining))
        {
            if (state.Holds >= stockOptions.BudgetHoldsPerShard)
            {
                busy = true;
                continue;
            }
            if (await TryReserveInAsync(campaignId, state.ShardNumber, orderId, entry, amount, ct))
                return state.ShardNumber;
        }
        if (busy) throw new BudgetBusyException();
        return null;
    }

    private Task<bool> TryReserveInAsync(string campaignId, int shard, string orderId, string entry, long amount, CancellationToken ct)
        // Order ids are restricted to [A-Za-z0-9._:-] (see RedemptionStore) and coupon ids to [a-z0-9_-]: safe in paths and
        // literals. LEFT is a reserved word of Cosmos DB SQL: c.left is a syntax error (400) in Azure, c["left"] is not.
        // Documents of the old shape have no holds yet: they count from the first reservation on.
        => TryBudgetPatchAsync(campaignId, shard,
            $"c[\"left\"] >= {amount} AND (NOT IS_DEFINED(c.holds) OR c.holds < {stockOptions.BudgetHoldsPerShard}) AND NOT IS_DEFINED(c.orders[\"{orderId}\"])",
            [PatchOperation.Increment("/left", -amount), PatchOperation.Increment("/reserved", amount), PatchOperation.Increment("/holds", 1),
             PatchOperation.Set($"/orders/{orderId}", entry)], ct);

    private sealed record BudgetShardState(int? Shard, long Remaining, int? Holds, string? Entry)
    {
        public int ShardNumber => Shard ?? 0;
    }

    /// <summary>
    /// Every budget shard's money left, open entries and this order's entry, in one query naming the shards' partition
    /// keys (the SDK sends it only to the physical partitions that hold them). Shards that do not exist (a sharded
    /// campaign published before budgets had shards keeps one document) are simply not returned.
    /// </summary>
    private async Task<List<BudgetShardState>> ReadBudgetShardStatesAsync(string campaignId, int shards, string orderId, CancellationToken ct)
    {
        var keys = Enumerable.Range(0, shards).Select(k => "@k" + k).ToArray();
        var query = new QueryDefinition(
                $"SELECT c.shard, c[\"left\"] AS remaining, c.holds, c.orders[\"{orderId}\"] AS entry FROM c WHERE c.id = @id AND c.campaignId IN ({string.Join(", ", keys)})")
            .WithParameter("@id", CampaignBudget.DocumentId);
        for (var k = 0; k < shards; k++) query = query.WithParameter(keys[k], StockSharding.Key(campaignId, k));
        var results = new List<BudgetShardState>();
        using var iterator = container.GetItemQueryIterator<BudgetShardState>(query,
            requestOptions: new QueryRequestOptions { EnableOptimisticDirectExecution = true });
        while (iterator.HasMoreResults)
            results.AddRange(await iterator.ReadNextAsync(ct));
        return results;
    }

    /// <summary>The budget entry of an order whose discount is reserved for <paramref name="couponId"/>.</summary>
    public static string Reserved(string couponId) => "reserved:" + couponId;

    /// <summary>
    /// Moves the order's discount (see <see cref="BudgetMove"/>) in budget shard <paramref name="shard"/>, at most once
    /// per order: each move is filtered on the order's entry being where the move starts. A repeat changes nothing.
    /// Spend and release remove the reservation's entry; a refund writes <see cref="Refunding"/>, which
    /// <see cref="ClearRefundAsync"/> removes once the redemption has committed the refund. Entries written before
    /// they named their coupon ("reserved") are moved as the order's; an old shape's "refunded" entry refuses a refund.
    /// <see cref="AnyShard"/> (a release for a lock whose shard was never recorded): wherever the reservation is.
    /// </summary>
    public async Task<bool> MoveBudgetAsync(string campaignId, int shard, string orderId, string couponId, BudgetMove move, long amount,
        CancellationToken ct = default)
    {
        if (shard == AnyShard)
        {
            var shards = await BudgetShardCountAsync(campaignId, ct);
            if (shards == 1)
                shard = 0;
            else if ((await ReadBudgetShardStatesAsync(campaignId, shards, orderId, ct)).FirstOrDefault(s => s.Entry is not null) is { } held)
                shard = held.ShardNumber;
            else
                return false; // nothing reserved anywhere
        }
        var entry = $"c.orders[\"{orderId}\"]";
        var path = $"/orders/{orderId}";
        var reserved = $"({entry} = \"{Reserved(couponId)}\" OR {entry} = \"reserved\")";
        return move switch
        {
            BudgetMove.Spend => await TryBudgetPatchAsync(campaignId, shard, reserved,
                [PatchOperation.Increment("/reserved", -amount), PatchOperation.Increment("/spent", amount), PatchOperation.Increment("/holds", -1),
                 PatchOperation.Remove(path)], ct),
            BudgetMove.Release => await TryBudgetPatchAsync(campaignId, shard, reserved,
                [PatchOperation.Increment("/reserved", -amount), PatchOperation.Increment("/left", amount), PatchOperation.Increment("/holds", -1),
                 PatchOperation.Remove(path)], ct),
            // A spent discount has no entry (it was removed when spent); the refund's entry marks it given back until the
            // redemption commits the refund. Not capped: a refund is never refused for room (its entry lives milliseconds).
            BudgetMove.Refund => await TryBudgetPatchAsync(campaignId, shard, $"NOT IS_DEFINED({entry})",
                [PatchOperation.Increment("/spent", -amount), PatchOperation.Increment("/left", amount), PatchOperation.Increment("/holds", 1),
                 PatchOperation.Set(path, Refunding)], ct),
            _ => throw new ArgumentOutOfRangeException(nameof(move)),
        };
    }

    /// <summary>
    /// Removes the order's refund entry once the redemption record has committed the refund. Safe because after that
    /// commit nothing moves this order's refund again: replays of a refunded record do not move money, and every earlier
    /// attempt held the record's lease, so its calls ended before anyone else could commit (docs/redemption.md).
    /// Filtered on the entry being <see cref="Refunding"/>: an old shape's "refunded" entry stays (it counts nowhere).
    /// </summary>
    public Task<bool> ClearRefundAsync(string campaignId, int shard, string orderId, CancellationToken ct = default)
        => TryBudgetPatchAsync(campaignId, shard, $"c.orders[\"{orderId}\"] = \"{Refunding}\"",
            [PatchOperation.Increment("/holds", -1), PatchOperation.Remove($"/orders/{orderId}")], ct);

    private Task<bool> TryBudgetPatchAsync(string campaignId, int shard, string filter, IReadOnlyList<PatchOperation> operations, CancellationToken ct)
        => PatchWhereAsync<CampaignBudget>(CampaignBudget.DocumentId, new PartitionKey(StockSharding.Key(campaignId, shard)), operations, filter, ct);

    // ---- Top-ups ------------------------------------------------------------------------------------------------

    /// <summary>The top-up recorded under <paramref name="key"/> (with its etag), or null.</summary>
    public async Task<TopUp?> FindTopUpAsync(string campaignId, string key, CancellationToken ct = default)
    {
        var response = await container.ReadOrNullAsync<TopUp>(TopUp.IdPrefix + key, campaignId, ct);
        return response is null ? null : response.Resource with { ETag = response.ETag };
    }

    /// <summary>Creates the top-up unless its key was used (the Idempotency-Key check); the stored record, or null when the key exists.</summary>
    public async Task<TopUp?> TryCreateTopUpAsync(TopUp topUp, CancellationToken ct = default)
        => await container.TryWriteAsync(topUp, topUp.CampaignId, etag: null, ct) is { } etag ? topUp with { ETag = etag } : null;

    /// <summary>Replaces the top-up if unchanged since read (a lease taken over, or the mark "applied"); the new record, or null.</summary>
    public async Task<TopUp?> TryReplaceTopUpAsync(TopUp topUp, CancellationToken ct = default)
        => await container.TryWriteAsync(topUp, topUp.CampaignId, topUp.ETag, ct) is { } etag ? topUp with { ETag = etag } : null;

    /// <summary>Removes a top-up that was refused before it moved any money (the key is free again), if unchanged since read.</summary>
    public async Task TryDeleteTopUpAsync(TopUp topUp, CancellationToken ct = default)
    {
        try
        {
            await container.DeleteItemAsync<TopUp>(topUp.Id, new PartitionKey(topUp.CampaignId),
                new ItemRequestOptions { IfMatchEtag = topUp.ETag, EnableContentResponseOnWrite = false }, ct);
        }
        catch (CosmosException e) when (e.StatusCode is HttpStatusCode.PreconditionFailed or HttpStatusCode.NotFound)
        {
        }
    }

    /// <summary>
    /// Adds the top-up's money to every budget shard, split like the budget (<see cref="MoneyShare"/>), each at most once:
    /// every patch is filtered on the shard having no entry for the key and writes one. Shard 0 goes first and decides
    /// the cap (its whole-campaign figure, or its budget when it is the only shard): when it refuses for the cap nothing
    /// was added anywhere and false is returned. The entries stay until <see cref="ClearTopUpAsync"/>.
    /// </summary>
    public async Task<bool> ApplyTopUpAsync(string campaignId, int shards, string key, long amount, CancellationToken ct = default)
    {
        // Keys are restricted to [A-Za-z0-9._:-] (see TopUpBudget), so the literal is safe.
        var absent = $"NOT IS_DEFINED(c.applying[\"{key}\"])";
        var capped = shards > 1 ? "c.whole" : "c.budget";
        List<PatchOperation> first = [.. Adding(0)];
        if (shards > 1) first.Add(PatchOperation.Increment("/whole", amount));
        var filter = $"{absent} AND {capped} <= {Limits.MaxMoney - amount}";
        bool added;
        try
        {
            added = await TryBudgetPatchAsync(campaignId, 0, filter, first, ct);
        }
        catch (CosmosException e) when (e.StatusCode == HttpStatusCode.BadRequest)
        {
            // A document of the old shape has no "applying" map, and a patch cannot create a path's parent (Azure refuses
            // it with 400, as the emulator does). Give it an empty one (only where it has none: a repeat changes nothing), then again.
            await PatchWhereAsync<CampaignBudget>(CampaignBudget.DocumentId, new PartitionKey(campaignId),
                [PatchOperation.Set("/applying", new Dictionary<string, long>())], "NOT IS_DEFINED(c.applying)", ct);
            added = await TryBudgetPatchAsync(campaignId, 0, filter, first, ct);
        }
        if (!added && (await FindBudgetShardAsync(campaignId, 0, ct))?.Applying.ContainsKey(key) != true)
            return false;
        await Task.WhenAll(Enumerable.Range(1, shards - 1).Select(k => TryBudgetPatchAsync(campaignId, k, absent, Adding(k), ct)));
        return true;

        PatchOperation[] Adding(int shard)
        {
            var share = MoneyShare(amount, shards, shard);
            return [PatchOperation.Increment("/budget", share), PatchOperation.Increment("/left", share), PatchOperation.Increment("/toppedUp", share),
                PatchOperation.Set($"/applying/{key}", share)];
        }
    }

    /// <summary>
    /// Removes the top-up's entries once the top-up is marked applied (from then on nobody adds it again, and every
    /// earlier holder of its lease has stopped). Filtered on the entry, so a repeat changes nothing.
    /// </summary>
    public Task ClearTopUpAsync(string campaignId, int shards, string key, CancellationToken ct = default)
        => Task.WhenAll(Enumerable.Range(0, shards).Select(k =>
            TryBudgetPatchAsync(campaignId, k, $"IS_DEFINED(c.applying[\"{key}\"])", [PatchOperation.Remove($"/applying/{key}")], ct)));

    /// <summary>
    /// One page of the campaign's applied top-ups and top-up requests (pending, approved, rejected), newest first (one
    /// query of its partition, served by the index on <c>at</c>); <paramref name="pageToken"/> is an opaque token of an
    /// earlier page of this list (<see cref="Paging"/>: throws <see cref="InvalidPageTokenException"/> for any other).
    /// Top-ups that needed no approval are listed once applied.
    /// </summary>
    public Task<Page<TopUp>> ListTopUpsAsync(string campaignId, int pageSize, string? pageToken, CancellationToken ct = default)
    {
        // The partition key is in the filter too, not only in the options: the query then means the same wherever it runs.
        // Instants are stored as fixed-width UTC text, so ordering the text orders the instants.
        var query = new QueryDefinition("SELECT * FROM c WHERE c.campaignId = @campaign AND STARTSWITH(c.id, @prefix) "
                + "AND (IS_DEFINED(c.appliedAt) OR IS_DEFINED(c.approval)) ORDER BY c.at DESC")
            .WithParameter("@campaign", campaignId).WithParameter("@prefix", TopUp.IdPrefix);
        return container.ReadPageAsync<TopUp>(query, new PartitionKey(campaignId), pageSize, pageToken, log, ct, optimisticDirectExecution: true);
    }

    /// <summary>
    /// One page of the top-up requests waiting for an approver, across campaigns (the approvers' queue). Cross-partition,
    /// but served by the index on approval.status: only top-up documents have an approval, and only pending ones match,
    /// so each physical partition answers from its index (about 3 RU each, plus the results) and never reads the hot stock
    /// counters or budget shards that share the container. In no particular order across campaigns (a cross-partition
    /// ORDER BY would cost a sort per page); the queue is short by nature.
    /// </summary>
    public Task<Page<TopUp>> ListPendingTopUpsAsync(int pageSize, string? pageToken, CancellationToken ct = default)
        => container.ReadCrossPartitionPageAsync<TopUp>(PendingTopUps("SELECT * FROM c"), pageSize, pageToken, log, ct);

    /// <summary>How many top-ups the approvers' queue holds (<see cref="ListPendingTopUpsAsync"/>'s filter): one cross-partition query.</summary>
    public Task<long> CountPendingTopUpsAsync(CancellationToken ct)
        => container.CountAsync(PendingTopUps("SELECT VALUE 1 FROM c"), null, ct);

    // Pending, and approved but not applied (the approving call died: approving again finishes it).
    private static QueryDefinition PendingTopUps(string select)
        => new QueryDefinition(select + " WHERE c.approval.status = @pending OR (c.approval.status = @approved AND (NOT IS_DEFINED(c.appliedAt) OR IS_NULL(c.appliedAt)))")
            .WithParameter("@pending", TopUpApproval.Pending).WithParameter("@approved", TopUpApproval.Approved);

    /// <summary>
    /// The money the campaign's top-up requests waiting for an approver ask for (0: none): one single-partition query,
    /// served by the index on approval.status. What the audit trail shows of a budget besides its total.
    /// </summary>
    public async Task<long> SumPendingTopUpsAsync(string campaignId, CancellationToken ct = default)
    {
        var query = new QueryDefinition("SELECT VALUE SUM(c.amount) FROM c WHERE STARTSWITH(c.id, @prefix) AND c.approval.status = @pending")
            .WithParameter("@prefix", TopUp.IdPrefix).WithParameter("@pending", TopUpApproval.Pending);
        long sum = 0;
        using var iterator = container.GetItemQueryIterator<long?>(query, requestOptions: new QueryRequestOptions
        {
            PartitionKey = new PartitionKey(campaignId), EnableOptimisticDirectExecution = true,
        });
        while (iterator.HasMoreResults)
            foreach (var value in await iterator.ReadNextAsync(ct))
                sum += value ?? 0;
        return sum;
    }

    /// <summary>
    /// The campaign's budget figures summed over its shards and, <paramref name="withOldTopUps"/>, the top-ups the old shape
    /// recorded inside shard 0 (none in every budget written since): one query naming the shards' partition keys, projecting only figures (never the
    /// reservation entries), so it costs one round trip whatever the shard count. Shards that do not exist (a sharded
    /// campaign published before budgets had shards keeps one document) add nothing. Null when the campaign has no budget
    /// document (no budget, a draft, an unknown campaign).
    /// </summary>
    public async Task<BudgetFigures?> SumBudgetAsync(string campaignId, int shards, bool withOldTopUps = false, CancellationToken ct = default)
    {
        var keys = Enumerable.Range(0, shards).Select(k => "@k" + k).ToArray();
        // LEFT is a reserved word of Cosmos DB SQL: c["left"], as in the reservation's filter.
        var query = new QueryDefinition(
                $"SELECT c.budget, c[\"left\"] AS remaining, c.reserved, c.spent{(withOldTopUps ? ", c.topUps" : "")} FROM c WHERE c.id = @id AND c.campaignId IN ({string.Join(", ", keys)})")
            .WithParameter("@id", CampaignBudget.DocumentId);
        for (var k = 0; k < shards; k++) query = query.WithParameter(keys[k], StockSharding.Key(campaignId, k));
        var found = new List<ShardFigures>();
        using var iterator = container.GetItemQueryIterator<ShardFigures>(query,
            requestOptions: new QueryRequestOptions { EnableOptimisticDirectExecution = true });
        while (iterator.HasMoreResults)
            found.AddRange(await iterator.ReadNextAsync(ct));
        if (found.Count == 0) return null;
        return new BudgetFigures(found.Sum(f => f.Budget), found.Sum(f => f.Remaining), found.Sum(f => f.Reserved), found.Sum(f => f.Spent),
            [.. found.SelectMany(f => f.TopUps ?? [])]);
    }

    private sealed record ShardFigures(long Budget, long Remaining, long Reserved, long Spent, List<BudgetTopUp>? TopUps);

    /// <summary>
    /// How many shard keys one <see cref="SumBudgetsAsync"/> query names at most: a page of the campaigns list (at most
    /// 200 campaigns) of unsharded campaigns fits in one query; a page of hot campaigns (up to 64 shards each) takes a few.
    /// Its text stays a few tens of KB (1,000 parameters of ~40 characters), far below Cosmos DB's limit on a query's size.
    /// </summary>
    public const int MaxKeysPerBudgetQuery = 1000;

    /// <summary>
    /// The budgets of several campaigns summed over their shards, by campaign id (campaigns without budget documents are
    /// absent): one query per <see cref="MaxKeysPerBudgetQuery"/> shard keys, naming their partitions (so it goes only to
    /// the physical partitions that hold them), instead of <see cref="SumBudgetAsync"/> once per campaign. The campaigns
    /// list reads the budgets of its page this way (docs/decisions/0010-budget-burn-in-the-campaigns-list.md).
    /// </summary>
    public async Task<Dictionary<string, BudgetFigures>> SumBudgetsAsync(IReadOnlyCollection<(string CampaignId, int Shards)> campaigns, CancellationToken ct)
    {
        var owner = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (campaignId, shards) in campaigns)
            for (var k = 0; k < shards; k++)
                owner[StockSharding.Key(campaignId, k)] = campaignId;
        var found = new Dictionary<string, List<KeyedShardFigures>>(StringComparer.Ordinal);
        foreach (var chunk in owner.Keys.Chunk(MaxKeysPerBudgetQuery))
        {
            var names = chunk.Select((_, i) => "@k" + i).ToArray();
            // LEFT is a reserved word of Cosmos DB SQL: c["left"], as in SumBudgetAsync.
            var query = new QueryDefinition(
                    $"SELECT c.campaignId, c.budget, c[\"left\"] AS remaining, c.reserved, c.spent FROM c WHERE c.id = @id AND c.campaignId IN ({string.Join(", ", names)})")
                .WithParameter("@id", CampaignBudget.DocumentId);
            for (var i = 0; i < chunk.Length; i++) query = query.WithParameter(names[i], chunk[i]);
            using var iterator = container.GetItemQueryIterator<KeyedShardFigures>(query,
                requestOptions: new QueryRequestOptions { EnableOptimisticDirectExecution = true });
            while (iterator.HasMoreResults)
                foreach (var shard in await iterator.ReadNextAsync(ct))
                    if (owner.TryGetValue(shard.CampaignId, out var campaignId))
                        (found.TryGetValue(campaignId, out var list) ? list : found[campaignId] = []).Add(shard);
        }
        return found.ToDictionary(f => f.Key, f => new BudgetFigures(f.Value.Sum(s => s.Budget), f.Value.Sum(s => s.Remaining),
            f.Value.Sum(s => s.Reserved), f.Value.Sum(s => s.Spent), []), StringComparer.Ordinal);
    }

    private sealed record KeyedShardFigures(string CampaignId, long Budget, long Remaining, long Reserved, long Spent);
}

/// <summary>
/// A campaign's budget summed over its shards: <see cref="Total"/> = <see cref="Left"/> + <see cref="Reserved"/> +
/// <see cref="Spent"/> (each shard keeps it, so the sums do too, read in one query), and the old shape's top-ups.
/// </summary>
public sealed record BudgetFigures(long Total, long Left, long Reserved, long Spent, IReadOnlyList<BudgetTopUp> OldTopUps);
