using System.Text.Json;
using Marketing.Functions.Hosting;
using Marketing.Functions.Promoters;
using Marketing.Functions.Redemption;
using Marketing.Functions.Telemetry;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Commissions;

/// <summary>What one delivery did: applied, parked (a refund before its payment), duplicate, ignored or quarantined.</summary>
public sealed record SettlementOutcome(string Outcome, int EntriesWritten = 0, string? Note = null);

/// <summary>
/// Function SettleCommission: Service Bus trigger on the order-events queue (queue name from app setting
/// OrderEventsQueue, identity-based connection ServiceBusConnection). Delivery is at least once and in any
/// order, so:
/// - every event is decided in the order's settlement record (<see cref="SettlementRecord"/>), written with
///   its etag; a delivery that finds its event there only finishes writing it (one effect per event);
/// - "paid": the buyer's referral binding at the payment's time and the rules in force then give each line's
///   level-1 and level-2 commission; ledger entries are pending until paid time + Commissions:HoldingDays;
/// - "refunded": reversal entries in proportion to the refunded amounts (also after the commission became
///   available or was paid; the balance may go negative and is netted by later payouts). A refund that
///   arrives before its payment is parked in the record and applied when the payment arrives; it is never
///   dead-lettered, since the payment may legitimately come late;
/// - a malformed message, or one in a currency the programme does not settle, is recorded in the quarantine
///   container and completed (2xx): retrying cannot make it valid. So is an event its order has no room for
///   (<see cref="Settlement.MaxEvents"/>, <see cref="Settlement.MaxBytes"/>): the record stays bounded, and the
///   order's messages never loop to the dead-letter queue.
/// Non-2xx only for failures worth retrying (the database busy or unreachable); Service Bus then delivers
/// again, and dead-letters after the queue's maxDeliveryCount.
/// </summary>
public static class SettleCommission
{
    public const string FunctionName = "SettleCommission";
    public const string QueueSetting = "OrderEventsQueue";
    public const string Connection = "ServiceBusConnection";
    private const int Attempts = 10;
    private const int MaxIdLength = 64;

    public static RouteHandlerBuilder MapSettleCommission(this IEndpointRouteBuilder routes) =>
        routes.MapServiceBusQueueFunction(FunctionName, $"%{QueueSetting}%", Connection, async (invocation, context) =>
        {
            var s = context.RequestServices;
            var now = s.GetRequiredService<TimeProvider>().GetUtcNow();
            var result = new InvocationResult();
            var body = Body(invocation);
            // Without a message id (never from Service Bus), the body names the message, so a redelivery is recorded once.
            var messageId = TryGet(() => invocation.GetMetadata<string>("MessageId"))
                ?? "body-" + Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(body ?? "")))[..32];
            var deliveryCount = TryGet(() => invocation.GetMetadata<int?>("DeliveryCount")) ?? 0;
            var options = s.GetRequiredService<IOptions<CommissionOptions>>().Value;
            var (orderEvent, problem) = Parse(body, options);
            try
            {
                if (orderEvent is null)
                {
                    await s.GetRequiredService<QuarantineStore>().RecordAsync(messageId, deliveryCount, problem!, body ?? "", now, context.RequestAborted);
                    result.ReturnValue = new SettlementOutcome("quarantined", Note: problem);
                    Metrics.OrderEvent(Metrics.OrderEventOutcomes.Quarantined);
                    result.Log($"Message {messageId} quarantined: {problem}");
                    LogEvents.LoggerOf(context, typeof(SettleCommission)).OrderEventSettled(messageId, deliveryCount, Metrics.OrderEventOutcomes.Quarantined, 0);
                    return result;
                }
                var outcome = await SettleAsync(orderEvent, s.GetRequiredService<SettlementStore>(), s.GetRequiredService<ReferralStore>(),
                    s.GetRequiredService<CommissionRulesStore>(), s.GetRequiredService<LedgerStore>(),
                    TimeSpan.FromDays(options.HoldingDays), s.GetRequiredService<TimeProvider>(),
                    context.RequestAborted, redelivered: deliveryCount > 1);
                if (outcome.Outcome == "quarantined")
                    await s.GetRequiredService<QuarantineStore>().RecordAsync(messageId, deliveryCount, outcome.Note!, body!, now, context.RequestAborted);
                result.ReturnValue = outcome;
                Metrics.OrderEvent(outcome.Outcome);
                result.Log($"Event {orderEvent.EventId} ({orderEvent.Type}) of order {orderEvent.OrderId}: {outcome.Outcome}, {outcome.EntriesWritten} entries written{(outcome.Note is null ? "" : "; " + outcome.Note)}.");
                if (outcome.Outcome == "retry") result.Status = StatusCodes.Status503ServiceUnavailable;
                LogEvents.LoggerOf(context, typeof(SettleCommission)).OrderEventSettled(messageId, deliveryCount, outcome.Outcome, outcome.EntriesWritten);
                return result;
            }
            catch (Exception e) when (Platform.IsTransient(e, context.RequestAborted))
            {
                result.Status = StatusCodes.Status503ServiceUnavailable;
                result.ReturnValue = new SettlementOutcome("retry", Note: e.GetType().Name);
                Metrics.OrderEvent(Metrics.OrderEventOutcomes.Retry);
                result.Log($"Message {messageId} (delivery {deliveryCount}) not settled, will be retried: {Failure.Of(e)}");
                LogEvents.LoggerOf(context, typeof(SettleCommission)).OrderEventSettled(messageId, deliveryCount, Metrics.OrderEventOutcomes.Retry, 0);
                return result;
            }
        });

    /// <summary>
    /// Decides the event in the order's record, then writes what the record promises. A payment usually opens its
    /// order's record, so it is decided as the first event and the record created without being read first; a
    /// record that is already there (a parked refund, a redelivery, a second payment) sends it down the common
    /// path: read, decide, write with the etag. A message Service Bus delivers again (<paramref name="redelivered"/>)
    /// was most likely decided already, so it takes the common path at once.
    /// </summary>
    public static async Task<SettlementOutcome> SettleAsync(OrderEvent e, SettlementStore settlements, ReferralStore referrals,
        CommissionRulesStore rules, LedgerStore ledger, TimeSpan holding, TimeProvider time, CancellationToken ct,
        bool redelivered = false)
    {
        (ReferralBinding? Binding, RuleVersion? Rules)? earners = null;
        async Task<(ReferralBinding?, RuleVersion?)> EarnersAsync()
        {
            var binding = (await referrals.FindAsync(e.BuyerId, ct))?.At(e.OccurredAt);
            var version = binding is null ? null : await rules.InForceAtAsync(e.OccurredAt, ct); // usually no round trip: held per instance
            return (binding, version);
        }
        SettlementRecord? before = null;
        var known = false; // whether `before` is what the record was a moment ago (no need to read it again)
        if (e.Type == OrderEvent.Paid && !redelivered)
        {
            earners = await EarnersAsync();
            var now = time.GetUtcNow();
            var opened = Settlement.PromiseRelease(
                Settlement.Pay(new SettlementRecord { Id = e.OrderId, Events = [] }, e, earners.Value.Binding, earners.Value.Rules, holding, now), now);
            var (created, stored) = await settlements.TryCreateAsync(opened, ct);
            if (created) return new SettlementOutcome("applied", await WriteEntriesAsync(opened, ledger, settlements, time, ct));
            (before, known) = (stored, stored is not null);
        }
        for (var attempt = 0; attempt < Attempts; attempt++)
        {
            var now = time.GetUtcNow();
            if (!known) before = await settlements.FindAsync(e.OrderId, ct);
            known = false;
            if (before?.Events.FirstOrDefault(x => x.EventId == e.EventId) is { } decided)
            {
                // A redelivery: finish what an interrupted delivery may have left, nothing more.
                var finished = await WriteEntriesAsync(before, ledger, settlements, time, ct);
                return new SettlementOutcome("duplicate", finished, decided.Type == e.Type ? null : $"event id already used for a {decided.Type} event");
            }
            var record = before ?? new SettlementRecord { Id = e.OrderId, Events = [] };
            string outcome;
            if (e.Type == OrderEvent.Paid && record.Paid is { } paid)
            {
                record = Settlement.Ignore(record, e, now, $"order already paid by event {paid.EventId}");
                outcome = "ignored";
            }
            else if (e.Type == OrderEvent.Paid)
            {
                earners ??= await EarnersAsync();
                record = Settlement.Pay(record, e, earners.Value.Binding, earners.Value.Rules, holding, now);
                outcome = "applied";
            }
            else
            {
                record = Settlement.Refund(record, e, now);
                outcome = record.Paid is null ? "parked" : "applied";
            }
            record = Settlement.PromiseRelease(record, now);
            if (Settlement.OverLimit(before, record) is { } full)
            {
                // Beyond what one order may hold: kept for operators (the caller quarantines it), never retried.
                if (before is not null) await WriteEntriesAsync(before, ledger, settlements, time, ct);
                return new SettlementOutcome("quarantined", Note: full);
            }
            if (!await settlements.TrySaveAsync(before, record, ct)) continue;
            var written = await WriteEntriesAsync(record, ledger, settlements, time, ct);
            return new SettlementOutcome(outcome, written, record.Events[^1].Note);
        }
        return new SettlementOutcome("retry", Note: "the order's settlement record kept changing");
    }

    /// <summary>
    /// Writes the entries of every applied event not yet marked written, then marks it. Entries are written pending
    /// only under a record that promises their release (<see cref="SettlementRecord.ReleaseAt"/>, normally set by the
    /// write that decided the event; else set here first), so ReleaseCommissions can always find a pending entry
    /// through its record; an entry whose time has already come is written available, and needs no release. If the
    /// time comes while the entries are being written, the release may have visited the record before they existed
    /// (it leaves the record's release open then, as the event is not written yet), and the delivery releases them
    /// itself once written (each release happens once). The entries are derived from the record
    /// (<see cref="Settlement.Plans"/>), the same on every delivery.
    /// </summary>
    private static async Task<int> WriteEntriesAsync(SettlementRecord record, LedgerStore ledger, SettlementStore settlements,
        TimeProvider time, CancellationToken ct)
    {
        if (record.Events.All(e => e.State != SettledEvent.Applied || e.Written)) return 0;
        var plans = Settlement.Plans(record);
        var promised = record.ReleaseAt is not null;
        var written = 0;
        for (var i = 0; i < record.Events.Count; i++)
        {
            var e = record.Events[i];
            if (e.State != SettledEvent.Applied || e.Written) continue;
            var entries = plans[i];
            var paid = record.Paid!;
            var now = time.GetUtcNow();
            var pending = paid.AvailableAt > now;
            if (pending && !promised)
            {
                await settlements.PromiseReleaseAsync(record.Id, paid.AvailableAt, ct);
                promised = true;
            }
            await Parallel.ForEachAsync(entries, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct }, async (x, token) =>
            {
                var created = await ledger.CreateIfAbsentAsync(new LedgerEntry
                {
                    Id = x.Id, PromoterId = x.PromoterId, OrderId = record.Id, EventId = e.EventId, LineId = x.LineId, Category = x.Category,
                    Level = x.Level, Kind = x.Amount >= 0 ? LedgerEntry.Commission : LedgerEntry.Reversal, Amount = x.Amount,
                    Currency = paid.Currency, Status = pending ? LedgerStatus.Pending : LedgerStatus.Available,
                    AvailableAt = paid.AvailableAt, CreatedAt = now, ReleasedAt = pending ? null : now,
                }, token);
                if (created) Interlocked.Increment(ref written);
            });
            if (pending && time.GetUtcNow() is var after && after >= paid.AvailableAt)
                foreach (var x in entries)
                    await ledger.TryReleaseAsync(x.PromoterId, x.Id, after, ct);
            await settlements.MarkWrittenAsync(record.Id, i, ct);
        }
        return written;
    }

    private static string? Body(InvocationRequest invocation)
    {
        if (!invocation.Data.TryGetValue(ServiceBusQueueFunction.MessageBinding, out var element)) return null;
        // The host sends a JSON body as a string holding the JSON (encoded a second time), or as the JSON itself.
        return element.ValueKind == JsonValueKind.String ? element.GetString() : element.GetRawText();
    }

    /// <summary>The event, or why it cannot be used.</summary>
    public static (OrderEvent? Event, string? Problem) Parse(string? body, CommissionOptions options)
    {
        if (string.IsNullOrWhiteSpace(body)) return (null, "empty message");
        OrderEvent? e;
        try
        {
            e = JsonSerializer.Deserialize<OrderEvent>(body, Json.Messages);
        }
        catch (JsonException x)
        {
            return (null, $"not a valid order event: {x.Message.Split('\n')[0]}");
        }
        if (e is null) return (null, "not a valid order event: null");
        if (e.Type is not (OrderEvent.Paid or OrderEvent.Refunded)) return (null, $"type must be paid or refunded, not '{e.Type}'");
        if (!IsId(e.EventId)) return (null, "eventId must be 1-64 of A-Z a-z 0-9 . _ : -");
        if (!RedemptionStore.IsValidOrderId(e.OrderId)) return (null, "orderId must be 1-64 of A-Z a-z 0-9 . _ : -");
        if (e.BuyerId is not { Length: > 0 and <= 128 } || e.BuyerId.Any(c => char.IsControl(c) || c is '/' or '\\' or '?' or '#'))
            return (null, "buyerId must be 1-128 characters without control characters or / \\ ? #");
        if (e.Currency != options.Currency) return (null, $"currency {e.Currency} is not settled by the programme ({options.Currency})");
        if (e.Lines.Count is 0 or > OrderEvent.MaxLines) return (null, $"lines must hold 1 to {OrderEvent.MaxLines} lines");
        if (e.Lines.Any(l => l is null)) return (null, "lines must not hold null");
        if (e.Lines.Select(l => l.LineId).Distinct().Count() != e.Lines.Count) return (null, "lineIds must be unique");
        foreach (var line in e.Lines)
        {
            if (!IsId(line.LineId)) return (null, "lineId must be 1-64 of A-Z a-z 0-9 . _ : -");
            if (line.Category is not { Length: > 0 and <= 64 } || line.Category.Any(char.IsControl)) return (null, "category must be 1-64 printable characters");
            var least = e.Type == OrderEvent.Paid ? 0 : 1;
            if (line.Amount < least || line.Amount > OrderEvent.MaxAmount)
                return (null, $"line {line.LineId}: amount must be {least} to {OrderEvent.MaxAmount} minor units");
        }
        return (e, null);
    }

    private static bool IsId(string? id) => RedemptionStore.IsValidOrderId(id) && id!.Length <= MaxIdLength;

    private static T? TryGet<T>(Func<T?> read)
    {
        try
        {
            return read();
        }
        catch (JsonException)
        {
            return default;
        }
    }
}
