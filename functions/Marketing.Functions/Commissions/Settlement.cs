using System.ComponentModel.DataAnnotations;
using System.Net;
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

/// <summary>A ledger entry this record promised to write.</summary>
public sealed record PlannedEntry(string Id, string PromoterId, int Level, string LineId, string Category, long Amount);

/// <summary>
/// An event of the order as received. State: "applied" (its entries are planned below), "parked" (a refund
/// whose payment has not arrived; applied when it does), "ignored" (e.g. a second payment event for the
/// order; see <see cref="Note"/>). <see cref="Written"/>: every planned entry is in the ledger.
/// </summary>
public sealed record SettledEvent(string EventId, string Type, string State, DateTimeOffset OccurredAt, DateTimeOffset ReceivedAt,
    IReadOnlyList<OrderEventLine> Lines, IReadOnlyList<PlannedEntry> Entries, bool Written, string? Note = null)
{
    public const string Applied = "applied";
    public const string Parked = "parked";
    public const string Ignored = "ignored";
}

/// <summary>
/// Everything settled for one order: the arbiter of its events. Every event is first decided here (one
/// write with the record's etag, so two deliveries or a payment racing its refund are serialized), then its
/// planned entries are written to the ledger (creates of derived ids: repeatable), then it is marked written.
/// A crash in between is finished by the next delivery of any event of the order.
/// </summary>
public sealed record SettlementRecord
{
    public required string Id { get; init; }
    public string OrderId => Id;
    public PaidOrder? Paid { get; init; }
    public required IReadOnlyList<SettledEvent> Events { get; init; }
    [System.Text.Json.Serialization.JsonIgnore] public string? ETag { get; init; }
}

/// <summary>
/// The arithmetic, in minor units and integers only:
/// - commission of a line = floor(amount × rate_bps / 10000) per level (rounded down: the programme never
///   pays more than the rate);
/// - after refunds, the commission kept on a line = floor(commission × (amount − refunded) / amount), and a
///   refund reverses what that takes away from what was kept before. So partial refunds in any order add up
///   to the same total, and a full refund reverses exactly the commission.
/// </summary>
public static class Settlement
{
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
        var entries = new List<PlannedEntry>();
        foreach (var line in lines)
        {
            if (line.Commission1 > 0) entries.Add(new(EntryId(paid.OrderId, paid.EventId, line.LineId, 1), level1!, 1, line.LineId, line.Category, line.Commission1));
            if (line.Commission2 > 0) entries.Add(new(EntryId(paid.OrderId, paid.EventId, line.LineId, 2), level2!, 2, line.LineId, line.Category, line.Commission2));
        }
        var events = record.Events.Append(new SettledEvent(paid.EventId, paid.Type, SettledEvent.Applied, paid.OccurredAt, now, [], entries,
            Written: entries.Count == 0)).ToList();
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
        var received = new SettledEvent(refund.EventId, refund.Type, SettledEvent.Parked, refund.OccurredAt, now, refund.Lines, [], Written: true);
        var settled = record with { Events = record.Events.Append(received).ToList() };
        return settled.Paid is null ? settled : ApplyRefund(settled, settled.Events.Count - 1);
    }

    public static SettlementRecord Ignore(SettlementRecord record, OrderEvent e, DateTimeOffset now, string note)
        => record with { Events = record.Events.Append(new SettledEvent(e.EventId, e.Type, SettledEvent.Ignored, e.OccurredAt, now, [], [], true, note)).ToList() };

    private static SettlementRecord ApplyRefund(SettlementRecord record, int index)
    {
        var paid = record.Paid!;
        var refund = record.Events[index];
        var lines = paid.Lines.ToList();
        var entries = new List<PlannedEntry>();
        var notes = new List<string>();
        foreach (var refunded in refund.Lines)
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
            var refundedNow = line.Refunded + amount;
            var reversed1 = line.Commission1 - Kept(line.Commission1, line.Amount, refundedNow);
            var reversed2 = line.Commission2 - Kept(line.Commission2, line.Amount, refundedNow);
            if (reversed1 > line.Reversed1)
                entries.Add(new(EntryId(record.Id, refund.EventId, line.LineId, 1), paid.Level1!, 1, line.LineId, line.Category, -(reversed1 - line.Reversed1)));
            if (reversed2 > line.Reversed2)
                entries.Add(new(EntryId(record.Id, refund.EventId, line.LineId, 2), paid.Level2!, 2, line.LineId, line.Category, -(reversed2 - line.Reversed2)));
            lines[at] = line with { Refunded = refundedNow, Reversed1 = reversed1, Reversed2 = reversed2 };
        }
        var events = record.Events.ToList();
        events[index] = refund with
        {
            State = SettledEvent.Applied, Entries = entries, Written = entries.Count == 0,
            Note = notes.Count == 0 ? null : string.Join("; ", notes),
        };
        return record with { Paid = paid with { Lines = lines }, Events = events };
    }
}

/// <summary>Container "settlements", partitioned by /orderId: one record per order, changed with its etag.</summary>
public sealed class SettlementStore(Database database)
{
    public static readonly ContainerSpec Spec = new("settlements", "/orderId", ["/paid/lines/*", "/events/*", "/\"_etag\"/?"]);

    private readonly Container container = database.GetContainer(Spec.Name);

    public async Task<SettlementRecord?> FindAsync(string orderId, CancellationToken ct)
        => await container.ReadOrNullAsync<SettlementRecord>(orderId, orderId, ct) is { } response ? response.Resource with { ETag = response.ETag } : null;

    /// <summary>Writes the record if nobody changed them since <paramref name="before"/> was read (null: none existed).</summary>
    public Task<bool> TrySaveAsync(SettlementRecord? before, SettlementRecord after, CancellationToken ct)
        => container.TrySaveAsync(after, after.Id, before?.ETag, ct);

    /// <summary>Marks event <paramref name="index"/> written (events are only appended, so the index is stable).</summary>
    public Task MarkWrittenAsync(string orderId, int index, CancellationToken ct)
        => container.PatchItemAsync<SettlementRecord>(orderId, new PartitionKey(orderId), [PatchOperation.Set($"/events/{index}/written", true)],
            new PatchItemRequestOptions { EnableContentResponseOnWrite = false }, ct);
}
