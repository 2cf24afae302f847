using System.ComponentModel.DataAnnotations;
using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using Marketing.Functions.Hosting;
using Marketing.Functions.Promoters;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Commissions;

public sealed class CommissionOptions : IValidatableObject
{
    public const string Section = "Commissions";

    /// <summary>Days a commission stays pending after the payment (refund window), then it can be paid out.</summary>
    [Range(0, 365)] public int HoldingDays { get; set; } = 7;
    /// <summary>The currency the programme settles in; order events in another currency are quarantined.</summary>
    [Required] public string Currency { get; set; } = "CNY";

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Currency is not { Length: 3 } || !Currency.All(char.IsAsciiLetterUpper))
            yield return new ValidationResult("Commissions:Currency must be an ISO 4217 code like CNY.", [nameof(Currency)]);
    }
}

public sealed record OrderEventLine(string LineId, string Category, long Amount);

/// <summary>An order event from the order system (the body of a message on the order-events queue).</summary>
public sealed record OrderEvent(string EventId, string Type, string OrderId, string BuyerId, DateTimeOffset OccurredAt, string Currency,
    IReadOnlyList<OrderEventLine> Lines)
{
    public const string Paid = "paid";
    public const string Refunded = "refunded";
    public const int MaxLines = 500;
    /// <summary>A line's amount, in minor units: the platform-wide money limit (see <see cref="Limits"/>).</summary>
    public const long MaxAmount = Limits.MaxMoney;
}

/// <summary>A paid line and what has happened to it since: refunds so far and commission reversed so far, per level.</summary>
public sealed record PaidLine(string LineId, string Category, long Amount, long Commission1, long Commission2,
    long Refunded = 0, long Reversed1 = 0, long Reversed2 = 0);

/// <summary>
/// The payment as settled: who earned (level 1 brought the buyer, level 2 invited level 1), under which
/// rules, and when the commission becomes available.
/// </summary>
public sealed record PaidOrder(string EventId, DateTimeOffset PaidAt, string BuyerId, string Currency, string? Level1, string? Level2,
    DateTimeOffset? RulesEffectiveFrom, DateTimeOffset AvailableAt, IReadOnlyList<PaidLine> Lines);

/// <summary>A ledger entry the record promises: derived from the record (<see cref="Settlement.Plans"/>), never stored in it.</summary>
public sealed record PlannedEntry(string Id, string PromoterId, int Level, string LineId, string Category, long Amount);

/// <summary>A line a parked refund asks for, kept until its payment arrives (the paid lines are not known before).</summary>
public sealed record RefundRequest(string LineId, long Amount);

/// <summary>
/// What an applied refund took off one paid line: the line's position in <see cref="PaidOrder.Lines"/> and the
/// amount refunded (after capping). Stored as a pair of numbers, <c>[line, amount]</c>: a refund of all 500
/// lines of an order is a few kilobytes.
/// </summary>
[JsonConverter(typeof(LineRefundConverter))]
public readonly record struct LineRefund(int Line, long Amount);

public sealed class LineRefundConverter : JsonConverter<LineRefund>
{
    public override LineRefund Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.StartArray || !reader.Read() || !reader.TryGetInt32(out var line)
            || !reader.Read() || !reader.TryGetInt64(out var amount) || !reader.Read() || reader.TokenType != JsonTokenType.EndArray)
            throw new JsonException("A line refund is [line, amount].");
        return new LineRefund(line, amount);
    }

    public override void Write(Utf8JsonWriter writer, LineRefund value, JsonSerializerOptions options)
    {
        writer.WriteStartArray();
        writer.WriteNumberValue(value.Line);
        writer.WriteNumberValue(value.Amount);
        writer.WriteEndArray();
    }
}

/// <summary>
/// An event of the order as received. State: "applied" (it has its effect; its ledger entries follow from the
/// record), "parked" (a refund whose payment has not arrived; applied when it does), "ignored" (e.g. a second
/// payment event for the order; see <see cref="Note"/>). <see cref="Written"/>: every entry it promises is in
/// the ledger. Only what decides is kept: a parked refund's <see cref="Lines"/>, an applied refund's
/// <see cref="Refunds"/>; the ledger entries themselves are derived again whenever they are needed.
/// </summary>
public sealed record SettledEvent(string EventId, string Type, string State, DateTimeOffset OccurredAt, DateTimeOffset ReceivedAt,
    bool Written, string? Note = null)
{
    public const string Applied = "applied";
    public const string Parked = "parked";
    public const string Ignored = "ignored";

    /// <summary>A parked refund: the lines and amounts it asks for. Null once applied.</summary>
    public IReadOnlyList<RefundRequest>? Lines { get; init; }
    /// <summary>An applied refund: what it refunded per paid line (lines it named that were not paid are only noted).</summary>
    public IReadOnlyList<LineRefund>? Refunds { get; init; }
}

/// <summary>
/// Everything settled for one order: the arbiter of its events. Every event is first decided here (one
/// write with the record's etag, so two deliveries or a payment racing its refund are serialized), then its
/// entries are written to the ledger (creates of derived ids: repeatable), then it is marked written.
/// A crash in between is finished by the next delivery of any event of the order. The record does not grow
/// with the ledger: per event it keeps its id, state and, for a refund, a pair of numbers per refunded line,
/// and it is capped (<see cref="Settlement.MaxEvents"/>, <see cref="Settlement.MaxBytes"/>).
/// </summary>
public sealed record SettlementRecord
{
    public required string Id { get; init; }
    public string OrderId => Id;
    public PaidOrder? Paid { get; init; }
    public required IReadOnlyList<SettledEvent> Events { get; init; }
    /// <summary>
    /// When ReleaseCommissions should visit the record (<see cref="PaidOrder.AvailableAt"/>): set in the same write
    /// that decides an event whose entries will be written pending, before any of them exists, and removed by the
    /// release once every entry the record promises is written and released. Absent: nothing to release (or a
    /// record of the shape before issue 11, whose releases are in the due index). Indexed: the release finds due
    /// records by a range query on it.
    /// </summary>
    public DateTimeOffset? ReleaseAt { get; init; }
    [JsonIgnore] public string? ETag { get; init; }
}

/// <summary>
/// The arithmetic, in minor units and integers only:
/// - commission of a line = floor(amount × rate_bps / 10000) per level (rounded down: the programme never
///   pays more than the rate);
/// - after refunds, the commission kept on a line = floor(commission × (amount − refunded) / amount), and a
///   refund reverses what that takes away from what was kept before. So partial refunds in any order add up
///   to the same total, and a full refund reverses exactly the commission.
/// Refunds take effect in the order of their events in the record (parked ones come before the payment and are
/// applied, in that order, when it arrives), which is what lets each event's entries be derived again.
/// </summary>
public static class Settlement
{
    /// <summary>Events one order may have; a further refund or payment event is quarantined (its payment never is).</summary>
    public const int MaxEvents = 1000;
    /// <summary>
    /// The largest a record may be (its JSON, UTF-8) with a new refund or ignored payment in it; such an event
    /// that would take it beyond is quarantined. The payment may go beyond: it adds its paid lines (at most 500,
    /// ~325 KB at the longest ids and widest categories) and the notes of the parked refunds it applies (at most
    /// 1,000 × 250 bytes), so a record stays under ~1.1 MB, well under Cosmos DB's 2 MB (docs/distribution.md).
    /// </summary>
    public const int MaxBytes = 512 * 1024;
    private const int MaxNote = 240;

    public static long Commission(long amount, int bps) => (long)((Int128)amount * bps / 10_000);

    public static long Kept(long commission, long amount, long refunded)
        => amount == 0 ? 0 : (long)((Int128)commission * (amount - refunded) / amount);

    public static string EntryId(string orderId, string eventId, string lineId, int level) => $"{orderId}:{eventId}:{lineId}:{level}";

    /// <summary>Settles the payment and applies any refunds that arrived before it.</summary>
    public static SettlementRecord Pay(SettlementRecord record, OrderEvent paid, ReferralBinding? binding, RuleVersion? rules,
        TimeSpan holding, DateTimeOffset now)
    {
        // Nobody earns on their own purchase, whatever the binding says.
        var level1 = binding?.PromoterId is { } p1 && p1 != paid.BuyerId ? p1 : null;
        var level2 = level1 is not null && binding!.ParentId is { } p2 && p2 != paid.BuyerId ? p2 : null;
        var lines = paid.Lines.Select(l => new PaidLine(l.LineId, l.Category, l.Amount,
            level1 is null || rules is null ? 0 : Commission(l.Amount, rules.Level1.For(l.Category)),
            level2 is null || rules is null ? 0 : Commission(l.Amount, rules.Level2.For(l.Category)))).ToList();
        var order = new PaidOrder(paid.EventId, paid.OccurredAt, paid.BuyerId, paid.Currency, level1, level2, rules?.EffectiveFrom,
            paid.OccurredAt + holding, lines);
        var earns = lines.Any(l => l.Commission1 > 0 || l.Commission2 > 0);
        var events = record.Events.Append(new SettledEvent(paid.EventId, paid.Type, SettledEvent.Applied, paid.OccurredAt, now, Written: !earns)).ToList();
        var settled = record with { Paid = order, Events = events };
        // Refunds that were parked waiting for this payment, in the order they arrived.
        for (var i = 0; i < settled.Events.Count; i++)
            if (settled.Events[i].State == SettledEvent.Parked)
                settled = ApplyRefund(settled, i);
        return settled;
    }

    /// <summary>Records a refund: applied at once when the payment is known, parked until it is otherwise.</summary>
    public static SettlementRecord Refund(SettlementRecord record, OrderEvent refund, DateTimeOffset now)
    {
        var received = new SettledEvent(refund.EventId, refund.Type, SettledEvent.Parked, refund.OccurredAt, now, Written: true)
        {
            Lines = [.. refund.Lines.Select(l => new RefundRequest(l.LineId, l.Amount))],
        };
        var settled = record with { Events = record.Events.Append(received).ToList() };
        return settled.Paid is null ? settled : ApplyRefund(settled, settled.Events.Count - 1);
    }

    /// <summary>
    /// The record with its release promised (<see cref="SettlementRecord.ReleaseAt"/>) when an applied event still
    /// has entries to write and their holding period has not ended by <paramref name="now"/> (they will be written
    /// pending). Called on the record about to be written, so the promise is in the write that decides the event:
    /// no round trip of its own, and no pending entry can exist before the record that leads the release to it.
    /// </summary>
    public static SettlementRecord PromiseRelease(SettlementRecord record, DateTimeOffset now)
        => record.Paid is { } paid && paid.AvailableAt > now && record.ReleaseAt is null
           && record.Events.Any(e => e.State == SettledEvent.Applied && !e.Written)
            ? record with { ReleaseAt = paid.AvailableAt }
            : record;

    public static SettlementRecord Ignore(SettlementRecord record, OrderEvent e, DateTimeOffset now, string note)
        => record with { Events = record.Events.Append(new SettledEvent(e.EventId, e.Type, SettledEvent.Ignored, e.OccurredAt, now, true, note)).ToList() };

    /// <summary>
    /// Why the record may not take <paramref name="after"/>'s new event (then it is quarantined instead), or
    /// null. The payment of an unpaid order is always taken: it adds a bounded amount (its paid lines).
    /// </summary>
    public static string? OverLimit(SettlementRecord? before, SettlementRecord after)
    {
        if (before?.Paid is null && after.Paid is not null) return null;
        if (after.Events.Count > MaxEvents)
            return $"order {after.Id} already has {MaxEvents} events, the most one order may have (docs/distribution.md#limits-per-order)";
        var bytes = JsonSerializer.SerializeToUtf8Bytes(after, Json.Storage).Length;
        return bytes > MaxBytes
            ? $"order {after.Id}: this event would take its settlement record to {bytes} bytes, over the {MaxBytes} an order may have (docs/distribution.md#limits-per-order)"
            : null;
    }

    private static SettlementRecord ApplyRefund(SettlementRecord record, int index)
    {
        var paid = record.Paid!;
        var refund = record.Events[index];
        var lines = paid.Lines.ToList();
        var refunds = new List<LineRefund>();
        var notes = new List<string>();
        var reverses = false;
        foreach (var refunded in refund.Lines ?? [])
        {
            var at = lines.FindIndex(l => l.LineId == refunded.LineId);
            if (at < 0)
            {
                notes.Add($"line {refunded.LineId} was not paid");
                continue;
            }
            var line = lines[at];
            var amount = Math.Min(refunded.Amount, line.Amount - line.Refunded);
            if (amount < refunded.Amount) notes.Add($"line {line.LineId}: refund capped at {amount}");
            if (amount == 0) continue;
            var refundedNow = line.Refunded + amount;
            var reversed1 = line.Commission1 - Kept(line.Commission1, line.Amount, refundedNow);
            var reversed2 = line.Commission2 - Kept(line.Commission2, line.Amount, refundedNow);
            reverses |= reversed1 > line.Reversed1 || reversed2 > line.Reversed2;
            refunds.Add(new LineRefund(at, amount));
            lines[at] = line with { Refunded = refundedNow, Reversed1 = reversed1, Reversed2 = reversed2 };
        }
        var events = record.Events.ToList();
        events[index] = refund with { State = SettledEvent.Applied, Lines = null, Refunds = refunds, Written = !reverses, Note = Note(notes) };
        return record with { Paid = paid with { Lines = lines }, Events = events };
    }

    /// <summary>The notes of one event, cut short (with how many more there were) so that a 500-line refund's notes stay small.</summary>
    private static string? Note(List<string> notes)
    {
        if (notes.Count == 0) return null;
        var text = string.Join("; ", notes);
        if (text.Length <= MaxNote) return text;
        var kept = 0;
        var length = 0;
        while (kept < notes.Count && length + notes[kept].Length + 2 <= MaxNote - 20) length += notes[kept++].Length + 2;
        return string.Join("; ", notes.Take(kept)) + $"; and {notes.Count - kept} more";
    }

    /// <summary>
    /// The ledger entries every event of the record promises, by event (empty for events that are not applied).
    /// Derived, not stored: the payment's from its paid lines, a refund's by replaying the refunds before it
    /// (the reversal of a refund is what it takes off the commission kept on the line). Deterministic, so every
    /// delivery, and the reconciliation, derive the same entries with the same ids and amounts.
    /// </summary>
    public static IReadOnlyList<IReadOnlyList<PlannedEntry>> Plans(SettlementRecord record)
    {
        var plans = new List<IReadOnlyList<PlannedEntry>>(record.Events.Count);
        var paid = record.Paid;
        var refunded = new long[paid?.Lines.Count ?? 0];
        foreach (var e in record.Events)
        {
            var entries = new List<PlannedEntry>();
            plans.Add(entries);
            if (e.State != SettledEvent.Applied || paid is null) continue;
            if (e.Type == OrderEvent.Paid && e.EventId == paid.EventId)
            {
                foreach (var line in paid.Lines)
                {
                    if (line.Commission1 > 0) entries.Add(new(EntryId(record.Id, e.EventId, line.LineId, 1), paid.Level1!, 1, line.LineId, line.Category, line.Commission1));
                    if (line.Commission2 > 0) entries.Add(new(EntryId(record.Id, e.EventId, line.LineId, 2), paid.Level2!, 2, line.LineId, line.Category, line.Commission2));
                }
                continue;
            }
            foreach (var (at, amount) in e.Refunds ?? [])
            {
                var line = paid.Lines[at];
                var (from, to) = (refunded[at], refunded[at] + amount);
                refunded[at] = to;
                var reversal1 = Kept(line.Commission1, line.Amount, from) - Kept(line.Commission1, line.Amount, to);
                var reversal2 = Kept(line.Commission2, line.Amount, from) - Kept(line.Commission2, line.Amount, to);
                if (reversal1 > 0) entries.Add(new(EntryId(record.Id, e.EventId, line.LineId, 1), paid.Level1!, 1, line.LineId, line.Category, -reversal1));
                if (reversal2 > 0) entries.Add(new(EntryId(record.Id, e.EventId, line.LineId, 2), paid.Level2!, 2, line.LineId, line.Category, -reversal2));
            }
        }
        return plans;
    }

    /// <summary>
    /// A record as written before issue 11 (each event kept its lines and its planned entries) in today's shape:
    /// an applied refund's requested lines become what it refunded per paid line, found by replaying the refunds
    /// in order with the same capping as when they were applied; the planned entries are derived again (the same
    /// ones, by the same arithmetic). The record is written in the new shape at its next change.
    /// </summary>
    public static SettlementRecord Upgrade(SettlementRecord record)
    {
        if (!record.Events.Any(e => e is { State: SettledEvent.Applied, Type: OrderEvent.Refunded, Refunds: null } || (e.State != SettledEvent.Parked && e.Lines is not null)))
            return record;
        var paid = record.Paid;
        var refunded = new long[paid?.Lines.Count ?? 0];
        var events = new List<SettledEvent>(record.Events.Count);
        foreach (var e in record.Events)
        {
            var upgraded = e;
            if (e is { State: SettledEvent.Applied, Type: OrderEvent.Refunded, Refunds: null } && paid is not null)
            {
                var refunds = new List<LineRefund>();
                foreach (var request in e.Lines ?? [])
                {
                    var at = paid.Lines.Select(l => l.LineId).ToList().IndexOf(request.LineId);
                    if (at < 0) continue;
                    var amount = Math.Min(request.Amount, paid.Lines[at].Amount - refunded[at]);
                    if (amount > 0) refunds.Add(new LineRefund(at, amount));
                }
                upgraded = e with { Refunds = refunds };
            }
            foreach (var (at, amount) in upgraded.Refunds ?? []) refunded[at] += amount;
            events.Add(upgraded.State == SettledEvent.Parked ? upgraded : upgraded with { Lines = null });
        }
        return record with { Events = events };
    }
}

/// <summary>
/// Container "settlements", partitioned by /orderId: one record per order, changed with its etag. Records
/// written in the shape before issue 11 are read in today's shape (<see cref="Settlement.Upgrade"/>).
/// </summary>
public sealed class SettlementStore(Database database)
{
    public static readonly ContainerSpec Spec = new("settlements", "/orderId", ["/paid/lines/*", "/events/*", "/\"_etag\"/?"]);

    private readonly Container container = database.GetContainer(Spec.Name);

    public async Task<SettlementRecord?> FindAsync(string orderId, CancellationToken ct)
        => await container.ReadOrNullAsync<SettlementRecord>(orderId, orderId, ct) is { } response
            ? Settlement.Upgrade(response.Resource) with { ETag = response.ETag }
            : null;

    /// <summary>Writes the record if nobody changed them since <paramref name="before"/> was read (null: none existed).</summary>
    public Task<bool> TrySaveAsync(SettlementRecord? before, SettlementRecord after, CancellationToken ct)
        => container.TrySaveAsync(after, after.Id, before?.ETag, ct);

    /// <summary>
    /// Creates the record of an order that has none, without reading first (a payment usually opens its order's
    /// record). True when ours is stored (also when the SDK re-sent the create: the write stamp says whose it is);
    /// otherwise false and the record that was there, read once, to decide against.
    /// </summary>
    public async Task<(bool Created, SettlementRecord? Stored)> TryCreateAsync(SettlementRecord record, CancellationToken ct)
    {
        var body = JsonSerializer.SerializeToNode(record, Json.Storage)!.AsObject();
        var stamp = Guid.NewGuid().ToString("N");
        body[ContainerExtensions.WriteStamp] = stamp;
        var bytes = JsonSerializer.SerializeToUtf8Bytes(body, Json.Storage);
        Limits.CheckStorable(bytes);
        var key = new PartitionKey(record.Id);
        using (var stream = new MemoryStream(bytes))
        using (var created = await container.CreateItemStreamAsync(stream, key, new ItemRequestOptions { EnableContentResponseOnWrite = false }, ct))
        {
            if (created.IsSuccessStatusCode) return (true, null);
            if (created.StatusCode != HttpStatusCode.Conflict) created.EnsureSuccessStatusCode(); // an error, never a lost race
        }
        using var stored = await container.ReadItemStreamAsync(record.Id, key, cancellationToken: ct);
        if (stored.StatusCode == HttpStatusCode.NotFound) return (false, null);
        stored.EnsureSuccessStatusCode();
        using var json = await JsonDocument.ParseAsync(stored.Content, cancellationToken: ct);
        if (json.RootElement.TryGetProperty(ContainerExtensions.WriteStamp, out var found) && found.ValueKind == JsonValueKind.String
            && found.GetString() == stamp)
            return (true, null);
        return (false, Settlement.Upgrade(json.RootElement.Deserialize<SettlementRecord>(Json.Storage)!) with { ETag = stored.Headers.ETag });
    }

    /// <summary>
    /// Promises the release of a record that has none (<see cref="SettlementRecord.ReleaseAt"/>) before pending
    /// entries are written for it: a record of the shape before issue 11 whose event was decided by the code before
    /// and is finished now, or one decided when the holding period looked over and written by an instance whose
    /// clock says otherwise. Setting the same instant twice is the same write.
    /// </summary>
    public Task PromiseReleaseAsync(string orderId, DateTimeOffset availableAt, CancellationToken ct)
        => container.PatchItemAsync<SettlementRecord>(orderId, new PartitionKey(orderId), [PatchOperation.Set("/releaseAt", availableAt)],
            new PatchItemRequestOptions { EnableContentResponseOnWrite = false }, ct);

    /// <summary>
    /// One page (at most <paramref name="pageSize"/>, and at most what Cosmos DB puts in one response, ~4 MB) of the
    /// records whose release is due by <paramref name="now"/>, with their etags. Cross-partition, served by the range
    /// index on releaseAt: it reads only records with a release due, never the orders settled long ago.
    /// <paramref name="continuationToken"/> is the previous page's (null for the first); records whose release is
    /// closed meanwhile simply drop out of the later pages.
    /// </summary>
    public async Task<(List<SettlementRecord> Records, string? ContinuationToken)> ListReleasesDueAsync(DateTimeOffset now, int pageSize,
        string? continuationToken, CancellationToken ct)
    {
        var query = new QueryDefinition("SELECT * FROM c WHERE c.releaseAt <= @now").WithParameter("@now", UtcInstantConverter.Text(now));
        using var iterator = container.GetItemQueryStreamIterator(query, continuationToken, new QueryRequestOptions
        {
            MaxItemCount = pageSize,
            EnableOptimisticDirectExecution = true,
        });
        using var page = await iterator.ReadNextAsync(ct);
        page.EnsureSuccessStatusCode();
        using var json = await JsonDocument.ParseAsync(page.Content, cancellationToken: ct);
        var records = new List<SettlementRecord>();
        foreach (var document in json.RootElement.GetProperty("Documents").EnumerateArray())
        {
            // A record that cannot be read fails the page (and the run reports it): skipping it would leave its entries pending unseen.
            var record = Settlement.Upgrade(document.Deserialize<SettlementRecord>(Json.Storage)!);
            records.Add(record with { ETag = document.GetProperty("_etag").GetString() });
        }
        return (records, page.ContinuationToken);
    }

    /// <summary>
    /// Ends the record's release (removes <see cref="SettlementRecord.ReleaseAt"/>) if the record is unchanged since
    /// the release read it: an event decided or written meanwhile may have entries the release has not seen, so
    /// then it stays for the next run. False when refused (also when the SDK re-sent our own removal: the next run
    /// then finds nothing due and nothing to do).
    /// </summary>
    public async Task<bool> TryCloseReleaseAsync(SettlementRecord record, CancellationToken ct)
    {
        try
        {
            await container.PatchItemAsync<SettlementRecord>(record.Id, new PartitionKey(record.Id), [PatchOperation.Remove("/releaseAt")],
                new PatchItemRequestOptions { IfMatchEtag = record.ETag, EnableContentResponseOnWrite = false }, ct);
            return true;
        }
        catch (CosmosException e) when (e.StatusCode is HttpStatusCode.PreconditionFailed or HttpStatusCode.NotFound)
        {
            return false;
        }
    }

    /// <summary>Marks event <paramref name="index"/> written (events are only appended, so the index is stable).</summary>
    public Task MarkWrittenAsync(string orderId, int index, CancellationToken ct)
        => container.PatchItemAsync<SettlementRecord>(orderId, new PartitionKey(orderId), [PatchOperation.Set($"/events/{index}/written", true)],
            new PatchItemRequestOptions { EnableContentResponseOnWrite = false }, ct);
}
