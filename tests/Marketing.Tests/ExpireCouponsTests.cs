using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Expiry;
using Marketing.Functions.Hosting;
using Marketing.Functions.Redemption;
using Marketing.Functions.Wallet;
using Marketing.Tests.Support;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The ExpireCoupons timer, invoked as the Functions host does it. Each test has its own database: the
/// timer reads the whole due index, and a moved clock must not expire other tests' coupons and locks.
/// </summary>
public sealed class ExpireCouponsTests
{
    private static Task<TestApp> StartAsync(string name) => TestApp.StartAsync($"{Settings.Get("Cosmos__Database")}-expiry-{name}-{Guid.NewGuid():N}"[..60]);

    private static async Task<ExpiryReport> RunAsync(TestApp app)
    {
        var body = await app.InvokeTimerAsync("ExpireCoupons");
        var report = body["ReturnValue"]!;
        return new ExpiryReport
        {
            BucketsRead = (int)report["BucketsRead"]!,
            EntriesRead = (int)report["EntriesRead"]!,
            WalletsRead = (int)report["WalletsRead"]!,
            CouponsExpired = (int)report["CouponsExpired"]!,
            LocksReleased = (int)report["LocksReleased"]!,
            LapsedLocksRead = (int)report["LapsedLocksRead"]!,
            LocksFinished = (int)report["LocksFinished"]!,
            CampaignsEnded = (int)report["CampaignsEnded"]!,
            CampaignsClosed = (int)report["CampaignsClosed"]!,
            CampaignsRecounted = (int)report["CampaignsRecounted"]!,
        };
    }

    private static async Task<CouponStatus> StoredStateAsync(TestApp app, string customer, string coupon)
        => (await app.Services.GetRequiredService<WalletStore>().FindSlotAsync(customer, coupon))!.Coupon.State;

    [Fact]
    public async Task Coupons_expire_exactly_at_the_end_of_their_last_local_day()
    {
        await using var app = await StartAsync("instant");
        // 23:30 in Shanghai on 21 November: a 1-day coupon is valid until local midnight, 16:00 UTC.
        app.Clock.Set(new DateTimeOffset(2026, 11, 21, 15, 30, 0, TimeSpan.Zero));
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
            t["validity"] = new JsonObject { ["type"] = "relative", ["days"] = 1 }));
        var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);

        app.Clock.Set(new DateTimeOffset(2026, 11, 21, 15, 59, 59, 999, TimeSpan.Zero));
        Assert.Equal(0, (await RunAsync(app)).CouponsExpired);
        Assert.Equal(CouponStatus.Available, await StoredStateAsync(app, customer, coupon));
        // Claimed at local midnight: the next local day, so a different instant.
        app.Clock.Set(new DateTimeOffset(2026, 11, 21, 16, 0, 0, TimeSpan.Zero));
        var (nextDay, nextDayCoupon) = await app.CustomerWithCouponAsync(campaign);

        var run = await RunAsync(app);

        Assert.Equal(1, run.CouponsExpired);
        Assert.Equal(CouponStatus.Expired, await StoredStateAsync(app, customer, coupon));
        Assert.Equal("expired", await app.CouponStatusAsync(customer, coupon));
        Assert.Equal(CouponStatus.Available, await StoredStateAsync(app, nextDay, nextDayCoupon));
        app.Clock.Set(new DateTimeOffset(2026, 11, 22, 16, 0, 0, TimeSpan.Zero));
        Assert.Equal(1, (await RunAsync(app)).CouponsExpired);
        Assert.Equal(CouponStatus.Expired, await StoredStateAsync(app, nextDay, nextDayCoupon));
    }

    [Fact]
    public async Task A_lapsed_lock_is_released_exactly_at_its_instant_with_its_budget()
    {
        await using var app = await StartAsync("lock");
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["budget"] = 10000));
        var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
        var orderId = Api.NewId("o");
        var locked = await (await app.OrderSystem().LockAsync(orderId, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
        var until = DateTimeOffset.Parse((string)locked["lockedUntil"]!);

        app.Clock.Set(until.AddMilliseconds(-1));
        Assert.Equal(0, (await RunAsync(app)).LocksReleased);
        Assert.Equal("locked", await app.CouponStatusAsync(customer, coupon));

        app.Clock.Set(until);
        Assert.Equal(1, (await RunAsync(app)).LocksReleased);

        var record = await (await app.OrderSystem().GetAsync($"/api/redemptions/{orderId}")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("cancelled", (string?)record["state"]);
        var last = record["history"]!.AsArray().Last()!;
        Assert.Equal(("expire", "system:ExpireCoupons"), ((string?)last["step"], (string?)last["by"]));
        Assert.Equal("available", await app.CouponStatusAsync(customer, coupon));
        var budget = (await app.Services.GetRequiredService<StockStore>().FindBudgetAsync(campaign))!;
        Assert.Equal((10000, 0), (budget.Left, budget.Reserved));
        await (await app.OrderSystem().StepAsync(orderId, "confirm")).AssertProblemAsync(HttpStatusCode.Conflict, "invalid-transition");
    }

    [Fact]
    public async Task A_campaign_sold_out_only_by_units_lost_to_dead_claims_gets_them_back_instead_of_closing()
    {
        await using var app = await StartAsync("lost");
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["totalQuantity"] = 3));
        await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => app.CustomerWithCouponAsync(campaign)));
        // A claim that took the last unit and died before writing its coupon (an ambiguous timeout).
        var stocks = app.Services.GetRequiredService<StockStore>();
        Assert.Equal(TakeOutcome.Taken, await stocks.TryTakeAsync(campaign, app.Clock.GetUtcNow()));

        app.Clock.Advance(TimeSpan.FromMinutes(10)); // past the stock quiet period
        var run = await RunAsync(app);

        Assert.Equal((0, 1), (run.CampaignsClosed, run.CampaignsRecounted));
        var stock = (await stocks.FindAsync(campaign))!;
        Assert.Equal((3, 1, 2, true), (stock.Total, stock.Remaining, stock.Issued, stock.Open));
        await (await app.Customer(Api.NewId("late")).ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created);
        // Now truly sold out: the next quiet run closes it after a recount that finds nothing lost.
        app.Clock.Advance(TimeSpan.FromMinutes(10));
        var final = await RunAsync(app);
        Assert.Equal((1, 0), (final.CampaignsClosed, final.CampaignsRecounted));
    }

    [Fact]
    public async Task Two_overlapping_runs_have_one_effect_and_campaigns_past_their_end_or_sold_out_are_closed()
    {
        await using var app = await StartAsync("overlap");
        var now = app.Clock.GetUtcNow();
        var op = app.Operator();
        var shortLived = await op.PublishedCampaignAsync(Api.Terms(now, t =>
        {
            t["validity"] = new JsonObject { ["type"] = "relative", ["days"] = 1 };
            t["claimEndsAt"] = Api.Instant(now.AddDays(1));
        }));
        var budgeted = await op.PublishedCampaignAsync(Api.Terms(now, t => t["budget"] = 100000));
        var soldOut = await op.PublishedCampaignAsync(Api.Terms(now, t => t["totalQuantity"] = 2));
        var expiring = await Task.WhenAll(Enumerable.Range(0, 30).Select(_ => app.CustomerWithCouponAsync(shortLived)));
        var lockers = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => app.CustomerWithCouponAsync(budgeted)));
        await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => app.CustomerWithCouponAsync(soldOut)));
        var orders = lockers.Select(_ => Api.NewId("o")).ToArray();
        for (var i = 0; i < lockers.Length; i++)
            await (await app.OrderSystem().LockAsync(orders[i], lockers[i].Customer, lockers[i].Coupon)).AssertStatusAsync(HttpStatusCode.Created);

        app.Clock.Advance(TimeSpan.FromDays(2));
        var runs = await Task.WhenAll(RunAsync(app), RunAsync(app));

        Assert.Equal(30, runs.Sum(r => r.CouponsExpired));
        Assert.Equal(10, runs.Sum(r => r.LocksReleased));
        Assert.Equal(1, runs.Sum(r => r.CampaignsEnded));
        Assert.Equal(1, runs.Sum(r => r.CampaignsClosed));
        foreach (var (customer, coupon) in expiring)
            Assert.Equal(CouponStatus.Expired, await StoredStateAsync(app, customer, coupon));
        foreach (var (customer, coupon) in lockers)
            Assert.Equal(CouponStatus.Available, await StoredStateAsync(app, customer, coupon));
        var budget = (await app.Services.GetRequiredService<StockStore>().FindBudgetAsync(budgeted))!;
        Assert.Equal((100000, 0, 0), (budget.Left, budget.Reserved, budget.Spent));
        foreach (var order in orders)
        {
            var record = await (await app.OrderSystem().GetAsync($"/api/redemptions/{order}")).ReadJsonAsync();
            Assert.Single(record["history"]!.AsArray(), h => (string?)h!["step"] == "expire");
        }
        op = app.Operator(); // tokens are minted on the test clock
        var ended = await (await op.GetAsync($"/api/campaigns/{shortLived}")).ReadJsonAsync();
        Assert.Equal(("ended", "claim_window_over"), ((string?)ended["status"], (string?)ended["endReason"]));
        var closed = await (await op.GetAsync($"/api/campaigns/{soldOut}")).ReadJsonAsync();
        Assert.Equal(("ended", "sold_out"), ((string?)closed["status"], (string?)closed["endReason"]));
        Assert.Equal("published", (string?)(await (await op.GetAsync($"/api/campaigns/{budgeted}")).ReadJsonAsync())["status"]);

        var again = await RunAsync(app);
        Assert.Equal((0, 0, 0, 0), (again.CouponsExpired, again.LocksReleased, again.CampaignsEnded, again.CampaignsClosed));
    }

    [Fact]
    public async Task A_run_reads_only_the_due_buckets_and_a_finished_hour_is_not_read_again()
    {
        await using var app = await StartAsync("reads");
        var now = app.Clock.GetUtcNow(); // 02:00 UTC = 10:00 in Shanghai
        var op = app.Operator();
        var soon = await op.PublishedCampaignAsync(Api.Terms(now, t => t["validity"] = new JsonObject { ["type"] = "relative", ["days"] = 1 }));
        var later = await op.PublishedCampaignAsync(Api.Terms(now, t => t["validity"] = new JsonObject { ["type"] = "relative", ["days"] = 30 }));
        await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => app.CustomerWithCouponAsync(soon)));
        await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => app.CustomerWithCouponAsync(later)));
        var (customer, coupon) = await app.CustomerWithCouponAsync(later);
        await (await app.OrderSystem().LockAsync(Api.NewId("o"), customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);

        // Local midnight (16:00 UTC) plus an hour: the 12 coupons and the lock are due, the 41 later coupons are not.
        app.Clock.Set(new DateTimeOffset(2026, 11, 21, 17, 0, 0, TimeSpan.Zero));
        var run = await RunAsync(app);

        Assert.Equal(1, run.BucketsRead); // the coupons' hour (16:00); locks have no due entries
        Assert.Equal(1, run.EntriesRead); // one entry for the 12 coupons
        Assert.Equal(12, run.WalletsRead);
        Assert.Equal(1, run.LapsedLocksRead); // the lock, found by the lapsed-lock query
        Assert.Equal((12, 1), (run.CouponsExpired, run.LocksReleased));

        var next = await RunAsync(app);
        Assert.Equal((0, 0, 0, 0), (next.BucketsRead, next.EntriesRead, next.WalletsRead, next.LapsedLocksRead));
    }

    [Fact]
    public async Task A_run_that_crashes_part_way_is_finished_by_the_next_with_every_effect_once()
    {
        await using var app = await StartAsync("crash");
        var now = app.Clock.GetUtcNow();
        var op = app.Operator();
        var shortLived = await op.PublishedCampaignAsync(Api.Terms(now, t => t["validity"] = new JsonObject { ["type"] = "relative", ["days"] = 1 }));
        var budgeted = await op.PublishedCampaignAsync(Api.Terms(now, t => t["budget"] = 50000));
        var expiring = await Task.WhenAll(Enumerable.Range(0, 25).Select(_ => app.CustomerWithCouponAsync(shortLived)));
        var lockers = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => app.CustomerWithCouponAsync(budgeted)));
        var orders = lockers.Select(_ => Api.NewId("o")).ToArray();
        for (var i = 0; i < lockers.Length; i++)
            await (await app.OrderSystem().LockAsync(orders[i], lockers[i].Customer, lockers[i].Coupon)).AssertStatusAsync(HttpStatusCode.Created);
        app.Clock.Advance(TimeSpan.FromDays(2));

        // Crash after 3, 5, 7, ... Cosmos requests: every run dies somewhere further on, leaving work half done,
        // until one gets through.
        var sawHalfDone = false;
        var seen = new List<string>();
        for (var crashAfter = 3; crashAfter < 300; crashAfter += 2)
        {
            using var crashing = new CrashingClient(app, crashAfter);
            if (await Record.ExceptionAsync(() => crashing.RunAsync(app)) is null) break;
            var expiredSoFar = 0;
            foreach (var (customer, coupon) in expiring)
                expiredSoFar += await StoredStateAsync(app, customer, coupon) == CouponStatus.Expired ? 1 : 0;
            sawHalfDone |= expiredSoFar is > 0 and < 25;
            seen.Add($"{crashAfter}:{expiredSoFar}");
        }
        Assert.True(sawHalfDone, "no crash landed in the middle of expiring the coupons: " + string.Join(", ", seen));

        await RunAsync(app);

        foreach (var (customer, coupon) in expiring)
            Assert.Equal(CouponStatus.Expired, await StoredStateAsync(app, customer, coupon));
        foreach (var (customer, coupon) in lockers)
            Assert.Equal(CouponStatus.Available, await StoredStateAsync(app, customer, coupon));
        var budget = (await app.Services.GetRequiredService<StockStore>().FindBudgetAsync(budgeted))!;
        Assert.Equal((50000, 0), (budget.Left, budget.Reserved));
        foreach (var order in orders)
        {
            var record = await (await app.OrderSystem().GetAsync($"/api/redemptions/{order}")).ReadJsonAsync();
            Assert.Equal("cancelled", (string?)record["state"]);
            Assert.Single(record["history"]!.AsArray(), h => (string?)h!["step"] == "expire");
        }
        var quiet = await RunAsync(app);
        Assert.Equal((0, 0, 0), (quiet.BucketsRead, quiet.CouponsExpired, quiet.LocksReleased));
    }

    /// <summary>
    /// The same stores over a Cosmos client whose requests fail after a count: the process "dies" there
    /// (nothing after it reaches the database), which is what a crashed or timed-out run leaves behind.
    /// </summary>
    private sealed class CrashingClient : IDisposable
    {
        private readonly CosmosClient client;
        private readonly Database database;

        public CrashingClient(TestApp app, int crashAfter)
        {
            client = TestCosmos.Client(new Crash(crashAfter));
            database = client.GetDatabase(app.Database);
        }

        public Task<ExpiryReport> RunAsync(TestApp app)
        {
            var campaigns = new CampaignStore(database);
            return ExpireCoupons.RunAsync(new DueIndex(database), new WalletStore(database), new RedemptionStore(database), campaigns,
                new StockStore(database, app.Services.GetRequiredService<CampaignCache>(), Options.Create(new StockOptions())), app.Services.GetRequiredService<CampaignCache>(), TimeSpan.FromMinutes(5), app.Clock.GetUtcNow(), CancellationToken.None, walletBatch: 7); // several batches per entry
        }

        public void Dispose() => client.Dispose();

        private sealed class Crash(int after) : RequestHandler
        {
            private int sent;

            public override Task<ResponseMessage> SendAsync(RequestMessage request, CancellationToken cancellationToken)
                => Interlocked.Increment(ref sent) > after
                    ? throw new InvalidOperationException("Injected crash: this request never reaches the database.")
                    : base.SendAsync(request, cancellationToken);
        }
    }
}
