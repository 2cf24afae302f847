using System.Globalization;
using System.Net;
using System.Text.Json;
using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Notifications;

/// <summary>"This coupon was reminded for this offset": written in the same batch as the message that reminded it.</summary>
public sealed record ReminderMark(string Id, string CustomerId, int Ttl)
{
    public const string DocumentType = "reminder-mark";
    public string Type { get; init; } = DocumentType;

    public static string IdOf(DueReminder r) => $"reminded:{r.CouponId}:{r.OffsetHours.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>Where SendReminders has looked up to: reminders falling due up to <see cref="Through"/> were handled (partition "operators").</summary>
public sealed record ReminderCursor
{
    public const string DocumentId = "reminder-cursor";
    public string Id { get; init; } = DocumentId;
    public string CustomerId { get; init; } = NotificationRecord.OperatorsPartition;
    public string Type { get; init; } = "reminder-cursor";
    public required DateTimeOffset Through { get; init; }

    [System.Text.Json.Serialization.JsonPropertyName("_etag")]
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? ETag { get; init; }
}

/// <summary>What a customer's partition says before reminding them: preferences, reminders already sent, messages already written.</summary>
public sealed record ReminderState(NotificationPreferences? Preferences, HashSet<string> Marked, Dictionary<string, NotificationRecord> Records);

/// <summary>Expiry reminders' reads and writes in a customer's partition, the run's cursor, and the outbox sweep.</summary>
public sealed partial class NotificationStore
{
    /// <summary>
    /// The customer's preferences, which of <paramref name="markIds"/> exist and which of <paramref name="recordIds"/>
    /// exist: one query in their partition, served by the index on id.
    /// </summary>
    public async Task<ReminderState> ReadReminderStateAsync(string customerId, IEnumerable<string> markIds, IEnumerable<string> recordIds, CancellationToken ct)
    {
        string[] ids = [NotificationPreferences.DocumentId, .. markIds.Distinct(StringComparer.Ordinal), .. recordIds.Distinct(StringComparer.Ordinal)];
        var names = ids.Select((_, i) => "@i" + i.ToString(CultureInfo.InvariantCulture)).ToArray();
        var query = new QueryDefinition($"SELECT * FROM c WHERE c.id IN ({string.Join(", ", names)})");
        for (var i = 0; i < ids.Length; i++) query = query.WithParameter(names[i], ids[i]);
        NotificationPreferences? preferences = null;
        var marked = new HashSet<string>(StringComparer.Ordinal);
        var records = new Dictionary<string, NotificationRecord>(StringComparer.Ordinal);
        using var pages = container.GetItemQueryStreamIterator(query, requestOptions: new QueryRequestOptions { PartitionKey = new PartitionKey(customerId) });
        while (pages.HasMoreResults)
        {
            using var response = await pages.ReadNextAsync(ct);
            response.EnsureSuccessStatusCode();
            using var page = await JsonDocument.ParseAsync(response.Content, cancellationToken: ct);
            foreach (var document in page.RootElement.GetProperty("Documents").EnumerateArray())
            {
                var type = document.TryGetProperty("type", out var t) ? t.GetString() : null;
                var id = document.GetProperty("id").GetString()!;
                switch (type)
                {
                    case NotificationPreferences.DocumentType:
                        preferences = document.Deserialize<NotificationPreferences>(Json.Storage);
                        break;
                    case ReminderMark.DocumentType:
                        marked.Add(id);
                        break;
                    case NotificationRecord.DocumentType:
                        records[id] = document.Deserialize<NotificationRecord>(Json.Storage)!;
                        break;
                }
            }
        }
        return new ReminderState(preferences, marked, records);
    }

    /// <summary>
    /// Writes the messages and the marks of the reminders they carry in one transactional batch in the customer's
    /// partition: all or nothing. With <paramref name="wechatConsentOf"/> (the preferences' etag as read) the same batch
    /// uses the oldest unused WeChat consent, so a consent is used exactly when its message is written. False when the
    /// batch was refused (a mark or a message of the day exists, the preferences changed): read again and decide again.
    /// </summary>
    public async Task<bool> TryWriteRemindersAsync(string customerId, IReadOnlyList<NotificationRecord> records, IReadOnlyList<ReminderMark> marks,
        string? wechatConsentOf, CancellationToken ct)
    {
        var batch = container.CreateTransactionalBatch(new PartitionKey(customerId));
        foreach (var record in records) batch.CreateItem(record, NoContent);
        foreach (var mark in marks) batch.CreateItem(mark, NoContent);
        if (wechatConsentOf is not null)
            batch.PatchItem(NotificationPreferences.DocumentId, [PatchOperation.Remove("/wechatConsents/0")],
                new TransactionalBatchPatchItemRequestOptions { IfMatchEtag = wechatConsentOf, EnableContentResponseOnWrite = false });
        using var response = await batch.ExecuteAsync(ct);
        if (response.IsSuccessStatusCode) return true;
        if (response.StatusCode is HttpStatusCode.Conflict or HttpStatusCode.PreconditionFailed or HttpStatusCode.NotFound) return false;
        throw new CosmosException($"Writing reminders for a customer failed: {response.ErrorMessage}", response.StatusCode, 0, response.ActivityId, response.RequestCharge);
    }

    private static readonly TransactionalBatchItemRequestOptions NoContent = new() { EnableContentResponseOnWrite = false };

    public async Task<ReminderCursor?> FindReminderCursorAsync(CancellationToken ct)
        => await container.ReadOrNullAsync<ReminderCursor>(ReminderCursor.DocumentId, NotificationRecord.OperatorsPartition, ct) is { } r
            ? r.Resource with { ETag = r.ETag } : null;

    /// <summary>Moves the cursor on to <paramref name="through"/>, never back (an overlapping run may have gone further).</summary>
    public async Task AdvanceReminderCursorAsync(ReminderCursor? read, DateTimeOffset through, CancellationToken ct)
    {
        for (var attempt = 0; attempt < 5; attempt++)
        {
            if (read is not null && read.Through >= through) return;
            if (await container.TrySaveAsync(new ReminderCursor { Through = through }, NotificationRecord.OperatorsPartition, read?.ETag, ct)) return;
            read = await FindReminderCursorAsync(ct);
        }
    }

    /// <summary>
    /// External messages written in (<paramref name="after"/>, <paramref name="by"/>] that never reached a provider and
    /// were not put on the queue again since <paramref name="by"/> (nor <see cref="NotificationRecord.MaxRequeues"/>
    /// times already): those whose queue message may have been lost (the run died between writing them and returning its
    /// output binding, or the host failed to send it). Cross-partition, for the reminder timer only, served by the index.
    /// </summary>
    public async Task<List<NotificationRecord>> ListUnsentAsync(DateTimeOffset after, DateTimeOffset by, CancellationToken ct)
    {
        var query = new QueryDefinition("SELECT * FROM c WHERE c.type = @type AND c.delivery.state = @pending AND c.delivery.attempts = 0 AND c.createdAt > @after AND c.createdAt <= @by"
                + " AND (NOT IS_DEFINED(c.requeuedAt) OR c.requeuedAt <= @by) AND (NOT IS_DEFINED(c.requeues) OR c.requeues < @max)")
            .WithParameter("@type", NotificationRecord.DocumentType).WithParameter("@pending", "pending")
            .WithParameter("@after", UtcInstantConverter.Text(after)).WithParameter("@by", UtcInstantConverter.Text(by))
            .WithParameter("@max", NotificationRecord.MaxRequeues);
        var found = new List<NotificationRecord>();
        using var pages = container.GetItemQueryIterator<NotificationRecord>(query, requestOptions: new QueryRequestOptions { EnableOptimisticDirectExecution = true });
        while (pages.HasMoreResults) found.AddRange(await pages.ReadNextAsync(ct));
        return found;
    }

    /// <summary>
    /// Marks a record put on the queue again at <paramref name="now"/>, filtered on "not since <paramref name="by"/>" and
    /// still pending, so two runs at once requeue it once; true when this call did.
    /// </summary>
    public Task<bool> TryMarkRequeuedAsync(NotificationRecord record, DateTimeOffset by, DateTimeOffset now, CancellationToken ct)
        => container.TryPatchAsync<NotificationRecord>(record.Id, record.CustomerId,
            [PatchOperation.Set("/requeuedAt", now), PatchOperation.Set("/requeues", (record.Requeues ?? 0) + 1)],
            $"c.delivery.state = 'pending' AND (NOT IS_DEFINED(c.requeuedAt) OR c.requeuedAt <= '{UtcInstantConverter.Text(by)}')", ct);
}
