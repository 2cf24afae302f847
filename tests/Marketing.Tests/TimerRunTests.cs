using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Expiry;
using Marketing.Functions.Hosting;
using Marketing.Functions.Redemption;
using Marketing.Functions.Wallet;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// Timers that keep up (issue 11): a run reads the due index a page at a time, works entries (and their wallets and
/// ledger entries) Timers:Parallelism at once across buckets and never more, and stops taking work when its deadline
/// passes, leaving the rest not done for the next run, which finishes it with every effect once. Deadlines pass
/// because a hook moves the test clock mid-run, never by waiting. Each test has its own database: a run reads the
/// whole index.
/// </summary>
public sealed class TimerRunTests
{
    private static Task<TestApp> StartAsync(string name, Action<IWebHostBuilder>? customize = null)
    {
        var database = $"{Settings.Get("Cosmos__Database")}-timers-{name}-{Guid.NewGuid():N}";
        return TestApp.StartAsync(database[..Math.Min(60, database.Length)], customize);
    }

    private static Container Due(TestApp app) => app.Services.GetRequiredService<Database>().GetContainer(DueIndex.Spec.Name);

    private static async Task<JsonObject?> ReadAsync(Container container, string id, string bucket)
    {
        using var response = await container.ReadItemStreamAsync(id, new PartitionKey(bucket));
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        response.EnsureSuccessStatusCode();
        return (await JsonNode.ParseAsync(response.Content))!.AsObject();
    }

    private static int Parallelism(TestApp app) => app.Services.GetRequiredService<IOptions<TimerOptions>>().Value.Parallelism;

    [Fact]
    public async Task A_run_whose_deadline_passes_mid_run_stops_taking_entries_and_the_next_run_works_exactly_the_rest()
    {
        await using var app = await StartAsync("deadline");
        var due = app.Services.GetRequiredService<DueIndex>();
        var container = Due(app);
        var hour = new DateTimeOffset(2026, 11, 21, 5, 0, 0, TimeSpan.Zero);
        var orders = Enumerable.Range(0, 60).Select(i => $"o-stop-{i}").ToList();
        await Parallel.ForEachAsync(orders, async (order, _) => await due.AddLockExpiryAsync(order, hour.AddSeconds(orders.IndexOf(order))));
        var now = hour.AddHours(1);
        app.Clock.Set(now);

        // The 10th entry's work moves the clock past the deadline: the entries in work then finish, nothing more is taken.
        var deadline = new RunDeadline(app.Clock, now.AddMinutes(1));
        var first = new ConcurrentBag<string>();
        var taken = 0;
        var run = new DueRun();
        await due.RunAsync(DueIndex.Expiry, now, run, (entry, _) =>
        {
            first.Add(entry.Id);
            if (Interlocked.Increment(ref taken) == 10) app.Clock.Advance(TimeSpan.FromMinutes(2));
            return Task.FromResult(true);
        }, deadline, CancellationToken.None);

        Assert.True(run.Stopped);
        Assert.True(deadline.Stopped);
        Assert.Empty(run.Failures);
        // At most the entries already in work when the time ran out finish after the 10th.
        Assert.InRange(first.Count, 10, 10 + Parallelism(app) - 1);
        Assert.Equal(first.Count, first.Distinct().Count());
        // Exactly the worked entries are done; a bucket still holding an entry not done is not closed.
        foreach (var order in orders)
        {
            var id = "lock:" + order;
            var bucket = DueIndex.BucketOf(DueIndex.Expiry, hour, id);
            var worked = first.Contains(id);
            Assert.Equal((bool?)worked, (bool?)(await ReadAsync(container, id, bucket))!["done"]);
            if (!worked)
                Assert.Equal(false, (bool?)(await ReadAsync(container, bucket, "expiry:buckets"))!["done"]);
        }

        // The next run (its own time) finds exactly the rest, works each once, and closes every bucket.
        var second = new ConcurrentBag<string>();
        var next = new DueRun();
        await due.RunAsync(DueIndex.Expiry, app.Clock.GetUtcNow(), next, (entry, _) =>
        {
            second.Add(entry.Id);
            return Task.FromResult(true);
        }, RunDeadline.Start(app.Clock, new TimerOptions()), CancellationToken.None);

        Assert.False(next.Stopped);
        Assert.Empty(second.Intersect(first));
        Assert.Equal(orders.Select(o => "lock:" + o).Order(), first.Concat(second).Order());
        foreach (var bucket in orders.Select(o => DueIndex.BucketOf(DueIndex.Expiry, hour, "lock:" + o)).Distinct())
            Assert.Equal(true, (bool?)(await ReadAsync(container, bucket, "expiry:buckets"))!["done"]);
    }

    [Fact]
    public async Task A_bucket_with_more_entries_than_a_page_is_read_a_page_at_a_time_and_worked_while_the_next_page_is_read()
    {
        var pages = new ContainerTraffic(DueIndex.Spec.Name);
        await using var app = await StartAsync("pages", b =>
        {
            b.UseSetting("Timers:PageSize", "5");
            b.ConfigureServices(s => s.AddSingleton<RequestHandler>(pages));
        });
        var due = app.Services.GetRequiredService<DueIndex>();
        var hour = new DateTimeOffset(2026, 11, 21, 5, 0, 0, TimeSpan.Zero);
        // 23 locks that all land in one shard of the hour: one bucket of 23 entries.
        var orders = Enumerable.Range(0, 2000).Select(i => $"o-page-{i}").Where(o => DueIndex.ShardOf("lock:" + o) == 3).Take(23).ToList();
        foreach (var order in orders)
            await due.AddLockExpiryAsync(order, hour.AddMinutes(1));
        pages.Reset();

        var run = new DueRun();
        var readWhenFirstWorked = -1;
        var worked = new ConcurrentBag<string>();
        await due.RunAsync(DueIndex.Expiry, hour.AddHours(1), run, (entry, _) =>
        {
            lock (run)
                if (readWhenFirstWorked < 0) readWhenFirstWorked = run.EntriesRead;
            worked.Add(entry.Id);
            return Task.FromResult(true);
        }, RunDeadline.None, CancellationToken.None);

        Assert.Empty(run.Failures);
        Assert.Equal(orders.Select(o => "lock:" + o).Order(), worked.Order());
        Assert.Equal((1, 23), (run.BucketsRead, run.EntriesRead));
        // One page of the bucket list, then the bucket's 23 entries in pages of at most 5: ⌈23 ÷ 5⌉ = 5.
        Assert.Equal(1 + 5, run.PagesRead);
        Assert.Equal(6, pages.QueryAnswers);
        Assert.Equal(5, pages.LargestAnswer);
        // The first entry was worked with only the first page read: the run never holds the whole bucket.
        Assert.Equal(5, readWhenFirstWorked);
    }

    [Fact]
    public async Task The_items_of_all_entries_in_work_share_the_runs_parallelism_and_never_exceed_it()
    {
        await using var app = await StartAsync("items");
        var due = app.Services.GetRequiredService<DueIndex>();
        var parallelism = Parallelism(app);
        var at = new DateTimeOffset(2026, 11, 21, 5, 30, 0, TimeSpan.Zero);
        // Three paid order events' releases of 10 ledger entries each (what ReleaseCommissions works on).
        for (var e = 0; e < 3; e++)
            await due.AddCommissionReleaseAsync($"ev-{e}", at, [.. Enumerable.Range(0, 10).Select(i => new DueItem($"p-{e}", $"entry-{e}-{i}"))]);

        var inFlight = 0;
        var most = 0;
        var released = new ConcurrentBag<string>();
        var full = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stuck = new CancellationTokenSource(TimeSpan.FromSeconds(60)); // a failure, not a hang, if fewer could run at once
        var run = new DueRun();
        await due.RunAsync(DueIndex.Release, at.AddHours(1), run, async (entry, work) =>
        {
            await work.ForEachAsync(entry.Items!, async (item, _) =>
            {
                var now = Interlocked.Increment(ref inFlight);
                lock (released) most = Math.Max(most, now);
                if (now == parallelism) full.TrySetResult();
                await full.Task.WaitAsync(stuck.Token); // the first items wait until the run's bound is reached
                released.Add(item.Id);
                Interlocked.Decrement(ref inFlight);
            });
            return true;
        }, RunDeadline.None, CancellationToken.None);

        Assert.Empty(run.Failures);
        Assert.Equal(30, released.Count);
        Assert.Equal(30, released.Distinct().Count());
        // Items of different entries ran together (one entry alone holds 10), up to the bound and never beyond.
        Assert.Equal(parallelism, most);
    }

    [Fact]
    public async Task An_expiry_run_stopped_by_its_deadline_is_finished_by_the_next_with_every_coupon_and_lock_once()
    {
        var wallets = new WalletPatches();
        await using var app = await StartAsync("expiry-stop", b => b.ConfigureServices(s => s.AddSingleton<RequestHandler>(wallets)));
        var start = app.Clock.GetUtcNow();
        var op = app.Operator();
        var shortLived = await op.PublishedCampaignAsync(Api.Terms(start, t => t["validity"] = new JsonObject { ["type"] = "relative", ["days"] = 1 }));
        var budgeted = await op.PublishedCampaignAsync(Api.Terms(start, t => t["budget"] = 50000));
        var expiring = await Task.WhenAll(Enumerable.Range(0, 30).Select(_ => app.CustomerWithCouponAsync(shortLived)));
        var lockers = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => app.CustomerWithCouponAsync(budgeted)));
        var orders = lockers.Select(_ => Api.NewId("o")).ToArray();
        for (var i = 0; i < lockers.Length; i++)
            await (await app.OrderSystem().LockAsync(orders[i], lockers[i].Customer, lockers[i].Coupon)).AssertStatusAsync(HttpStatusCode.Created);
        app.Clock.Advance(TimeSpan.FromDays(2));

        // The 10th wallet write of the run moves the clock past the run's deadline.
        var now = app.Clock.GetUtcNow();
        var deadline = new RunDeadline(app.Clock, now.AddMinutes(4));
        wallets.Reset();
        wallets.OnPatch = n => { if (n == 10) app.Clock.Advance(TimeSpan.FromMinutes(5)); };
        var first = await RunAsync(app, now, deadline);
        wallets.OnPatch = null;

        Assert.True(first.Stopped);
        Assert.Empty(first.Failures);
        var expiredSoFar = 0;
        foreach (var (customer, coupon) in expiring)
            expiredSoFar += await StoredStateAsync(app, customer, coupon) == CouponStatus.Expired ? 1 : 0;
        Assert.Equal(first.CouponsExpired, expiredSoFar);
        Assert.InRange(expiredSoFar, 1, 29); // batches of 7: the batch in hand finished, the next was not taken

        var second = await RunAsync(app, app.Clock.GetUtcNow(), RunDeadline.Start(app.Clock, new TimerOptions()));

        Assert.False(second.Stopped);
        Assert.Empty(second.Failures);
        Assert.Equal(30, first.CouponsExpired + second.CouponsExpired);
        Assert.Equal(6, first.LocksReleased + second.LocksReleased);
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
        var quiet = await RunAsync(app, app.Clock.GetUtcNow(), RunDeadline.None);
        Assert.Equal((0, 0, 0), (quiet.BucketsRead, quiet.CouponsExpired, quiet.LocksReleased));
    }

    [Fact]
    public async Task An_expiry_run_expires_a_campaigns_wallets_in_parallel_within_the_bound_at_most_two_operations_per_coupon()
    {
        var wallets = new WalletPatches();
        await using var app = await StartAsync("expiry-parallel", b => b.ConfigureServices(s => s.AddSingleton<RequestHandler>(wallets)));
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
            t["validity"] = new JsonObject { ["type"] = "relative", ["days"] = 1 }));
        var holders = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => app.CustomerWithCouponAsync(campaign)));
        app.Clock.Advance(TimeSpan.FromDays(2));
        var counter = app.Services.GetRequiredService<CosmosRequestCounter>();
        wallets.Reset();
        wallets.WaitForCompany = true;

        var before = counter.Count;
        var run = (await app.InvokeTimerAsync("ExpireCoupons"))["ReturnValue"]!;
        var operations = counter.Count - before;

        Assert.Equal(40, (int)run["CouponsExpired"]!);
        Assert.False((bool)run["Stopped"]!);
        // One coupons entry, its 40 wallets written several at once (the first write waits for a second), never
        // more than the run's bound.
        Assert.InRange(wallets.MostInFlight, 2, Parallelism(app));
        Assert.Equal(40, wallets.Patches);
        Assert.True(operations <= 2 * 40, $"{operations} Cosmos operations for 40 expired coupons");
        foreach (var (customer, coupon) in holders)
            Assert.Equal(CouponStatus.Expired, await StoredStateAsync(app, customer, coupon));
    }

    private static Task<ExpiryReport> RunAsync(TestApp app, DateTimeOffset now, RunDeadline deadline)
    {
        var s = app.Services;
        return ExpireCoupons.RunAsync(s.GetRequiredService<DueIndex>(), s.GetRequiredService<WalletStore>(), s.GetRequiredService<RedemptionStore>(),
            s.GetRequiredService<CampaignStore>(), s.GetRequiredService<StockStore>(), s.GetRequiredService<CampaignCache>(), TimeSpan.FromMinutes(5),
            now, CancellationToken.None, walletBatch: 7, deadline: deadline);
    }

    private static async Task<CouponStatus> StoredStateAsync(TestApp app, string customer, string coupon)
        => (await app.Services.GetRequiredService<WalletStore>().FindSlotAsync(customer, coupon))!.Coupon.State;

    /// <summary>Watches the patches of wallet documents: counts them, calls a hook on each, and measures how many are in flight at once.</summary>
    private sealed class WalletPatches : RequestHandler
    {
        private TaskCompletionSource company = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int patches;
        private int inFlight;
        private int most;

        /// <summary>Called with the patch's number before it is sent.</summary>
        public Action<int>? OnPatch { get; set; }

        /// <summary>The first patch waits (up to 30 s) until a second is in flight: proves two can be.</summary>
        public bool WaitForCompany { get; set; }

        public int Patches => Volatile.Read(ref patches);
        public int MostInFlight => Volatile.Read(ref most);

        /// <summary>Forgets the patches so far (set up before the run under test).</summary>
        public void Reset()
        {
            Volatile.Write(ref patches, 0);
            Volatile.Write(ref most, 0);
            company = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        public override async Task<ResponseMessage> SendAsync(RequestMessage request, CancellationToken cancellationToken)
        {
            if (request.Method.Method != "PATCH" || !request.RequestUri.OriginalString.Contains($"/colls/{WalletStore.Spec.Name}/docs/", StringComparison.Ordinal))
                return await base.SendAsync(request, cancellationToken);
            var n = Interlocked.Increment(ref patches);
            OnPatch?.Invoke(n);
            var now = Interlocked.Increment(ref inFlight);
            lock (this) most = Math.Max(most, now);
            if (now >= 2) company.TrySetResult();
            try
            {
                if (WaitForCompany && n == 1)
                    await company.Task.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken).ContinueWith(_ => { }, CancellationToken.None,
                        TaskContinuationOptions.None, TaskScheduler.Default);
                return await base.SendAsync(request, cancellationToken);
            }
            finally
            {
                Interlocked.Decrement(ref inFlight);
            }
        }
    }
}
