using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Text.Json;
using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Commissions;

/// <summary>
/// An order event we could not use (malformed, or in a currency the programme does not settle): kept for
/// operators with the reason and the start of the body, and completed, so it is never retried forever.
/// </summary>
public sealed record QuarantinedEvent
{
    public required string Id { get; init; }
    /// <summary>UTC date received ("2026-11-22"): the partition key, so operators list a day at a time.</summary>
    public required string Day { get; init; }
    public required string MessageId { get; init; }
    public required int DeliveryCount { get; init; }
    public required string Reason { get; init; }
    public required string Body { get; init; }
    public required DateTimeOffset ReceivedAt { get; init; }
}

public sealed class QuarantineOptions
{
    public const string Section = "Quarantine";

    /// <summary>
    /// Days a quarantined event is kept for operators before Cosmos deletes it (its "ttl", set when it is recorded).
    /// The message itself was completed: this is the only trace, so long enough to be looked at and replayed by hand.
    /// </summary>
    [Range(1, 3650)]
    public int RetentionDays { get; set; } = 30;
}

/// <summary>
/// Container "quarantine", partitioned by /day. The list skips (and logs) a record it cannot read (see <see cref="Paging"/>).
/// Every record expires <see cref="QuarantineOptions.RetentionDays"/> after it was written (per-item "ttl").
/// </summary>
public sealed class QuarantineStore(Database database, ILogger<QuarantineStore>? logger = null, IOptions<QuarantineOptions>? options = null)
{
    // TTL on with no default: each record carries its own "ttl" (the retention when it was recorded).
    public static readonly ContainerSpec Spec = new("quarantine", "/day", ["/body/?", "/\"_etag\"/?"], DefaultTtl: -1);
    public const int MaxBody = 4096;

    private readonly Container container = database.GetContainer(Spec.Name);
    private readonly ILogger log = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger<QuarantineStore>.Instance;

    /// <summary>Seconds a record stays (Cosmos "ttl": a nonzero positive integer).</summary>
    public int TtlSeconds { get; } = checked((options?.Value ?? new QuarantineOptions()).RetentionDays * 86_400);

    public static string DayOf(DateTimeOffset instant) => instant.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    /// <summary>Records the message once per message id and day (a redelivery of the same message is not a second record).</summary>
    public async Task RecordAsync(string messageId, int deliveryCount, string reason, string body, DateTimeOffset now, CancellationToken ct)
    {
        // Message ids are the sender's: keep them out of the document id's forbidden characters.
        var id = string.Concat(messageId.Select(c => c is '/' or '\\' or '?' or '#' || char.IsControl(c) ? '_' : c));
        if (id.Length is 0 or > 200) id = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(messageId)));
        var entry = new QuarantinedEvent
        {
            Id = id, Day = DayOf(now), MessageId = messageId, DeliveryCount = deliveryCount, Reason = reason,
            Body = body.Length > MaxBody ? body[..MaxBody] : body, ReceivedAt = now,
        };
        // "ttl" is storage only, not part of what operators see: added to the document, not to the record.
        var document = JsonSerializer.SerializeToNode(entry, Json.Storage)!.AsObject();
        document["ttl"] = TtlSeconds;
        await container.TryCreateAsync(document, entry.Day, ct);
    }

    public async Task<List<QuarantinedEvent>> ListAsync(string day, CancellationToken ct)
    {
        var query = new QueryDefinition("SELECT * FROM c WHERE c.day = @day").WithParameter("@day", day);
        return await container.ReadAllReadableAsync<QuarantinedEvent>(query, new PartitionKey(day), log, ct);
    }
}
