using System.Text.Json.Serialization;

namespace Marketing.Functions.Notifications;

/// <summary>
/// Where a message goes. In-app messages are the inbox itself; the others leave through the delivery queue.
/// <see cref="Operators"/> is the operators' channel (their alerts' webhook), never a customer's: customers cannot opt
/// in to it and their preferences do not list it (<see cref="NotificationChannels.Customer"/>).
/// </summary>
public enum NotificationChannel { Inapp, Push, Sms, Wechat, Email, Operators }

public static class NotificationChannels
{
    /// <summary>The channels a customer's preferences list and may opt in to.</summary>
    public static readonly IReadOnlyList<NotificationChannel> Customer =
        [NotificationChannel.Inapp, NotificationChannel.Push, NotificationChannel.Sms, NotificationChannel.Wechat, NotificationChannel.Email];

    /// <summary>The channel's name as on the wire ("sms", "operators"): a bounded metric tag.</summary>
    public static string Wire(NotificationChannel channel) => channel switch
    {
        NotificationChannel.Inapp => "inapp",
        NotificationChannel.Push => "push",
        NotificationChannel.Sms => "sms",
        NotificationChannel.Wechat => "wechat",
        NotificationChannel.Email => "email",
        _ => "operators",
    };
}

/// <summary>What a message is about.</summary>
public enum NotificationKind { ExpiryReminder, OperatorAlert }

/// <summary>Where a message's external delivery stands (in-app messages are delivered by being written).</summary>
public enum DeliveryState { Pending, Delivered, Failed }

/// <summary>
/// One message to one customer on one channel (container "notifications", partition = the customer; operator alerts
/// use the partition <see cref="NotificationRecord.OperatorsPartition"/>). Its id is deterministic (what it is about and
/// when), so the timer that writes it can write it twice and the queue can deliver it twice: the record is one. The
/// in-app inbox is the customer's records; external deliveries leave as <see cref="NotificationMessage"/>s whose
/// MessageId is the record's id, and come back as <see cref="Delivery"/>.
/// </summary>
public sealed record NotificationRecord
{
    public const string DocumentType = "notification";
    public const string OperatorsPartition = "operators";

    public required string Id { get; init; }
    public required string CustomerId { get; init; }
    public string Type { get; init; } = DocumentType;
    public required NotificationKind Kind { get; init; }
    public required NotificationChannel Channel { get; init; }
    public required string Title { get; init; }
    public required string Body { get; init; }
    /// <summary>The coupons a reminder lists (several expiring together are bundled into one message).</summary>
    public IReadOnlyList<string> CouponIds { get; init; } = [];
    public string? CampaignId { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    /// <summary>In-app: when the customer marked it read.</summary>
    public DateTimeOffset? ReadAt { get; init; }
    /// <summary>External channels: the delivery's state; null for in-app messages.</summary>
    public DeliveryStatus? Delivery { get; init; }
    /// <summary>The reminder run that wrote it: after a refused batch, tells our own applied write (re-sent by the SDK) from another run's.</summary>
    public string? RunId { get; init; }
    /// <summary>When a reminder run last put the message on the queue again because none seemed to have left (the outbox sweep).</summary>
    public DateTimeOffset? RequeuedAt { get; init; }
    /// <summary>How many times the outbox sweep put it on the queue again (at most <see cref="MaxRequeues"/>).</summary>
    public int? Requeues { get; init; }

    public const int MaxRequeues = 5;
    /// <summary>Seconds Cosmos keeps the record after its last write (container default off: -1 on).</summary>
    public int? Ttl { get; init; }

    [JsonPropertyName("_etag")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ETag { get; init; }
}

/// <summary>An external delivery's state: attempts so far, the last error, and when it was delivered.</summary>
public sealed record DeliveryStatus(DeliveryState State, int Attempts = 0, string? LastError = null, DateTimeOffset? At = null);

/// <summary>
/// The body of a message on the notifications queue (Service Bus; MessageId = <see cref="RecordId"/>): what the provider
/// webhook receives, and the record to mark delivered or failed.
/// </summary>
public sealed record NotificationMessage(string RecordId, string CustomerId, NotificationChannel Channel, NotificationKind Kind, string Title,
    string Body, IReadOnlyList<string> CouponIds, DateTimeOffset CreatedAt)
{
    public static NotificationMessage Of(NotificationRecord r) => new(r.Id, r.CustomerId, r.Channel, r.Kind, r.Title, r.Body, r.CouponIds, r.CreatedAt);
}
