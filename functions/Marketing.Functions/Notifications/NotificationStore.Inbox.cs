using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Notifications;

/// <summary>The customer's in-app inbox: their notification records, newest first, and marking one read.</summary>
public sealed partial class NotificationStore
{
    /// <summary>
    /// One page of the customer's messages, newest first (one partition: theirs). Operator alerts never show, even to a
    /// caller whose subject happens to be "operators" (the alerts' partition): the query excludes their kind. Unreadable
    /// records are skipped and logged to <paramref name="log"/>.
    /// </summary>
    public Task<Page<NotificationRecord>> ListInboxAsync(string customerId, int pageSize, string? pageToken, ILogger log, CancellationToken ct)
    {
        var query = new QueryDefinition("SELECT * FROM c WHERE c.type = @type AND c.kind != @alert ORDER BY c.createdAt DESC")
            .WithParameter("@type", NotificationRecord.DocumentType)
            .WithParameter("@alert", "operator_alert");
        return container.ReadPageAsync<NotificationRecord>(query, new PartitionKey(customerId), pageSize, pageToken, log, ct, optimisticDirectExecution: true);
    }

    /// <summary>One of the customer's own messages (never an operator alert); null when they have none with this id.</summary>
    public async Task<NotificationRecord?> FindInboxAsync(string customerId, string id, CancellationToken ct)
        => await FindAsync(customerId, id, ct) is { Type: NotificationRecord.DocumentType, Kind: not NotificationKind.OperatorAlert } r ? r : null;

    /// <summary>Marks the message read at <paramref name="now"/> unless it already is (the first instant stays): safe to apply twice.</summary>
    public Task<bool> TryMarkReadAsync(string customerId, string id, DateTimeOffset now, CancellationToken ct)
        => container.TryPatchAsync<NotificationRecord>(id, customerId, [PatchOperation.Set("/readAt", now)],
            "(NOT IS_DEFINED(c.readAt) OR IS_NULL(c.readAt))", ct);
}
