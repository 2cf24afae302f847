using System.Net;
using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Redemption;

/// <summary>Container "redemptions", partitioned by /orderId: one record per order, found by a point read.</summary>
public sealed class RedemptionStore(Database database)
{
    public static readonly ContainerSpec Spec = new("redemptions", "/orderId", ["/history/*", "/requestHash/?", "/\"_etag\"/?"]);

    public const int MaxOrderIdLength = 64;

    private readonly Container container = database.GetContainer(Spec.Name);

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
        => await container.TryWriteAsync(redemption, redemption.OrderId, etag: null, ct) is { } etag ? redemption with { ETag = etag } : null;

    /// <summary>Replaces the record if unchanged since it was read (its etag); null when someone else changed it.</summary>
    public async Task<Redemption?> TryReplaceAsync(Redemption redemption, CancellationToken ct = default)
        => await container.TryWriteAsync(redemption, redemption.OrderId, redemption.ETag, ct) is { } etag ? redemption with { ETag = etag } : null;

    /// <summary>Removes a pending record whose lock was refused, if unchanged since read.</summary>
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
