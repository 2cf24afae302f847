using System.Net;
using System.Text.Json.Serialization;
using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;

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

    [JsonPropertyName("_etag")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ETag { get; init; }
}

/// <summary>
/// A campaign's money budget (minor units), next to its stock counter in the campaign's partition but in
/// its own document, so claims never carry it. Budget = Left + Reserved + Spent holds inside the document
/// because every change moves two of them in one atomic patch, and a lock reserves only while Left
/// covers its discount: exact under any concurrency.
/// <see cref="Orders"/> makes every move happen once per order however often it is retried: it maps each
/// order whose discount is reserved to "reserved" (removed when spent or released) and each refunded
/// order to "refunded", and every move is filtered on that entry.
/// </summary>
public sealed record CampaignBudget
{
    public const string DocumentId = "budget";

    public string Id { get; init; } = DocumentId;
    public required string CampaignId { get; init; }
    public required long Budget { get; init; }
    public required long Left { get; init; }
    public long Reserved { get; init; }
    public long Spent { get; init; }
    public Dictionary<string, string> Orders { get; init; } = [];
    public List<BudgetTopUp> TopUps { get; init; } = [];
    /// <summary>The idempotency keys of <see cref="TopUps"/>, so the patch filter can refuse a repeat.</summary>
    public List<string> TopUpKeys { get; init; } = [];
}

/// <summary>One top-up of a campaign's budget: who added how much, when and why.</summary>
public sealed record BudgetTopUp(string Key, long Amount, string Reason, string By, DateTimeOffset At, string RequestHash);

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
/// partition, so hot campaigns do not compete with each other or with the catalog.
/// </summary>
public sealed class StockStore(Database database)
{
    // Not indexed: the budget's per-order map (one property per order id: the index would grow with every
    // order) and its top-ups. The only query (ListSoldOutAsync) filters stock documents on id, open, remaining
    // and lastClaimAt; budget moves are patches filtered on the one document they change.
    // The counter's recent give-backs are only read by the give-back patch's own filter.
    public static readonly ContainerSpec Spec = new("stock", "/campaignId", ["/orders/*", "/topUps/*", "/topUpKeys/*", "/givenBack/*", "/\"_etag\"/?"]);

    private readonly Container container = database.GetContainer(Spec.Name);

    /// <summary>
    /// Takes one unit in a single round trip: a patch that decrements only while open and not empty.
    /// Atomic on the server, so any number of instances can never take more than the total.
    /// </summary>
    public async Task<TakeOutcome> TryTakeAsync(string campaignId, DateTimeOffset now, CancellationToken ct = default)
    {
        try
        {
            await container.PatchItemAsync<Stock>(Stock.DocumentId, new PartitionKey(campaignId),
                [PatchOperation.Increment("/remaining", -1), PatchOperation.Increment("/issued", 1), PatchOperation.Set("/lastClaimAt", now)],
                new PatchItemRequestOptions { FilterPredicate = "FROM c WHERE c.open = true AND c.remaining > 0", EnableContentResponseOnWrite = false }, ct);
            return TakeOutcome.Taken;
        }
        catch (CosmosException e) when (e.StatusCode == HttpStatusCode.PreconditionFailed)
        {
            // Refusal path only: one read to tell the caller why.
            var stock = await FindAsync(campaignId, ct);
            return stock is null ? TakeOutcome.Missing : !stock.Open ? TakeOutcome.Closed : TakeOutcome.SoldOut;
        }
        catch (CosmosException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return TakeOutcome.Missing;
        }
    }

    /// <summary>
    /// Returns the unit taken by the claim of <paramref name="couponId"/> that was then refused (limit reached,
    /// duplicate key), once: the patch is filtered on the id not being among the recent give-backs and records it
    /// there, so a re-sent patch is refused. False when refused (already given back).
    /// </summary>
    public Task<bool> GiveBackAsync(string campaignId, string couponId, DateTimeOffset now, CancellationToken ct = default)
        // Coupon ids are ours ([a-z0-9_]), so the literal is safe.
        => PatchWhereAsync<Stock>(Stock.DocumentId, new PartitionKey(campaignId),
            [PatchOperation.Increment("/remaining", 1), PatchOperation.Increment("/issued", -1), PatchOperation.Set("/lastClaimAt", now),
             PatchOperation.Add("/givenBack/0", couponId), PatchOperation.Remove($"/givenBack/{Stock.GiveBackMemory}")],
            $"c.issued > 0 AND NOT ARRAY_CONTAINS(c.givenBack, \"{couponId}\")", ct);

    public async Task<Stock?> FindAsync(string campaignId, CancellationToken ct = default)
    {
        try
        {
            var response = await container.ReadItemAsync<Stock>(Stock.DocumentId, new PartitionKey(campaignId), cancellationToken: ct);
            return response.Resource with { ETag = response.ETag };
        }
        catch (CosmosException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>
    /// Writes the closed counters a draft being published needs, and never touches counters in use. A counter
    /// may already exist: from an earlier publish that failed before the status changed (possibly with a
    /// quantity the draft has since changed), or from a concurrent publish (or its retry) that got there first
    /// and may already have opened it. Only a counter that is closed and has issued nothing is rewritten; the
    /// budget only alongside it, and only while nothing was reserved, spent or topped up. Every write is a
    /// create-if-absent or a filtered set, so it is also safe when the SDK sends it twice.
    /// </summary>
    public async Task PrepareForPublishAsync(string campaignId, int total, long? budget, CancellationToken ct = default)
    {
        var key = new PartitionKey(campaignId);
        if (!await container.TryCreateAsync(new Stock { CampaignId = campaignId, Total = total, Remaining = total, Issued = 0, Open = false },
                campaignId, ct) &&
            !await PatchWhereAsync<Stock>(Stock.DocumentId, key, [PatchOperation.Set("/total", total), PatchOperation.Set("/remaining", total)],
                "c.open = false AND c.issued = 0", ct))
            return; // in use: a concurrent publish won, and its counters stand
        if (budget is { } amount &&
            !await container.TryCreateAsync(new CampaignBudget { CampaignId = campaignId, Budget = amount, Left = amount }, campaignId, ct))
            await PatchWhereAsync<CampaignBudget>(CampaignBudget.DocumentId, key, [PatchOperation.Set("/budget", amount), PatchOperation.Set("/left", amount)],
                "c.reserved = 0 AND c.spent = 0 AND ARRAY_LENGTH(c.topUpKeys) = 0", ct);
    }

    public async Task<CampaignBudget?> FindBudgetAsync(string campaignId, CancellationToken ct = default)
    {
        try
        {
            return (await container.ReadItemAsync<CampaignBudget>(CampaignBudget.DocumentId, new PartitionKey(campaignId), cancellationToken: ct)).Resource;
        }
        catch (CosmosException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>
    /// Reserves <paramref name="amount"/> for the order in one filtered patch: only while what is left covers it
    /// and the order has no reservation yet. True when the order's discount is reserved (now or by an earlier
    /// attempt); false when the budget cannot cover it.
    /// </summary>
    public async Task<bool> TryReserveBudgetAsync(string campaignId, string orderId, long amount, CancellationToken ct = default)
    {
        // Order ids are restricted to [A-Za-z0-9._:-] (see RedemptionStore): safe in paths and literals.
        // LEFT is a reserved word of Cosmos DB SQL: c.left is a syntax error (400) in Azure, c["left"] is not.
        if (await TryBudgetPatchAsync(campaignId, $"c[\"left\"] >= {amount} AND NOT IS_DEFINED(c.orders[\"{orderId}\"])",
                [PatchOperation.Increment("/left", -amount), PatchOperation.Increment("/reserved", amount), PatchOperation.Set($"/orders/{orderId}", "reserved")], ct))
            return true;
        return (await FindBudgetAsync(campaignId, ct))?.Orders.GetValueOrDefault(orderId) == "reserved";
    }

    /// <summary>
    /// Moves the order's discount (see <see cref="BudgetMove"/>), at most once per order: each move is filtered on
    /// the order's entry being where the move starts. A repeat changes nothing.
    /// </summary>
    public Task<bool> MoveBudgetAsync(string campaignId, string orderId, BudgetMove move, long amount, CancellationToken ct = default)
    {
        var entry = $"c.orders[\"{orderId}\"]";
        var path = $"/orders/{orderId}";
        return move switch
        {
            BudgetMove.Spend => TryBudgetPatchAsync(campaignId, $"{entry} = \"reserved\"",
                [PatchOperation.Increment("/reserved", -amount), PatchOperation.Increment("/spent", amount), PatchOperation.Remove(path)], ct),
            BudgetMove.Release => TryBudgetPatchAsync(campaignId, $"{entry} = \"reserved\"",
                [PatchOperation.Increment("/reserved", -amount), PatchOperation.Increment("/left", amount), PatchOperation.Remove(path)], ct),
            // A spent discount has no entry (it was removed when spent); "refunded" marks it so it is given back once.
            BudgetMove.Refund => TryBudgetPatchAsync(campaignId, $"NOT IS_DEFINED({entry})",
                [PatchOperation.Increment("/spent", -amount), PatchOperation.Increment("/left", amount), PatchOperation.Set(path, "refunded")], ct),
            _ => throw new ArgumentOutOfRangeException(nameof(move)),
        };
    }

    private Task<bool> TryBudgetPatchAsync(string campaignId, string filter, IReadOnlyList<PatchOperation> operations, CancellationToken ct)
        => PatchWhereAsync<CampaignBudget>(CampaignBudget.DocumentId, new PartitionKey(campaignId), operations, filter, ct);

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
    /// Adds a top-up to the budget and records it, in one patch that is refused when the key was already
    /// used (so a retried request adds nothing). False when refused or the campaign has no budget.
    /// </summary>
    public Task<bool> TryTopUpAsync(string campaignId, BudgetTopUp topUp, CancellationToken ct = default)
        // Keys are restricted to [A-Za-z0-9._:-] (see TopUpBudget), so the literal is safe.
        // The cap is in the filter too, so top-ups racing past the handler's check cannot together overshoot it.
        => TryBudgetPatchAsync(campaignId, $"NOT ARRAY_CONTAINS(c.topUpKeys, \"{topUp.Key}\") AND c.budget <= {Limits.MaxMoney - topUp.Amount}",
            [PatchOperation.Increment("/budget", topUp.Amount), PatchOperation.Increment("/left", topUp.Amount),
             PatchOperation.Add("/topUps/-", topUp), PatchOperation.Add("/topUpKeys/-", topUp.Key)], ct);

    /// <summary>
    /// Open counters with nothing left and no claim for <paramref name="quietSince"/>: sold-out campaigns the
    /// expiry timer closes. Cross-partition, timer only, served by the index (reads only the sold-out ones).
    /// </summary>
    public async Task<List<string>> ListSoldOutAsync(DateTimeOffset quietSince, CancellationToken ct = default)
    {
        var query = new QueryDefinition("SELECT VALUE c.campaignId FROM c WHERE c.id = @id AND c.open = true AND c.remaining <= 0 AND c.lastClaimAt <= @quiet")
            .WithParameter("@id", Stock.DocumentId).WithParameter("@quiet", UtcInstantConverter.Text(quietSince));
        var results = new List<string>();
        using var iterator = container.GetItemQueryIterator<string>(query,
            requestOptions: new QueryRequestOptions { EnableOptimisticDirectExecution = true });
        while (iterator.HasMoreResults)
            results.AddRange(await iterator.ReadNextAsync(ct));
        return results;
    }

    public Task SetOpenAsync(string campaignId, bool open, CancellationToken ct = default)
        => container.PatchItemAsync<Stock>(Stock.DocumentId, new PartitionKey(campaignId), [PatchOperation.Set("/open", open)],
            new PatchItemRequestOptions { EnableContentResponseOnWrite = false }, ct);

    /// <summary>
    /// Moves the total from <paramref name="fromTotal"/> to <paramref name="toTotal"/>, adding the difference
    /// to what remains. Conditional on the current total, so a retry or a concurrent reconciliation applies
    /// it at most once. False when the total was not <paramref name="fromTotal"/>.
    /// </summary>
    public async Task<bool> TryChangeTotalAsync(string campaignId, int fromTotal, int toTotal, CancellationToken ct = default)
    {
        try
        {
            await container.PatchItemAsync<Stock>(Stock.DocumentId, new PartitionKey(campaignId),
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
