using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Notifications;

/// <summary>
/// Container "notifications", partitioned by /customerId: a customer's messages (their in-app inbox and the records of
/// external deliveries, <see cref="NotificationRecord"/>) and their notification preferences; the operators' alerts in
/// the partition "operators". Records expire (their "ttl").
/// </summary>
public sealed partial class NotificationStore(Database database)
{
    public static readonly ContainerSpec Spec = new("notifications", "/customerId", ["/body/?", "/couponIds/*", "/\"_etag\"/?"], DefaultTtl: -1);

    private readonly Container container = database.GetContainer(Spec.Name);

    /// <summary>Writes the record unless one with its id exists (written before: the same message); true when written now.</summary>
    public Task<bool> TryCreateAsync(NotificationRecord record, CancellationToken ct) => container.TryCreateAsync(record, record.CustomerId, ct);

    public async Task<NotificationRecord?> FindAsync(string customerId, string id, CancellationToken ct)
        => await container.ReadOrNullAsync<NotificationRecord>(id, customerId, ct) is { } r ? r.Resource with { ETag = r.ETag } : null;
}
