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

    [JsonPropertyName("_etag")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ETag { get; init; }
}

public enum TakeOutcome { Taken, SoldOut, Closed, Missing }

/// <summary>
/// Container "stock", partitioned by /campaignId: each campaign's counter lives in its own logical
/// partition, so hot campaigns do not compete with each other or with the catalog.
/// </summary>
public sealed class StockStore(Database database)
{
    public static readonly ContainerSpec Spec = new("stock", "/campaignId", ["/\"_etag\"/?"]);

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

    /// <summary>Returns a unit taken by a claim that was then refused (limit reached, duplicate key).</summary>
    public Task GiveBackAsync(string campaignId, DateTimeOffset now, CancellationToken ct = default)
        => container.PatchItemAsync<Stock>(Stock.DocumentId, new PartitionKey(campaignId),
            [PatchOperation.Increment("/remaining", 1), PatchOperation.Increment("/issued", -1), PatchOperation.Set("/lastClaimAt", now)],
            new PatchItemRequestOptions { FilterPredicate = "FROM c WHERE c.issued > 0", EnableContentResponseOnWrite = false }, ct);

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
    /// Writes a fresh, closed counter for a draft being published. A counter may already exist from an
    /// earlier publish that failed before the status changed, possibly with a quantity the draft has since
    /// changed; nothing can have been claimed from it (claims need the status to say published), so it is
    /// simply replaced.
    /// </summary>
    public Task ResetForPublishAsync(string campaignId, int total, CancellationToken ct = default)
        => container.UpsertItemAsync(new Stock { CampaignId = campaignId, Total = total, Remaining = total, Issued = 0, Open = false },
            new PartitionKey(campaignId), new ItemRequestOptions { EnableContentResponseOnWrite = false }, ct);

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
