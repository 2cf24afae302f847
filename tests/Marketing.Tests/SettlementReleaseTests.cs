using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Commissions;
using Marketing.Functions.Expiry;
using Marketing.Functions.Hosting;
using Marketing.Functions.Payouts;
using Marketing.Functions.Promoters;
using Marketing.Tests.Support;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// ReleaseCommissions finding pending entries through their settlement records (issue 11): a paid event promises its
/// release in the record that decides it (no due-index entry, one round trip less), and the release reads the records
/// whose release is due, in pages, within its run deadline. Each test has its own database: the release reads every
/// due record in it.
/// </summary>
public sealed class SettlementReleaseTests
{
    private static readonly TimeSpan Holding = TimeSpan.FromDays(7); // Commissions:HoldingDays in the test settings

    private static Task<TestApp> StartAsync(string name)
        => TestApp.StartAsync($"{Settings.Get("Cosmos__Database")}-release-{name}-{Guid.NewGuid():N}"[..60]);

    private sealed record Referred(string Parent, string Promoter, string Buyer);

    /// <summary>Rules of 10 % / 3 %, a promoter invited by a parent, and a buyer bound to the promoter.</summary>
    private static async Task<Referred> ReferredBuyerAsync(TestApp app)
    {
        await app.SetRulesAsync(1000, 300);
        var parent = Api.NewId("p0");
        var promoter = Api.NewId("p1");
        var code = await app.RegisterPromoterAsync(promoter, await app.RegisterPromoterAsync(parent));
        var buyer = Api.NewId("b");
        Assert.Equal("bound", (string?)(await (await app.VisitAsync(buyer, code)).AssertStatusAsync(HttpStatusCode.OK))["status"]);
        return new(parent, promoter, buyer);
    }

    private sealed record Release(int EntriesReleased, int RecordsRead, int RecordsClosed, int DueEntriesRead);

    private static async Task<Release> ReleaseAsync(TestApp app)
    {
        var report = (await app.InvokeTimerAsync("ReleaseCommissions"))["ReturnValue"]!;
        Assert.Empty(report["Failures"]!.AsArray());
        return new((int)report["EntriesReleased"]!, (int)report["RecordsRead"]!, (int)report["RecordsClosed"]!, (int)report["EntriesRead"]!);
    }

    /// <summary>Every ledger entry of the promoters, as id → (status, amount).</summary>
    private static async Task<SortedDictionary<string, (string Status, long Amount)>> LedgerAsync(TestApp app, params string[] promoters)
    {
        var ledger = new SortedDictionary<string, (string, long)>(StringComparer.Ordinal);
        foreach (var promoter in promoters)
            foreach (var e in await app.CommissionsAsync(promoter))
                ledger.Add((string)e["id"]!, ((string)e["status"]!, (long)e["amount"]!));
        return ledger;
    }

    /// <summary>Ids of the settlement records whose release is still open.</summary>
    private static async Task<List<string>> OpenReleasesAsync(TestApp app)
    {
        var query = new QueryDefinition("SELECT VALUE c.id FROM c WHERE IS_DEFINED(c.releaseAt)");
        using var iterator = app.Services.GetRequiredService<Database>().GetContainer("settlements").GetItemQueryIterator<string>(query,
            requestOptions: new QueryRequestOptions { EnableOptimisticDirectExecution = true });
        var ids = new List<string>();
        while (iterator.HasMoreResults) ids.AddRange(await iterator.ReadNextAsync());
        return ids;
    }

    private static async Task AssertBooksReconcileAsync(TestApp app)
    {
        var s = app.Services;
        Assert.Empty(await LedgerReconciliation.CheckAsync(s.GetRequiredService<PromoterStore>(), s.GetRequiredService<LedgerStore>(),
            s.GetRequiredService<SettlementStore>(), s.GetRequiredService<PayoutStore>(), app.Clock.GetUtcNow(), TimeSpan.FromHours(1),
            CancellationToken.None));
    }

    [Fact]
    public async Task Entries_of_events_settled_in_the_new_shape_and_in_the_shape_before_are_each_released_once()
    {
        await using var app = await StartAsync("shapes");
        var (parent, promoter, buyer) = await ReferredBuyerAsync(app);
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        var t = app.Clock.GetUtcNow();
        var s = app.Services;
        var settlements = s.GetRequiredService<Database>().GetContainer("settlements");

        // New shape: a payment and a refund before the holding period ends, both pending, both found through the record.
        Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("paid", "o-new", buyer, t, Distribution.Line("l1", "books", 10000))));
        Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("refunded", "o-new", buyer, t.AddHours(1), Distribution.Line("l1", "books", 4000))));

        // The shape before, finished: its release filed in the due index (as that code did, before the entries), no
        // promise in the record.
        var oldPaid = Distribution.OrderEvent("paid", "o-old-due", buyer, t, Distribution.Line("l1", "toys", 20000));
        Assert.Equal("applied", await app.SettleAsync(oldPaid));
        await settlements.PatchItemAsync<JsonObject>("o-old-due", new PartitionKey("o-old-due"), [PatchOperation.Remove("/releaseAt")]);
        await s.GetRequiredService<DueIndex>().AddCommissionReleaseAsync($"o-old-due:{(string)oldPaid["eventId"]!}", t + Holding,
            [new DueItem(promoter, $"o-old-due:{(string)oldPaid["eventId"]!}:l1:1"), new DueItem(parent, $"o-old-due:{(string)oldPaid["eventId"]!}:l1:2")]);

        // The shape before, interrupted: the payment decided and saved, but its delivery died before it filed the
        // release or wrote an entry. Its redelivery, by today's code, promises the release before writing anything.
        string At(DateTimeOffset instant) => Api.Instant(instant);
        var interrupted = JsonNode.Parse($$"""
            {"id":"o-old-cut","orderId":"o-old-cut",
             "paid":{"eventId":"ev-p","paidAt":"{{At(t)}}","buyerId":"{{buyer}}","currency":"CNY","level1":"{{promoter}}","level2":"{{parent}}",
                     "rulesEffectiveFrom":"{{At(t)}}","availableAt":"{{At(t + Holding)}}",
                     "lines":[{"lineId":"l1","category":"food","amount":5000,"commission1":500,"commission2":150,"refunded":0,"reversed1":0,"reversed2":0}]},
             "events":[{"eventId":"ev-p","type":"paid","state":"applied","occurredAt":"{{At(t)}}","receivedAt":"{{At(t)}}","lines":[],
               "entries":[{"id":"o-old-cut:ev-p:l1:1","promoterId":"{{promoter}}","level":1,"lineId":"l1","category":"food","amount":500},
                          {"id":"o-old-cut:ev-p:l1:2","promoterId":"{{parent}}","level":2,"lineId":"l1","category":"food","amount":150}],
               "written":false}]}
            """)!;
        await settlements.CreateItemAsync(interrupted, new PartitionKey("o-old-cut"));
        var redelivery = Distribution.OrderEvent("paid", "o-old-cut", buyer, t, Distribution.Line("l1", "food", 5000));
        redelivery["eventId"] = "ev-p";
        Assert.Equal("duplicate", await app.SettleAsync(redelivery, deliveryCount: 2));
        var (cut, _) = await ReadRecordAsync(settlements, "o-old-cut");
        Assert.Equal(At(t + Holding), (string?)cut["releaseAt"]);

        // 10 % and 3 % of 100.00, and the refund of 40.00 takes 40 % of each back; 10 % and 3 % of 200.00 and of 50.00.
        var ledger = await LedgerAsync(app, promoter, parent);
        Assert.All(ledger.Values, e => Assert.Equal("pending", e.Status));
        Assert.Equal([-400, -120, 150, 300, 500, 600, 1000, 2000], ledger.Values.Select(e => e.Amount).Order());

        // A millisecond early nothing is read; at availableAt one run releases all eight: six through the two records
        // that promise it, two through the due entry of the shape before.
        app.Clock.Set(t + Holding - TimeSpan.FromMilliseconds(1));
        Assert.Equal(new Release(0, 0, 0, 0), await ReleaseAsync(app));
        app.Clock.Set(t + Holding);
        Assert.Equal(new Release(8, 2, 2, 1), await ReleaseAsync(app));
        Assert.All((await LedgerAsync(app, promoter, parent)).Values, e => Assert.Equal("available", e.Status));
        // Nothing is read, or released, again.
        Assert.Equal(new Release(0, 0, 0, 0), await ReleaseAsync(app));
        Assert.Empty(await OpenReleasesAsync(app));
        await AssertBooksReconcileAsync(app);
    }

    /// <summary>A clock that reads <paramref name="start"/> the first <paramref name="reads"/> times, and a day later after that.</summary>
    private sealed class RunOutAfter(DateTimeOffset start, int reads) : TimeProvider
    {
        private int left = reads;
        public override DateTimeOffset GetUtcNow() => Interlocked.Decrement(ref left) >= 0 ? start : start.AddDays(1);
    }

    [Fact]
    public async Task A_release_run_that_stops_on_its_deadline_is_finished_by_the_next_run_reading_pages_and_releasing_nothing_twice()
    {
        await using var app = await StartAsync("deadline");
        var (parent, promoter, buyer) = await ReferredBuyerAsync(app);
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        var t = app.Clock.GetUtcNow();
        for (var i = 0; i < 5; i++)
            Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("paid", $"o-{i}", buyer, t, Distribution.Line("l1", "books", 1000 * (i + 1)))));
        var s = app.Services;
        var settlements = s.GetRequiredService<SettlementStore>();
        var ledger = s.GetRequiredService<LedgerStore>();
        var options = new TimerOptions { PageSize = 2, Parallelism = 3 };
        var now = t + Holding;

        // The deadline passes after the first page is taken: that page is finished (2 orders, 4 entries, closed), no
        // other is started, and the run says it stopped.
        var first = new ReleaseReport();
        var deadline = new RunDeadline(new RunOutAfter(now, reads: 1), now.AddMinutes(4));
        await SettlementReleases.RunAsync(settlements, ledger, now, options, deadline, first, CancellationToken.None);
        Assert.True(deadline.Stopped);
        Assert.Equal((4, 2, 2), (first.EntriesReleased, first.RecordsRead, first.RecordsClosed));
        Assert.Empty(first.Failures);
        Assert.Equal(4, (await LedgerAsync(app, promoter, parent)).Values.Count(e => e.Status == "available"));

        // The next run reads only the three records left (two pages), releases their six entries, and stops only at the end.
        var second = new ReleaseReport();
        var unlimited = new RunDeadline(TimeProvider.System, DateTimeOffset.MaxValue);
        await SettlementReleases.RunAsync(settlements, ledger, now, options, unlimited, second, CancellationToken.None);
        Assert.False(unlimited.Stopped);
        Assert.Equal((6, 3, 3), (second.EntriesReleased, second.RecordsRead, second.RecordsClosed));
        Assert.Empty(second.Failures);

        var released = await LedgerAsync(app, promoter, parent);
        Assert.Equal(10, released.Count);
        Assert.All(released.Values, e => Assert.Equal("available", e.Status));
        Assert.Equal(100 + 200 + 300 + 400 + 500 + 30 + 60 + 90 + 120 + 150, released.Values.Sum(e => e.Amount));
        // A third run finds nothing.
        var third = new ReleaseReport();
        await SettlementReleases.RunAsync(settlements, ledger, now, options, unlimited, third, CancellationToken.None);
        Assert.Equal((0, 0), (third.EntriesReleased, third.RecordsRead));
    }

    [Fact]
    public async Task Entries_written_pending_after_a_release_run_passed_their_unwritten_record_are_released_by_the_next_run_whatever_the_writers_clock()
    {
        await using var app = await StartAsync("late-writer");
        var (parent, promoter, buyer) = await ReferredBuyerAsync(app);
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        var t = app.Clock.GetUtcNow();
        var s = app.Services;
        var holding = Holding;

        // A delivery decided the payment (the record, with its release promised, is saved) and died before writing an entry.
        var paid = new OrderEvent("ev-1", "paid", "o-late", buyer, t, "CNY", [new("l1", "books", 5000), new("l2", "toys", 7000)]);
        var binding = (await s.GetRequiredService<ReferralStore>().FindAsync(buyer, CancellationToken.None))!.At(t);
        var rules = await s.GetRequiredService<CommissionRulesStore>().InForceAtAsync(t, CancellationToken.None);
        var decided = Settlement.PromiseRelease(Settlement.Pay(new SettlementRecord { Id = "o-late", Events = [] }, paid, binding, rules, holding, t), t);
        Assert.True(await s.GetRequiredService<SettlementStore>().TrySaveAsync(null, decided, CancellationToken.None));

        // The release comes by after the holding period: nothing to release yet, and the record stays open, because
        // its event is not written.
        app.Clock.Set(t + holding + TimeSpan.FromMinutes(1));
        Assert.Equal(new Release(0, 1, 0, 0), await ReleaseAsync(app));

        // The redelivery lands on an instance whose clock is an hour behind: it writes the entries pending (and does
        // not release them itself, its clock says it is too early).
        var outcome = await SettleCommission.SettleAsync(paid, s.GetRequiredService<SettlementStore>(), s.GetRequiredService<ReferralStore>(),
            s.GetRequiredService<CommissionRulesStore>(), s.GetRequiredService<LedgerStore>(), holding,
            new TestClock(t + holding - TimeSpan.FromHours(1)), CancellationToken.None, redelivered: true);
        Assert.Equal(("duplicate", 4), (outcome.Outcome, outcome.EntriesWritten));
        Assert.All((await LedgerAsync(app, promoter, parent)).Values, e => Assert.Equal("pending", e.Status));

        // The next run releases them and closes the record.
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(new Release(4, 1, 1, 0), await ReleaseAsync(app));
        var ledger = await LedgerAsync(app, promoter, parent);
        Assert.Equal(4, ledger.Count);
        Assert.All(ledger.Values, e => Assert.Equal("available", e.Status));
        Assert.Empty(await OpenReleasesAsync(app));
        await AssertBooksReconcileAsync(app);
    }

    [Fact]
    public async Task A_paid_event_killed_after_any_of_its_requests_is_released_exactly_once_whether_redelivered_before_or_after_the_release()
    {
        await using var app = await StartAsync("crash");
        var (parent, promoter, buyer) = await ReferredBuyerAsync(app);
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        var t = app.Clock.GetUtcNow();
        var crash = new Crash();
        await using var crashing = app.WithWebHostBuilder(b => b.ConfigureServices(services =>
        {
            services.RemoveAll<CosmosClient>();
            services.AddSingleton(_ => TestCosmos.Client(crash));
        }));
        async Task<HttpStatusCode> DeliverCrashingAsync(JsonObject orderEvent)
        {
            var body = new JsonObject
            {
                ["Data"] = new JsonObject { ["message"] = orderEvent.ToJsonString() },
                ["Metadata"] = new JsonObject { ["MessageId"] = Guid.NewGuid().ToString("N"), ["DeliveryCount"] = 1 },
            };
            using var response = await crashing.CreateClient().PostAsync("/SettleCommission",
                new StringContent(body.ToJsonString(), System.Text.Encoding.UTF8, "application/json"));
            return response.StatusCode;
        }
        // Warm up (container metadata, the rules held by that instance) before counting requests; the payments below
        // were made before that instance looked at the rules, so it answers them from memory.
        Assert.Equal(HttpStatusCode.OK, await DeliverCrashingAsync(Distribution.OrderEvent("paid", "o-warm", buyer, t, Distribution.Line("l1", "books", 100))));
        var paidAt = t.AddSeconds(-30);

        // A payment of one line costs 5 requests (bindings, record, 2 entries, written): kill it after each of 0..5.
        // "a" orders are delivered again before their holding period ends, "b" orders only after a release run.
        var events = new Dictionary<string, JsonObject>();
        for (var killAfter = 0; killAfter <= 5; killAfter++)
        {
            foreach (var set in new[] { "a", "b" })
            {
                var orderId = $"o-{set}-{killAfter}";
                var paid = Distribution.OrderEvent("paid", orderId, buyer, paidAt, Distribution.Line("l1", "books", 10000));
                events[orderId] = paid;
                crash.Arm(killAfter);
                var status = await DeliverCrashingAsync(paid);
                crash.Disarm();
                Assert.True(killAfter == 5 ? status == HttpStatusCode.OK : (int)status >= 500, $"{orderId}: {status}");
            }
        }
        app.Clock.Advance(TimeSpan.FromHours(1));
        foreach (var (orderId, paid) in events.Where(e => e.Key.StartsWith("o-a-", StringComparison.Ordinal)))
            Assert.Contains(await app.SettleAsync(paid, deliveryCount: 2), new[] { "applied", "duplicate" });

        // After the holding period: one run releases every entry that exists, once.
        app.Clock.Set(paidAt + Holding + TimeSpan.FromMinutes(1));
        var pending = (await LedgerAsync(app, promoter, parent)).Values.Count(e => e.Status == "pending");
        var first = await ReleaseAsync(app);
        Assert.Equal(pending, first.EntriesReleased);
        Assert.All((await LedgerAsync(app, promoter, parent)).Values, e => Assert.Equal("available", e.Status));

        // The "b" orders are delivered again now: what is missing is written available; the next run closes the rest.
        foreach (var (orderId, paid) in events.Where(e => e.Key.StartsWith("o-b-", StringComparison.Ordinal)))
            Assert.Contains(await app.SettleAsync(paid, deliveryCount: 2), new[] { "applied", "duplicate" });
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(0, (await ReleaseAsync(app)).EntriesReleased);
        Assert.Empty(await OpenReleasesAsync(app));

        var ledger = await LedgerAsync(app, promoter, parent);
        foreach (var orderId in events.Keys)
        {
            var eventId = (string)events[orderId]["eventId"]!;
            Assert.Equal(("available", 1000L), ledger[$"{orderId}:{eventId}:l1:1"]);
            Assert.Equal(("available", 300L), ledger[$"{orderId}:{eventId}:l1:2"]);
        }
        Assert.Equal(2 * (events.Count + 1), ledger.Count); // and the warm-up order's two
        await AssertBooksReconcileAsync(app);
    }

    private static async Task<(JsonNode Json, int Bytes)> ReadRecordAsync(Container settlements, string orderId)
    {
        using var response = await settlements.ReadItemStreamAsync(orderId, new PartitionKey(orderId));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(response.Content);
        var text = await reader.ReadToEndAsync();
        return (JsonNode.Parse(text)!, System.Text.Encoding.UTF8.GetByteCount(text));
    }
}
