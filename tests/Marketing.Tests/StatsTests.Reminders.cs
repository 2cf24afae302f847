using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Stats;
using Marketing.Tests.Support;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The reminders' experiment in the statistics (issue 14): the claims and redemptions of the customers a campaign's
/// reminder policy holds out, against everyone else's, counted by AggregateStats and by recount-stats alike.
/// </summary>
public sealed partial class StatsTests
{
    private static JsonObject Reminders(int holdoutPercent, params int[] offsetsHours)
        => new() { ["offsetsHours"] = new JsonArray([.. offsetsHours.Select(h => (JsonNode)h)]), ["holdoutPercent"] = holdoutPercent };

    private static (long Claimed, long Redeemed, double? Rate) Group(JsonNode? group)
        => ((long)group!["claimed"]!, (long)group["redeemed"]!, (double?)group["redemptionRate"]);

    private static double? Rate(long redeemed, long claimed) => claimed > 0 ? Math.Round(redeemed / (double)claimed, 4) : null;

    [Fact]
    public async Task With_a_50_percent_holdout_each_groups_claims_redemptions_and_rate_equal_a_count_made_from_HoldsOut_on_every_fold_and_recount()
    {
        await using var app = await StatsRig.StartAsync("holdout");
        // On the real clock: the recount-stats command below (another process) recounts only days recent enough.
        app.Clock.Set(DateTimeOffset.UtcNow);
        var today = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(app.Clock.GetUtcNow(), TimeZoneInfo.FindSystemTimeZoneById("Asia/Shanghai")).DateTime);
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
        {
            t["perCustomerLimit"] = 2;
            t["reminders"] = Reminders(50, 24);
        }));
        var policy = new ReminderPolicy { HoldoutPercent = 50 };

        // At least 20 customers and at least 5 on each side, whatever ids come out.
        var customers = new List<string>();
        while (customers.Count < 20 || customers.Count(c => policy.HoldsOut(campaign, c)) < 5 || customers.Count(c => !policy.HoldsOut(campaign, c)) < 5)
            customers.Add(Api.NewId("c"));
        var channels = new[] { "app", "mini_program", "h5" };
        var expected = (Claims: 0L, Redemptions: 0L, HoldoutClaims: 0L, HoldoutRedemptions: 0L);
        var orders = new List<string>();
        for (var i = 0; i < customers.Count; i++)
        {
            var customer = customers[i];
            var held = policy.HoldsOut(campaign, customer);
            var coupon = await ClaimAsync(app, campaign, customer, channels[i % 3]);
            var claims = 1;
            // Every third customer claims a second coupon: groups are of customers, every claim of theirs counts in theirs.
            if (i % 3 == 0)
            {
                await ClaimAsync(app, campaign, customer, channels[(i + 1) % 3]);
                claims++;
            }
            expected.Claims += claims;
            if (held) expected.HoldoutClaims += claims;
            // Every other customer pays with the first coupon, every fifth locks it and cancels (no redemption).
            if (i % 2 == 0 || i % 5 == 0)
            {
                var order = Api.NewId("o");
                await LockAsync(app, order, customer, coupon, "app");
                await StepAsync(app, order, i % 2 == 0 ? "confirm" : "cancel");
                if (i % 2 != 0) continue;
                orders.Add(order);
                expected.Redemptions++;
                if (held) expected.HoldoutRedemptions++;
            }
        }
        // A refund takes money back, not the redemption: both groups' redemption counts stay.
        await StepAsync(app, orders[0], "refund");

        await app.RunAggregateStatsAsync();

        // The fold equals the recount, the new figures included, and both equal the count made here from HoldsOut.
        StatsRig.AssertMatchesRecount(await app.CompareAsync());
        var query = $"?from={today.AddDays(-1):yyyy-MM-dd}&to={today.AddDays(1):yyyy-MM-dd}";
        var stats = await app.GetStatsAsync(campaign, query);
        var totals = StatsRig.FiguresOf(stats["totals"]);
        Assert.Equal(expected, (totals.Claims, totals.Redemptions, totals.HoldoutClaims, totals.HoldoutRedemptions));
        var recounted = await app.RecountedTotalsAsync(campaign);
        Assert.Equal((expected.HoldoutClaims, expected.HoldoutRedemptions), (recounted.HoldoutClaims, recounted.HoldoutRedemptions));

        var reminders = stats["reminders"]!;
        Assert.Equal(50, (int)reminders["holdoutPercent"]!);
        Assert.Equal([24], reminders["offsetsHours"]!.AsArray().Select(h => (int)h!).ToArray());
        var (remindedClaims, remindedRedemptions) = (expected.Claims - expected.HoldoutClaims, expected.Redemptions - expected.HoldoutRedemptions);
        Assert.Equal((remindedClaims, remindedRedemptions, Rate(remindedRedemptions, remindedClaims)), Group(reminders["reminded"]));
        Assert.Equal((expected.HoldoutClaims, expected.HoldoutRedemptions, Rate(expected.HoldoutRedemptions, expected.HoldoutClaims)), Group(reminders["holdout"]));
        var uplift = Math.Round(remindedRedemptions / (double)remindedClaims - expected.HoldoutRedemptions / (double)expected.HoldoutClaims, 4);
        Assert.Equal(uplift, (double)reminders["uplift"]!, 10);

        // The CSV carries the holdout's figures on the claims' day.
        var csv = (await (await app.Operator().GetAsync($"/api/campaigns/{campaign}/stats.csv?from={today:yyyy-MM-dd}&to={today:yyyy-MM-dd}")).Content.ReadAsStringAsync()).Split("\r\n");
        var columns = csv[0].Split(',');
        var row = csv[1].Split(',');
        Assert.Equal(expected.HoldoutClaims.ToString(CultureInfo.InvariantCulture), row[Array.IndexOf(columns, "holdout_claims")]);
        Assert.Equal(expected.HoldoutRedemptions.ToString(CultureInfo.InvariantCulture), row[Array.IndexOf(columns, "holdout_redemptions")]);

        // The same customers on every run: a second fold counts nothing, and recount-stats in another process (another
        // string hash seed, another instance) sorts every customer as this one did.
        Assert.Equal(0, (int)(await app.RunAggregateStatsAsync())["Counted"]!);
        var recount = await RecountStatsAsync(app, campaign);
        Assert.True(recount.Exit == 0, recount.Output);
        Assert.Contains("Stats match the recount.", recount.Output);
    }

    [Fact]
    public async Task Without_a_holdout_the_holdout_is_zero_with_no_rate_and_no_uplift_and_without_offsets_there_is_no_experiment()
    {
        await using var app = await StatsRig.StartAsync("noholdout");
        var op = app.Operator();
        var now = app.Clock.GetUtcNow();
        var noHoldout = await op.PublishedCampaignAsync(Api.Terms(now)); // the default policy: 24 hours before expiry, 0 % held out
        var noReminders = await op.PublishedCampaignAsync(Api.Terms(now, t => t["reminders"] = Reminders(50)));
        var customers = Enumerable.Range(0, 4).Select(_ => Api.NewId("c")).ToArray();
        foreach (var campaign in new[] { noHoldout, noReminders })
        {
            var coupons = new List<string>();
            foreach (var customer in customers) coupons.Add(await ClaimAsync(app, campaign, customer, "app"));
            var order = Api.NewId("o");
            await LockAsync(app, order, customers[0], coupons[0], "app");
            await StepAsync(app, order, "confirm");
        }

        await app.RunAggregateStatsAsync();
        StatsRig.AssertMatchesRecount(await app.CompareAsync());

        var stats = await app.GetStatsAsync(noHoldout, "?from=2026-11-20&to=2026-11-23");
        var reminders = stats["reminders"]!;
        Assert.Equal(0, (int)reminders["holdoutPercent"]!);
        Assert.Equal((4L, 1L, (double?)0.25), Group(reminders["reminded"]));
        Assert.Equal((0L, 0L, (double?)null), Group(reminders["holdout"]));
        Assert.Null(reminders["uplift"]);
        var totals = StatsRig.FiguresOf(stats["totals"]);
        Assert.Equal((0L, 0L), (totals.HoldoutClaims, totals.HoldoutRedemptions));

        // No offsets: the campaign reminds no one, so there is nothing to compare and the answer has no reminders (null,
        // left out as the API leaves out every null). Its customers are still sorted by the same rule (the figures cost
        // nothing more), ready should reminders be turned on.
        var none = await app.GetStatsAsync(noReminders, "?from=2026-11-20&to=2026-11-23");
        Assert.Null(none["reminders"]);
        Assert.NotNull(none["funnel"]);
        var policy = new ReminderPolicy { HoldoutPercent = 50 };
        Assert.Equal(customers.Count(c => policy.HoldsOut(noReminders, c)), StatsRig.FiguresOf(none["totals"]).HoldoutClaims);
    }

    [Fact]
    public async Task Changing_the_holdout_percent_mid_campaign_sorts_the_facts_counted_from_then_on_and_the_recount_names_only_the_holdout_figures()
    {
        await using var app = await StatsRig.StartAsync("holdoutchange");
        var op = app.Operator();
        var terms = Api.Terms(app.Clock.GetUtcNow());
        var campaign = await op.PublishedCampaignAsync(terms);
        var policy = new ReminderPolicy { HoldoutPercent = 50 };
        var before = new List<string>();
        while (before.Count(c => policy.HoldsOut(campaign, c)) < 2) before.Add(Api.NewId("c"));
        foreach (var customer in before) await ClaimAsync(app, campaign, customer, "app");
        await app.RunAggregateStatsAsync();

        var changed = terms.DeepClone().AsObject();
        changed["reminders"] = Reminders(50, 24);
        await (await op.PutAsync($"/api/campaigns/{campaign}", Api.JsonContent(changed))).AssertStatusAsync(HttpStatusCode.OK);
        var after = Enumerable.Range(0, 6).Select(_ => Api.NewId("c")).ToArray();
        foreach (var customer in after) await ClaimAsync(app, campaign, customer, "app");
        await app.RunAggregateStatsAsync();

        // The claims counted before the change stay in the reminder group (0 % held out then); those after are sorted at 50 %.
        var stored = await app.StoredTotalsAsync(campaign);
        Assert.Equal((before.Count + after.Length, (long)after.Count(c => policy.HoldsOut(campaign, c))), (stored.Claims, stored.HoldoutClaims));
        // The recount sorts every fact by the policy as it is now: it names the claims' day, and in it the holdout figure alone.
        var difference = Assert.Single(await app.CompareAsync(campaign));
        var (old, recounted) = Assert.Single(difference.Cells).Value;
        Assert.Equal(old! with { HoldoutClaims = recounted!.HoldoutClaims }, recounted);
        Assert.Equal(stored.HoldoutClaims + before.Count(c => policy.HoldsOut(campaign, c)), recounted.HoldoutClaims);
    }
}
