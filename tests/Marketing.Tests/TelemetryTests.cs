using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Expiry;
using Marketing.Functions.Notifications;
using Marketing.Functions.Telemetry;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// Runs alone: the meter is process-wide, and order events carry no tag a test could own, so another test settling
/// events at the same time would be counted too. Exact counts need the process to itself.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TelemetryCollection
{
    public const string Name = "Telemetry (alone)";
}

/// <summary>
/// The app's own telemetry (Telemetry/, docs/operations.md), read back from OpenTelemetry's in-memory exporters added
/// to the app as it is wired in Program.cs (Telemetry:Enabled collects without an Azure Monitor exporter).
/// </summary>
[Collection(TelemetryCollection.Name)]
public sealed class TelemetryTests
{
    private sealed class Captured
    {
        public List<Metric> Metrics { get; } = [];
        public List<Activity> Spans { get; } = [];
    }

    private static Task<TestApp> StartAsync(Captured captured, string? database = null, Action<IWebHostBuilder>? customize = null)
        => TestApp.StartAsync(database, builder =>
        {
            builder.UseSetting("Telemetry:Enabled", "true");
            builder.ConfigureServices(services => services
                .ConfigureOpenTelemetryMeterProvider(m => m.AddInMemoryExporter(captured.Metrics))
                .ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(captured.Spans)));
            customize?.Invoke(builder);
        });

    /// <summary>A database of the test's own: the timers read everything due in theirs.</summary>
    private static string OwnDatabase(string name)
    {
        var database = $"{Settings.Get("Cosmos__Database")}-tel-{name}-{Guid.NewGuid():N}";
        return database[..Math.Min(60, database.Length)];
    }

    /// <summary>Everything the provider holds now, read back (no waiting: ForceFlush exports it).</summary>
    private static IEnumerable<(Metric Metric, MetricPoint Point, Dictionary<string, object?> Tags)> Points(TestApp app, Captured captured, string instrument)
    {
        captured.Metrics.Clear();
        Assert.True(app.Services.GetRequiredService<MeterProvider>().ForceFlush(30_000));
        var found = new List<(Metric, MetricPoint, Dictionary<string, object?>)>();
        foreach (var metric in captured.Metrics.Where(m => m.MeterName == Metrics.MeterName && m.Name == instrument))
            foreach (ref readonly var point in metric.GetMetricPoints())
            {
                var tags = new Dictionary<string, object?>();
                foreach (var tag in point.Tags) tags[tag.Key] = tag.Value;
                found.Add((metric, point, tags));
            }
        return found;
    }

    /// <summary>The last value a gauge was set to for <paramref name="function"/>; null when it never was.</summary>
    private static double? Gauge(TestApp app, Captured captured, string instrument, string? function = null)
    {
        double? value = null;
        foreach (var (metric, point, tags) in Points(app, captured, instrument))
        {
            if (function is not null && !Equals(tags.GetValueOrDefault(Metrics.FunctionTag), function)) continue;
            var p = point;
            value = metric.MetricType == MetricType.LongGauge ? p.GetGaugeLastValueLong() : p.GetGaugeLastValueDouble();
        }
        return value;
    }

    /// <summary>A histogram's calls and their summed milliseconds, by outcome, for <paramref name="channel"/>.</summary>
    private static Dictionary<string, (long Count, double Sum)> Durations(TestApp app, Captured captured, string channel)
    {
        var totals = new Dictionary<string, (long Count, double Sum)>();
        foreach (var (_, point, tags) in Points(app, captured, Metrics.WebhookDuration))
        {
            if (!Equals(tags.GetValueOrDefault(Metrics.ChannelTag), channel)) continue;
            var p = point;
            var outcome = (string)tags[Metrics.OutcomeTag]!;
            var (count, sum) = totals.GetValueOrDefault(outcome);
            totals[outcome] = (count + p.GetHistogramCount(), sum + p.GetHistogramSum());
        }
        return totals;
    }

    private static Dictionary<string, long> Delta(Dictionary<string, long> before, Dictionary<string, long> after)
        => after.Select(a => (a.Key, Value: a.Value - before.GetValueOrDefault(a.Key))).Where(d => d.Value != 0).ToDictionary(d => d.Key, d => d.Value);

    /// <summary>Every counter point of <paramref name="instrument"/> whose tags include <paramref name="where"/>, summed by outcome.</summary>
    private static Dictionary<string, long> ByOutcome(TestApp app, Captured captured, string instrument, params (string Key, string Value)[] where)
    {
        captured.Metrics.Clear();
        // No waiting: the provider exports everything it holds now (cumulative counters: the totals so far).
        Assert.True(app.Services.GetRequiredService<MeterProvider>().ForceFlush(30_000));
        var totals = new Dictionary<string, long>();
        foreach (var metric in captured.Metrics.Where(m => m.MeterName == Metrics.MeterName && m.Name == instrument))
            foreach (ref readonly var point in metric.GetMetricPoints())
            {
                var tags = new Dictionary<string, object?>();
                foreach (var tag in point.Tags) tags[tag.Key] = tag.Value;
                if (where.Any(w => !Equals(tags.GetValueOrDefault(w.Key), w.Value))) continue;
                var outcome = (string)tags[Metrics.OutcomeTag]!;
                totals[outcome] = totals.GetValueOrDefault(outcome) + point.GetSumLong();
            }
        return totals;
    }

    [Fact]
    public async Task Claims_are_counted_by_outcome_and_campaign_and_Cosmos_calls_are_spans_with_their_request_charge()
    {
        var captured = new Captured();
        await using var app = await StartAsync(captured);
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
        {
            t["totalQuantity"] = 2;
            t["perCustomerLimit"] = 1;
            t["channels"] = new System.Text.Json.Nodes.JsonArray("app");
        }));
        var alice = app.Customer(Api.NewId("alice"));
        var key = Guid.NewGuid().ToString();
        await (await alice.ClaimAsync(campaign, key)).AssertStatusAsync(HttpStatusCode.Created);
        await (await alice.ClaimAsync(campaign, key)).AssertStatusAsync(HttpStatusCode.Created); // the same key: a replay
        await (await alice.ClaimAsync(campaign)).AssertProblemAsync(HttpStatusCode.Conflict, "limit-reached");
        await (await alice.ClaimAsync(campaign, channel: "h5")).AssertProblemAsync(HttpStatusCode.Forbidden, "not-eligible");
        await (await app.Customer(Api.NewId("bob")).ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created);
        await (await app.Customer(Api.NewId("carol")).ClaimAsync(campaign)).AssertProblemAsync(HttpStatusCode.Conflict, "sold-out");

        var claims = ByOutcome(app, captured, Metrics.Claims, (Metrics.CampaignTag, campaign));
        Assert.Equal(new Dictionary<string, long>
        {
            [Metrics.ClaimOutcomes.Issued] = 2,
            [Metrics.ClaimOutcomes.Replayed] = 1,
            [Metrics.ClaimOutcomes.Limit] = 1,
            [Metrics.ClaimOutcomes.NotEligible] = 1,
            [Metrics.ClaimOutcomes.SoldOut] = 1,
        }, claims);

        // The Cosmos SDK's own spans: one per operation, with what it cost and how it ended.
        Assert.True(app.Services.GetRequiredService<TracerProvider>().ForceFlush(30_000));
        var cosmos = captured.Spans.Where(s => s.Source.Name == TelemetryModule.CosmosSource).ToList();
        Assert.NotEmpty(cosmos);
        // The claim's stock take: a patch on the stock container that succeeded, with its request charge.
        Assert.Contains(cosmos, s => Equals(s.GetTagItem(TelemetryModule.CosmosOperation), "patch_item")
            && Equals(s.GetTagItem(TelemetryModule.CosmosContainer), "stock")
            && Convert.ToString(s.GetTagItem(TelemetryModule.CosmosStatusCode), System.Globalization.CultureInfo.InvariantCulture) == "200"
            && Convert.ToDouble(s.GetTagItem(TelemetryModule.CosmosRequestCharge), System.Globalization.CultureInfo.InvariantCulture) > 0
            && s.GetTagItem(TelemetryModule.CosmosSubStatusCode) is not null);
        // And the requests themselves, which the Cosmos spans belong to.
        var claimRequests = captured.Spans.Where(s => s.Kind == ActivityKind.Server && s.DisplayName.Contains("claims")).ToList();
        Assert.NotEmpty(claimRequests);
        Assert.Contains(cosmos, s => claimRequests.Any(r => r.TraceId == s.TraceId));
    }

    [Fact]
    public async Task Order_events_are_counted_by_outcome()
    {
        var captured = new Captured();
        await using var app = await StartAsync(captured);
        var before = ByOutcome(app, captured, Metrics.OrderEvents);
        var now = app.Clock.GetUtcNow();
        var buyer = Api.NewId("b");
        var paid = Distribution.OrderEvent("paid", Api.NewId("o"), buyer, now.AddMinutes(1), Distribution.Line("l1", "toys", 5999));
        Assert.Equal("applied", await app.SettleAsync(paid, "m-paid"));
        Assert.Equal("duplicate", await app.SettleAsync(paid, "m-paid", deliveryCount: 2));
        Assert.Equal("parked", await app.SettleAsync(
            Distribution.OrderEvent("refunded", Api.NewId("o"), buyer, now.AddMinutes(2), Distribution.Line("l1", "toys", 100))));
        await (await app.DeliverAsync("not an order event")).AssertStatusAsync(HttpStatusCode.OK);

        var after = ByOutcome(app, captured, Metrics.OrderEvents);
        long Delta(string outcome) => after.GetValueOrDefault(outcome) - before.GetValueOrDefault(outcome);
        Assert.Equal(1, Delta(Metrics.OrderEventOutcomes.Applied));
        Assert.Equal(1, Delta(Metrics.OrderEventOutcomes.Duplicate));
        Assert.Equal(1, Delta(Metrics.OrderEventOutcomes.Parked));
        Assert.Equal(1, Delta(Metrics.OrderEventOutcomes.Quarantined));
        Assert.Equal(0, Delta(Metrics.OrderEventOutcomes.Retry));
    }

    [Fact]
    public async Task Redemption_steps_are_counted_by_step_and_outcome_and_a_spent_budget_by_campaign()
    {
        var captured = new Captured();
        await using var app = await StartAsync(captured);
        // A budget for one discount: a second lock is refused until the first order's refund gives it back.
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["budget"] = 2000));
        var (alice, first) = await app.CustomerWithCouponAsync(campaign);
        var (bob, second) = await app.CustomerWithCouponAsync(campaign);
        var orders = app.OrderSystem();
        var paid = Api.NewId("o");
        var cancelled = Api.NewId("o");
        Dictionary<string, long> Step(string step, params (string Key, string Value)[] where)
            => ByOutcome(app, captured, Metrics.Redemptions, [(Metrics.StepTag, step), .. where]);
        var unscoped = new Dictionary<string, Dictionary<string, long>>
        {
            [Metrics.RedemptionSteps.Lock] = Step(Metrics.RedemptionSteps.Lock),
            [Metrics.RedemptionSteps.Confirm] = Step(Metrics.RedemptionSteps.Confirm),
            [Metrics.RedemptionSteps.Quote] = Step(Metrics.RedemptionSteps.Quote),
        };

        await (await orders.LockAsync(paid, alice, first)).AssertStatusAsync(HttpStatusCode.Created);
        await (await orders.LockAsync(paid, alice, first)).AssertStatusAsync(HttpStatusCode.Created); // replayed
        await (await orders.LockAsync(cancelled, bob, second)).AssertProblemAsync(HttpStatusCode.Conflict, "budget-exhausted");
        await (await orders.StepAsync(paid, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
        await (await orders.StepAsync(paid, "confirm")).AssertStatusAsync(HttpStatusCode.OK); // replayed
        await (await orders.StepAsync(paid, "refund")).AssertStatusAsync(HttpStatusCode.OK);
        await (await orders.StepAsync(paid, "refund")).AssertStatusAsync(HttpStatusCode.OK); // replayed
        await (await orders.StepAsync(paid, "cancel")).AssertProblemAsync(HttpStatusCode.Conflict, "invalid-transition"); // paid: refund it instead
        await (await orders.LockAsync(cancelled, bob, second)).AssertStatusAsync(HttpStatusCode.Created); // the refund gave the budget back
        await (await orders.StepAsync(cancelled, "cancel")).AssertStatusAsync(HttpStatusCode.OK);
        await (await orders.StepAsync(cancelled, "cancel")).AssertStatusAsync(HttpStatusCode.OK); // replayed
        await (await orders.StepAsync(cancelled, "confirm")).AssertProblemAsync(HttpStatusCode.Conflict, "invalid-transition");
        // Refused with no campaign known (no such coupon, no such order), and malformed input, which is not a step at all.
        await (await orders.LockAsync(Api.NewId("o"), alice, "cpn_" + new string('x', 16))).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        await (await orders.StepAsync(Api.NewId("o"), "confirm")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        await (await orders.PostAsync("/api/redemptions", Api.JsonContent(new { orderId = "" }))).AssertStatusAsync(HttpStatusCode.BadRequest);
        await (await app.Customer(alice).PostAsync("/api/redemptions/quote", Api.JsonContent(new JsonObject
        {
            ["channel"] = "app", ["currency"] = "CNY", ["lines"] = Orders.Draft()["lines"]!.DeepClone(),
        }))).AssertStatusAsync(HttpStatusCode.OK);

        (string, string) Of = (Metrics.CampaignTag, campaign);
        Assert.Equal(new Dictionary<string, long> { ["done"] = 2, ["replayed"] = 1, ["refused"] = 1 }, Step(Metrics.RedemptionSteps.Lock, Of));
        Assert.Equal(new Dictionary<string, long> { ["done"] = 1, ["replayed"] = 1, ["refused"] = 1 }, Step(Metrics.RedemptionSteps.Confirm, Of));
        Assert.Equal(new Dictionary<string, long> { ["done"] = 1, ["replayed"] = 1 }, Step(Metrics.RedemptionSteps.Refund, Of));
        Assert.Equal(new Dictionary<string, long> { ["done"] = 1, ["replayed"] = 1, ["refused"] = 1 }, Step(Metrics.RedemptionSteps.Cancel, Of));
        // Without the campaign filter: the refusals of no known campaign too, the 400 nowhere, and the quote (no campaign: many coupons).
        Assert.Equal(new Dictionary<string, long> { ["done"] = 2, ["replayed"] = 1, ["refused"] = 2 },
            Delta(unscoped[Metrics.RedemptionSteps.Lock], Step(Metrics.RedemptionSteps.Lock)));
        Assert.Equal(new Dictionary<string, long> { ["done"] = 1, ["replayed"] = 1, ["refused"] = 2 },
            Delta(unscoped[Metrics.RedemptionSteps.Confirm], Step(Metrics.RedemptionSteps.Confirm)));
        Assert.Equal(new Dictionary<string, long> { ["done"] = 1 }, Delta(unscoped[Metrics.RedemptionSteps.Quote], Step(Metrics.RedemptionSteps.Quote)));

        var spent = Points(app, captured, Metrics.BudgetExhausted).Where(p => Equals(p.Tags.GetValueOrDefault(Metrics.CampaignTag), campaign)).ToList();
        Assert.Equal(1, spent.Sum(p => p.Point.GetSumLong()));
    }

    /// <summary>Hooks the patches of due entries (a run marking them done): moves the clock, or fails one.</summary>
    private sealed class DuePatches : RequestHandler
    {
        private int patches;

        /// <summary>Called with the patch's number (from 1 since the last <see cref="Reset"/>) before it is sent.</summary>
        public Action<int>? OnPatch { get; set; }

        public void Reset() => Volatile.Write(ref patches, 0);

        public override Task<ResponseMessage> SendAsync(RequestMessage request, CancellationToken cancellationToken)
        {
            if (request.Method.Method == "PATCH" && request.RequestUri.OriginalString.Contains($"/colls/{DueIndex.Spec.Name}/docs/", StringComparison.Ordinal))
                OnPatch?.Invoke(Interlocked.Increment(ref patches));
            return base.SendAsync(request, cancellationToken);
        }
    }

    private static Dictionary<string, long> Runs(TestApp app, Captured captured, string function)
        => ByOutcome(app, captured, Metrics.TimerRuns, (Metrics.FunctionTag, function));

    [Fact]
    public async Task A_timer_run_that_stops_or_fails_reports_what_it_left_due_and_how_old_and_a_full_run_reports_none()
    {
        var captured = new Captured();
        var hook = new DuePatches();
        await using var app = await StartAsync(captured, OwnDatabase("backlog"), b => b.ConfigureServices(s => s.AddSingleton<RequestHandler>(hook)));
        var due = app.Services.GetRequiredService<DueIndex>();
        // 20 lapsing locks (of orders that no longer exist: each is a quick "nothing to do") in one bucket, so a run
        // reads them all in its first page and every one it does not finish is one it saw.
        var dueAt = app.Clock.GetUtcNow().AddHours(-1);
        var orders = Enumerable.Range(0, 3000).Select(i => $"o-tel-{i}").Where(o => DueIndex.ShardOf("lock:" + o) == 5).Take(20).ToList();
        foreach (var order in orders) await due.AddLockExpiryAsync(order, dueAt);
        var bucket = DueIndex.BucketOf(DueIndex.Expiry, dueAt, "lock:" + orders[0]);
        async Task<int> OpenAsync()
        {
            var query = new QueryDefinition("SELECT VALUE c.id FROM c WHERE c.bucket = @b AND c.done = false").WithParameter("@b", bucket);
            using var pages = app.Services.GetRequiredService<Database>().GetContainer(DueIndex.Spec.Name)
                .GetItemQueryIterator<string>(query, requestOptions: new QueryRequestOptions { PartitionKey = new PartitionKey(bucket) });
            var open = 0;
            while (pages.HasMoreResults) open += (await pages.ReadNextAsync()).Count;
            return open;
        }
        double Age() => (app.Clock.GetUtcNow() - dueAt).TotalSeconds;
        var before = Runs(app, captured, ExpireCoupons.FunctionName);

        // 1. The first entry marked done moves the clock past the run's deadline: the entries in work finish, no more are taken.
        hook.Reset();
        hook.OnPatch = n => { if (n == 1) app.Clock.Advance(TimeSpan.FromMinutes(10)); };
        var stopped = (await app.InvokeTimerAsync(ExpireCoupons.FunctionName))["ReturnValue"]!;
        Assert.True((bool)stopped["Stopped"]!);
        var left = await OpenAsync();
        Assert.InRange(left, 1, 19);
        Assert.Equal<double?>(left, Gauge(app, captured, Metrics.TimerBacklog, ExpireCoupons.FunctionName));
        Assert.Equal<double?>(Age(), Gauge(app, captured, Metrics.TimerBacklogAge, ExpireCoupons.FunctionName));
        Assert.Equal(new Dictionary<string, long> { ["stopped"] = 1 }, Delta(before, Runs(app, captured, ExpireCoupons.FunctionName)));

        // 2. A run whose first done mark fails: one entry left, the run failed.
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        hook.Reset();
        hook.OnPatch = n => { if (n == 1) throw new InvalidOperationException("injected: the done mark fails"); };
        var failed = (await app.InvokeTimerAsync(ExpireCoupons.FunctionName))["ReturnValue"]!;
        Assert.False((bool)failed["Stopped"]!);
        Assert.Single(failed["Failures"]!.AsArray());
        Assert.Equal(1, await OpenAsync());
        Assert.Equal<double?>(1, Gauge(app, captured, Metrics.TimerBacklog, ExpireCoupons.FunctionName));
        Assert.Equal<double?>(Age(), Gauge(app, captured, Metrics.TimerBacklogAge, ExpireCoupons.FunctionName));

        // 3. A full run: nothing left.
        hook.OnPatch = null;
        await app.InvokeTimerAsync(ExpireCoupons.FunctionName);
        Assert.Equal(0, await OpenAsync());
        Assert.Equal<double?>(0, Gauge(app, captured, Metrics.TimerBacklog, ExpireCoupons.FunctionName));
        Assert.Equal<double?>(0, Gauge(app, captured, Metrics.TimerBacklogAge, ExpireCoupons.FunctionName));
        Assert.Equal(new Dictionary<string, long> { ["stopped"] = 1, ["failed"] = 1, ["completed"] = 1 },
            Delta(before, Runs(app, captured, ExpireCoupons.FunctionName)));

        // Every timer is counted by the one wrapper, with or without a due list: ReconcileStock has none.
        var reconcile = Runs(app, captured, "ReconcileStock");
        await app.InvokeTimerAsync("ReconcileStock");
        Assert.Equal(new Dictionary<string, long> { ["completed"] = 1 }, Delta(reconcile, Runs(app, captured, "ReconcileStock")));
        Assert.Null(Gauge(app, captured, Metrics.TimerBacklog, "ReconcileStock"));
    }

    [Fact]
    public async Task A_lapsed_lock_the_expiry_run_cannot_release_is_its_backlog_as_old_as_the_lock_has_lapsed()
    {
        var captured = new Captured();
        var hook = new CosmosHook();
        await using var app = await StartAsync(captured, OwnDatabase("lapsed"), b => b.ConfigureServices(s => s.AddSingleton<RequestHandler>(hook)));
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
        await (await app.OrderSystem().LockAsync(Api.NewId("o"), customer, coupon)).AssertStatusAsync(HttpStatusCode.Created); // 30 minutes
        app.Clock.Advance(TimeSpan.FromMinutes(45));

        // The redemptions cannot be read: the lapsed lock is found and left.
        hook.OnRequest = r =>
        {
            if (CosmosHook.To(r, "redemptions")) throw new InvalidOperationException("injected: the redemptions cannot be read");
        };
        var failed = (await app.InvokeTimerAsync(ExpireCoupons.FunctionName))["ReturnValue"]!;
        Assert.Equal(1, (int)failed["LapsedLocksRead"]!);
        Assert.Equal(0, (int)failed["LocksReleased"]!);
        Assert.Equal<double?>(1, Gauge(app, captured, Metrics.TimerBacklog, ExpireCoupons.FunctionName));
        Assert.Equal<double?>(15 * 60, Gauge(app, captured, Metrics.TimerBacklogAge, ExpireCoupons.FunctionName));

        hook.OnRequest = null;
        var released = (await app.InvokeTimerAsync(ExpireCoupons.FunctionName))["ReturnValue"]!;
        Assert.Equal(1, (int)released["LocksReleased"]!);
        Assert.Equal<double?>(0, Gauge(app, captured, Metrics.TimerBacklog, ExpireCoupons.FunctionName));
        Assert.Equal<double?>(0, Gauge(app, captured, Metrics.TimerBacklogAge, ExpireCoupons.FunctionName));
        Assert.Equal(new Dictionary<string, long> { ["failed"] = 1, ["completed"] = 1 }, Runs(app, captured, ExpireCoupons.FunctionName));
    }

    /// <summary>Fails every change-feed read of one container (its stats cursor then fails; the others go on).</summary>
    private sealed class FailingFeed(string container) : RequestHandler
    {
        public bool On { get; set; }

        public override Task<ResponseMessage> SendAsync(RequestMessage request, CancellationToken cancellationToken)
        {
            // A change-feed read: a GET of the container itself with the incremental-feed header.
            if (On && request.Method == HttpMethod.Get && request.Headers["A-IM"] is not null
                && request.RequestUri.OriginalString.TrimEnd('/').EndsWith($"/colls/{container}", StringComparison.Ordinal))
                throw new InvalidOperationException($"injected: the change feed of {container} cannot be read");
            return base.SendAsync(request, cancellationToken);
        }
    }

    [Fact]
    public async Task After_each_AggregateStats_run_the_stats_lag_is_now_minus_the_statistics_as_of()
    {
        var captured = new Captured();
        var ledger = new FailingFeed("ledger");
        var stats = new CosmosHook();
        await using var app = await StartAsync(captured, OwnDatabase("lag"), b => b.ConfigureServices(s => s
            .AddSingleton<RequestHandler>(ledger).AddSingleton<RequestHandler>(stats)));

        // Every feed caught up now: no lag.
        var first = (await app.InvokeTimerAsync("AggregateStats"))["ReturnValue"]!;
        Assert.Equal(app.Clock.GetUtcNow(), (DateTimeOffset)first["AsOf"]!);
        Assert.Equal<double?>(0, Gauge(app, captured, Metrics.StatsLag));

        // 90 s later the ledger's feed cannot be read: the others catch up, the statistics stay as of the first run.
        app.Clock.Advance(TimeSpan.FromSeconds(90));
        ledger.On = true;
        var second = (await app.InvokeTimerAsync("AggregateStats"))["ReturnValue"]!;
        Assert.NotEmpty(second["Failures"]!.AsArray());
        Assert.Equal<double?>(90, Gauge(app, captured, Metrics.StatsLag));
        Assert.Equal(new Dictionary<string, long> { ["completed"] = 1, ["failed"] = 1 }, Runs(app, captured, "AggregateStats"));

        // A run that throws (its cursors cannot even be listed): the invocation fails, and so does the run; the lag stays as it was.
        stats.OnRequest = r =>
        {
            if (CosmosHook.To(r, "stats")) throw new InvalidOperationException("injected: the statistics cannot be read");
        };
        var thrown = await app.PostTimerAsync("AggregateStats");
        Assert.Equal(HttpStatusCode.InternalServerError, thrown.StatusCode);
        Assert.Equal(new Dictionary<string, long> { ["completed"] = 1, ["failed"] = 2 }, Runs(app, captured, "AggregateStats"));
        Assert.Equal<double?>(90, Gauge(app, captured, Metrics.StatsLag));
    }

    /// <summary>Sees every Cosmos request before it is sent (a test moves its clock, or fails one, here).</summary>
    private sealed class CosmosHook : RequestHandler
    {
        public Action<RequestMessage>? OnRequest { get; set; }

        public override Task<ResponseMessage> SendAsync(RequestMessage request, CancellationToken cancellationToken)
        {
            OnRequest?.Invoke(request);
            return base.SendAsync(request, cancellationToken);
        }

        public static bool To(RequestMessage request, string container) => request.RequestUri.OriginalString.Contains($"/colls/{container}", StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reminders_are_counted_sent_held_and_failed_and_a_window_left_is_the_reminder_timers_backlog()
    {
        var captured = new Captured();
        var hook = new CosmosHook();
        await using var app = await StartAsync(captured, OwnDatabase("remind"), b => b.ConfigureServices(s => s.AddSingleton<RequestHandler>(hook)));
        var claimed = new DateTimeOffset(2026, 11, 21, 2, 0, 0, TimeSpan.Zero); // 10:00 in Shanghai
        app.Clock.Set(claimed);
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(claimed)); // valid 7 days: reminded 24 h before
        await app.CustomerWithCouponAsync(campaign); // in-app only: sent
        var (quiet, _) = await app.CustomerWithCouponAsync(campaign);
        var (broken, _) = await app.CustomerWithCouponAsync(campaign);
        // Push at night is held until 08:00 (Shanghai).
        await (await app.Customer(quiet).PutAsync("/api/me/notification-preferences", Api.JsonContent(new JsonObject
        {
            ["channels"] = new JsonArray("push"), ["quietHours"] = new JsonObject { ["from"] = "00:00", ["to"] = "08:00" },
        }))).AssertStatusAsync(HttpStatusCode.OK);
        await app.InvokeTimerAsync("SendReminders"); // the window starts at the claims
        var before = ByOutcome(app, captured, Metrics.Reminders);
        var runs = Runs(app, captured, "SendReminders");
        double? Backlog() => Gauge(app, captured, Metrics.TimerBacklog, "SendReminders");
        double? Age() => Gauge(app, captured, Metrics.TimerBacklogAge, "SendReminders");

        // 00:04 in Shanghai, 24 h before the coupons expire: one sent, one held, and one customer's partition fails.
        app.Clock.Set(new DateTimeOffset(2026, 11, 26, 16, 4, 0, TimeSpan.Zero));
        hook.OnRequest = r =>
        {
            if (CosmosHook.To(r, "notifications") && r.Headers["x-ms-documentdb-partitionkey"] is { } key && key.Contains(broken, StringComparison.Ordinal))
                throw new InvalidOperationException("injected: the customer's notifications cannot be read");
        };
        var run = (await app.InvokeTimerAsync("SendReminders"))["ReturnValue"]!;
        Assert.False((bool)run["CursorAdvanced"]!);
        Assert.Equal(new Dictionary<string, long> { ["sent"] = 1, ["held"] = 1, ["failed"] = 1 }, Delta(before, ByOutcome(app, captured, Metrics.Reminders)));
        // One customer's reminders left, and the window has waited since the claims.
        Assert.Equal<double?>(1, Backlog());
        Assert.Equal<double?>((app.Clock.GetUtcNow() - claimed).TotalSeconds, Age());

        // Repaired: the window is finished (the held reminder is due only at 08:00), nothing is left.
        hook.OnRequest = null;
        var again = (await app.InvokeTimerAsync("SendReminders"))["ReturnValue"]!;
        Assert.True((bool)again["CursorAdvanced"]!);
        Assert.Equal(2, Delta(before, ByOutcome(app, captured, Metrics.Reminders))["sent"]);
        Assert.Equal<double?>(0, Backlog());
        Assert.Equal<double?>(0, Age());

        // Five minutes on, the run's time runs out as it reads the catalogue (the clock jumps 10 minutes): no customer was
        // even found, yet the window is left, and its age is the backlog's.
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        var jumped = 0;
        hook.OnRequest = r =>
        {
            if (CosmosHook.To(r, "campaigns") && Interlocked.Exchange(ref jumped, 1) == 0) app.Clock.Advance(TimeSpan.FromMinutes(10));
        };
        var stopped = (await app.InvokeTimerAsync("SendReminders"))["ReturnValue"]!;
        Assert.True((bool)stopped["Stopped"]!);
        Assert.False((bool)stopped["CursorAdvanced"]!);
        Assert.Equal<double?>(0, Backlog());
        Assert.Equal<double?>((app.Clock.GetUtcNow() - (DateTimeOffset)stopped["From"]!).TotalSeconds, Age());
        Assert.Equal<double?>(15 * 60, Age());

        // And a run that fails as a whole (the catalogue cannot be read): the same.
        hook.OnRequest = r =>
        {
            if (CosmosHook.To(r, "campaigns")) throw new InvalidOperationException("injected: the catalogue cannot be read");
        };
        var broke = (await app.InvokeTimerAsync("SendReminders"))["ReturnValue"]!;
        Assert.StartsWith("The run stopped", (string?)broke["Failures"]![0]);
        Assert.Equal<double?>(0, Backlog());
        Assert.Equal<double?>((app.Clock.GetUtcNow() - (DateTimeOffset)broke["From"]!).TotalSeconds, Age());
        Assert.Equal<double?>(15 * 60, Age());
        Assert.Equal(new Dictionary<string, long> { ["failed"] = 2, ["completed"] = 1, ["stopped"] = 1 }, Delta(runs, Runs(app, captured, "SendReminders")));
    }

    [Fact]
    public async Task Provider_webhook_calls_are_timed_on_the_apps_clock_by_channel_and_outcome()
    {
        var captured = new Captured();
        await using var receiver = await WebhookReceiver.StartAsync();
        TestApp? started = null;
        // Each call "takes" 250 ms of the app's clock: the provider moves it as the call arrives.
        receiver.OnCall = () => started?.Clock.Advance(TimeSpan.FromMilliseconds(250));
        await using var app = started = await StartAsync(captured, customize: b =>
        {
            b.UseSetting("NotificationDelivery:SmsWebhook", receiver.Url + "/sms");
            b.UseSetting("NotificationDelivery:PushWebhook", "http://10.20.30.40/push"); // a private address: refused, never called
            b.UseSetting("NotificationDelivery:WebhookSecret", WebhookReceiver.Secret);
            b.UseSetting("NotificationDelivery:AllowLoopback", "true");
            b.UseSetting("NotificationDelivery:Retries", "0");
        });
        var before = (Sms: Durations(app, captured, "sms"), Push: Durations(app, captured, "push"));
        async Task DeliverAsync(NotificationChannel channel, HttpStatusCode answer = HttpStatusCode.OK)
        {
            var record = new NotificationRecord
            {
                Id = "reminder-" + Guid.NewGuid().ToString("N"), CustomerId = Api.NewId("c"), Kind = NotificationKind.ExpiryReminder, Channel = channel,
                Title = "Coupon expiring", Body = "Your coupon expires in 24 hours.", CouponIds = ["coupon-1"], CampaignId = "campaign-1",
                CreatedAt = app.Clock.GetUtcNow(), Delivery = new DeliveryStatus(DeliveryState.Pending),
            };
            Assert.True(await app.Services.GetRequiredService<NotificationStore>().TryCreateAsync(record, CancellationToken.None));
            await (await app.DeliverNotificationAsync(NotificationMessage.Of(record))).AssertStatusAsync(answer);
        }

        await DeliverAsync(NotificationChannel.Sms);
        receiver.AnswerNext(400);
        await DeliverAsync(NotificationChannel.Sms);
        receiver.AnswerNext(503);
        await DeliverAsync(NotificationChannel.Sms, HttpStatusCode.ServiceUnavailable); // redelivered later
        await DeliverAsync(NotificationChannel.Push);

        Dictionary<string, (long, double)> Since(Dictionary<string, (long Count, double Sum)> then, Dictionary<string, (long Count, double Sum)> now)
            => now.ToDictionary(n => n.Key, n => (n.Value.Count - then.GetValueOrDefault(n.Key).Count, n.Value.Sum - then.GetValueOrDefault(n.Key).Sum));
        Assert.Equal(new Dictionary<string, (long, double)> { ["delivered"] = (1, 250), ["rejected"] = (1, 250), ["unavailable"] = (1, 250) },
            Since(before.Sms, Durations(app, captured, "sms")));
        Assert.Equal(new Dictionary<string, (long, double)> { ["not_allowed"] = (1, 0) }, Since(before.Push, Durations(app, captured, "push")));
        Assert.Equal(3, receiver.Calls.Count);
    }

    [Fact]
    public void The_operations_guide_names_every_instrument_tag_and_outcome_the_code_emits()
    {
        var guide = File.ReadAllText(Path.Combine(Repo.Root, "docs", "operations.md"));
        string[] names =
        [
            Metrics.MeterName, Metrics.Claims, Metrics.OrderEvents, Metrics.OutcomeTag, Metrics.CampaignTag, TelemetryModule.CosmosSource,
            TelemetryModule.CosmosRequestCharge, TelemetryModule.CosmosStatusCode, TelemetryModule.CosmosSubStatusCode,
            TelemetryModule.CosmosOperation, TelemetryModule.CosmosContainer,
            .. Constants(typeof(Metrics.ClaimOutcomes)), .. Constants(typeof(Metrics.OrderEventOutcomes)),
            Metrics.Redemptions, Metrics.BudgetExhausted, Metrics.TimerRuns, Metrics.TimerBacklog, Metrics.TimerBacklogAge, Metrics.StatsLag,
            Metrics.Reminders, Metrics.WebhookDuration, Metrics.StepTag, Metrics.FunctionTag, Metrics.ChannelTag,
            .. Constants(typeof(Metrics.RedemptionSteps)), .. Constants(typeof(Metrics.StepOutcomes)), .. Constants(typeof(Metrics.TimerOutcomes)),
            .. Constants(typeof(Metrics.ReminderOutcomes)), .. Constants(typeof(Metrics.WebhookOutcomes)),
            // Every timer, as it is tagged (MapTimerFunction's name).
            ExpireCoupons.FunctionName, Marketing.Functions.Commissions.ReleaseCommissions.FunctionName, SendReminders.FunctionName,
            Marketing.Functions.Stats.AggregateStats.FunctionName, Marketing.Functions.Campaigns.ReconcileStock.FunctionName,
            Marketing.Functions.Audit.AuditRepair.FunctionName,
        ];
        foreach (var name in names)
            Assert.True(guide.Contains($"`{name}`", StringComparison.Ordinal), $"docs/operations.md does not name `{name}`");
    }

    private static IEnumerable<string> Constants(Type type)
        => type.GetFields().Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!);

    [Fact]
    public async Task With_a_connection_string_the_app_exports_to_Azure_Monitor_with_the_identity_the_authentication_string_names()
    {
        const string clientId = "0b9c1e2a-0000-4000-8000-000000000001";
        await using var app = await TestApp.StartAsync(customize: builder =>
        {
            // A resource that is not there: nothing is exported, the wiring is what is checked.
            builder.UseSetting(TelemetryOptions.ConnectionStringSetting,
                "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9/");
            builder.UseSetting(TelemetryOptions.AuthenticationStringSetting, $"ClientId={clientId};Authorization=AAD");
        });
        await (await app.Anonymous().GetAsync("/api/health")).AssertStatusAsync(HttpStatusCode.OK);
        var monitor = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptionsMonitor<Azure.Monitor.OpenTelemetry.AspNetCore.AzureMonitorOptions>>()
            .Get(Microsoft.Extensions.Options.Options.DefaultName);
        Assert.StartsWith("InstrumentationKey=00000000-", monitor.ConnectionString);
        Assert.IsType<Azure.Identity.ManagedIdentityCredential>(monitor.Credential);
        Assert.True(app.Services.GetRequiredService<TelemetryModule.Switch>().On); // and so the Cosmos client traces
    }

    [Fact]
    public async Task Without_a_connection_string_or_Telemetry_Enabled_nothing_is_collected()
    {
        await using var app = await TestApp.StartAsync();
        Assert.False(app.Services.GetRequiredService<TelemetryModule.Switch>().On);
        Assert.Null(app.Services.GetService<MeterProvider>());
        Assert.Null(app.Services.GetService<TracerProvider>());
    }

    [Fact]
    public async Task Telemetry_Console_alone_turns_collection_on()
    {
        await using var app = await TestApp.StartAsync(customize: builder => builder.UseSetting("Telemetry:Console", "true"));
        Assert.True(app.Services.GetRequiredService<TelemetryModule.Switch>().On);
        Assert.NotNull(app.Services.GetService<MeterProvider>());
        Assert.NotNull(app.Services.GetService<TracerProvider>());
    }

    [Theory]
    [InlineData("Authorization=AAD;ClientId=0b9c1e2a-0000-4000-8000-000000000001", "0b9c1e2a-0000-4000-8000-000000000001")]
    [InlineData("Authorization=AAD", null)]
    [InlineData(" Authorization = AAD ; clientid = abc ", "abc")]
    [InlineData(null, null)]
    public void The_exporter_uses_the_identity_the_hosts_authentication_string_names(string? authentication, string? clientId)
        => Assert.Equal(clientId, TelemetryModule.ClientId(authentication));

    [Theory]
    [InlineData("ClientId=abc;Authorization=AAD", true)]
    [InlineData("authorization = aad", true)]
    [InlineData("ClientId=abc", false)]
    [InlineData("Authorization=Key", false)]
    [InlineData(null, false)]
    public void Entra_ingestion_only_where_the_authentication_string_asks_for_it_as_the_host_does(string? authentication, bool entra)
        => Assert.Equal(entra, TelemetryModule.UsesEntra(authentication));
}
