using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Redemption;

/// <summary>
/// Container "redemptions", partitioned by /orderId: one record per order, found by a point read. A record written
/// in a state it can never leave (cancelled, refunded) carries a "ttl" of <see cref="RedemptionOptions.FinishedRetentionDays"/>:
/// Cosmos deletes it that long after its last step. Pending, locked and used records carry none.
/// </summary>
public sealed class RedemptionStore(Database database, IOptions<RedemptionOptions>? options = null)
{
    // TTL on with no default: only finished records carry a "ttl".
    public static readonly ContainerSpec Spec = new("redemptions", "/orderId", ["/history/*", "/requestHash/?", "/\"_etag\"/?"], DefaultTtl: -1);

    public const int MaxOrderIdLength = 64;

    private readonly Container container = database.GetContainer(Spec.Name);

    /// <summary>Seconds a finished record stays (Cosmos "ttl": a nonzero positive integer).</summary>
    public int FinishedTtlSeconds { get; } = checked((options?.Value ?? new RedemptionOptions()).FinishedRetentionDays * 86_400);

    /// <summary>No step leaves these states: cancel and refund answer them as replays, confirm refuses or replays.</summary>
    public static bool IsFinished(RedemptionState state) => state is RedemptionState.Cancelled or RedemptionState.Refunded;

    /// <summary>Order ids are the order system's: 1 to 64 of A-Z a-z 0-9 . _ : - (safe in URLs, ids and filters).</summary>
    public static bool IsValidOrderId(string? id)
        => id is { Length: > 0 and <= MaxOrderIdLength } && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or ':' or '-');

    public async Task<Redemption?> FindAsync(string orderId, CancellationToken ct = default)
    {
        if (!IsValidOrderId(orderId)) return null;
        try
        {
            var response = await container.ReadItemAsync<Redemption>(orderId, new PartitionKey(orderId), cancellationToken: ct);
            return response.Resource with { ETag = response.ETag };
        }
        catch (CosmosException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>Creates the record; null when the order already has one.</summary>
    public async Task<Redemption?> TryCreateAsync(Redemption redemption, CancellationToken ct = default)
        => await container.TryWriteAsync(Stored(redemption), redemption.OrderId, etag: null, ct) is { } etag ? redemption with { ETag = etag } : null;

    /// <summary>Replaces the record if unchanged since it was read (its etag); null when someone else changed it.</summary>
    public async Task<Redemption?> TryReplaceAsync(Redemption redemption, CancellationToken ct = default)
        => await container.TryWriteAsync(Stored(redemption), redemption.OrderId, redemption.ETag, ct) is { } etag ? redemption with { ETag = etag } : null;

    /// <summary>
    /// One step of the record, decided by the record itself: a patch filtered on <paramref name="filter"/> (the part after
    /// WHERE, e.g. the state it must be in) that sets the new state and appends the step to the history ("add /history/-"),
    /// with the record's "ttl" when the step finishes it. Of two steps racing (a confirm and the timer's expire, a cancel
    /// and a confirm), exactly one patch matches. Returns the record after the step when this call applied it (also when
    /// the SDK re-sent it and the second attempt was refused by the first: the write stamp says so); otherwise the record
    /// as it is now (null when there is none), so the caller can answer without another read.
    /// </summary>
    public async Task<(Redemption? Applied, Redemption? Current)> TryStepAsync(string orderId, string filter, RedemptionStep step,
        CancellationToken ct = default)
    {
        var stamp = Guid.NewGuid().ToString("N");
        var key = new PartitionKey(orderId);
        List<PatchOperation> operations =
        [
            PatchOperation.Set("/state", step.State),
            PatchOperation.Add("/history/-", step),
            PatchOperation.Set("/" + ContainerExtensions.WriteStamp, stamp),
        ];
        if (IsFinished(step.State)) operations.Add(PatchOperation.Set("/ttl", FinishedTtlSeconds));
        try
        {
            var response = await container.PatchItemAsync<Redemption>(orderId, key, operations,
                new PatchItemRequestOptions { FilterPredicate = "FROM c WHERE " + filter }, ct);
            return (response.Resource with { ETag = response.ETag }, null);
        }
        catch (CosmosException e) when (e.StatusCode is HttpStatusCode.PreconditionFailed or HttpStatusCode.NotFound)
        {
        }
        using var stored = await container.ReadItemStreamAsync(orderId, key, cancellationToken: ct);
        if (stored.StatusCode == HttpStatusCode.NotFound) return (null, null);
        stored.EnsureSuccessStatusCode();
        var document = (await JsonNode.ParseAsync(stored.Content, cancellationToken: ct))!.AsObject();
        var current = document.Deserialize<Redemption>(Json.Storage)! with { ETag = stored.Headers.ETag };
        var ours = document[ContainerExtensions.WriteStamp] is JsonValue value && value.TryGetValue<string>(out var found) && found == stamp;
        return ours ? (current, null) : (null, current);
    }

    /// <summary>
    /// The document as stored: the record, plus its "ttl" when it is finished. The ttl is written with the step that
    /// finishes the record (never before: a used record must outlive any refund), and is not part of the record.
    /// </summary>
    private JsonObject Stored(Redemption redemption)
    {
        var document = JsonSerializer.SerializeToNode(redemption, Json.Storage)!.AsObject();
        if (IsFinished(redemption.State)) document["ttl"] = FinishedTtlSeconds;
        return document;
    }

    /// <summary>Removes a record (a pending one this caller holds), if unchanged since read.</summary>
    public async Task TryDeleteAsync(Redemption redemption, CancellationToken ct = default)
    {
        try
        {
            await container.DeleteItemAsync<Redemption>(redemption.Id, new PartitionKey(redemption.OrderId),
                new ItemRequestOptions { IfMatchEtag = redemption.ETag, EnableContentResponseOnWrite = false }, ct);
        }
        catch (CosmosException e) when (e.StatusCode is HttpStatusCode.PreconditionFailed or HttpStatusCode.NotFound)
        {
        }
    }
}
