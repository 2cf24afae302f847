using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Promoters;
using Marketing.Functions.Stats;
using Marketing.Tests.Support;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The statistics beyond a campaign's own figures: commissions on a campaign's orders and the ROI they enter, the
/// distribution programme's funnel, the console's overview, the CSV export, and the visit documents the programme's
/// visits are counted from. Each test folds its own database with AggregateStats run as the host runs it, moves its
/// own clock, and compares with what it did and with recount-stats.
/// </summary>
public sealed class StatsReportsTests
{
    // Orders.Draft: 300.00 of shoes and 2 × 50.00 of food; the campaigns take 20.00 off.
    private const long Gmv = 40000, Discount = 2000;

    private static async Task<string> ClaimAsync(TestApp app, string campaign, string customer, string channel = "app")
    {
        var claimed = await (await app.Customer(customer).ClaimAsync(campaign, channel: channel)).AssertStatusAsync(HttpStatusCode.Created);
        return (string)claimed["id"]!;
    }

    /// <summary>Locks <paramref name="coupon"/> for a new order and confirms it (the order is paid); the order's id.</summary>
    private static async Task<string> RedeemAsync(TestApp app, string customer, string coupon, string channel = "app")
    {
        var order = Api.NewId("o");
        await (await app.OrderSystem().LockAsync(order, customer, coupon, Orders.Draft(channel: channel))).AssertStatusAsync(HttpStatusCode.Created);
        await (await app.OrderSystem().StepAsync(order, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
        return order;
    }

    private static DateTimeOffset Instant(JsonNode? node) => DateTimeOffset.Parse((string)node!, CultureInfo.InvariantCulture);

    /// <summary>The ledger's commissions and reversals (as positive amounts) of some promoters, read through their own API.</summary>
    private static async Task<(long Commission, long Reversed)> LedgerAsync(TestApp app, params string[] promoters)
    {
        long commission = 0, reversed = 0;
        foreach (var promoter in promoters)
            foreach (var entry in await app.CommissionsAsync(promoter))
                if ((string)entry["kind"]! == "reversal") reversed -= (long)entry["amount"]!;
                else commission += (long)entry["amount"]!;
        return (commission, reversed);
    }

    [Fact]
    public async Task Commissions_and_reversals_on_a_campaigns_orders_are_the_ledgers_and_enter_its_roi()
    {
        await using var app = await StatsRig.StartAsync("commission");
        await app.SetRulesAsync(1000, 300);
        var parent = Api.NewId("p0");
        var promoter = Api.NewId("p1");
        var code = await app.RegisterPromoterAsync(promoter, await app.RegisterPromoterAsync(parent));
        var buyer = Api.NewId("b");
        Assert.Equal("bound", (string?)(await (await app.VisitAsync(buyer, code)).AssertStatusAsync(HttpStatusCode.OK))["status"]);

        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var coupon = await ClaimAsync(app, campaign, buyer, "mini_program");
        var order = await RedeemAsync(app, buyer, coupon, "mini_program");
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("paid", order, buyer, app.Clock.GetUtcNow(),
            Distribution.Line("l1", "shoes", 30000), Distribution.Line("l2", "food", 10000))));
        // Another paid order of the same buyer that used no coupon: its commission is the programme's, no campaign's.
        Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("paid", Api.NewId("o"), buyer, app.Clock.GetUtcNow(),
            Distribution.Line("l1", "shoes", 50000))));
        var paidOnly = await LedgerAsync(app, promoter, parent);
        // The shoes are given back a day later: their commission is reversed at both levels.
        app.Clock.Advance(TimeSpan.FromDays(1));
        Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("refunded", order, buyer, app.Clock.GetUtcNow(),
            Distribution.Line("l1", "shoes", 30000))));

        // The ledger of the campaign's order alone: 10 % and 3 % of 400.00, less 10 % and 3 % of 300.00 reversed.
        const long commission = 40000 * 1000 / 10000 + 40000 * 300 / 10000, reversed = 30000 * 1000 / 10000 + 30000 * 300 / 10000;
        const long other = 50000 * 1300 / 10000;
        Assert.Equal((commission + other, 0L), paidOnly);
        Assert.Equal((commission + other, reversed), await LedgerAsync(app, promoter, parent));

        await app.RunAggregateStatsAsync();
        StatsRig.AssertMatchesRecount(await app.CompareAsync());
        var stats = await app.GetStatsAsync(campaign, "?from=2026-11-21&to=2026-11-22");
        var totals = StatsRig.FiguresOf(stats["totals"]);
        Assert.Equal(new Figures
        {
            Claims = 1, NewClaimers = 1, Locks = 1, Redemptions = 1, Discount = Discount, Gmv = Gmv, Commission = commission, CommissionReversed = reversed,
        }, totals with { Expiring = 0 });
        // Counted on the order's channel, and the reversal on its own day (22 November in Shanghai).
        Assert.Equal((commission, reversed), (StatsRig.FiguresOf(stats["byChannel"]!["mini_program"]).Commission,
            StatsRig.FiguresOf(stats["byChannel"]!["mini_program"]).CommissionReversed));
        var days = stats["series"]!.AsArray().Select(p => StatsRig.FiguresOf(p!["figures"])).ToArray();
        Assert.Equal([(commission, 0L), (0L, reversed)], days.Select(d => (d.Commission, d.CommissionReversed)).ToArray());
        // ROI = (gmv − discount − commission + reversed) ÷ (discount + commission − reversed) (docs/stats.md).
        double cost = Discount + commission - reversed;
        Assert.Equal((Gmv - cost) / cost, (double)stats["roi"]!, 6);

        // The programme counts both orders' commissions.
        var programme = await app.RecountedTotalsAsync(Programme.Id);
        Assert.Equal((commission + other, reversed), (programme.Commission, programme.CommissionReversed));
        StatsRig.AssertMatchesRecount(await app.CompareAsync(Programme.Id));
    }

    [Fact]
    public async Task The_distribution_funnel_counts_visits_bindings_paid_orders_of_bound_buyers_and_commission_by_platform_day()
    {
        await using var app = await StatsRig.StartAsync("programme", b => b.UseSetting("Stats:TimeZone", "Asia/Shanghai"));
        const string Path = "/api/stats/distribution";

        // Before any run: nothing counted, and no asOf.
        var empty = await (await app.Operator().GetAsync(Path + "?from=2026-11-21&to=2026-11-22")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Null(empty["asOf"]);
        Assert.Equal(0, (long)empty["totals"]!["visits"]!);

        app.Clock.Set(new DateTimeOffset(2026, 11, 21, 15, 0, 0, TimeSpan.Zero));
        await app.SetRulesAsync(1000, 300); // the promoter was invited by nobody: level 1 alone
        var promoter = Api.NewId("p");
        var code = await app.RegisterPromoterAsync(promoter);
        var (first, second, unbound) = (Api.NewId("b1"), Api.NewId("b2"), Api.NewId("b3"));

        // 23:59:59 on 21 November in Shanghai: the first buyer is bound.
        app.Clock.Set(new DateTimeOffset(2026, 11, 21, 15, 59, 59, TimeSpan.Zero));
        Assert.Equal("bound", (string?)(await (await app.VisitAsync(first, code)).AssertStatusAsync(HttpStatusCode.OK))["status"]);
        // 00:00 on 22 November: the same buyer again (a visit, no new binding), and a second buyer.
        app.Clock.Set(new DateTimeOffset(2026, 11, 21, 16, 0, 0, TimeSpan.Zero));
        Assert.Equal("already_bound", (string?)(await (await app.VisitAsync(first, code)).AssertStatusAsync(HttpStatusCode.OK))["status"]);
        Assert.Equal("bound", (string?)(await (await app.VisitAsync(second, code)).AssertStatusAsync(HttpStatusCode.OK))["status"]);
        // Paid orders: the bound buyer's earns the promoter 10 %; an unbound buyer's earns nobody and is not counted.
        app.Clock.Advance(TimeSpan.FromMinutes(10));
        var order = Api.NewId("o");
        Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("paid", order, first, app.Clock.GetUtcNow(),
            Distribution.Line("l1", "shoes", 30000), Distribution.Line("l2", "food", 10000))));
        await app.SettleAsync(Distribution.OrderEvent("paid", Api.NewId("o"), unbound, app.Clock.GetUtcNow(), Distribution.Line("l1", "shoes", 90000)));
        app.Clock.Advance(TimeSpan.FromMinutes(10));
        Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("refunded", order, first, app.Clock.GetUtcNow(),
            Distribution.Line("l2", "food", 10000))));
        Assert.Equal((4000L, 1000L), await LedgerAsync(app, promoter));

        app.Clock.Advance(TimeSpan.FromSeconds(5));
        var runAt = app.Clock.GetUtcNow();
        await app.RunAggregateStatsAsync();
        app.Clock.Advance(TimeSpan.FromSeconds(30));
        StatsRig.AssertMatchesRecount(await app.CompareAsync(Programme.Id));
        var recounted = await app.RecountedTotalsAsync(Programme.Id);
        Assert.Equal((3L, 2L, 1L), (recounted.Visits, recounted.Bindings, recounted.PaidOrders)); // the oracle is not empty

        var stats = await (await app.Operator().GetAsync(Path + "?from=2026-11-21&to=2026-11-22")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("Asia/Shanghai", (string?)stats["timeZone"]);
        Assert.Equal(runAt, Instant(stats["asOf"]));
        Assert.Equal(30, (double)stats["lagSeconds"]!, 3);
        var series = stats["series"]!.AsArray();
        Assert.Equal(["2026-11-21", "2026-11-22"], series.Select(d => (string)d!["day"]!).ToArray());
        Assert.Equal(new DateTimeOffset(2026, 11, 21, 0, 0, 0, TimeSpan.FromHours(8)), Instant(series[0]!["start"]));
        Assert.Equal([(1L, 1L, 0L, 0L, 0L), (2L, 1L, 1L, 4000L, 1000L)], series.Select(d => ((long)d!["visits"]!, (long)d["bindings"]!,
            (long)d["paidOrders"]!, (long)d["commission"]!, (long)d["commissionReversed"]!)).ToArray());
        var totals = stats["totals"]!;
        Assert.Equal((3L, 2L, 1L, 4000L, 1000L), ((long)totals["visits"]!, (long)totals["bindings"]!, (long)totals["paidOrders"]!,
            (long)totals["commission"]!, (long)totals["commissionReversed"]!));
        Assert.Equal((0.6667, 0.5, 3000.0), ((double)totals["bindRate"]!, (double)totals["payRate"]!, (double)totals["commissionPerOrder"]!));
        // A range without the second day.
        var firstDay = await (await app.Operator().GetAsync(Path + "?from=2026-11-21&to=2026-11-21")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal((1L, 1L, 0L), ((long)firstDay["totals"]!["visits"]!, (long)firstDay["totals"]!["bindings"]!, (long)firstDay["totals"]!["paidOrders"]!));
        Assert.Equal(0.0, (double)firstDay["totals"]!["payRate"]!);
        Assert.Null(firstDay["totals"]!["commissionPerOrder"]); // no paid order that day

        // By default the last 7 days to the platform's today (22 November in Shanghai, 16:20Z on the 21st).
        var week = await (await app.Operator().GetAsync(Path)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(["2026-11-16", "2026-11-22"], new[] { (string)week["series"]![0]!["day"]!, (string)week["series"]![6]!["day"]! });
        Assert.Equal(7, week["series"]!.AsArray().Count);
        Assert.Equal(3L, (long)week["totals"]!["visits"]!);

        // A visit after the run is not counted, and asOf says so.
        await app.VisitAsync(unbound, code);
        var stale = await (await app.Operator().GetAsync(Path + "?from=2026-11-21&to=2026-11-22")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal((3L, runAt), ((long)stale["totals"]!["visits"]!, Instant(stale["asOf"])));

        // Operators and admins only; every bad parameter at once.
        Assert.Equal(HttpStatusCode.Forbidden, (await app.Customer(Api.NewId("c")).GetAsync(Path)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await app.As(promoter, "promoter").GetAsync(Path)).StatusCode);
        await (await app.As("adam", "admin").GetAsync(Path)).AssertStatusAsync(HttpStatusCode.OK);
        var bad = await (await app.Operator().GetAsync(Path + "?from=21-11-2026&to=2026-13-01")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.Equal(["from", "to"], bad["errors"]!.AsObject().Select(e => e.Key).Order().ToArray());
        var backwards = await (await app.Operator().GetAsync(Path + "?from=2026-11-22&to=2026-11-21")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.Equal(["from"], backwards["errors"]!.AsObject().Select(e => e.Key).ToArray());
        var tooLong = await (await app.Operator().GetAsync(Path + "?from=2025-01-01&to=2026-11-21")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.Equal(["to"], tooLong["errors"]!.AsObject().Select(e => e.Key).ToArray());
    }

    [Fact]
    public async Task The_overview_lists_running_ending_and_low_budget_campaigns_coupons_expiring_within_24_hours_and_today_against_yesterday()
    {
        await using var app = await StatsRig.StartAsync("overview", b => b.UseSetting("Stats:TimeZone", "Asia/Shanghai"));
        const string Path = "/api/stats/overview";

        var before = await (await app.Operator().GetAsync(Path)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Null(before["computedAt"]);
        Assert.Null(before["asOf"]);
        Assert.Equal(0, (int)before["campaignsRunning"]!);
        Assert.Equal(0, (long)before["couponsExpiringWithin24Hours"]!);
        Assert.Equal(0, (long)before["today"]!["claims"]!);

        // 21 November, 10:00 in Shanghai. Measured from the run a day later: campaigns ending in 3 days and in 2 are
        // listed, those ending in 10 are not.
        var t0 = app.Clock.GetUtcNow();
        var ending = await app.Operator().PublishedCampaignAsync(Api.Terms(t0, t => t["claimEndsAt"] = Api.Instant(t0.AddDays(4))));
        var oneDay = await app.Operator().PublishedCampaignAsync(Api.Terms(t0, t =>
        {
            t["claimEndsAt"] = Api.Instant(t0.AddDays(11));
            t["validity"] = new JsonObject { ["type"] = "relative", ["days"] = 1 };
        }));
        var budgeted = await app.Operator().PublishedCampaignAsync(Api.Terms(t0, t =>
        {
            t["claimEndsAt"] = Api.Instant(t0.AddDays(11));
            t["budget"] = 4100;
        }));
        var sooner = await app.Operator().PublishedCampaignAsync(Api.Terms(t0, t => t["claimEndsAt"] = Api.Instant(t0.AddDays(3))));
        var emptier = await app.Operator().PublishedCampaignAsync(Api.Terms(t0, t =>
        {
            t["claimEndsAt"] = Api.Instant(t0.AddDays(11));
            t["budget"] = 2020;
        }));
        // Not running: a draft, and a campaign whose claim window has closed.
        await app.Operator().CreateCampaignAsync(Api.Terms(t0));
        await app.Operator().PublishedCampaignAsync(Api.Terms(t0, t => t["claimEndsAt"] = Api.Instant(t0.AddHours(12))));

        // Yesterday (21 November): two claims, one redeemed.
        var (c1, c2) = (Api.NewId("c1"), Api.NewId("c2"));
        var coupon1 = await ClaimAsync(app, ending, c1);
        await ClaimAsync(app, ending, c2);
        await RedeemAsync(app, c1, coupon1);

        // Today (22 November, 10:00 in Shanghai): six claims, four redeemed; the budgets spent to 100 of 4100 (2.4 %) and 20 of 2020 (1 %).
        app.Clock.Advance(TimeSpan.FromDays(1));
        for (var i = 0; i < 2; i++)
        {
            var customer = Api.NewId("cb");
            await RedeemAsync(app, customer, await ClaimAsync(app, budgeted, customer));
        }
        var spender = Api.NewId("ce");
        await RedeemAsync(app, spender, await ClaimAsync(app, emptier, spender));
        // Three 1-day coupons (valid to midnight tonight, 16:00Z): one used, two left to expire within 24 hours.
        var customers = Enumerable.Range(0, 3).Select(i => Api.NewId($"cd{i}")).ToArray();
        var coupons = new List<string>();
        foreach (var customer in customers) coupons.Add(await ClaimAsync(app, oneDay, customer, "h5"));
        await RedeemAsync(app, customers[0], coupons[0], "h5");

        app.Clock.Advance(TimeSpan.FromMinutes(1));
        var runAt = app.Clock.GetUtcNow();
        await app.RunAggregateStatsAsync();
        StatsRig.AssertMatchesRecount(await app.CompareAsync());

        var overview = await (await app.Operator().GetAsync(Path)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("Asia/Shanghai", (string?)overview["timeZone"]);
        Assert.Equal(runAt, Instant(overview["computedAt"]));
        Assert.Equal(runAt, Instant(overview["asOf"]));
        Assert.Equal(0, (double)overview["lagSeconds"]!, 3);
        Assert.Equal(5, (int)overview["campaignsRunning"]!);
        // Soonest first: the one ending in 2 days, then in 3.
        Assert.Equal(2, (int)overview["endingWithin7Days"]!);
        Assert.Equal([(sooner, t0.AddDays(3)), (ending, t0.AddDays(4))],
            overview["ending"]!.AsArray().Select(c => ((string)c!["id"]!, Instant(c["claimEndsAt"]))).ToArray());
        // Emptiest first.
        Assert.Equal(2, (int)overview["budgetBelow5Percent"]!);
        Assert.Equal([(emptier, 2020L, 20L), (budgeted, 4100L, 100L)],
            overview["lowBudget"]!.AsArray().Select(c => ((string)c!["id"]!, (long)c["budgetTotal"]!, (long)c["budgetLeft"]!)).ToArray());
        Assert.Equal(2, (long)overview["couponsExpiringWithin24Hours"]!);
        Assert.Equal((6L, 4L, 4 * Gmv, 4 * Discount), Totals(overview["today"]));
        Assert.Equal((2L, 1L, Gmv, Discount), Totals(overview["yesterday"]));

        Assert.Equal(HttpStatusCode.Forbidden, (await app.Customer(Api.NewId("c")).GetAsync(Path)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await app.As(Api.NewId("p"), "promoter").GetAsync(Path)).StatusCode);
        await (await app.As("adam", "admin").GetAsync(Path)).AssertStatusAsync(HttpStatusCode.OK);

        static (long, long, long, long) Totals(JsonNode? day)
            => ((long)day!["claims"]!, (long)day["redemptions"]!, (long)day["gmv"]!, (long)day["discount"]!);
    }

    [Theory]
    [InlineData("Asia/Shanghai", 1, 1)]
    [InlineData("UTC", 0, 2)]
    public async Task Today_and_yesterday_are_the_platforms_days_whatever_the_campaigns_time_zone(string platformZone, long today, long yesterday)
    {
        await using var app = await StatsRig.StartAsync("days", b => b.UseSetting("Stats:TimeZone", platformZone));
        app.Clock.Set(new DateTimeOffset(2026, 11, 21, 15, 0, 0, TimeSpan.Zero));
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["timeZone"] = "UTC"));
        // Both on 21 November in the campaign's UTC; in Shanghai 23:30 on the 21st and 00:30 on the 22nd.
        app.Clock.Set(new DateTimeOffset(2026, 11, 21, 15, 30, 0, TimeSpan.Zero));
        await ClaimAsync(app, campaign, Api.NewId("c"));
        app.Clock.Set(new DateTimeOffset(2026, 11, 21, 16, 30, 0, TimeSpan.Zero));
        await ClaimAsync(app, campaign, Api.NewId("c"));

        app.Clock.Set(new DateTimeOffset(2026, 11, 22, 2, 0, 0, TimeSpan.Zero));
        await app.RunAggregateStatsAsync();
        var overview = await (await app.Operator().GetAsync("/api/stats/overview")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(platformZone, (string?)overview["timeZone"]);
        Assert.Equal((today, yesterday), ((long)overview["today"]!["claims"]!, (long)overview["yesterday"]!["claims"]!));
    }

    [Fact]
    public async Task The_csv_export_has_the_header_and_one_row_per_local_day_with_the_numbers_of_the_json_series()
    {
        await using var app = await StatsRig.StartAsync("csv");
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["perCustomerLimit"] = 2));
        var customer = Api.NewId("c");
        var order = await RedeemAsync(app, customer, await ClaimAsync(app, campaign, customer));
        await ClaimAsync(app, campaign, customer, "h5");
        await ClaimAsync(app, campaign, Api.NewId("c"), "mini_program");
        app.Clock.Advance(TimeSpan.FromDays(1));
        await (await app.OrderSystem().StepAsync(order, "refund")).AssertStatusAsync(HttpStatusCode.OK);
        await app.RunAggregateStatsAsync();
        StatsRig.AssertMatchesRecount(await app.CompareAsync());

        foreach (var query in new[] { "?from=2026-11-20&to=2026-11-23", "?from=2026-11-20&to=2026-11-23&channel=h5" })
        {
            var response = await app.Operator().GetAsync($"/api/campaigns/{campaign}/stats.csv{query}");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("text/csv", response.Content.Headers.ContentType?.MediaType);
            Assert.Equal("utf-8", response.Content.Headers.ContentType?.CharSet);
            var disposition = response.Content.Headers.ContentDisposition;
            Assert.NotNull(disposition);
            Assert.Equal("attachment", disposition.DispositionType);
            Assert.Equal($"stats-{campaign}-20261120-20261123.csv", disposition.FileName?.Trim('"'));
            var rows = (await response.Content.ReadAsStringAsync()).Split("\r\n");
            Assert.Equal("", rows[^1]); // every row ends with CRLF
            Assert.Equal(StatsCsv.Header, rows[0]);

            var json = await app.GetStatsAsync(campaign, query);
            var expected = json["series"]!.AsArray().Select(p =>
            {
                var f = StatsRig.FiguresOf(p!["figures"]);
                return string.Join(',', new[] { (string)p["day"]! }.Concat(new[] { f.Claims, f.NewClaimers, f.Locks, f.Redemptions, f.Cancellations,
                    f.Lapsed, f.Refunds, f.Expired, f.Discount, f.Gmv, f.Expiring, f.Commission, f.CommissionReversed, f.HoldoutClaims, f.HoldoutRedemptions }
                    .Select(v => v.ToString(CultureInfo.InvariantCulture))));
            }).ToArray();
            Assert.Equal(expected, rows[1..^1]);
            Assert.Equal(["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23"], rows[1..^1].Select(r => r.Split(',')[0]).ToArray());
        }
        // What happened shows in the rows: three claims on the 21st, the refund's negative money on the 22nd.
        var all = (await (await app.Operator().GetAsync($"/api/campaigns/{campaign}/stats.csv?from=2026-11-21&to=2026-11-22")).Content.ReadAsStringAsync()).Split("\r\n");
        Assert.StartsWith("2026-11-21,3,2,1,1,0,0,0,0,2000,40000,", all[1]);
        Assert.StartsWith("2026-11-22,0,0,0,0,0,0,1,0,-2000,-40000,", all[2]);

        var path = $"/api/campaigns/{campaign}/stats.csv";
        var bad = await (await app.Operator().GetAsync(path + "?from=21-11-2026&to=2026-13-01&channel=tv")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.Equal(["channel", "from", "to"], bad["errors"]!.AsObject().Select(e => e.Key).Order().ToArray());
        var tooLong = await (await app.Operator().GetAsync(path + "?from=2025-01-01&to=2026-11-21")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.Equal(["to"], tooLong["errors"]!.AsObject().Select(e => e.Key).ToArray());
        await (await app.Operator().GetAsync("/api/campaigns/cmp-nosuchcampaign/stats.csv")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        Assert.Equal(HttpStatusCode.Forbidden, (await app.Customer(Api.NewId("c")).GetAsync(path)).StatusCode);
    }

    [Fact]
    public async Task Each_referral_visit_writes_its_own_visit_document_that_expires_after_the_retention_days()
    {
        await using var app = await TestApp.StartAsync();
        var promoter = Api.NewId("p");
        var code = await app.RegisterPromoterAsync(promoter);
        var buyer = Api.NewId("b");
        var firstAt = app.Clock.GetUtcNow();
        await (await app.VisitAsync(buyer, code)).AssertStatusAsync(HttpStatusCode.OK);
        app.Clock.Advance(TimeSpan.FromMinutes(3));
        await (await app.VisitAsync(buyer, code)).AssertStatusAsync(HttpStatusCode.OK);

        // A visit refused (the promoter's own code) is no visit: nothing is written.
        await (await app.VisitAsync(promoter, code)).AssertProblemAsync((HttpStatusCode)422, "self-referral");

        var referrals = app.Services.GetRequiredService<CosmosClient>().GetContainer(app.Database, ReferralStore.Spec.Name);
        var visits = (await VisitsAsync(buyer)).OrderBy(v => Instant(v["at"])).ToList();

        Assert.Equal(2, visits.Count);
        Assert.All(visits, v =>
        {
            Assert.Equal(ReferralStore.VisitRetentionDays * 86_400, (int)v["ttl"]!);
            Assert.Equal(30, ReferralStore.VisitRetentionDays);
            Assert.Equal(buyer, (string)v["buyerId"]!);
            Assert.Equal(promoter, (string)v["promoterId"]!);
            Assert.StartsWith("visit:", (string)v["id"]!);
        });
        Assert.Equal([firstAt, firstAt.AddMinutes(3)], visits.Select(v => Instant(v["at"])).ToArray());
        Assert.NotEqual((string)visits[0]["id"]!, (string)visits[1]["id"]!);
        Assert.Empty(await VisitsAsync(promoter));

        async Task<List<JsonObject>> VisitsAsync(string buyerId)
        {
            var found = new List<JsonObject>();
            var query = referrals.GetItemQueryIterator<JsonObject>(new QueryDefinition("SELECT * FROM c WHERE c.type = @type")
                .WithParameter("@type", ReferralVisit.Kind), requestOptions: new QueryRequestOptions { PartitionKey = new PartitionKey(buyerId) });
            while (query.HasMoreResults) found.AddRange(await query.ReadNextAsync());
            return found;
        }
    }
}
