using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Hosting;
using Marketing.Functions.Stats;
using Marketing.Tests.Support;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// Campaign statistics as operators read them: AggregateStats run as the host runs it, then GET .../stats compared with
/// what the test did and with recount-stats (the oracle). Each test that folds has its own database (the fold and the
/// recount read every wallet and redemption in it) and moves its own clock.
/// </summary>
public sealed partial class StatsTests
{
    private static async Task<string> ClaimAsync(TestApp app, string campaign, string customer, string channel)
    {
        var claimed = await (await app.Customer(customer).ClaimAsync(campaign, channel: channel)).AssertStatusAsync(HttpStatusCode.Created);
        return (string)claimed["id"]!;
    }

    private static async Task LockAsync(TestApp app, string order, string customer, string coupon, string channel)
        => await (await app.OrderSystem().LockAsync(order, customer, coupon, Orders.Draft(channel: channel))).AssertStatusAsync(HttpStatusCode.Created);

    private static async Task StepAsync(TestApp app, string order, string step)
        => await (await app.OrderSystem().StepAsync(order, step)).AssertStatusAsync(HttpStatusCode.OK);

    // Orders.Draft: 300.00 of shoes and 2 × 50.00 of food; the campaigns take 20.00 off.
    private const long Gmv = 40000, Discount = 2000;

    [Fact]
    public async Task Every_figure_equals_what_happened_across_two_campaigns_time_zones_and_channels_and_the_recount()
    {
        await using var app = await StatsRig.StartAsync("exact");
        var op = app.Operator();
        var now = app.Clock.GetUtcNow();
        var shanghai = await op.PublishedCampaignAsync(Api.Terms(now, t =>
        {
            t["budget"] = 100000;
            t["perCustomerLimit"] = 2;
        }));
        var utc = await op.PublishedCampaignAsync(Api.Terms(now, t =>
        {
            t["timeZone"] = "UTC";
            t["validity"] = new JsonObject { ["type"] = "relative", ["days"] = 1 };
        }));

        // Shanghai: six customers, seven claims (a1 claims twice, on two channels).
        var a = Enumerable.Range(1, 6).Select(i => Api.NewId($"a{i}")).ToArray();
        var coupons = new Dictionary<string, string>();
        foreach (var (customer, channel) in a.Zip(["app", "app", "mini_program", "h5", "h5", "mini_program"]))
            coupons[customer] = await ClaimAsync(app, shanghai, customer, channel);
        await ClaimAsync(app, shanghai, a[0], "h5");
        // UTC: four customers, one redeems, three let their 1-day coupons expire.
        var b = Enumerable.Range(1, 4).Select(i => Api.NewId($"b{i}")).ToArray();
        foreach (var (customer, channel) in b.Zip(["app", "h5", "mini_program", "app"]))
            coupons[customer] = await ClaimAsync(app, utc, customer, channel);

        var o = Enumerable.Range(1, 6).Select(i => Api.NewId($"o{i}")).ToArray();
        await LockAsync(app, o[0], a[0], coupons[a[0]], "app");
        await LockAsync(app, o[1], a[1], coupons[a[1]], "mini_program");
        await LockAsync(app, o[2], a[2], coupons[a[2]], "h5");
        await LockAsync(app, o[3], a[3], coupons[a[3]], "h5");
        await LockAsync(app, o[5], b[0], coupons[b[0]], "app");
        foreach (var order in new[] { o[0], o[1], o[2], o[5] }) await StepAsync(app, order, "confirm");
        await StepAsync(app, o[3], "cancel");
        // A lock left to lapse: ExpireCoupons releases it once the clock is past lockedUntil.
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        await LockAsync(app, o[4], a[4], coupons[a[4]], "app");
        app.Clock.Advance(TimeSpan.FromMinutes(31));
        await app.InvokeTimerAsync("ExpireCoupons");
        Assert.Equal("available", await app.CouponStatusAsync(a[4], coupons[a[4]]));
        await StepAsync(app, o[2], "refund");
        // Past the end of the UTC coupons' validity (midnight UTC after the claim day): three expire unused.
        app.Clock.Set(new DateTimeOffset(2026, 11, 22, 1, 0, 0, TimeSpan.Zero));
        await app.InvokeTimerAsync("ExpireCoupons");
        Assert.Equal("expired", await app.CouponStatusAsync(b[1], coupons[b[1]]));

        await app.RunAggregateStatsAsync();

        StatsRig.AssertMatchesRecount(await app.CompareAsync());
        var stats = await app.GetStatsAsync(shanghai, "?from=2026-11-20&to=2026-11-23");
        Assert.Equal(new Figures
        {
            Claims = 7, NewClaimers = 6, Locks = 5, Redemptions = 3, Cancellations = 1, Lapsed = 1, Refunds = 1,
            Discount = 2 * Discount, Gmv = 2 * Gmv,
        }, StatsRig.FiguresOf(stats["totals"]));
        var byChannel = stats["byChannel"]!.AsObject();
        Assert.Equal(["app", "h5", "mini_program"], byChannel.Select(c => c.Key).Order().ToArray());
        Assert.Equal(new Figures { Claims = 2, NewClaimers = 2, Locks = 2, Redemptions = 1, Lapsed = 1, Discount = Discount, Gmv = Gmv },
            StatsRig.FiguresOf(byChannel["app"]));
        Assert.Equal(new Figures { Claims = 2, NewClaimers = 2, Locks = 1, Redemptions = 1, Discount = Discount, Gmv = Gmv },
            StatsRig.FiguresOf(byChannel["mini_program"]));
        // The refunded order was on h5: its discount and GMV are taken back there.
        Assert.Equal(new Figures { Claims = 3, NewClaimers = 2, Locks = 2, Redemptions = 1, Cancellations = 1, Refunds = 1 },
            StatsRig.FiguresOf(byChannel["h5"]));
        Assert.Equal(0.7143, (double)stats["funnel"]!["lockRate"]!); // 5 of 7, to 4 places
        Assert.Equal(0.4286, (double)stats["redemptionRate"]!);
        var budget = stats["budget"]!;
        Assert.Equal((100000L, 0L), ((long)budget["total"]!, (long)budget["reserved"]!)); // the lapsed lock's reservation is back
        // Burn: the net discount of the last 7 local days (22 November is today in Shanghai) ÷ 7; ROI: (GMV − discount) ÷ discount.
        Assert.Equal(2 * Discount / 7.0, (double)budget["burnPerDay"]!, 6);
        var left = (long)budget["left"]!;
        Assert.Equal(new DateOnly(2026, 11, 22).AddDays((int)Math.Ceiling(left / (2 * Discount / 7.0))), DateOnly.Parse((string)budget["exhaustsOn"]!, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal((2 * Gmv - 2 * Discount) / (double)(2 * Discount), (double)stats["roi"]!, 6);
        // Everything happened on the Shanghai campaign's 21 November.
        var days = stats["series"]!.AsArray().Select(p => StatsRig.FiguresOf(p!["figures"])).ToArray();
        Assert.Equal([0L, 7L, 0L, 0L], days.Select(d => d.Claims).ToArray());

        var other = await app.GetStatsAsync(utc, "?from=2026-11-21&to=2026-11-22");
        // Expiring: the four coupons' end of validity (22 November, 00:00 UTC) less the one the app order used.
        Assert.Equal(new Figures { Claims = 4, NewClaimers = 4, Locks = 1, Redemptions = 1, Expired = 3, Discount = Discount, Gmv = Gmv, Expiring = 3 },
            StatsRig.FiguresOf(other["totals"]));
        Assert.Equal(new Figures { Claims = 2, NewClaimers = 2, Locks = 1, Redemptions = 1, Expired = 1, Discount = Discount, Gmv = Gmv, Expiring = 1 },
            StatsRig.FiguresOf(other["byChannel"]!["app"]));
        Assert.Equal(new Figures { Claims = 1, NewClaimers = 1, Expired = 1, Expiring = 1 }, StatsRig.FiguresOf(other["byChannel"]!["h5"]));
        Assert.Equal(new Figures { Claims = 1, NewClaimers = 1, Expired = 1, Expiring = 1 }, StatsRig.FiguresOf(other["byChannel"]!["mini_program"]));
        // The coupons expired when their validity ended, at midnight UTC: on 22 November.
        var utcDays = other["series"]!.AsArray().Select(p => StatsRig.FiguresOf(p!["figures"])).ToArray();
        Assert.Equal([(4L, 0L), (0L, 3L)], utcDays.Select(d => (d.Claims, d.Expired)).ToArray());
        Assert.Null(other["budget"]);

        // A counted fact's mark lives in its day's partition for Stats:FactDays + 1 days (14 + 1); the day itself for good.
        var statsContainer = app.Services.GetRequiredService<CosmosClient>().GetContainer(app.Database, "stats");
        var partition = new PartitionKey($"{shanghai}|2026-11-21");
        var mark = (await statsContainer.ReadItemAsync<JsonObject>("c:" + coupons[a[0]], partition)).Resource;
        Assert.Equal(15 * 86_400, (int)mark["ttl"]!);
        Assert.False((await statsContainer.ReadItemAsync<JsonObject>(CampaignDay.DocumentId, partition)).Resource.ContainsKey("ttl"));

        // A second run finds nothing new and changes nothing.
        var again = await app.RunAggregateStatsAsync();
        Assert.Equal(0, (int)again["Counted"]!);
        StatsRig.AssertMatchesRecount(await app.CompareAsync());
    }

    [Fact]
    public async Task Local_days_and_hours_of_an_Asia_Shanghai_campaign_split_at_16_00Z_and_a_later_refund_counts_on_its_own_day()
    {
        await using var app = await StatsRig.StartAsync("zones");
        app.Clock.Set(new DateTimeOffset(2026, 11, 21, 15, 0, 0, TimeSpan.Zero));
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var (early, late) = (Api.NewId("early"), Api.NewId("late"));
        var order = Api.NewId("o");

        // 23:59:59.999 on 21 November in Shanghai: claimed, locked and paid on the app.
        app.Clock.Set(new DateTimeOffset(2026, 11, 21, 15, 59, 59, 999, TimeSpan.Zero));
        var coupon = await ClaimAsync(app, campaign, early, "app");
        await LockAsync(app, order, early, coupon, "app");
        await StepAsync(app, order, "confirm");
        // 00:00 on 22 November in Shanghai.
        app.Clock.Set(new DateTimeOffset(2026, 11, 21, 16, 0, 0, TimeSpan.Zero));
        await ClaimAsync(app, campaign, late, "mini_program");
        // Refunded on 23 November (10:00 local).
        app.Clock.Set(new DateTimeOffset(2026, 11, 23, 2, 0, 0, TimeSpan.Zero));
        await StepAsync(app, order, "refund");

        await app.RunAggregateStatsAsync();
        StatsRig.AssertMatchesRecount(await app.CompareAsync());

        var daily = await app.GetStatsAsync(campaign, "?from=2026-11-21&to=2026-11-23&granularity=day");
        var points = daily["series"]!.AsArray();
        Assert.Equal(["2026-11-21T00:00:00+08:00", "2026-11-22T00:00:00+08:00", "2026-11-23T00:00:00+08:00"],
            points.Select(p => (string)p!["start"]!).ToArray());
        Assert.Equal(new Figures { Claims = 1, NewClaimers = 1, Locks = 1, Redemptions = 1, Discount = Discount, Gmv = Gmv }, StatsRig.FiguresOf(points[0]!["figures"]));
        Assert.Equal(new Figures { Claims = 1, NewClaimers = 1 }, StatsRig.FiguresOf(points[1]!["figures"]));
        Assert.Equal(new Figures { Refunds = 1, Discount = -Discount, Gmv = -Gmv }, StatsRig.FiguresOf(points[2]!["figures"]));
        Assert.Equal(new Figures { Claims = 2, NewClaimers = 2, Locks = 1, Redemptions = 1, Refunds = 1 }, StatsRig.FiguresOf(daily["totals"]));

        var hourly = await app.GetStatsAsync(campaign, "?from=2026-11-21&to=2026-11-22&granularity=hour");
        var hours = hourly["series"]!.AsArray();
        Assert.Equal(48, hours.Count);
        for (var i = 0; i < 48; i++)
        {
            var start = DateTimeOffset.Parse((string)hours[i]!["start"]!, System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(TimeSpan.FromHours(8), start.Offset);
            Assert.Equal(new DateTimeOffset(2026, 11, 21, 0, 0, 0, TimeSpan.FromHours(8)).AddHours(i), start);
            Assert.Equal(i is 23 or 24 ? 1 : 0, StatsRig.FiguresOf(hours[i]!["figures"]).Claims);
        }
        Assert.Equal(1, StatsRig.FiguresOf(hours[23]!["figures"]).Redemptions);

        var miniProgram = await app.GetStatsAsync(campaign, "?from=2026-11-21&to=2026-11-23&channel=mini_program");
        Assert.Equal("mini_program", (string?)miniProgram["channel"]);
        Assert.Equal(new Figures { Claims = 1, NewClaimers = 1 }, StatsRig.FiguresOf(miniProgram["totals"]));
        Assert.Equal([0L, 1L, 0L], miniProgram["series"]!.AsArray().Select(p => StatsRig.FiguresOf(p!["figures"]).Claims).ToArray());
        var onTheApp = await app.GetStatsAsync(campaign, "?from=2026-11-21&to=2026-11-23&channel=app");
        Assert.Equal(new Figures { Claims = 1, NewClaimers = 1, Locks = 1, Redemptions = 1, Refunds = 1 }, StatsRig.FiguresOf(onTheApp["totals"]));
        // The channel filters the series and the totals, not the breakdown by channel.
        Assert.Equal(2, onTheApp["byChannel"]!.AsObject().Count);
    }

    [Fact]
    public async Task A_cursor_that_fails_is_reported_and_the_other_feeds_are_still_folded()
    {
        await using var app = await StatsRig.StartAsync("failing");
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        await app.CustomerWithCouponAsync(campaign);
        await app.RunAggregateStatsAsync();
        // A cursor whose feed range Cosmos cannot take (a damaged document): every read of it fails.
        var stats = app.Services.GetRequiredService<StatsStore>();
        Assert.True(await stats.TryCreateCursorsAsync([new FeedCursor { Id = "redemptions:damaged", Source = "redemptions", Range = "not a feed range" }], CancellationToken.None));
        await app.CustomerWithCouponAsync(campaign);

        var run = await app.RunAggregateStatsAsync(); // answered 200: the host would not retry the whole run

        var failure = Assert.Single(run["Failures"]!.AsArray());
        Assert.StartsWith("redemptions:damaged: ", (string)failure!);
        Assert.Equal(2, (await app.StoredTotalsAsync(campaign)).Claims); // the wallets' feed went on
        // No instant can be promised while a feed range is not read: the answer says so rather than claim a false asOf.
        Assert.Null((await app.GetStatsAsync(campaign))["asOf"]);
    }

    [Fact]
    public async Task As_of_is_null_before_the_first_run_then_the_instant_of_the_run_that_caught_up_and_the_lag_follows_the_clock()
    {
        await using var app = await StatsRig.StartAsync("asof");
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        await app.CustomerWithCouponAsync(campaign);
        var lastWrite = app.Clock.GetUtcNow();

        var before = await app.GetStatsAsync(campaign);
        Assert.Null(before["asOf"]);
        Assert.Null(before["lagSeconds"]);
        Assert.Equal(0, StatsRig.FiguresOf(before["totals"]).Claims);

        app.Clock.Advance(TimeSpan.FromSeconds(5));
        var runAt = app.Clock.GetUtcNow();
        var run = await app.RunAggregateStatsAsync();
        Assert.Equal(StatsFolder.SourceNames.Length, (int)run["CursorsCaughtUp"]!); // each source container's one feed range
        app.Clock.Advance(TimeSpan.FromSeconds(90));

        var after = await app.GetStatsAsync(campaign);
        var asOf = DateTimeOffset.Parse((string)after["asOf"]!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(asOf >= lastWrite, $"asOf {asOf:O} is before the last write {lastWrite:O}");
        Assert.Equal(runAt, asOf);
        Assert.Equal(90, (double)after["lagSeconds"]!, 3);
        Assert.Equal(1, StatsRig.FiguresOf(after["totals"]).Claims);

        // A claim after the run is not counted yet, and asOf says so: it stays at the run's instant.
        await app.CustomerWithCouponAsync(campaign);
        var stale = await app.GetStatsAsync(campaign);
        Assert.Equal(1, StatsRig.FiguresOf(stale["totals"]).Claims);
        Assert.Equal(asOf, DateTimeOffset.Parse((string)stale["asOf"]!, System.Globalization.CultureInfo.InvariantCulture));
        app.Clock.Advance(TimeSpan.FromSeconds(1));
        await app.RunAggregateStatsAsync();
        var fresh = await app.GetStatsAsync(campaign);
        Assert.Equal(2, StatsRig.FiguresOf(fresh["totals"]).Claims);
        Assert.Equal(0, (double)fresh["lagSeconds"]!, 3);
    }

    [Fact]
    public async Task A_run_out_of_time_keeps_what_it_counted_claims_no_as_of_and_the_next_run_finishes()
    {
        await using var app = await StatsRig.StartAsync("deadline");
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        for (var i = 0; i < 7; i++) await app.CustomerWithCouponAsync(campaign);
        var database = app.Services.GetRequiredService<CosmosClient>().GetDatabase(app.Database);

        // Time for three looks at a feed (the redemptions' empty one may take one), pages of two wallets: the wallets'
        // feed cannot be caught up.
        var stopped = await StatsRig.Folder(app, database, pageSize: 2, parallelism: 1)
            .RunAsync(new RunDeadline(new Ticks(), DateTimeOffset.UnixEpoch.AddTicks(3)), CancellationToken.None);

        Assert.True(stopped.Stopped);
        Assert.InRange(stopped.Pages, 2, 3);
        Assert.Equal(2 * stopped.Pages, (await app.StoredTotalsAsync(campaign)).Claims);
        Assert.Null((await app.GetStatsAsync(campaign))["asOf"]);

        var next = await app.RunAggregateStatsAsync();
        Assert.False((bool)next["Stopped"]!);
        Assert.Equal(7, (await app.StoredTotalsAsync(campaign)).Claims);
        StatsRig.AssertMatchesRecount(await app.CompareAsync());
        Assert.NotNull((await app.GetStatsAsync(campaign))["asOf"]);
    }

    /// <summary>A clock that moves one tick each time it is read: a deadline at tick N allows N looks.</summary>
    private sealed class Ticks : TimeProvider
    {
        private long reads;
        public override DateTimeOffset GetUtcNow() => DateTimeOffset.UnixEpoch.AddTicks(Interlocked.Increment(ref reads) - 1);
    }

    [Fact]
    public async Task Stats_are_for_operators_and_admins_and_every_bad_parameter_is_listed_in_one_400()
    {
        await using var app = await TestApp.StartAsync();
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var path = $"/api/campaigns/{campaign}/stats";

        Assert.Equal(HttpStatusCode.Forbidden, (await app.Customer(Api.NewId("c")).GetAsync(path)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await app.As(Api.NewId("p"), "promoter").GetAsync(path)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await app.OrderSystem().GetAsync(path)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await app.Anonymous().GetAsync(path)).StatusCode);
        await (await app.As("adam", "admin").GetAsync(path)).AssertStatusAsync(HttpStatusCode.OK);
        await (await app.Operator().GetAsync("/api/campaigns/cmp-nosuchcampaign/stats")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");

        var all = await (await app.Operator().GetAsync(path + "?from=21-11-2026&to=2026-13-01&granularity=week&channel=tv"))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.Equal(["channel", "from", "granularity", "to"], all["errors"]!.AsObject().Select(e => e.Key).Order().ToArray());

        var backwards = await (await app.Operator().GetAsync(path + "?from=2026-11-22&to=2026-11-21&channel=fax"))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.Equal(["channel", "from"], backwards["errors"]!.AsObject().Select(e => e.Key).Order().ToArray());

        var longDays = await (await app.Operator().GetAsync(path + "?from=2025-01-01&to=2026-11-21"))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.Equal(["to"], longDays["errors"]!.AsObject().Select(e => e.Key).ToArray());
        var longHours = await (await app.Operator().GetAsync(path + "?from=2026-10-01&to=2026-11-21&granularity=hour&channel=h5"))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.Equal(["to"], longHours["errors"]!.AsObject().Select(e => e.Key).ToArray());

        // The limits themselves are allowed.
        await (await app.Operator().GetAsync(path + "?from=2025-11-21&to=2026-11-21")).AssertStatusAsync(HttpStatusCode.OK);
        var month = await (await app.Operator().GetAsync(path + "?from=2026-10-22&to=2026-11-21&granularity=hour")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(31 * 24, month["series"]!.AsArray().Count);
    }

    [Fact]
    public async Task The_recount_stats_command_exits_0_when_equal_names_a_corrupted_day_with_exit_1_and_repairs_it_with_write()
    {
        await using var app = await StatsRig.StartAsync("command");
        // The command runs on the real clock, and recounts only days recent enough (RecountStats.FirstRecountableDay):
        // the activity happens today.
        app.Clock.Set(DateTimeOffset.UtcNow);
        var today = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(app.Clock.GetUtcNow(), TimeZoneInfo.FindSystemTimeZoneById("Asia/Shanghai")).DateTime);
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        for (var i = 0; i < 3; i++) await app.CustomerWithCouponAsync(campaign);
        await app.RunAggregateStatsAsync();

        var equal = await RecountStatsAsync(app, campaign);
        Assert.True(equal.Exit == 0, equal.Output);
        Assert.Contains("Stats match the recount.", equal.Output);

        var key = await CorruptAsync(app, campaign, claims: 8, today); // instead of 3

        var differ = await RecountStatsAsync(app, campaign);
        Assert.True(differ.Exit == 1, differ.Output);
        Assert.Contains($"{campaign} {today:yyyy-MM-dd} {key}: stored", differ.Output);
        Assert.Single(await app.CompareAsync(campaign));

        var repaired = await RecountStatsAsync(app, campaign, "--write");
        Assert.True(repaired.Exit == 0, repaired.Output);
        StatsRig.AssertMatchesRecount(await app.CompareAsync());
        Assert.Equal(3, StatsRig.FiguresOf((await app.GetStatsAsync(campaign))["totals"]).Claims);
    }

    [Fact]
    public async Task A_repair_while_the_fold_lags_leaves_the_facts_it_has_not_counted_to_the_fold_and_nothing_is_counted_twice()
    {
        await using var app = await StatsRig.StartAsync("repair");
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        for (var i = 0; i < 3; i++) await app.CustomerWithCouponAsync(campaign);
        await app.RunAggregateStatsAsync();
        await CorruptAsync(app, campaign, claims: 8);
        // Two claims the fold has not read yet when the operator repairs (it runs every minute: it always lags a little).
        for (var i = 0; i < 2; i++) await app.CustomerWithCouponAsync(campaign);

        var recount = app.Services.GetRequiredService<RecountStats>();
        var differences = await recount.CompareAsync(campaign, CancellationToken.None);
        // The corrupted claim day, and the day the new coupons' validity ends (their "expiring" not folded yet either).
        Assert.Equal([new DateOnly(2026, 11, 21), new DateOnly(2026, 11, 28)], differences.Select(d => d.Day).ToArray());
        Assert.Equal(2, await recount.RepairAsync(differences, CancellationToken.None));
        Assert.Equal(3, (await app.StoredTotalsAsync(campaign)).Claims); // what the fold had counted, corrected

        await app.RunAggregateStatsAsync();
        StatsRig.AssertMatchesRecount(await app.CompareAsync());
        Assert.Equal(5, (await app.StoredTotalsAsync(campaign)).Claims);
    }

    [Fact]
    public async Task Facts_older_than_their_marks_are_kept_are_skipped_by_a_late_fold_and_recount_stats_repairs_them_once()
    {
        await using var app = await StatsRig.StartAsync("late");
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
            t["validity"] = new JsonObject { ["type"] = "relative", ["days"] = 60 }));
        var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
        for (var i = 0; i < 2; i++) await app.CustomerWithCouponAsync(campaign);
        // The fold first runs 16 days later (stopped, or deployed onto existing data): older than Stats:FactDays (14).
        app.Clock.Advance(TimeSpan.FromDays(16));
        var now = app.Clock.GetUtcNow();
        var late = await app.Operator().PublishedCampaignAsync(Api.Terms(now));
        await app.CustomerWithCouponAsync(late);

        await app.RunAggregateStatsAsync();
        Assert.Equal(0, (await app.StoredTotalsAsync(campaign)).Claims);
        Assert.Equal(1, (await app.StoredTotalsAsync(late)).Claims);

        var recount = app.Services.GetRequiredService<RecountStats>();
        var differences = await recount.CompareAsync(null, CancellationToken.None);
        Assert.Equal([campaign], differences.Select(d => d.CampaignId).ToArray());
        Assert.Equal(1, await recount.RepairAsync(differences, CancellationToken.None));
        StatsRig.AssertMatchesRecount(await app.CompareAsync());

        // The fold reads an old wallet again (its coupon is locked now): its old facts stay counted once, the lock is new.
        await LockAsync(app, Api.NewId("o"), customer, coupon, "app");
        await app.RunAggregateStatsAsync();
        StatsRig.AssertMatchesRecount(await app.CompareAsync());
        var totals = await app.StoredTotalsAsync(campaign);
        Assert.Equal((3, 3, 1), (totals.Claims, totals.NewClaimers, totals.Locks));
    }

    [Fact]
    public async Task Days_whose_finished_redemptions_may_have_expired_are_neither_compared_nor_rewritten_by_the_recount()
    {
        await using var app = await StatsRig.StartAsync("retention");
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
            t["validity"] = new JsonObject { ["type"] = "relative", ["days"] = 365 }));
        var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
        var order = Api.NewId("o");
        await LockAsync(app, order, customer, coupon, "app");
        await StepAsync(app, order, "cancel");
        await app.RunAggregateStatsAsync();
        StatsRig.AssertMatchesRecount(await app.CompareAsync());

        // Redemption:FinishedRetentionDays (180) later Cosmos deletes the cancelled record (its ttl; the emulator never
        // does, so the test deletes it as Azure would). Its lock and cancel stay counted on 21 November, for good.
        app.Clock.Advance(TimeSpan.FromDays(181));
        await app.Services.GetRequiredService<CosmosClient>().GetContainer(app.Database, "redemptions")
            .DeleteItemAsync<JsonObject>(order, new PartitionKey(order));

        Assert.Empty(await app.CompareAsync(campaign));
        Assert.Empty(await app.CompareAsync());
        // Even told to rewrite that day, the recount leaves it as stored.
        var recount = app.Services.GetRequiredService<RecountStats>();
        Assert.Equal(0, await recount.RepairAsync([new DayDifference(campaign, new DateOnly(2026, 11, 21), new Dictionary<string, (Figures?, Figures?)>())], CancellationToken.None));
        var totals = await app.StoredTotalsAsync(campaign);
        Assert.Equal((1, 1, 1), (totals.Claims, totals.Locks, totals.Cancellations));
    }

    /// <summary>Someone's bad write: the campaign's one stored cell of <paramref name="day"/> (21 November by default) says <paramref name="claims"/> claims.</summary>
    private static async Task<string> CorruptAsync(TestApp app, string campaign, long claims, DateOnly? day = null)
    {
        var store = app.Services.GetRequiredService<StatsStore>();
        var stored = (await store.FindDayAsync(campaign, day ?? new DateOnly(2026, 11, 21), CancellationToken.None))!.Resource;
        var key = Assert.Single(stored.Cells.Keys);
        Assert.True(await store.TryReplaceDayAsync(stored with
        {
            Cells = new Dictionary<string, Figures> { [key] = stored.Cells[key] with { Claims = claims } },
        }, CancellationToken.None));
        return key;
    }

    private static async Task<(int Exit, string Output)> RecountStatsAsync(TestApp app, string campaign, params string[] more)
    {
        var output = new System.Text.StringBuilder();
        using var process = HandlerProcess.Start(["recount-stats", "--campaign", campaign, .. more],
            new Dictionary<string, string> { ["Cosmos__Database"] = app.Database }, line => { lock (output) output.AppendLine(line); });
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        process.WaitForExit(); // the redirected output is complete only after this
        lock (output) return (process.ExitCode, output.ToString());
    }

    [Fact]
    public async Task A_claim_still_costs_two_cosmos_round_trips_and_writes_nothing_for_the_stats()
    {
        var requests = new DocumentRequests();
        await using var app = await StatsRig.StartAsync("trips", b => b.ConfigureServices(s => s.AddSingleton<RequestHandler>(requests)));
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        await app.CustomerWithCouponAsync(campaign); // warm-up: container metadata, the campaign in the cache
        await app.RunAggregateStatsAsync(); // the stats exist: a claim still does not touch them

        requests.Reset();
        await app.CustomerWithCouponAsync(campaign);
        Assert.Equal(2, requests.Count);
        Assert.Equal(0, requests.Stats);
    }

    /// <summary>Counts document requests to any container (not the SDK's metadata reads), and those to "stats".</summary>
    private sealed partial class DocumentRequests : RequestHandler
    {
        private long count, stats;
        public long Count => Interlocked.Read(ref count);
        public long Stats => Interlocked.Read(ref stats);

        public void Reset()
        {
            Interlocked.Exchange(ref count, 0);
            Interlocked.Exchange(ref stats, 0);
        }

        public override Task<ResponseMessage> SendAsync(RequestMessage request, CancellationToken cancellationToken)
        {
            var uri = "/" + request.RequestUri.OriginalString.Trim('/');
            if (uri.Contains("/docs", StringComparison.Ordinal) || (Collection().IsMatch(uri) && request.Method != HttpMethod.Get))
            {
                Interlocked.Increment(ref count);
                if (uri.Contains("/colls/stats", StringComparison.Ordinal)) Interlocked.Increment(ref stats);
            }
            return base.SendAsync(request, cancellationToken);
        }

        [System.Text.RegularExpressions.GeneratedRegex("/colls/[^/]+$")]
        private static partial System.Text.RegularExpressions.Regex Collection();
    }
}
