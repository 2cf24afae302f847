using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Commissions;
using Marketing.Functions.Expiry;
using Marketing.Functions.Promoters;
using Marketing.Tests.Support;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// SettleCommission, invoked as the Functions host invokes a Service Bus trigger (the custom-handler payload
/// protocol), against the emulator; results are read back through the promoters' own API (ledger and balance).
/// Every test has its own database: the commission rules are one document per database, and payouts and
/// the release timer walk everything in it. Expected amounts are computed here from the programme's stated
/// arithmetic (floor(amount × bps / 10000); kept after refunds = floor(commission × (amount − refunded) / amount)),
/// written out independently of the production code.
/// </summary>
public sealed class SettlementTests
{
    private static Task<TestApp> StartAsync(string name)
        => TestApp.StartAsync($"{Settings.Get("Cosmos__Database")}-settle-{name}-{Guid.NewGuid():N}"[..60]);

    // ---- The arithmetic, as documented (amounts and rates are non-negative: integer division is the floor).

    private static long Commission(long amount, int bps) => amount * bps / 10_000;

    private static long Kept(long commission, long amount, long refunded) => commission * (amount - refunded) / amount;

    /// <summary>Everything reversed on a line once <paramref name="refunded"/> of it has been refunded (in any order).</summary>
    private static long Reversed(long commission, long amount, long refunded) => commission - Kept(commission, amount, refunded);

    private static string EntryId(string orderId, string eventId, string lineId, int level) => $"{orderId}:{eventId}:{lineId}:{level}";

    private static string EventId(JsonObject orderEvent) => (string)orderEvent["eventId"]!;

    // ---- Reading results back through the API.

    private sealed record Entry(string Id, string OrderId, string LineId, string Category, int Level, string Kind, long Amount,
        string Currency, string Status, string AvailableAt, string? PayoutBatchId);

    private sealed record Money(long Pending, long Available, long Paid, long Net);

    private static async Task<List<Entry>> EntriesAsync(TestApp app, string promoterId, string? status = null)
        => [.. (await app.CommissionsAsync(promoterId, status)).Select(e => new Entry(
            (string)e["id"]!, (string)e["orderId"]!, (string)e["lineId"]!, (string)e["category"]!, (int)e["level"]!, (string)e["kind"]!,
            (long)e["amount"]!, (string)e["currency"]!, (string)e["status"]!, (string)e["availableAt"]!, (string?)e["payoutBatchId"]))];

    private static async Task<Money> MoneyAsync(TestApp app, string promoterId)
    {
        var balance = await app.BalanceAsync(promoterId);
        Assert.Equal("CNY", (string?)balance["currency"]);
        return new((long)balance["pending"]!, (long)balance["available"]!, (long)balance["paid"]!, (long)balance["net"]!);
    }

    /// <summary>A promoter's ledger as id → amount (for "nothing changed" comparisons).</summary>
    private static async Task<SortedDictionary<string, long>> LedgerAsync(TestApp app, string promoterId)
        => new((await EntriesAsync(app, promoterId)).ToDictionary(e => e.Id, e => e.Amount), StringComparer.Ordinal);

    /// <summary>Delivers an event, asserts it was completed (200), and returns what SettleCommission says it did.</summary>
    private static async Task<JsonNode> SettleForResultAsync(TestApp app, JsonObject orderEvent, string? messageId = null, int deliveryCount = 1)
    {
        var body = await (await app.DeliverAsync(orderEvent.ToJsonString(), messageId, deliveryCount)).AssertStatusAsync(HttpStatusCode.OK);
        return body["ReturnValue"]!;
    }

    /// <summary>Rules of 10 % / 3 %, a promoter invited by a parent, and a buyer bound to the promoter.</summary>
    private static async Task<(string Parent, string Promoter, string Buyer)> ReferredBuyerAsync(TestApp app)
    {
        await app.SetRulesAsync(1000, 300);
        var parent = Api.NewId("p0");
        var promoter = Api.NewId("p1");
        var code = await app.RegisterPromoterAsync(promoter, await app.RegisterPromoterAsync(parent));
        var buyer = Api.NewId("b");
        await BindAsync(app, buyer, code);
        return (parent, promoter, buyer);
    }

    private static async Task BindAsync(TestApp app, string buyer, string code)
    {
        var bound = await (await app.VisitAsync(buyer, code)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("bound", (string?)bound["status"]);
    }

    // ---- 1. At-least-once, any order, concurrently.

    private sealed record OrderLine(string LineId, string Category, long Amount);

    private sealed class PlannedOrder(string id, string buyer, JsonObject paid, List<OrderLine> lines)
    {
        public string Id { get; } = id;
        public string Buyer { get; } = buyer;
        public JsonObject Paid { get; } = paid;
        public List<OrderLine> Lines { get; } = lines;
        public DateTimeOffset PaidAt => DateTimeOffset.Parse((string)Paid["occurredAt"]!, CultureInfo.InvariantCulture);
        /// <summary>What the refund events of this order ask for per known line, before capping.</summary>
        public Dictionary<string, long> RefundRequested { get; } = [];
    }

    [Fact]
    public async Task A_thousand_events_each_delivered_three_times_shuffled_and_concurrently_settle_once_each_to_the_cent()
    {
        await using var app = await StartAsync("storm");
        var random = new Random(20261121);
        var level1Overrides = new Dictionary<string, int> { ["books"] = 1500, ["giftcards"] = 200 };
        var level2Overrides = new Dictionary<string, int> { ["books"] = 500, ["giftcards"] = 0, ["electronics"] = 100 };
        int Bps(int level, string category) => level == 1 ? level1Overrides.GetValueOrDefault(category, 1000) : level2Overrides.GetValueOrDefault(category, 300);
        await app.SetRulesAsync(1000, 300, level1Overrides, level2Overrides);
        var t0 = app.Clock.GetUtcNow();

        // Promoters: p2 under p1, p5 under p2 (p5's buyers earn p2 level 2, never p1), p4 under p3, p6 alone.
        var parentOf = new Dictionary<string, string?>();
        var codeOf = new Dictionary<string, string>();
        async Task<string> PromoterAsync(string name, string? parent)
        {
            var id = Api.NewId(name);
            codeOf[id] = await app.RegisterPromoterAsync(id, parent is null ? null : codeOf[parent]);
            parentOf[id] = parent;
            return id;
        }
        var p1 = await PromoterAsync("p1", null);
        var p2 = await PromoterAsync("p2", p1);
        var p3 = await PromoterAsync("p3", null);
        var p4 = await PromoterAsync("p4", p3);
        var p5 = await PromoterAsync("p5", p2);
        var p6 = await PromoterAsync("p6", null);
        string[] promoters = [p1, p2, p3, p4, p5, p6];

        // 300 buyers bound through a visit to a random promoter's code, 40 who never visited (no commission).
        var buyers = Enumerable.Range(0, 340).Select(i => $"buyer-{i:D3}").ToArray();
        var bindingOf = buyers.ToDictionary(b => b, b => (string?)null);
        foreach (var buyer in buyers.Take(300)) bindingOf[buyer] = promoters[random.Next(promoters.Length)];
        await Parallel.ForEachAsync(buyers.Take(300), new ParallelOptions { MaxDegreeOfParallelism = 8 },
            async (buyer, _) => await BindAsync(app, buyer, codeOf[bindingOf[buyer]!]));

        // 600 paid orders of 1-3 lines; the first line is always at least 100.00, others sometimes under 1.00
        // (commission rounds down to little or nothing).
        string[] categories = ["books", "toys", "electronics", "giftcards", "food"];
        var orders = new List<PlannedOrder>();
        for (var i = 0; i < 600; i++)
        {
            var lines = Enumerable.Range(1, random.Next(1, 4)).Select(l => new OrderLine($"l{l}", categories[random.Next(categories.Length)],
                l == 1 || random.Next(5) > 0 ? random.Next(10_000, 500_001) : random.Next(1, 100))).ToList();
            var orderId = $"o-{i:D3}";
            var buyer = buyers[random.Next(buyers.Length)];
            orders.Add(new PlannedOrder(orderId, buyer,
                Distribution.OrderEvent("paid", orderId, buyer, t0.AddMinutes(i + 1), [.. lines.Select(l => Distribution.Line(l.LineId, l.Category, l.Amount))]),
                lines));
        }

        // 400 refund events over 300 of them. Every partial refund takes at least 20 % of a line of at least 100.00,
        // whatever arrives before it, so each refund of a line with commission reverses something: the set of
        // ledger entries is known exactly, not only their sum.
        var refunds = new List<(JsonObject Body, PlannedOrder Order)>();
        void Refund(PlannedOrder order, params (string LineId, long Amount)[] lines)
        {
            foreach (var (lineId, amount) in lines)
                if (order.Lines.Any(l => l.LineId == lineId))
                    order.RefundRequested[lineId] = order.RefundRequested.GetValueOrDefault(lineId) + amount;
            var body = Distribution.OrderEvent("refunded", order.Id, order.Buyer, order.PaidAt.AddHours(1).AddMinutes(refunds.Count),
                [.. lines.Select(l => Distribution.Line(l.LineId, order.Lines.FirstOrDefault(x => x.LineId == l.LineId)?.Category ?? "toys", l.Amount))]);
            refunds.Add((body, order));
        }
        long Share(long amount, int fromPercent, int toPercent) => amount * random.Next(fromPercent, toPercent + 1) / 100;
        var refunded = orders.OrderBy(_ => random.Next()).Take(300).ToList();
        foreach (var order in refunded.Take(110)) // one partial refund of a large line
        {
            var line = order.Lines.Where(l => l.Amount >= 10_000).ElementAt(random.Next(order.Lines.Count(l => l.Amount >= 10_000)));
            Refund(order, (line.LineId, Share(line.Amount, 20, 80)));
        }
        foreach (var order in refunded.Skip(110).Take(60)) // the whole order at once, sometimes asking for more than was paid (capped)
            Refund(order, [.. order.Lines.Select((l, i) => (l.LineId, i == 0 && random.Next(2) == 0 ? l.Amount + random.Next(1, 5000) : l.Amount))]);
        foreach (var order in refunded.Skip(170).Take(55)) // two partial refunds of one line
        {
            Refund(order, ("l1", Share(order.Lines[0].Amount, 20, 40)));
            Refund(order, ("l1", Share(order.Lines[0].Amount, 20, 40)));
        }
        foreach (var order in refunded.Skip(225).Take(45)) // two refunds asking for more than the line together: the later one is capped
        {
            Refund(order, ("l1", Share(order.Lines[0].Amount, 55, 75)));
            Refund(order, ("l1", Share(order.Lines[0].Amount, 55, 75)));
        }
        foreach (var order in refunded.Skip(270).Take(30)) // a partial refund naming a line the order never had (noted, ignored)
            Refund(order, ("l1", Share(order.Lines[0].Amount, 20, 80)), ("l9", 500));

        // What the ledger must hold, computed from the plan.
        var expected = new Dictionary<string, (string Promoter, long? Amount)>(StringComparer.Ordinal);
        var expectedNet = promoters.ToDictionary(p => p, _ => 0L);
        (string? Level1, string? Level2) Earners(PlannedOrder order)
            => bindingOf[order.Buyer] is { } level1 ? (level1, parentOf[level1]) : (null, null);
        foreach (var order in orders)
        {
            var (level1, level2) = Earners(order);
            foreach (var line in order.Lines)
                foreach (var (level, promoter) in new[] { (1, level1), (2, level2) })
                {
                    var commission = Commission(line.Amount, Bps(level, line.Category));
                    if (promoter is null || commission == 0) continue;
                    expected[EntryId(order.Id, EventId(order.Paid), line.LineId, level)] = (promoter, commission);
                    expectedNet[promoter] += Kept(commission, line.Amount, Math.Min(order.RefundRequested.GetValueOrDefault(line.LineId), line.Amount));
                }
        }
        foreach (var (body, order) in refunds)
        {
            var (level1, level2) = Earners(order);
            foreach (var refundedLine in body["lines"]!.AsArray())
            {
                var line = order.Lines.FirstOrDefault(l => l.LineId == (string)refundedLine!["lineId"]!);
                if (line is null) continue;
                foreach (var (level, promoter) in new[] { (1, level1), (2, level2) })
                    if (promoter is not null && Commission(line.Amount, Bps(level, line.Category)) > 0)
                        expected[EntryId(order.Id, EventId(body), line.LineId, level)] = (promoter, null);
            }
        }
        // The plan exercises what it claims to: both levels, reversals, and unbound buyers.
        Assert.Contains(expected, e => e.Key.EndsWith(":2", StringComparison.Ordinal) && e.Value.Amount is null);
        Assert.Contains(orders, o => bindingOf[o.Buyer] is null);
        Assert.True(expectedNet[p2] > 0 && expectedNet[p1] > 0);

        // 1,000 events × 3 deliveries, shuffled, 16 at a time. A delivery answered 503 is what Service Bus
        // delivers again (with a higher delivery count): do the same until it is completed.
        JsonObject[] events = [.. orders.Select(o => o.Paid), .. refunds.Select(r => r.Body)];
        Assert.Equal(1000, events.Length);
        var bodies = events.Select(e => e.ToJsonString()).ToArray();
        var messageIds = events.Select(_ => Guid.NewGuid().ToString("N")).ToArray();
        var deliveries = Enumerable.Range(0, events.Length).SelectMany(i => new[] { (Event: i, Copy: 1), (Event: i, Copy: 2), (Event: i, Copy: 3) }).ToArray();
        random.Shuffle(deliveries);
        var outcomes = new ConcurrentBag<(int Event, string Outcome)>();
        await Parallel.ForEachAsync(deliveries, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (delivery, _) =>
        {
            for (var count = delivery.Copy; ; count += 3)
            {
                var response = await app.DeliverAsync(bodies[delivery.Event], messageIds[delivery.Event], count);
                if (response.StatusCode == HttpStatusCode.ServiceUnavailable && count < 30) continue;
                var answer = await response.AssertStatusAsync(HttpStatusCode.OK);
                outcomes.Add((delivery.Event, (string)answer["ReturnValue"]!["Outcome"]!));
                return;
            }
        });

        // Per event: exactly one delivery decided it (applied, or parked for a refund ahead of its payment);
        // the other two found it decided.
        var byEvent = outcomes.GroupBy(o => o.Event).ToDictionary(g => g.Key, g => g.Select(o => o.Outcome).ToList());
        Assert.Equal(events.Length, byEvent.Count);
        for (var i = 0; i < events.Length; i++)
        {
            var decided = byEvent[i].Where(o => o != "duplicate").ToList();
            Assert.True(byEvent[i].Count == 3 && decided.Count == 1, $"event {i} ({events[i]["type"]}): {string.Join(", ", byEvent[i])}");
            var allowed = i < orders.Count ? new[] { "applied" } : new[] { "applied", "parked" }; // only a refund can wait for its payment
            Assert.Contains(decided[0], allowed);
        }
        // The shuffle put refunds both before and after their payment.
        var refundOutcomes = Enumerable.Range(orders.Count, refunds.Count).Select(i => byEvent[i].Single(o => o != "duplicate")).ToList();
        Assert.Contains("parked", refundOutcomes);
        Assert.Contains("applied", refundOutcomes);

        // The ledger, promoter by promoter, through the API: exactly the planned entries, each once; commissions
        // to the cent per entry, every promoter's total to the cent, nothing released yet.
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var promoter in promoters)
        {
            var entries = await EntriesAsync(app, promoter);
            Assert.Equal(entries.Count, entries.Select(e => e.Id).Distinct().Count());
            Assert.All(entries, e => Assert.True(seen.Add(e.Id), $"entry {e.Id} in two ledgers"));
            var planned = expected.Where(e => e.Value.Promoter == promoter).Select(e => e.Key).Order(StringComparer.Ordinal).ToList();
            Assert.Equal(planned, entries.Select(e => e.Id).Order(StringComparer.Ordinal).ToList());
            foreach (var entry in entries)
            {
                var amount = expected[entry.Id].Amount;
                if (amount is not null) Assert.Equal(amount.Value, entry.Amount);
                Assert.Equal(amount is null ? "reversal" : "commission", entry.Kind);
                Assert.True(entry.Kind == "commission" ? entry.Amount > 0 : entry.Amount < 0, $"{entry.Id}: {entry.Kind} of {entry.Amount}");
                Assert.Equal("pending", entry.Status);
                Assert.Equal("CNY", entry.Currency);
            }
            Assert.Equal(expectedNet[promoter], entries.Sum(e => e.Amount));
            Assert.Equal(new Money(expectedNet[promoter], 0, 0, expectedNet[promoter]), await MoneyAsync(app, promoter));
        }
        Assert.Equal(expected.Count, seen.Count);
    }

    // ---- 2. A refund before its payment.

    [Fact]
    public async Task A_refund_that_arrives_before_its_payment_is_parked_then_applied_when_the_payment_arrives_and_redeliveries_change_nothing()
    {
        await using var app = await StartAsync("parked");
        var (parent, promoter, buyer) = await ReferredBuyerAsync(app);
        var now = app.Clock.GetUtcNow();
        var paid = Distribution.OrderEvent("paid", "o-1", buyer, now.AddMinutes(1),
            Distribution.Line("l1", "toys", 5999), Distribution.Line("l2", "books", 12000));
        var refund = Distribution.OrderEvent("refunded", "o-1", buyer, now.AddMinutes(2), Distribution.Line("l1", "toys", 2999));

        // The refund first: nothing to reverse yet, and nothing is written.
        var parked = await SettleForResultAsync(app, refund, "m-refund");
        Assert.Equal("parked", (string?)parked["Outcome"]);
        Assert.Equal(0, (int)parked["EntriesWritten"]!);
        Assert.Empty(await EntriesAsync(app, promoter));
        Assert.Empty(await EntriesAsync(app, parent));
        Assert.Equal(new Money(0, 0, 0, 0), await MoneyAsync(app, promoter));

        // The payment: its commission, and the parked refund's reversal, both levels.
        var applied = await SettleForResultAsync(app, paid, "m-paid");
        Assert.Equal("applied", (string?)applied["Outcome"]);
        Assert.Equal(6, (int)applied["EntriesWritten"]!); // 2 lines × 2 levels + 1 reversed line × 2 levels
        var c1 = Commission(5999, 1000); // 599
        var c2 = Commission(5999, 300);  // 179
        var expectedLevel1 = new SortedDictionary<string, long>(StringComparer.Ordinal)
        {
            [EntryId("o-1", EventId(paid), "l1", 1)] = c1,
            [EntryId("o-1", EventId(paid), "l2", 1)] = Commission(12000, 1000),
            [EntryId("o-1", EventId(refund), "l1", 1)] = -Reversed(c1, 5999, 2999),
        };
        var expectedLevel2 = new SortedDictionary<string, long>(StringComparer.Ordinal)
        {
            [EntryId("o-1", EventId(paid), "l1", 2)] = c2,
            [EntryId("o-1", EventId(paid), "l2", 2)] = Commission(12000, 300),
            [EntryId("o-1", EventId(refund), "l1", 2)] = -Reversed(c2, 5999, 2999),
        };
        Assert.Equal(expectedLevel1, await LedgerAsync(app, promoter));
        Assert.Equal(expectedLevel2, await LedgerAsync(app, parent));
        Assert.Equal(-300, expectedLevel1[EntryId("o-1", EventId(refund), "l1", 1)]); // the documented example: 599 − ⌊599 × 3000 / 5999⌋
        // The reversal is held like the commission it takes back.
        var reversal = (await EntriesAsync(app, promoter)).Single(e => e.Kind == "reversal");
        Assert.Equal("pending", reversal.Status);
        Assert.Equal(Api.Instant(now.AddMinutes(1).AddDays(7)), reversal.AvailableAt);
        var net1 = expectedLevel1.Values.Sum();
        var net2 = expectedLevel2.Values.Sum();
        Assert.Equal(new Money(net1, 0, 0, net1), await MoneyAsync(app, promoter));
        Assert.Equal(new Money(net2, 0, 0, net2), await MoneyAsync(app, parent));

        // Service Bus delivers either again: found decided, nothing more.
        foreach (var (again, messageId) in new[] { (refund, "m-refund"), (paid, "m-paid"), (refund, "m-refund") })
        {
            var duplicate = await SettleForResultAsync(app, again, messageId, deliveryCount: 2);
            Assert.Equal("duplicate", (string?)duplicate["Outcome"]);
            Assert.Equal(0, (int)duplicate["EntriesWritten"]!);
        }
        Assert.Equal(expectedLevel1, await LedgerAsync(app, promoter));
        Assert.Equal(expectedLevel2, await LedgerAsync(app, parent));
        Assert.Equal(net1, (await MoneyAsync(app, promoter)).Net);
    }

    // ---- 3. Partial refunds.

    [Fact]
    public async Task Partial_refunds_add_up_to_the_same_reversal_in_either_order_are_capped_at_what_is_left_and_a_full_refund_reverses_exactly()
    {
        await using var app = await StartAsync("partial");
        var (parent, promoter, buyer) = await ReferredBuyerAsync(app);
        var now = app.Clock.GetUtcNow();
        // Two identical orders: a 59.99 line that gets refunded, and a 100.00 line that is never touched.
        const long amount = 5999;
        long[] commission = [0, Commission(amount, 1000), Commission(amount, 300)]; // by level: 599, 179
        foreach (var order in new[] { "o-a", "o-b" })
            Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("paid", order, buyer, now.AddMinutes(1),
                Distribution.Line("l1", "toys", amount), Distribution.Line("l2", "food", 10000))));

        // Reversals of one refund event, by level (what the ledger holds under that event's ids).
        async Task<long[]> ReversalAsync(string order, JsonObject refund)
        {
            var level1 = await LedgerAsync(app, promoter);
            var level2 = await LedgerAsync(app, parent);
            return [0, level1.GetValueOrDefault(EntryId(order, EventId(refund), "l1", 1)), level2.GetValueOrDefault(EntryId(order, EventId(refund), "l1", 2))];
        }
        async Task<(JsonNode Result, long[] Reversal)> RefundAsync(string order, long refunded)
        {
            var refund = Distribution.OrderEvent("refunded", order, buyer, now.AddHours(1), Distribution.Line("l1", "toys", refunded));
            var result = await SettleForResultAsync(app, refund);
            Assert.Equal("applied", (string?)result["Outcome"]);
            return (result, await ReversalAsync(order, refund));
        }

        // 10.00 then 29.99 on order a; 29.99 then 10.00 on order b.
        var a1 = (await RefundAsync("o-a", 1000)).Reversal;
        var a2 = (await RefundAsync("o-a", 2999)).Reversal;
        var b1 = (await RefundAsync("o-b", 2999)).Reversal;
        var b2 = (await RefundAsync("o-b", 1000)).Reversal;
        for (var level = 1; level <= 2; level++)
        {
            var total = Reversed(commission[level], amount, 3999);
            Assert.Equal(-total, a1[level] + a2[level]);
            Assert.Equal(-total, b1[level] + b2[level]);
            Assert.True(a1[level] < 0 && a2[level] < 0 && b1[level] < 0 && b2[level] < 0);
        }
        Assert.Equal(-400, a1[1] + a2[1]); // 599 − ⌊599 × 2000 / 5999⌋

        // 50.00 more on a, where 20.00 is left: capped at 20.00, and the whole commission is then reversed.
        var (capped, a3) = await RefundAsync("o-a", 5000);
        Assert.Contains("capped at 2000", (string?)capped["Note"]);
        // Exactly the 20.00 left on b: the same, without a cap.
        var (exact, b3) = await RefundAsync("o-b", 2000);
        Assert.Null(exact["Note"]);
        for (var level = 1; level <= 2; level++)
        {
            Assert.Equal(-commission[level], a1[level] + a2[level] + a3[level]);
            Assert.Equal(-commission[level], b1[level] + b2[level] + b3[level]);
        }
        // Nothing is left to refund on the line: one more refund is capped at 0 and reverses nothing;
        // a refund of a line the order never had is noted and ignored.
        var (nothing, a4) = await RefundAsync("o-a", 1);
        Assert.Equal(0, (int)nothing["EntriesWritten"]!);
        Assert.Equal(new long[] { 0, 0, 0 }, a4);
        var unknown = await SettleForResultAsync(app, Distribution.OrderEvent("refunded", "o-a", buyer, now.AddHours(2), Distribution.Line("l7", "toys", 100)));
        Assert.Equal("applied", (string?)unknown["Outcome"]);
        Assert.Equal(0, (int)unknown["EntriesWritten"]!);
        Assert.Contains("line l7 was not paid", (string?)unknown["Note"]);

        // Per line and level: nothing left of l1; l2 untouched. So each promoter's net is exactly the l2 commissions.
        Assert.Equal(2 * Commission(10000, 1000), (await MoneyAsync(app, promoter)).Net);
        Assert.Equal(2 * Commission(10000, 300), (await MoneyAsync(app, parent)).Net);
        foreach (var id in new[] { promoter, parent })
            foreach (var order in new[] { "o-a", "o-b" })
                Assert.Equal(0, (await EntriesAsync(app, id)).Where(e => e.OrderId == order && e.LineId == "l1").Sum(e => e.Amount));
    }

    // ---- 4. A refund after the commission was paid out.

    [Fact]
    public async Task A_refund_after_payout_is_one_available_negative_entry_that_nets_against_what_was_paid()
    {
        await using var app = await StartAsync("payout");
        await app.SetRulesAsync(1000, 300);
        var promoter = Api.NewId("p1");
        var buyer = Api.NewId("b");
        await BindAsync(app, buyer, await app.RegisterPromoterAsync(promoter));
        var paidAt = app.Clock.GetUtcNow().AddMinutes(1);
        Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("paid", "o-1", buyer, paidAt, Distribution.Line("l1", "toys", 20000))));
        var commission = Commission(20000, 1000);

        // A week later the commission is released, and a batch pays it.
        app.Clock.Set(paidAt.AddDays(7).AddMinutes(5));
        await app.InvokeTimerAsync("ReleaseCommissions");
        Assert.Equal(new Money(0, commission, 0, commission), await MoneyAsync(app, promoter));
        var payout = await app.PayoutAsync("batch-1", 1);
        Assert.Equal(HttpStatusCode.Created, payout.StatusCode);
        Assert.Equal(commission, Distribution.ParseCsv(await payout.Content.ReadAsStringAsync())[promoter]);
        Assert.Equal(new Money(0, 0, commission, commission), await MoneyAsync(app, promoter));

        // Then the buyer returns a quarter of it.
        app.Clock.Advance(TimeSpan.FromDays(2));
        var refund = Distribution.OrderEvent("refunded", "o-1", buyer, app.Clock.GetUtcNow(), Distribution.Line("l1", "toys", 5000));
        Assert.Equal("applied", await app.SettleAsync(refund, "m-refund"));
        var reversal = Reversed(commission, 20000, 5000);
        Assert.Equal(500, reversal);
        var entries = await EntriesAsync(app, promoter);
        Assert.Equal(2, entries.Count);
        var paid = Assert.Single(entries, e => e.Kind == "commission");
        // The paid entry is never edited back.
        Assert.Equal("paid", paid.Status);
        Assert.Equal(commission, paid.Amount);
        Assert.Equal("batch-1", paid.PayoutBatchId);
        var negative = Assert.Single(entries, e => e.Kind == "reversal");
        Assert.Equal(EntryId("o-1", EventId(refund), "l1", 1), negative.Id);
        Assert.Equal(-reversal, negative.Amount);
        Assert.Equal("available", negative.Status);
        Assert.Equal(new Money(0, -reversal, commission, commission - reversal), await MoneyAsync(app, promoter));

        // Delivered again: nothing changes.
        Assert.Equal("duplicate", await app.SettleAsync(refund, "m-refund", deliveryCount: 2));
        Assert.Equal(2, (await EntriesAsync(app, promoter)).Count);
        Assert.Equal(new Money(0, -reversal, commission, commission - reversal), await MoneyAsync(app, promoter));
        // A negative available balance is not paid out (it waits to be netted by later earnings).
        var next = await app.PayoutAsync("batch-2", 1);
        Assert.Equal(HttpStatusCode.Created, next.StatusCode);
        Assert.DoesNotContain(promoter, Distribution.ParseCsv(await next.Content.ReadAsStringAsync()).Keys);
        Assert.Equal(new Money(0, -reversal, commission, commission - reversal), await MoneyAsync(app, promoter));
    }

    // ---- 5. Level 2.

    [Fact]
    public async Task The_promoter_who_brought_the_buyer_earns_level_1_and_their_inviter_level_2_each_with_its_category_rates()
    {
        await using var app = await StartAsync("level2");
        await app.SetRulesAsync(1000, 300,
            new() { ["books"] = 1500, ["food"] = 400 },
            new() { ["books"] = 500, ["electronics"] = 0 });
        // root invited inviter, inviter invited promoter: only two levels earn.
        var root = Api.NewId("root");
        var inviter = Api.NewId("p1");
        var promoter = Api.NewId("p2");
        var code = await app.RegisterPromoterAsync(promoter, await app.RegisterPromoterAsync(inviter, await app.RegisterPromoterAsync(root)));
        var buyer = Api.NewId("b");
        await BindAsync(app, buyer, code);
        var paid = Distribution.OrderEvent("paid", "o-1", buyer, app.Clock.GetUtcNow().AddMinutes(1),
            Distribution.Line("l1", "books", 12345), Distribution.Line("l2", "food", 9999),
            Distribution.Line("l3", "electronics", 20000), Distribution.Line("l4", "toys", 777));
        Assert.Equal("applied", await app.SettleAsync(paid));

        var ev = EventId(paid);
        Assert.Equal(new SortedDictionary<string, long>(StringComparer.Ordinal)
        {
            [EntryId("o-1", ev, "l1", 1)] = Commission(12345, 1500), // books override: 1851
            [EntryId("o-1", ev, "l2", 1)] = Commission(9999, 400),   // food override: 399
            [EntryId("o-1", ev, "l3", 1)] = Commission(20000, 1000), // default: 2000
            [EntryId("o-1", ev, "l4", 1)] = Commission(777, 1000),   // default: 77
        }, await LedgerAsync(app, promoter));
        Assert.Equal(new SortedDictionary<string, long>(StringComparer.Ordinal)
        {
            [EntryId("o-1", ev, "l1", 2)] = Commission(12345, 500), // books override: 617
            [EntryId("o-1", ev, "l2", 2)] = Commission(9999, 300),  // level 2 has no food override: default 299
            // electronics: level-2 override 0, so no entry at all
            [EntryId("o-1", ev, "l4", 2)] = Commission(777, 300),   // default: 23
        }, await LedgerAsync(app, inviter));
        Assert.All(await EntriesAsync(app, promoter), e => Assert.Equal(1, e.Level));
        Assert.All(await EntriesAsync(app, inviter), e => Assert.Equal(2, e.Level));
        Assert.Equal(1851 + 399 + 2000 + 77, (await MoneyAsync(app, promoter)).Pending);
        Assert.Equal(617 + 299 + 23, (await MoneyAsync(app, inviter)).Pending);
        // The inviter's inviter is not a third level.
        Assert.Empty(await EntriesAsync(app, root));
    }

    // ---- 6. Attribution at the order's time.

    [Fact]
    public async Task The_binding_that_counts_is_the_one_in_force_when_the_order_was_paid_not_when_its_event_is_processed()
    {
        await using var app = await StartAsync("touch");
        await app.SetRulesAsync(1000, 300);
        var a = Api.NewId("pa");
        var b = Api.NewId("pb");
        var codeA = await app.RegisterPromoterAsync(a);
        var codeB = await app.RegisterPromoterAsync(b);
        var buyer = Api.NewId("buyer");
        var t0 = app.Clock.GetUtcNow();

        await BindAsync(app, buyer, codeA); // A holds the buyer until t0 + 30d
        app.Clock.Set(t0.AddDays(10));
        var kept = await (await app.VisitAsync(buyer, codeB)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("kept_earlier", (string?)kept["status"]); // first touch: B's visit binds nothing
        // After A's window ended (and after the order of day 31 below was paid), the buyer comes through B.
        app.Clock.Set(t0.AddDays(31).AddHours(1));
        await BindAsync(app, buyer, codeB);

        // Every event is processed on day 40, when B holds the buyer.
        app.Clock.Set(t0.AddDays(40));
        var day29 = Distribution.OrderEvent("paid", "o-29", buyer, t0.AddDays(29), Distribution.Line("l1", "toys", 10000));
        var day31 = Distribution.OrderEvent("paid", "o-31", buyer, t0.AddDays(31), Distribution.Line("l1", "toys", 20000));
        var day32 = Distribution.OrderEvent("paid", "o-32", buyer, t0.AddDays(32), Distribution.Line("l1", "toys", 30000));
        foreach (var paid in new[] { day29, day31, day32 }) Assert.Equal("applied", await app.SettleAsync(paid));

        // Day 29: A's binding. Day 31: nobody's (A's ended at day 30, B's visit on day 10 bound nothing). Day 32: B's.
        Assert.Equal(new SortedDictionary<string, long>(StringComparer.Ordinal) { [EntryId("o-29", EventId(day29), "l1", 1)] = 1000 },
            await LedgerAsync(app, a));
        Assert.Equal(new SortedDictionary<string, long>(StringComparer.Ordinal) { [EntryId("o-32", EventId(day32), "l1", 1)] = 3000 },
            await LedgerAsync(app, b));
        // Both were processed after their holding period: written available at once.
        Assert.Equal(new Money(0, 1000, 0, 1000), await MoneyAsync(app, a));
        Assert.Equal(new Money(0, 3000, 0, 3000), await MoneyAsync(app, b));
    }

    // ---- 7. Rules at the payment's time.

    [Fact]
    public async Task A_payment_is_settled_with_the_rules_in_force_when_it_was_made_however_late_its_event_arrives()
    {
        await using var app = await StartAsync("rules");
        var t0 = app.Clock.GetUtcNow();
        await app.SetRulesAsync(1000, 300, new() { ["books"] = 1200 });                      // v1, from now
        await app.SetRulesAsync(2000, 300, new() { ["books"] = 2500 }, from: t0.AddDays(5)); // v2, from day 5
        var promoter = Api.NewId("p1");
        var buyer = Api.NewId("b");
        await BindAsync(app, buyer, await app.RegisterPromoterAsync(promoter));

        var orders = new (string Order, DateTimeOffset PaidAt, long Expected)[]
        {
            ("o-day1", t0.AddDays(1), Commission(10000, 1200)),                        // v1
            ("o-just-before", t0.AddDays(5).AddMilliseconds(-1), Commission(10000, 1200)), // v1: v2 not yet in force
            ("o-day5", t0.AddDays(5), Commission(10000, 2500)),                        // v2 from its first instant
            ("o-day6", t0.AddDays(6), Commission(10000, 2500)),                        // v2
        };
        // All delivered on day 6 and later, when v2 is in force.
        app.Clock.Set(t0.AddDays(6).AddHours(1));
        var events = orders.Select(o => Distribution.OrderEvent("paid", o.Order, buyer, o.PaidAt, Distribution.Line("l1", "books", 10000))).ToList();
        foreach (var paid in events) Assert.Equal("applied", await app.SettleAsync(paid));

        var ledger = await LedgerAsync(app, promoter);
        Assert.Equal(orders.Length, ledger.Count);
        for (var i = 0; i < orders.Length; i++)
            Assert.Equal(orders[i].Expected, ledger[EntryId(orders[i].Order, EventId(events[i]), "l1", 1)]);
        Assert.Equal(1200, ledger[EntryId("o-day1", EventId(events[0]), "l1", 1)]);
        Assert.Equal(2500, ledger[EntryId("o-day6", EventId(events[3]), "l1", 1)]);
    }

    // ---- 8. Messages that cannot be settled.

    [Fact]
    public async Task Malformed_or_foreign_currency_messages_are_quarantined_once_completed_and_write_nothing_while_unknown_extra_fields_are_accepted()
    {
        await using var app = await StartAsync("quarantine");
        await app.SetRulesAsync(1000, 300);
        var promoter = Api.NewId("p1");
        var buyer = Api.NewId("b");
        await BindAsync(app, buyer, await app.RegisterPromoterAsync(promoter));
        var now = app.Clock.GetUtcNow();
        // Each would earn the bound buyer's promoter something if it were settled.
        JsonObject Valid(string orderId) => Distribution.OrderEvent("paid", orderId, buyer, now.AddMinutes(1), Distribution.Line("l1", "toys", 10000));
        var missing = Valid("o-missing");
        missing.Remove("buyerId");
        var unknownType = Valid("o-type");
        unknownType["type"] = "shipped";
        var negative = Distribution.OrderEvent("paid", "o-negative", buyer, now.AddMinutes(1),
            Distribution.Line("l1", "toys", 10000), Distribution.Line("l2", "toys", -500));
        var foreign = Valid("o-usd");
        foreign["currency"] = "USD";
        var noLines = Distribution.OrderEvent("paid", "o-empty", buyer, now.AddMinutes(1));
        var cases = new (string MessageId, string Body, string Reason)[]
        {
            ("m-not-json", "{\"eventId\": \"ev-1\", \"type\": \"paid\", ", "not a valid order event"),
            ("m-missing", missing.ToJsonString(), "buyerId"),
            ("m-type", unknownType.ToJsonString(), "type must be paid or refunded, not 'shipped'"),
            ("m-negative", negative.ToJsonString(), "line l2: amount must be 0 to"),
            ("m-usd", foreign.ToJsonString(), "currency USD is not settled"),
            ("m-no-lines", noLines.ToJsonString(), "lines must hold 1 to"),
        };
        foreach (var (messageId, body, reason) in cases)
            for (var delivery = 1; delivery <= 2; delivery++) // Service Bus may deliver a message again before it is completed
            {
                var answer = await (await app.DeliverAsync(body, messageId, delivery)).AssertStatusAsync(HttpStatusCode.OK); // completed, never retried
                Assert.Equal("quarantined", (string?)answer["ReturnValue"]!["Outcome"]);
                Assert.Contains(reason, (string?)answer["ReturnValue"]!["Note"]);
            }
        Assert.Empty(await EntriesAsync(app, promoter));

        // Operators see each message once, with its reason and body.
        var day = now.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        await (await app.Customer(buyer).GetAsync("/api/order-events/quarantine?day=" + day)).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        var listed = await (await app.Operator().GetAsync("/api/order-events/quarantine?day=" + day)).AssertStatusAsync(HttpStatusCode.OK);
        var items = listed["items"]!.AsArray().Select(i => i!).ToList();
        Assert.Equal(cases.Select(c => c.MessageId).Order(StringComparer.Ordinal), items.Select(i => (string)i["messageId"]!).Order(StringComparer.Ordinal));
        foreach (var (messageId, body, reason) in cases)
        {
            var item = items.Single(i => (string?)i["messageId"] == messageId);
            Assert.Contains(reason, (string?)item["reason"]);
            Assert.Equal(body, (string?)item["body"]);
            Assert.Equal(1, (int)item["deliveryCount"]!);
            Assert.Equal(day, (string?)item["day"]);
        }

        // A quarantined event left no trace in settlement: the same event id and order, now in CNY, settles.
        foreign["currency"] = "CNY";
        Assert.Equal("applied", await app.SettleAsync(foreign));
        // Members the programme does not know are ignored, at the top and in lines.
        var extra = Valid("o-extra");
        extra["channel"] = "mini_program";
        extra["coupon"] = new JsonObject { ["id"] = "c-1", ["discount"] = 500 };
        extra["lines"]![0]!["sku"] = "sku-1";
        Assert.Equal("applied", await app.SettleAsync(extra));
        Assert.Equal(new SortedDictionary<string, long>(StringComparer.Ordinal)
        {
            [EntryId("o-usd", EventId(foreign), "l1", 1)] = 1000,
            [EntryId("o-extra", EventId(extra), "l1", 1)] = 1000,
        }, await LedgerAsync(app, promoter));
        var after = await (await app.Operator().GetAsync("/api/order-events/quarantine?day=" + day)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(cases.Length, after["items"]!.AsArray().Count);
    }

    // ---- 9. A second payment event.

    [Fact]
    public async Task A_second_paid_event_for_an_order_already_paid_is_ignored_and_earns_nothing_more()
    {
        await using var app = await StartAsync("twice");
        await app.SetRulesAsync(1000, 300);
        var promoter = Api.NewId("p1");
        var buyer = Api.NewId("b");
        await BindAsync(app, buyer, await app.RegisterPromoterAsync(promoter));
        var now = app.Clock.GetUtcNow();
        var first = Distribution.OrderEvent("paid", "o-1", buyer, now.AddMinutes(1), Distribution.Line("l1", "toys", 10000));
        Assert.Equal("applied", await app.SettleAsync(first));
        var before = await LedgerAsync(app, promoter);
        Assert.Equal(new SortedDictionary<string, long>(StringComparer.Ordinal) { [EntryId("o-1", EventId(first), "l1", 1)] = 1000 }, before);

        // Another event id, other amounts: the order was paid once.
        var second = Distribution.OrderEvent("paid", "o-1", buyer, now.AddMinutes(2), Distribution.Line("l1", "toys", 50000));
        var ignored = await SettleForResultAsync(app, second, "m-second");
        Assert.Equal("ignored", (string?)ignored["Outcome"]);
        Assert.Equal(0, (int)ignored["EntriesWritten"]!);
        Assert.Contains(EventId(first), (string?)ignored["Note"]);
        Assert.Equal("duplicate", await app.SettleAsync(second, "m-second", deliveryCount: 2));
        Assert.Equal(before, await LedgerAsync(app, promoter));

        // The first payment is still the one refunds are measured against: a full refund of its 100.00 line
        // reverses exactly its 10.00 (measured against the ignored 500.00 line it would reverse 2.00 of 50.00).
        var refund = Distribution.OrderEvent("refunded", "o-1", buyer, now.AddMinutes(3), Distribution.Line("l1", "toys", 10000));
        Assert.Equal("applied", await app.SettleAsync(refund));
        Assert.Equal(-1000, (await LedgerAsync(app, promoter))[EntryId("o-1", EventId(refund), "l1", 1)]);
        Assert.Equal(new Money(0, 0, 0, 0), await MoneyAsync(app, promoter));
    }

    // ---- 10. Self-purchase.

    [Fact]
    public async Task A_promoter_earns_nothing_on_their_own_purchases_nor_on_their_inviters_through_them()
    {
        await using var app = await StartAsync("self");
        await app.SetRulesAsync(1000, 300);
        var inviter = Api.NewId("p0");
        var promoter = Api.NewId("p1");
        var inviterCode = await app.RegisterPromoterAsync(inviter);
        var code = await app.RegisterPromoterAsync(promoter, inviterCode);

        // Neither can bind to themselves through the promoter's code.
        await (await app.VisitAsync(promoter, code)).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "self-referral");
        await (await app.VisitAsync(inviter, code)).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "self-referral");
        var now = app.Clock.GetUtcNow();
        foreach (var (order, buyer) in new[] { ("o-own", promoter), ("o-inviter", inviter) })
        {
            var result = await SettleForResultAsync(app, Distribution.OrderEvent("paid", order, buyer, now.AddMinutes(1), Distribution.Line("l1", "books", 50000)));
            Assert.Equal("applied", (string?)result["Outcome"]);
            Assert.Equal(0, (int)result["EntriesWritten"]!);
        }
        Assert.Empty(await EntriesAsync(app, promoter));
        Assert.Empty(await EntriesAsync(app, inviter));

        // The same order by a genuine buyer through the code earns both: the rules and the chain do pay.
        var stranger = Api.NewId("b");
        await BindAsync(app, stranger, code);
        Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("paid", "o-stranger", stranger, now.AddMinutes(2), Distribution.Line("l1", "books", 50000))));
        Assert.Equal(new Money(Commission(50000, 1000), 0, 0, Commission(50000, 1000)), await MoneyAsync(app, promoter));
        Assert.Equal(new Money(Commission(50000, 300), 0, 0, Commission(50000, 300)), await MoneyAsync(app, inviter));
        Assert.All(await EntriesAsync(app, promoter), e => Assert.Equal("o-stranger", e.OrderId));
    }

    // ---- 11. The holding period ends while a delivery writes its entries.

    /// <summary>A clock that moves on by a millisecond every time it is read: time passes while a delivery works.</summary>
    private sealed class TickingClock(DateTimeOffset start) : TimeProvider
    {
        private long ticks = start.UtcTicks - TimeSpan.TicksPerMillisecond;
        public override DateTimeOffset GetUtcNow() => new(Interlocked.Add(ref ticks, TimeSpan.TicksPerMillisecond), TimeSpan.Zero);
    }

    [Fact]
    public async Task Entries_that_come_due_while_a_delivery_writes_them_pending_are_released_by_that_delivery()
    {
        await using var app = await StartAsync("due-while-writing");
        await app.SetRulesAsync(1000, 0);
        var promoter = Api.NewId("p");
        var buyer = Api.NewId("b");
        await BindAsync(app, buyer, await app.RegisterPromoterAsync(promoter));
        var paidAt = app.Clock.GetUtcNow().AddMinutes(1);
        var paid = new OrderEvent("ev-1", "paid", "o-due", buyer, paidAt, "CNY",
            [new("l1", "books", 5000), new("l2", "toys", 7000)]);

        // The delivery starts 2 ms before the commissions' availableAt: it decides "pending" and promises the release
        // in the record; by the time its entries are written the time has come, and the release timer may already
        // have been by.
        var s = app.Services;
        var holding = TimeSpan.FromDays(7);
        var outcome = await SettleCommission.SettleAsync(paid,
            s.GetRequiredService<SettlementStore>(), s.GetRequiredService<ReferralStore>(),
            s.GetRequiredService<CommissionRulesStore>(), s.GetRequiredService<LedgerStore>(),
            holding, new TickingClock(paidAt + holding - TimeSpan.FromMilliseconds(2)),
            CancellationToken.None);
        Assert.Equal("applied", outcome.Outcome);
        Assert.Equal(2, outcome.EntriesWritten);

        // The record promised the release (so the entries were written pending) ...
        var (record, _) = await StoredRecordAsync(app, "o-due");
        Assert.Equal(Api.Instant(paidAt + holding), (string?)record["releaseAt"]);
        // ... and yet, with no timer run, nothing is left pending.
        var entries = await EntriesAsync(app, promoter);
        Assert.Equal(2, entries.Count);
        Assert.All(entries, e => Assert.Equal("available", e.Status));
        Assert.Equal(new Money(0, 500 + 700, 0, 1200), await MoneyAsync(app, promoter));
    }

    // ---- 12. Orders with many events: the record stays small, and an order that would outgrow it is quarantined.

    /// <summary>The order's settlement record as stored: its JSON and size in bytes.</summary>
    private static async Task<(JsonNode Json, int Bytes)> StoredRecordAsync(TestApp app, string orderId)
    {
        using var response = await app.Services.GetRequiredService<Database>().GetContainer("settlements").ReadItemStreamAsync(orderId, new PartitionKey(orderId));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(response.Content);
        var text = await reader.ReadToEndAsync();
        return (JsonNode.Parse(text)!, System.Text.Encoding.UTF8.GetByteCount(text));
    }

    private static async Task AssertBooksReconcileAsync(TestApp app)
    {
        var s = app.Services;
        Assert.Empty(await LedgerReconciliation.CheckAsync(s.GetRequiredService<PromoterStore>(), s.GetRequiredService<LedgerStore>(),
            s.GetRequiredService<SettlementStore>(), s.GetRequiredService<Marketing.Functions.Payouts.PayoutStore>(), app.Clock.GetUtcNow(),
            TimeSpan.FromHours(1), CancellationToken.None));
    }

    [Fact]
    public async Task An_order_with_two_hundred_partial_refunds_settles_each_once_to_the_cent_and_its_record_stays_small()
    {
        await using var app = await StartAsync("many-refunds");
        var (parent, promoter, buyer) = await ReferredBuyerAsync(app);
        var now = app.Clock.GetUtcNow();
        var paid = Distribution.OrderEvent("paid", "o-many", buyer, now.AddMinutes(1),
            Distribution.Line("l1", "books", 100_000), Distribution.Line("l2", "toys", 50_000));
        // 100 refunds of 9.00 on l1 (90.00 of its 1,000.00) and 100 of 6.00 on l2 (60.00 asked of its 500.00: the later
        // ones are capped, and l2 ends fully refunded). Each 9.00 of l1 takes exactly 90 off level 1 and 27 off level 2.
        var refunds = Enumerable.Range(0, 200).Select(i => Distribution.OrderEvent("refunded", "o-many", buyer, now.AddMinutes(2 + i),
            i % 2 == 0 ? Distribution.Line("l1", "books", 900) : Distribution.Line("l2", "toys", 600))).ToList();

        // 20 arrive before the payment (parked), then the payment, then the other 180, each twice, 4 at a time.
        foreach (var refund in refunds.Take(20)) Assert.Equal("parked", await app.SettleAsync(refund));
        Assert.Equal("applied", await app.SettleAsync(paid));
        var deliveries = refunds.Skip(20).SelectMany(r => new[] { r, r }).Concat(refunds.Take(20)).ToArray();
        new Random(11).Shuffle(deliveries);
        var messageIds = refunds.ToDictionary(EventId, _ => Guid.NewGuid().ToString("N"));
        var outcomes = new ConcurrentBag<(string Event, string Outcome)>();
        await Parallel.ForEachAsync(deliveries, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (refund, _) =>
        {
            for (var count = 1; ; count++)
            {
                var response = await app.DeliverAsync(refund.ToJsonString(), messageIds[EventId(refund)], count);
                if (response.StatusCode == HttpStatusCode.ServiceUnavailable && count < 10) continue;
                var answer = await response.AssertStatusAsync(HttpStatusCode.OK);
                outcomes.Add((EventId(refund), (string)answer["ReturnValue"]!["Outcome"]!));
                return;
            }
        });
        // Each of the 180 was applied by one delivery; every other delivery found it decided.
        var byEvent = outcomes.GroupBy(o => o.Event).ToDictionary(g => g.Key, g => g.Select(o => o.Outcome).Order().ToList());
        foreach (var refund in refunds.Skip(20)) Assert.Equal(["applied", "duplicate"], byEvent[EventId(refund)]);
        foreach (var refund in refunds.Take(20)) Assert.Equal(["duplicate"], byEvent[EventId(refund)]);

        // To the cent, per promoter: what is kept of each line after everything refunded.
        Assert.Equal(Kept(Commission(100_000, 1000), 100_000, 90_000) + 0, (await MoneyAsync(app, promoter)).Net);
        Assert.Equal(Kept(Commission(100_000, 300), 100_000, 90_000) + 0, (await MoneyAsync(app, parent)).Net);
        var level1 = await EntriesAsync(app, promoter);
        Assert.Equal(100, level1.Count(e => e.LineId == "l1" && e.Amount == -90));
        Assert.Equal(-Commission(50_000, 1000), level1.Where(e => e.LineId == "l2" && e.Kind == "reversal").Sum(e => e.Amount));
        Assert.Equal(100, (await EntriesAsync(app, parent)).Count(e => e.LineId == "l1" && e.Amount == -27));
        await AssertBooksReconcileAsync(app);

        // 201 events in a record of well under 64 KB: about 200 bytes per refund, nothing per ledger entry (the
        // record used to keep each event's lines and planned entries: ~105 KB here, 2 MB after ~6 refunds of 500 lines).
        var (record, bytes) = await StoredRecordAsync(app, "o-many");
        Assert.Equal(201, record["events"]!.AsArray().Count);
        Assert.True(bytes < 64 * 1024, $"{bytes} bytes");
        Assert.DoesNotContain("entries", record["events"]![0]!.AsObject().Select(p => p.Key));
    }

    [Fact]
    public async Task A_refund_that_would_take_the_record_past_its_limit_is_quarantined_once_and_never_dead_lettered()
    {
        await using var app = await StartAsync("record-limit");
        await app.SetRulesAsync(1000, 0);
        var promoter = Api.NewId("p1");
        var buyer = Api.NewId("b");
        await BindAsync(app, buyer, await app.RegisterPromoterAsync(promoter));
        var now = app.Clock.GetUtcNow();
        // Refunds ahead of their payment keep what they ask for until it arrives: 500 lines (l1 and 499 lines the
        // order will not have, with the longest ids) are ~45 KB each, so about a dozen reach the record's limit.
        JsonObject BigRefund(int i) => Distribution.OrderEvent("refunded", "o-big", buyer, now.AddMinutes(2 + i),
            [Distribution.Line("l1", "books", 100), .. Enumerable.Range(1, 499).Select(l => Distribution.Line($"{i:D3}-{l:D4}-".PadRight(64, 'x'), "books", 100))]);
        var parked = new List<JsonObject>();
        JsonNode? refused = null;
        JsonObject? over = null;
        for (var i = 0; refused is null && i < 30; i++)
        {
            var refund = BigRefund(i);
            var answer = await SettleForResultAsync(app, refund, $"m-{i}");
            if ((string?)answer["Outcome"] == "parked") parked.Add(refund);
            else (refused, over) = (answer, refund);
            Assert.True((await StoredRecordAsync(app, "o-big")).Bytes <= Settlement.MaxBytes + 512); // + what Cosmos DB adds (_rid, _ts, ...)
        }
        Assert.NotNull(refused);
        Assert.Equal("quarantined", (string?)refused["Outcome"]);
        Assert.Contains($"over the {Settlement.MaxBytes} an order may have", (string?)refused["Note"]);
        Assert.InRange(parked.Count, 8, 16);
        // Delivered again: quarantined again (completed, 200), recorded once, and the record did not take it.
        var again = await SettleForResultAsync(app, over!, $"m-{parked.Count}", deliveryCount: 2);
        Assert.Equal("quarantined", (string?)again["Outcome"]);
        var day = now.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var listed = await (await app.Operator().GetAsync("/api/order-events/quarantine?day=" + day)).AssertStatusAsync(HttpStatusCode.OK);
        var item = Assert.Single(listed["items"]!.AsArray());
        Assert.Contains("o-big", (string?)item!["reason"]);
        Assert.Equal(parked.Count, (await StoredRecordAsync(app, "o-big")).Json["events"]!.AsArray().Count);

        // The payment is always taken; it applies the parked refunds, whose requests shrink to a pair of numbers each.
        var paid = Distribution.OrderEvent("paid", "o-big", buyer, now.AddMinutes(1), Distribution.Line("l1", "books", 100_000));
        Assert.Equal("applied", await app.SettleAsync(paid));
        var (record, bytes) = await StoredRecordAsync(app, "o-big");
        Assert.True(bytes < 16 * 1024, $"{bytes} bytes");
        // Notes stay short: each refund named 499 lines the order never had.
        Assert.All(record["events"]!.AsArray().Take(parked.Count), e => Assert.EndsWith("; and 497 more", (string?)e!["note"]));
        // Later refunds are taken again: the record is small once more. The quarantined one had no effect.
        Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("refunded", "o-big", buyer, now.AddHours(1), Distribution.Line("l1", "books", 1000))));
        var refunded = 100L * parked.Count + 1000;
        Assert.Equal(Kept(Commission(100_000, 1000), 100_000, refunded), (await MoneyAsync(app, promoter)).Net);
        await AssertBooksReconcileAsync(app);
    }

    [Fact]
    public void The_largest_record_the_limits_allow_stays_far_below_two_megabytes_and_the_event_after_the_last_is_refused()
    {
        var t = new DateTimeOffset(2026, 11, 22, 9, 30, 0, TimeSpan.Zero);
        string Id(string prefix, int i) => $"{prefix}{i}".PadRight(64, '9');
        // The longest ids, the widest categories (64 characters that JSON escapes to 6 bytes each), the largest amounts.
        var category = string.Concat(Enumerable.Repeat(char.ConvertFromUtf32(0x1F600), 32));
        var orderId = Id("o", 0);
        var record = new SettlementRecord { Id = orderId, Events = [] };
        // Parked refunds until the record refuses one, each naming a line the payment will have and two it will not:
        // when the payment applies them, each keeps a pair and gains a note (the most a parked refund can gain).
        for (var i = 0; ; i++)
        {
            var refund = new OrderEvent(Id("ev", i), OrderEvent.Refunded, orderId, Id("b", 0), t, "CNY",
                [new(Id("m", i % OrderEvent.MaxLines), category, OrderEvent.MaxAmount), new(Id("x", 2 * i), category, 1), new(Id("x", 2 * i + 1), category, 1)]);
            var next = Settlement.Refund(record, refund, t);
            if (Settlement.OverLimit(record, next) is not null) break; // its events or its bytes
            record = next;
        }
        // Then the payment of 500 of the widest lines, at the highest rates: always taken, whatever the limits.
        var paid = new OrderEvent(Id("ev-paid", 0), OrderEvent.Paid, orderId, Id("b", 0), t, "CNY",
            [.. Enumerable.Range(0, OrderEvent.MaxLines).Select(l => new OrderEventLine(Id("m", l), category, OrderEvent.MaxAmount))]);
        var rules = new RuleVersion(t, new RateTable(9000, new Dictionary<string, int>()), new RateTable(1000, new Dictionary<string, int>()), "op", t);
        var settled = Settlement.Pay(record, paid, new ReferralBinding(Id("p", 1), Id("p", 2), "CODE0000", t.AddDays(-1), t.AddDays(29)), rules,
            TimeSpan.FromDays(7), t);
        Assert.Null(Settlement.OverLimit(record, settled));
        var bytes = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(settled, Marketing.Functions.Hosting.Json.Storage).Length;
        // Past the refunds' limit (the payment may add its lines on top) and far below Cosmos DB's 2 MB: the bound in
        // docs/distribution.md#limits-per-order is 512 KiB + 1,000 notes + 500 paid lines, about 1.1 MB.
        Assert.InRange(bytes, Settlement.MaxBytes, 1_100_000);
        // And every one of its (up to 1,500) ledger entries is derived from it.
        Assert.Equal(2 * OrderEvent.MaxLines, Settlement.Plans(settled)[^1].Count);

        // The number of events is capped too: small refunds of a paid order, up to the last one allowed.
        var small = Settlement.Pay(new SettlementRecord { Id = "o-1", Events = [] },
            new OrderEvent("ev-paid", OrderEvent.Paid, "o-1", "b", t, "CNY", [new("l1", "books", 10_000_000)]), null, null, TimeSpan.FromDays(7), t);
        for (var i = 1; i < Settlement.MaxEvents; i++)
            small = Settlement.Refund(small, new OrderEvent($"ev-{i}", OrderEvent.Refunded, "o-1", "b", t, "CNY", [new("l1", "books", 1)]), t);
        Assert.Equal(Settlement.MaxEvents, small.Events.Count);
        var one = Settlement.Refund(small, new OrderEvent("ev-one-more", OrderEvent.Refunded, "o-1", "b", t, "CNY", [new("l1", "books", 1)]), t);
        Assert.Contains($"already has {Settlement.MaxEvents} events", Settlement.OverLimit(small, one));
        var ignored = Settlement.Ignore(small, new OrderEvent("ev-paid-again", OrderEvent.Paid, "o-1", "b", t, "CNY", [new("l1", "books", 1)]), t, "again");
        Assert.NotNull(Settlement.OverLimit(small, ignored));
    }

    [Fact]
    public async Task A_record_written_in_the_old_shape_is_finished_and_extended_with_the_same_entries_and_then_stored_in_the_new_shape()
    {
        await using var app = await StartAsync("old-shape");
        await app.SetRulesAsync(1000, 0);
        var promoter = Api.NewId("p1");
        var buyer = Api.NewId("b");
        await BindAsync(app, buyer, await app.RegisterPromoterAsync(promoter));
        var t = app.Clock.GetUtcNow().AddMinutes(1);
        string At(DateTimeOffset instant) => Api.Instant(instant);
        // As the code before issue 11 wrote it: every event with its lines and planned entries. The payment is written
        // to the ledger; a partial refund (and a line that was not paid) is decided but its entry not yet written.
        var old = JsonNode.Parse($$"""
            {"id":"o-old","orderId":"o-old",
             "paid":{"eventId":"ev-p","paidAt":"{{At(t)}}","buyerId":"{{buyer}}","currency":"CNY","level1":"{{promoter}}","rulesEffectiveFrom":"{{At(t)}}",
                     "availableAt":"{{At(t.AddDays(7))}}","lines":[{"lineId":"l1","category":"books","amount":5999,"commission1":599,"commission2":0,
                     "refunded":2999,"reversed1":300,"reversed2":0}]},
             "events":[
              {"eventId":"ev-p","type":"paid","state":"applied","occurredAt":"{{At(t)}}","receivedAt":"{{At(t)}}","lines":[],
               "entries":[{"id":"o-old:ev-p:l1:1","promoterId":"{{promoter}}","level":1,"lineId":"l1","category":"books","amount":599}],"written":true},
              {"eventId":"ev-r1","type":"refunded","state":"applied","occurredAt":"{{At(t.AddMinutes(1))}}","receivedAt":"{{At(t.AddMinutes(1))}}",
               "lines":[{"lineId":"l1","category":"books","amount":2999},{"lineId":"l9","category":"toys","amount":5}],
               "entries":[{"id":"o-old:ev-r1:l1:1","promoterId":"{{promoter}}","level":1,"lineId":"l1","category":"books","amount":-300}],
               "written":false,"note":"line l9 was not paid"}]}
            """)!;
        var s = app.Services;
        await s.GetRequiredService<Database>().GetContainer("settlements").CreateItemAsync(old, new PartitionKey("o-old"));
        await s.GetRequiredService<LedgerStore>().CreateIfAbsentAsync(new LedgerEntry
        {
            Id = "o-old:ev-p:l1:1", PromoterId = promoter, OrderId = "o-old", EventId = "ev-p", LineId = "l1", Category = "books", Level = 1,
            Kind = LedgerEntry.Commission, Amount = 599, Currency = "CNY", Status = LedgerStatus.Pending, AvailableAt = t.AddDays(7), CreatedAt = t,
        }, CancellationToken.None);

        // A redelivery of the unfinished refund writes the entry the old record planned (−300), derived again.
        var r1 = Distribution.OrderEvent("refunded", "o-old", buyer, t.AddMinutes(1), Distribution.Line("l1", "books", 2999), Distribution.Line("l9", "toys", 5));
        r1["eventId"] = "ev-r1";
        var duplicate = await SettleForResultAsync(app, r1);
        Assert.Equal(("duplicate", 1), ((string?)duplicate["Outcome"], (int)duplicate["EntriesWritten"]!));
        Assert.Equal(new SortedDictionary<string, long>(StringComparer.Ordinal) { ["o-old:ev-p:l1:1"] = 599, ["o-old:ev-r1:l1:1"] = -300 },
            await LedgerAsync(app, promoter));
        await AssertBooksReconcileAsync(app); // the old record, read in the new shape, promises exactly these

        // A new refund of everything left: measured against the old refund (capped at the 30.00 left), and the record
        // is written in the new shape: no planned entries, the old refund as [line, amount].
        var r2 = Distribution.OrderEvent("refunded", "o-old", buyer, t.AddMinutes(2), Distribution.Line("l1", "books", 5000));
        var applied = await SettleForResultAsync(app, r2);
        Assert.Equal("applied", (string?)applied["Outcome"]);
        Assert.Contains("capped at 3000", (string?)applied["Note"]);
        Assert.Equal(-(599 - 300), (await LedgerAsync(app, promoter))[EntryId("o-old", EventId(r2), "l1", 1)]);
        Assert.Equal(0, (await MoneyAsync(app, promoter)).Net);
        var (stored, _) = await StoredRecordAsync(app, "o-old");
        var events = stored["events"]!.AsArray();
        Assert.All(events, e => Assert.Null(e!["entries"]));
        Assert.Equal("[[0,2999]]", events[1]!["refunds"]!.ToJsonString());
        Assert.Null(events[1]!["lines"]);
        Assert.Equal("[[0,3000]]", events[2]!["refunds"]!.ToJsonString());
        Assert.Equal("line l9 was not paid", (string?)events[1]!["note"]);
        await AssertBooksReconcileAsync(app);
    }

    // ---- 13. Round trips.

    [Fact]
    public async Task A_paid_event_costs_its_entries_plus_three_round_trips_and_a_service_bus_redelivery_costs_one_read()
    {
        await using var app = await StartAsync("round-trips");
        var (parent, promoter, buyer) = await ReferredBuyerAsync(app);
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        var look = app.Clock.GetUtcNow();
        // This instance's first payment looks up the rules; it then holds them for every payment made before that look.
        Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("paid", "o-warm", buyer, look, Distribution.Line("l1", "books", 1000))));
        var counter = app.Services.GetRequiredService<Marketing.Functions.Hosting.CosmosRequestCounter>();
        async Task<long> CountAsync(Func<Task> deliver)
        {
            var before = counter.Count;
            await deliver();
            return counter.Count - before;
        }
        async Task<int> EntriesOfAsync(string orderId)
            => (await EntriesAsync(app, promoter)).Concat(await EntriesAsync(app, parent)).Count(e => e.OrderId == orderId);

        // Exactly: the buyer's bindings, the record created (its release promised in it: nothing filed elsewhere, and it
        // is not read first), the 4 entries (2 lines, 2 levels), the event marked written. It was 10 with the read
        // first, 8 to 10 with the release filed in the due index and the rules read per payment.
        var paid = Distribution.OrderEvent("paid", "o-1", buyer, look.AddSeconds(-30), Distribution.Line("l1", "books", 10000), Distribution.Line("l2", "toys", 20000));
        Assert.Equal(1 + 1 + 4 + 1, await CountAsync(async () => Assert.Equal("applied", await app.SettleAsync(paid, "m-1"))));
        Assert.Equal(4, await EntriesOfAsync("o-1"));

        // Service Bus delivers the message again: one read finds it decided and written.
        Assert.Equal(1, await CountAsync(async () => Assert.Equal("duplicate", await app.SettleAsync(paid, "m-1", deliveryCount: 2))));
        // The same event in a new message (the order system's outbox sent it twice) looks like a first delivery: the
        // refused create answers the record (bindings, create, read), and nothing is written.
        Assert.Equal(3, await CountAsync(async () => Assert.Equal("duplicate", await app.SettleAsync(paid, "m-2"))));
        Assert.Equal(4, await EntriesOfAsync("o-1"));

        // A payment made after the instance last looked at the rules: one more, the versions taking effect since.
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        var later = Distribution.OrderEvent("paid", "o-2", buyer, app.Clock.GetUtcNow(), Distribution.Line("l1", "books", 10000), Distribution.Line("l2", "toys", 20000));
        Assert.Equal(1 + 1 + 1 + 4 + 1, await CountAsync(async () => Assert.Equal("applied", await app.SettleAsync(later))));
        // Everything a later release needs is in the record: it promises the release at the end of the holding period.
        var (record, _) = await StoredRecordAsync(app, "o-2");
        Assert.Equal(Api.Instant(app.Clock.GetUtcNow().AddDays(7)), (string?)record["releaseAt"]);
    }
}
