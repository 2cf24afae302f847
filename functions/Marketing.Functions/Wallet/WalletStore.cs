using System.Net;
using System.Text.Json.Serialization;
using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Wallet;

/// <summary>
/// One document per (customer, campaign): the coupons the customer claimed from that campaign and the
/// idempotency keys that claimed them. Appending a coupon is one patch filtered on the array length and
/// on the key's absence, so the per-customer limit and key uniqueness hold under any concurrency.
/// </summary>
public sealed record CampaignWallet
{
    public const string Kind = "wallet";

    /// <summary>The campaign id: one wallet document per campaign in the customer's partition.</summary>
    public required string Id { get; init; }
    public required string CustomerId { get; init; }
    public string Type { get; init; } = Kind;
    public required string CampaignId { get; init; }
    public required List<Coupon> Coupons { get; init; }
    public required List<string> Keys { get; init; }

    [JsonPropertyName("_etag")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ETag { get; init; }
}

/// <summary>A coupon a reminder may be owed for (<see cref="WalletStore.RemindableAsync"/>).</summary>
public sealed record RemindableCoupon(string CustomerId, string CouponId, DateTimeOffset ClaimedAt);

/// <summary>Marks which newcomer-only campaign a customer used their newcomer status on.</summary>
public sealed record NewcomerMarker
{
    public const string DocumentId = "newcomer";
    public string Id { get; init; } = DocumentId;
    public required string CustomerId { get; init; }
    public string Type { get; init; } = "newcomer";
    public required string CampaignId { get; init; }
    public required DateTimeOffset At { get; init; }
}

/// <summary>Where a coupon lives: its customer's wallet document for the campaign, at an index that never changes.</summary>
public sealed record CouponRef(string CustomerId, string CampaignId, int Index, string CouponId);

/// <summary>A coupon as read, with where it lives.</summary>
public sealed record CouponSlot(CouponRef Ref, Coupon Coupon);

public abstract record AddOutcome
{
    public sealed record Added : AddOutcome;
    public sealed record LimitReached : AddOutcome;
    public sealed record KeyExists(Coupon Coupon) : AddOutcome;
}

/// <summary>Container "wallets", partitioned by /customerId: everything a customer reads is one partition.</summary>
public sealed class WalletStore(Database database, ILogger<WalletStore>? logger = null)
{
    // Not indexed: each coupon's stored answer, request fingerprint and categories, and the wallet's idempotency
    // keys. Queries filter on customerId, type, campaignId and the coupons' id, validTo and state; the keys are
    // only tested by the claim's patch filter, which reads the one document it patches, not the index.
    public static readonly ContainerSpec Spec = new("wallets", "/customerId",
        ["/coupons/[]/response/?", "/coupons/[]/requestHash/?", "/coupons/[]/categories/*", "/keys/*", "/\"_etag\"/?"]);

    private readonly Container container = database.GetContainer(Spec.Name);
    private readonly ILogger log = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger<WalletStore>.Instance;

    /// <summary>
    /// Adds <paramref name="coupon"/> unless the customer already holds <paramref name="limit"/> coupons of the
    /// campaign or already used the coupon's idempotency key. One round trip for a customer's first coupon of
    /// a campaign (create), two for later ones (create conflicts, then the filtered patch).
    /// </summary>
    public async Task<AddOutcome> AddAsync(string customerId, Coupon coupon, int limit, CancellationToken ct = default)
    {
        var key = new PartitionKey(customerId);
        try
        {
            await container.CreateItemAsync(new CampaignWallet
            {
                Id = coupon.CampaignId, CustomerId = customerId, CampaignId = coupon.CampaignId,
                Coupons = [coupon], Keys = [coupon.IdempotencyKey],
            }, key, new ItemRequestOptions { EnableContentResponseOnWrite = false }, ct);
            return new AddOutcome.Added();
        }
        catch (CosmosException e) when (e.StatusCode == HttpStatusCode.Conflict)
        {
        }

        if (limit > 1)
        {
            try
            {
                // Idempotency keys are restricted to [A-Za-z0-9._:-] (see ClaimCoupon), so the literal is safe.
                await container.PatchItemAsync<CampaignWallet>(coupon.CampaignId, key,
                    [PatchOperation.Add("/coupons/-", coupon), PatchOperation.Add("/keys/-", coupon.IdempotencyKey)],
                    new PatchItemRequestOptions
                    {
                        FilterPredicate = $"FROM c WHERE ARRAY_LENGTH(c.coupons) < {limit} AND NOT ARRAY_CONTAINS(c.keys, \"{coupon.IdempotencyKey}\")",
                        EnableContentResponseOnWrite = false,
                    }, ct);
                return new AddOutcome.Added();
            }
            catch (CosmosException e) when (e.StatusCode == HttpStatusCode.PreconditionFailed)
            {
            }
        }

        // Refused: coupons and keys are never removed from a wallet, so one read says why for good.
        var existing = await FindKeyAsync(customerId, coupon.CampaignId, coupon.IdempotencyKey, ct);
        return existing is null ? new AddOutcome.LimitReached() : new AddOutcome.KeyExists(existing);
    }

    /// <summary>The coupon claimed with <paramref name="idempotencyKey"/> on this campaign, if any.</summary>
    public async Task<Coupon?> FindKeyAsync(string customerId, string campaignId, string idempotencyKey, CancellationToken ct = default)
    {
        var wallet = await FindWalletAsync(customerId, campaignId, ct);
        return wallet?.Coupons.FirstOrDefault(c => c.IdempotencyKey == idempotencyKey);
    }

    public async Task<CampaignWallet?> FindWalletAsync(string customerId, string campaignId, CancellationToken ct = default)
    {
        try
        {
            return (await container.ReadItemAsync<CampaignWallet>(campaignId, new PartitionKey(customerId), cancellationToken: ct)).Resource;
        }
        catch (CosmosException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>
    /// Every coupon of the customer (one single-partition query), to show or to quote: a coupon that cannot be read
    /// is skipped and logged rather than hiding the whole wallet (see <see cref="Paging"/>).
    /// </summary>
    public async Task<List<Coupon>> ListCouponsAsync(string customerId, CancellationToken ct = default)
    {
        var query = new QueryDefinition("SELECT VALUE cp FROM c JOIN cp IN c.coupons WHERE c.customerId = @customer AND c.type = @type")
            .WithParameter("@customer", customerId).WithParameter("@type", CampaignWallet.Kind);
        return await container.ReadAllReadableAsync<Coupon>(query, new PartitionKey(customerId), log, ct, optimisticDirectExecution: true);
    }

    public async Task<Coupon?> FindCouponAsync(string customerId, string couponId, CancellationToken ct = default)
        => (await FindSlotAsync(customerId, couponId, ct))?.Coupon;

    /// <summary>The coupon and where it is, if the customer holds it: a point read of the wallet document the id names.</summary>
    public async Task<CouponSlot?> FindSlotAsync(string customerId, string couponId, CancellationToken ct = default)
    {
        // Ids come from URLs and bodies: one that could never be ours is simply not found.
        if (!Ids.IsWellFormed(couponId)) return null;
        if (CouponIds.CampaignOf(couponId) is { } campaignId)
            return await FindWalletAsync(customerId, campaignId, ct) is { } found ? SlotIn(found, couponId) : null;
        var query = new QueryDefinition("SELECT VALUE c FROM c JOIN cp IN c.coupons WHERE c.customerId = @customer AND c.type = @type AND cp.id = @id")
            .WithParameter("@customer", customerId).WithParameter("@type", CampaignWallet.Kind).WithParameter("@id", couponId);
        var wallet = (await ReadAllAsync<CampaignWallet>(query, customerId, ct)).FirstOrDefault();
        return wallet is null ? null : SlotIn(wallet, couponId);
    }

    /// <summary>The coupon as stored now (a point read of its wallet document).</summary>
    public async Task<Coupon?> ReadAsync(CouponRef at, CancellationToken ct = default)
    {
        var wallet = await FindWalletAsync(at.CustomerId, at.CampaignId, ct);
        return wallet is null || at.Index >= wallet.Coupons.Count || wallet.Coupons[at.Index].Id != at.CouponId ? null : wallet.Coupons[at.Index];
    }

    private static CouponSlot? SlotIn(CampaignWallet wallet, string couponId)
    {
        var index = wallet.Coupons.FindIndex(c => c.Id == couponId);
        return index < 0 ? null : new CouponSlot(new CouponRef(wallet.CustomerId, wallet.CampaignId, index, couponId), wallet.Coupons[index]);
    }

    /// <summary>
    /// Changes one coupon in one atomic patch, only if it is in state <paramref name="from"/> and (when given)
    /// held by <paramref name="orderId"/>. False when it is not: the caller re-reads to learn why. This is the
    /// decisive write of every redemption step, so two steps racing on one coupon cannot both win.
    /// </summary>
    public async Task<bool> TryChangeCouponAsync(CouponRef at, CouponStatus from, string? orderId, CouponStatus to,
        string? newOrderId, DateTimeOffset? lockedUntil, CancellationToken ct = default)
    {
        // Coupon ids are ours and order ids are restricted to [A-Za-z0-9._:-] (see LockCoupon): safe as literals.
        var coupon = $"c.coupons[{at.Index}]";
        var filter = $"{coupon}.id = \"{at.CouponId}\" AND {coupon}.state = \"{Wire(from)}\"";
        if (orderId is not null) filter += $" AND {coupon}.orderId = \"{orderId}\"";
        var path = $"/coupons/{at.Index}";
        // Stamped: a step the SDK sends twice is still this step's win, not a race it lost.
        return await container.TryPatchAsync<CampaignWallet>(at.CampaignId, at.CustomerId,
            [PatchOperation.Set(path + "/state", to), PatchOperation.Set(path + "/orderId", newOrderId), PatchOperation.Set(path + "/lockedUntil", lockedUntil)],
            filter, ct);
    }

    /// <summary>
    /// Locks the coupon for <paramref name="orderId"/> until <paramref name="lockedUntil"/>, in one atomic patch: from available
    /// (<paramref name="heldBy"/> null), or, to take over a lock whose attempt died, from locked by <paramref name="heldBy"/>.
    /// Also records when the lock was taken and the discount it reserves (read by LockCoupon's retries and the timer).
    /// False when the coupon is not in that state.
    /// </summary>
    public async Task<bool> TryLockCouponAsync(CouponRef at, string? heldBy, string orderId, DateTimeOffset lockedUntil, DateTimeOffset lockedAt,
        long discount, CancellationToken ct = default)
    {
        var coupon = $"c.coupons[{at.Index}]";
        var filter = $"{coupon}.id = \"{at.CouponId}\" AND {coupon}.state = \"{Wire(heldBy is null ? CouponStatus.Available : CouponStatus.Locked)}\"";
        if (heldBy is not null) filter += $" AND {coupon}.orderId = \"{heldBy}\"";
        var path = $"/coupons/{at.Index}";
        return await container.TryPatchAsync<CampaignWallet>(at.CampaignId, at.CustomerId,
            [PatchOperation.Set(path + "/state", CouponStatus.Locked), PatchOperation.Set(path + "/orderId", orderId),
             PatchOperation.Set(path + "/lockedUntil", lockedUntil), PatchOperation.Set(path + "/lockedAt", lockedAt),
             PatchOperation.Set(path + "/lockedDiscount", discount)],
            filter, ct);
    }

    /// <summary>
    /// Some wallets (at most <paramref name="top"/>) holding a coupon still locked whose lock lapsed by <paramref name="now"/>:
    /// the expiry timer's lapsed-lock phase. Cross-partition, served by the index on the coupons' state and lockedUntil,
    /// so it reads the lapsed locks and nothing else. Like <see cref="NextWithCouponsDueAsync"/>, the caller works the
    /// answer and asks again (a coupon it finished is no longer locked), never carrying a continuation token.
    /// </summary>
    public async Task<List<CampaignWallet>> NextWithLapsedLocksAsync(DateTimeOffset now, int top, CancellationToken ct = default)
    {
        var query = new QueryDefinition(
                "SELECT TOP @top VALUE c FROM c JOIN cp IN c.coupons WHERE c.type = @type AND cp.state = @state AND cp.lockedUntil <= @now")
            .WithParameter("@top", top).WithParameter("@type", CampaignWallet.Kind).WithParameter("@state", Wire(CouponStatus.Locked))
            .WithParameter("@now", UtcInstantConverter.Text(now));
        var wallets = new List<CampaignWallet>();
        using var iterator = container.GetItemQueryIterator<CampaignWallet>(query,
            requestOptions: new QueryRequestOptions { EnableOptimisticDirectExecution = true });
        while (iterator.HasMoreResults)
            wallets.AddRange(await iterator.ReadNextAsync(ct));
        return [.. wallets.DistinctBy(w => (w.CustomerId, w.Id))]; // a wallet with two lapsed locks comes back twice (JOIN)
    }

    public static string Wire(CouponStatus status) => status switch
    {
        CouponStatus.Available => "available",
        CouponStatus.Locked => "locked",
        CouponStatus.Used => "used",
        CouponStatus.Expired => "expired",
        _ => throw new ArgumentOutOfRangeException(nameof(status)),
    };

    /// <summary>
    /// Some wallets (at most <paramref name="batch"/>) holding coupons of
    /// <paramref name="campaignId"/> that expire at <paramref name="validTo"/> and are still stored as available.
    /// Cross-partition, for the expiry timer only; served by the index on campaignId and the coupons'
    /// validTo/state, so it reads due wallets and nothing else. The caller expires them and asks again: the
    /// answer shrinks as it works, so no continuation token is ever carried between batches.
    /// </summary>
    public async Task<List<CampaignWallet>> NextWithCouponsDueAsync(string campaignId, DateTimeOffset validTo, int batch, CancellationToken ct = default)
    {
        // TOP bounds the answer without page sizes or continuations (which the local emulator mishandles across partitions).
        var query = new QueryDefinition(
                "SELECT TOP @batch VALUE c FROM c JOIN cp IN c.coupons WHERE c.type = @type AND c.campaignId = @campaign AND cp.validTo = @validTo AND cp.state = @state")
            .WithParameter("@batch", batch).WithParameter("@type", CampaignWallet.Kind).WithParameter("@campaign", campaignId)
            .WithParameter("@validTo", UtcInstantConverter.Text(validTo)).WithParameter("@state", Wire(CouponStatus.Available));
        var wallets = new List<CampaignWallet>();
        using var iterator = container.GetItemQueryIterator<CampaignWallet>(query,
            requestOptions: new QueryRequestOptions { EnableOptimisticDirectExecution = true });
        while (iterator.HasMoreResults)
            wallets.AddRange(await iterator.ReadNextAsync(ct));
        return [.. wallets.DistinctBy(w => w.CustomerId)]; // a wallet with two due coupons comes back twice (JOIN)
    }

    /// <summary>
    /// The still-available coupons of <paramref name="campaignId"/> expiring at <paramref name="validTo"/> claimed in
    /// (<paramref name="claimedAfter"/>, <paramref name="claimedBy"/>] (no lower bound when null): those whose
    /// expiry reminder falls due in a reminder run's window. Cross-partition, for the reminder timer only; served by
    /// the index on campaignId and the coupons' validTo, state and claimedAt, and answers a few fields per coupon, not
    /// wallets. Read a page at a time, so the caller holds what is due and nothing else.
    /// </summary>
    public async IAsyncEnumerable<RemindableCoupon> RemindableAsync(string campaignId, DateTimeOffset validTo, DateTimeOffset? claimedAfter,
        DateTimeOffset claimedBy, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        var query = new QueryDefinition(
                "SELECT c.customerId, cp.id AS couponId, cp.claimedAt FROM c JOIN cp IN c.coupons WHERE c.type = @type AND c.campaignId = @campaign AND cp.validTo = @validTo AND cp.state = @state AND cp.claimedAt <= @by"
                + (claimedAfter is null ? "" : " AND cp.claimedAt > @after"))
            .WithParameter("@type", CampaignWallet.Kind).WithParameter("@campaign", campaignId)
            .WithParameter("@validTo", UtcInstantConverter.Text(validTo)).WithParameter("@state", Wire(CouponStatus.Available))
            .WithParameter("@by", UtcInstantConverter.Text(claimedBy));
        if (claimedAfter is { } after) query = query.WithParameter("@after", UtcInstantConverter.Text(after));
        using var iterator = container.GetItemQueryIterator<RemindableCoupon>(query,
            requestOptions: new QueryRequestOptions { EnableOptimisticDirectExecution = true, MaxItemCount = 1000 });
        while (iterator.HasMoreResults)
            foreach (var coupon in await iterator.ReadNextAsync(ct))
                yield return coupon;
    }

    /// <summary>
    /// Marks the wallet's coupons that are past validity and still available as expired. Each patch is
    /// filtered on exactly those coupons still being available, so a coupon locked meanwhile is never
    /// touched and a second run changes nothing. Returns how many coupons this call expired.
    /// </summary>
    public async Task<int> ExpireAsync(CampaignWallet wallet, DateTimeOffset now, CancellationToken ct = default)
    {
        var expired = 0;
        var conflicts = 0;
        while (true)
        {
            var due = wallet.Coupons.Select((c, i) => (c, i)).Where(x => x.c.State == CouponStatus.Available && x.c.ValidTo <= now)
                .Select(x => x.i).ToList();
            if (due.Count == 0) return expired;
            // A patch carries at most 10 operations, one of them the write stamp.
            var chunk = due.Take(9).ToList();
            var filter = string.Join(" AND ", chunk.Select(i => $"c.coupons[{i}].state = \"{Wire(CouponStatus.Available)}\""));
            if (await container.TryPatchAsync<CampaignWallet>(wallet.Id, wallet.CustomerId,
                    chunk.Select(i => PatchOperation.Set($"/coupons/{i}/state", CouponStatus.Expired)).ToList(), filter, ct))
            {
                expired += chunk.Count;
                wallet = wallet with { Coupons = [.. wallet.Coupons.Select((c, i) => chunk.Contains(i) ? c with { State = CouponStatus.Expired } : c)] };
            }
            else if (++conflicts < 5)
            {
                // One of them changed meanwhile (locked, or expired by an overlapping run): look again.
                wallet = await FindWalletAsync(wallet.CustomerId, wallet.CampaignId, ct) ?? wallet with { Coupons = [] };
            }
            else
            {
                throw new InvalidOperationException($"Wallet {wallet.Id} of {wallet.CustomerId} kept changing; left for the next run.");
            }
        }
    }

    /// <summary>Whether the customer holds a coupon of any campaign other than <paramref name="campaignId"/>.</summary>
    public async Task<bool> HasCouponsOfOtherCampaignsAsync(string customerId, string campaignId, CancellationToken ct = default)
    {
        var query = new QueryDefinition("SELECT VALUE COUNT(1) FROM c WHERE c.customerId = @customer AND c.type = @type AND c.campaignId != @campaign")
            .WithParameter("@customer", customerId).WithParameter("@type", CampaignWallet.Kind).WithParameter("@campaign", campaignId);
        return (await ReadAllAsync<long>(query, customerId, ct)).Sum() > 0;
    }

    /// <summary>
    /// Spends the customer's newcomer status on <paramref name="campaignId"/>: allowed if it was unused or already
    /// spent on this same campaign. Create-if-absent, so two newcomer campaigns claimed at once cannot both win.
    /// When this call created the marker, its etag is returned so a refused claim can release it.
    /// </summary>
    public async Task<(bool Allowed, string? CreatedETag)> TryUseNewcomerStatusAsync(string customerId, string campaignId,
        DateTimeOffset now, CancellationToken ct = default)
    {
        var key = new PartitionKey(customerId);
        var marker = new NewcomerMarker { CustomerId = customerId, CampaignId = campaignId, At = now };
        while (true)
        {
            if (await container.TryWriteAsync(marker, customerId, etag: null, ct) is { } created)
                return (true, created);
            try
            {
                var current = await container.ReadItemAsync<NewcomerMarker>(NewcomerMarker.DocumentId, key, cancellationToken: ct);
                return (current.Resource.CampaignId == campaignId, null);
            }
            catch (CosmosException e) when (e.StatusCode == HttpStatusCode.NotFound)
            {
                // Released by a claim that got nothing, between our create and our read: try again.
            }
        }
    }

    /// <summary>Gives back newcomer status spent by a claim that then got nothing (sold out, closed).</summary>
    public async Task ReleaseNewcomerStatusAsync(string customerId, string createdETag, CancellationToken ct = default)
    {
        try
        {
            await container.DeleteItemAsync<NewcomerMarker>(NewcomerMarker.DocumentId, new PartitionKey(customerId),
                new ItemRequestOptions { IfMatchEtag = createdETag, EnableContentResponseOnWrite = false }, ct);
        }
        catch (CosmosException e) when (e.StatusCode is HttpStatusCode.PreconditionFailed or HttpStatusCode.NotFound)
        {
        }
    }

    /// <summary>
    /// How many coupons of the campaign exist in all wallets. A cross-partition query: only the
    /// reconciliation job calls it, never a request path.
    /// </summary>
    public async Task<int> CountIssuedAsync(string campaignId, CancellationToken ct = default)
    {
        var query = new QueryDefinition("SELECT VALUE ARRAY_LENGTH(c.coupons) FROM c WHERE c.type = @type AND c.campaignId = @campaign")
            .WithParameter("@type", CampaignWallet.Kind).WithParameter("@campaign", campaignId);
        var total = 0;
        using var iterator = container.GetItemQueryIterator<int>(query,
            requestOptions: new QueryRequestOptions { EnableOptimisticDirectExecution = true });
        while (iterator.HasMoreResults)
            total += (await iterator.ReadNextAsync(ct)).Sum();
        return total;
    }

    /// <summary>
    /// Coupons of a sharded campaign issued from each stock shard (index = shard number), counted from every wallet:
    /// one small row per wallet (its coupons' shards, as many as <see cref="CountIssuedAsync"/> reads), summed here.
    /// Cross-partition: for the stock recount only, never on a request path. Every coupon of a sharded campaign
    /// names its shard (ClaimCoupon), so each is counted once.
    /// </summary>
    public async Task<int[]> CountIssuedByShardAsync(string campaignId, int shards, CancellationToken ct = default)
    {
        var query = new QueryDefinition("SELECT VALUE ARRAY(SELECT VALUE x.stockShard FROM x IN c.coupons) FROM c WHERE c.type = @type AND c.campaignId = @campaign")
            .WithParameter("@type", CampaignWallet.Kind).WithParameter("@campaign", campaignId);
        var counts = new int[shards];
        using var iterator = container.GetItemQueryIterator<int[]>(query,
            requestOptions: new QueryRequestOptions { EnableOptimisticDirectExecution = true });
        while (iterator.HasMoreResults)
        {
            foreach (var wallet in await iterator.ReadNextAsync(ct))
            {
                foreach (var shard in wallet)
                    if (shard >= 0 && shard < shards) counts[shard]++;
            }
        }
        return counts;
    }

    private async Task<List<T>> ReadAllAsync<T>(QueryDefinition query, string customerId, CancellationToken ct)
    {
        var results = new List<T>();
        using var iterator = container.GetItemQueryIterator<T>(query, requestOptions: new QueryRequestOptions
        {
            PartitionKey = new PartitionKey(customerId),
            EnableOptimisticDirectExecution = true,
        });
        while (iterator.HasMoreResults)
            results.AddRange(await iterator.ReadNextAsync(ct));
        return results;
    }
}
