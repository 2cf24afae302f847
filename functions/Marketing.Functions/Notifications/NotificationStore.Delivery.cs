using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Notifications;

/// <summary>The delivery's writes to a record (DeliverNotifications): one filtered patch each, safe to apply twice.</summary>
public sealed partial class NotificationStore
{
    /// <summary>Still open: no delivery state yet, or pending. Delivered and failed are final.</summary>
    private const string StillPending = "(NOT IS_DEFINED(c.delivery.state) OR c.delivery.state = 'pending')";

    /// <summary>
    /// Writes the delivery's new state while the record is still pending; false when it is already final (another
    /// delivery of the same message got there first) or missing. The filter makes a repeat harmless: once final, the
    /// record refuses every later mark, so a re-sent patch cannot turn delivered into failed or count an attempt twice.
    /// </summary>
    public Task<bool> TryMarkDeliveryAsync(string customerId, string id, DeliveryStatus status, CancellationToken ct)
        => container.TryPatchAsync<NotificationRecord>(id, customerId, [PatchOperation.Set("/delivery", status)], StillPending, ct);
}
