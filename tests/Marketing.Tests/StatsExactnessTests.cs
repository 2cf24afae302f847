using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Hosting;
using Marketing.Functions.Stats;
using Marketing.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// Nothing counted twice, nothing lost: the fold killed after N Cosmos requests (N = 1, 2, 3, ...) with more activity
/// after each death, two folds at once, every write sent twice; each time the stored figures end equal to the recount,
/// and the recount equals what the test did (so the oracle is not empty).
/// </summary>
public sealed class StatsExactnessTests
{
    private const long Gmv = 40000, Discount = 2000;
    private static readonly string[] Channels = ["app", "mini_program", "h5"];

    /// <summary>The activity of one campaign as the test did it, to check the recount against.</summary>
    private sealed class Activity(TestApp app, string campaign, int holdoutPercent = 0)
    {
        private readonly Marketing.Functions.Campaigns.ReminderPolicy policy = new() { HoldoutPercent = holdoutPercent };
        /// <summary>1 when the campaign's reminder policy holds the customer out (a count made here, from the rule itself).</summary>
        private long HeldOut(string customer) => policy.HoldsOut(campaign, customer) ? 1 : 0;
        public string CampaignId => campaign;
        private readonly Queue<(string Customer, string Coupon)> unlocked = new();
        private readonly Queue<string> paid = new();
        private int next;
        public Figures Done { get; private set; } = Figures.Zero;

        private void Add(Figures f)
        {
            lock (this) Done = Done.Plus(f);
        }

        public async Task ClaimAsync(int count)
            => await Task.WhenAll(Enumerable.Range(0, count).Select(async _ =>
            {
                var customer = Api.NewId("c");
                var channel = Channels[Interlocked.Increment(ref next) % Channels.Length];
                var claimed = await (await app.Customer(customer).ClaimAsync(campaign, channel: channel)).AssertStatusAsync(HttpStatusCode.Created);
                // Expiring: the coupon counts as not used at its end of validity until an order confirms it.
                Add(new Figures { Claims = 1, NewClaimers = 1, Expiring = 1, HoldoutClaims = HeldOut(customer) });
                lock (unlocked) unlocked.Enqueue((customer, (string)claimed["id"]!));
            }));

        /// <summary>Locks <paramref name="count"/> coupons at once, then confirms, cancels or leaves them locked in turn.</summary>
        public async Task LockAsync(int count, int confirm, int cancel)
        {
            var taken = new List<(string Customer, string Coupon)>();
            lock (unlocked) while (taken.Count < count && unlocked.TryDequeue(out var c)) taken.Add(c);
            var orders = taken.Select(_ => Api.NewId("o")).ToArray();
            var orderSystem = app.OrderSystem();
            await Task.WhenAll(taken.Select((c, i) => Lock(orders[i], c, Channels[i % Channels.Length])));
            Add(new Figures { Locks = taken.Count });
            await Task.WhenAll(orders.Take(confirm).Select(async (o, i) =>
            {
                await (await orderSystem.StepAsync(o, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
                Add(new Figures { Redemptions = 1, Discount = Discount, Gmv = Gmv, Expiring = -1, HoldoutRedemptions = HeldOut(taken[i].Customer) });
                lock (paid) paid.Enqueue(o);
            }).Concat(orders.Skip(confirm).Take(cancel).Select(async o =>
            {
                await (await orderSystem.StepAsync(o, "cancel")).AssertStatusAsync(HttpStatusCode.OK);
                Add(new Figures { Cancellations = 1 });
            })));

            async Task Lock(string order, (string Customer, string Coupon) c, string channel)
                => await (await orderSystem.LockAsync(order, c.Customer, c.Coupon, Orders.Draft(channel: channel))).AssertStatusAsync(HttpStatusCode.Created);
        }

        public async Task RefundAsync(int count)
        {
            var orders = new List<string>();
            lock (paid) while (orders.Count < count && paid.TryDequeue(out var o)) orders.Add(o);
            await Task.WhenAll(orders.Select(async o =>
            {
                await (await app.OrderSystem().StepAsync(o, "refund")).AssertStatusAsync(HttpStatusCode.OK);
                Add(new Figures { Refunds = 1, Discount = -Discount, Gmv = -Gmv });
            }));
        }

        public void Lapsed(int count) => Add(new Figures { Lapsed = count });
        public void Expired(int count) => Add(new Figures { Expired = count });
    }

    [Fact]
    public async Task Folds_killed_after_every_number_of_requests_and_overlapping_folds_end_equal_to_the_recount()
    {
        await using var app = await StatsRig.StartAsync("crash");
        var now = app.Clock.GetUtcNow();
        var op = app.Operator();
        // Half its customers held out of reminders: the holdout's claims and redemptions must come out exact too.
        var budgeted = new Activity(app, await op.PublishedCampaignAsync(Api.Terms(now, t =>
        {
            t["budget"] = 10_000_000;
            t["totalQuantity"] = 1000;
            t["reminders"] = new JsonObject { ["offsetsHours"] = new JsonArray(24), ["holdoutPercent"] = 50 };
        })), holdoutPercent: 50);
        var shortLived = new Activity(app, await op.PublishedCampaignAsync(Api.Terms(now, t =>
        {
            t["timeZone"] = "UTC";
            t["validity"] = new JsonObject { ["type"] = "relative", ["days"] = 1 };
        })));
        await Task.WhenAll(budgeted.ClaimAsync(30), shortLived.ClaimAsync(12));
        await budgeted.LockAsync(16, confirm: 10, cancel: 3); // three stay locked, to lapse later
        await budgeted.RefundAsync(4);

        // Crash after 1, 2, 3, ... requests, more activity after each, until a fold gets through. Small pages: many
        // places to die between counting a page and saving the cursor.
        var seen = new List<string>();
        var sawPartial = false;
        var movedClock = false;
        var completed = false;
        for (var crashAfter = 1; crashAfter < 400 && !completed; crashAfter++)
        {
            var crash = new Crash();
            crash.Arm(crashAfter);
            using var client = TestCosmos.Client(crash);
            var folder = StatsRig.Folder(app, client.GetDatabase(app.Database), pageSize: 4, parallelism: 2);
            completed = await Record.ExceptionAsync(() => folder.RunAsync(RunDeadline.None, CancellationToken.None)) is null;
            if (completed) break;

            var stored = StatsRig.Facts(await app.StoredTotalsAsync(budgeted.CampaignId)) + StatsRig.Facts(await app.StoredTotalsAsync(shortLived.CampaignId));
            var recounted = StatsRig.Facts(await app.RecountedTotalsAsync(budgeted.CampaignId)) + StatsRig.Facts(await app.RecountedTotalsAsync(shortLived.CampaignId));
            sawPartial |= stored > 0 && stored < recounted;
            seen.Add($"{crashAfter}:{stored}/{recounted}");

            // More activity before the next attempt: claims, locks and steps, and once the clock moves two days on
            // (the short-lived coupons expire unused, the three open locks lapse).
            await budgeted.ClaimAsync(2);
            if (crashAfter % 3 == 0) await budgeted.LockAsync(2, confirm: 1, cancel: 1);
            if (crashAfter % 5 == 0) await budgeted.RefundAsync(1);
            if (crashAfter == 3)
            {
                app.Clock.Advance(TimeSpan.FromDays(2));
                var expiry = (await app.InvokeTimerAsync("ExpireCoupons"))["ReturnValue"]!;
                Assert.Equal((12, 3), ((int)expiry["CouponsExpired"]!, (int)expiry["LocksReleased"]!));
                shortLived.Expired(12);
                budgeted.Lapsed(3);
                movedClock = true;
            }
        }
        Assert.True(completed, "no fold completed: " + string.Join(", ", seen));
        Assert.True(movedClock, "the fold completed before the clock moved: " + string.Join(", ", seen));
        Assert.True(sawPartial, "no crash landed part way through the facts: " + string.Join(", ", seen));
        Assert.True(seen.Count >= 10, "fewer crashes than expected before a fold got through: " + string.Join(", ", seen));

        // Two folds at once (two instances: two clients) over fresh activity.
        await Task.WhenAll(budgeted.ClaimAsync(10), shortLived.ClaimAsync(5));
        await budgeted.LockAsync(6, confirm: 4, cancel: 2);
        await budgeted.RefundAsync(2);
        using (var first = TestCosmos.Client())
        using (var second = TestCosmos.Client())
        {
            var reports = await Task.WhenAll(
                StatsRig.Folder(app, first.GetDatabase(app.Database), pageSize: 3).RunAsync(RunDeadline.None, CancellationToken.None),
                StatsRig.Folder(app, second.GetDatabase(app.Database), pageSize: 3).RunAsync(RunDeadline.None, CancellationToken.None));
            Assert.True(reports.Sum(r => r.Changes) > 0);
            StatsRig.AssertMatchesRecount(await app.CompareAsync());
        }

        await app.RunAggregateStatsAsync();

        StatsRig.AssertMatchesRecount(await app.CompareAsync());
        Assert.InRange(budgeted.Done.HoldoutClaims, 1, budgeted.Done.Claims - 1); // both groups present, or the check above proves little
        Assert.InRange(budgeted.Done.HoldoutRedemptions, 1, budgeted.Done.Redemptions - 1);
        foreach (var activity in new[] { budgeted, shortLived })
        {
            Assert.Equal(activity.Done, await app.RecountedTotalsAsync(activity.CampaignId));
            var totals = StatsRig.FiguresOf((await app.GetStatsAsync(activity.CampaignId, "?from=2026-11-20&to=2026-11-30"))["totals"]);
            Assert.Equal(activity.Done, totals);
        }
    }

    [Fact]
    public async Task A_day_with_more_new_facts_than_one_batch_holds_is_counted_in_several_batches_each_fact_once()
    {
        await using var app = await StatsRig.StartAsync("chunks");
        var activity = new Activity(app, await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow())));
        await activity.ClaimAsync(60); // one page of 60 wallets: 120 facts of the claims' day, beyond a batch's 99 marks (and 60 of their end of validity's)

        var run = await app.RunAggregateStatsAsync();

        Assert.Equal((180, 180), ((int)run["Facts"]!, (int)run["Counted"]!));
        Assert.Equal(3, app.Services.GetRequiredService<StatsStore>().Batches); // 99 + 21 on the claims' day, 60 on the other
        StatsRig.AssertMatchesRecount(await app.CompareAsync());
        Assert.Equal(activity.Done, await app.StoredTotalsAsync(activity.CampaignId));
    }

    [Fact]
    public async Task A_fold_whose_every_write_is_sent_twice_still_equals_the_recount()
    {
        await using var app = await StatsRig.StartAsync("resend");
        var now = app.Clock.GetUtcNow();
        var activity = new Activity(app, await app.Operator().PublishedCampaignAsync(Api.Terms(now, t =>
        {
            t["budget"] = 1_000_000;
            t["reminders"] = new JsonObject { ["offsetsHours"] = new JsonArray(24), ["holdoutPercent"] = 50 };
        })), holdoutPercent: 50);
        var resend = new ResentWrites { Armed = true };
        using var client = TestCosmos.Client(resend);
        var folder = StatsRig.Folder(app, client.GetDatabase(app.Database), pageSize: 3);

        for (var round = 0; round < 2; round++)
        {
            await activity.ClaimAsync(9);
            await activity.LockAsync(6, confirm: 4, cancel: 1);
            await activity.RefundAsync(1);
            app.Clock.Advance(TimeSpan.FromMinutes(1));

            var report = await folder.RunAsync(RunDeadline.None, CancellationToken.None);

            Assert.True(report.CursorsCaughtUp == StatsFolder.SourceNames.Length, $"the fold stopped before catching up: {report}");
            StatsRig.AssertMatchesRecount(await app.CompareAsync());
            Assert.Equal(activity.Done, await app.RecountedTotalsAsync(activity.CampaignId));
        }
        Assert.True(resend.Resent > 0);
    }
}
