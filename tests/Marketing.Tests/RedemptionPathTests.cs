using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Expiry;
using Marketing.Functions.Hosting;
using Marketing.Functions.Redemption;
using Marketing.Functions.Wallet;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The redemption path at its new shape (docs/redemption.md): a lock writes coupon, budget and then its record; confirm
/// and cancel are decided by a filtered patch of the record; lapsed locks are found by the timer's wallet query. Round
/// trips are counted, every Cosmos request of lock, confirm and cancel is a crash point followed by a replay or a timer
/// run, and races that the record or the coupon must decide are run for real. Each test has its own database: the
/// timer reads every lapsed lock, and a moved clock must not touch other tests' locks.
/// </summary>
public sealed partial class RedemptionPathTests
{
    private const long Discount = 2000; // Api.Terms: 20.00 off

    private static Task<TestApp> StartAsync(string name, Action<IWebHostBuilder>? customize = null) => TestApp.StartAsync(Database(name), customize);

    private static string Database(string name)
    {
        var database = $"{Settings.Get("Cosmos__Database")}-path-{name}-{Guid.NewGuid():N}";
        return database[..Math.Min(60, database.Length)];
    }

    private static Task<string> BudgetedCampaignAsync(TestApp app, long budget = 1_000_000, Action<JsonObject>? change = null)
        => app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
        {
            t["budget"] = budget;
            t["totalQuantity"] = 1000;
            change?.Invoke(t);
        }));

    private static async Task<CampaignBudget> BudgetAsync(TestApp app, string campaign)
    {
        var budget = (await app.Services.GetRequiredService<StockStore>().FindBudgetAsync(campaign))!;
        Assert.Equal(budget.Budget, budget.Left + budget.Reserved + budget.Spent);
        return budget;
    }

    private static async Task<Coupon> StoredAsync(TestApp app, string customer, string coupon)
        => (await app.Services.GetRequiredService<WalletStore>().FindSlotAsync(customer, coupon))!.Coupon;

    private static async Task<JsonNode?> RecordAsync(TestApp app, string orderId)
    {
        var response = await app.OrderSystem().GetAsync($"/api/redemptions/{orderId}");
        return response.StatusCode == HttpStatusCode.NotFound ? null : await response.AssertStatusAsync(HttpStatusCode.OK);
    }

    private static async Task<ExpiryReport> ExpireAsync(TestApp app)
    {
        var report = (await app.InvokeTimerAsync("ExpireCoupons"))["ReturnValue"]!;
        Assert.Empty(report["Failures"]!.AsArray());
        return new ExpiryReport
        {
            LocksReleased = (int)report["LocksReleased"]!,
            LapsedLocksRead = (int)report["LapsedLocksRead"]!,
            LocksFinished = (int)report["LocksFinished"]!,
            EntriesRead = (int)report["EntriesRead"]!,
        };
    }

    [Fact]
    public async Task A_lock_costs_4_round_trips_with_a_budget_and_3_without_a_confirm_or_a_cancel_3_and_2()
    {
        var requests = new DocumentRequests();
        await using var app = await StartAsync("trips", b => b.ConfigureServices(s => s.AddSingleton<RequestHandler>(requests)));
        var budgeted = await BudgetedCampaignAsync(app);
        var unbudgeted = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var orders = app.OrderSystem();
        foreach (var campaign in new[] { budgeted, unbudgeted })
        {
            // Warm-up: container metadata and partition key ranges are read once per client.
            var (c, k) = await app.CustomerWithCouponAsync(campaign);
            var warm = Api.NewId("o");
            await (await orders.LockAsync(warm, c, k)).AssertStatusAsync(HttpStatusCode.Created);
            await (await orders.StepAsync(warm, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
        }

        // Without a budget there is nothing to reserve, spend or release: one round trip less each.
        foreach (var (campaign, lockTrips, stepTrips) in new[] { (budgeted, 4L, 3L), (unbudgeted, 3L, 2L) })
        {
            var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
            var orderId = Api.NewId("o");
            requests.Reset();
            await (await orders.LockAsync(orderId, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
            Assert.Equal(lockTrips, requests.Count);

            requests.Reset();
            await (await orders.StepAsync(orderId, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
            Assert.Equal(stepTrips, requests.Count);

            var (other, otherCoupon) = await app.CustomerWithCouponAsync(campaign);
            var cancelled = Api.NewId("o");
            await (await orders.LockAsync(cancelled, other, otherCoupon)).AssertStatusAsync(HttpStatusCode.Created);
            requests.Reset();
            await (await orders.StepAsync(cancelled, "cancel")).AssertStatusAsync(HttpStatusCode.OK);
            Assert.Equal(stepTrips, requests.Count);

            // A replayed lock: the coupon (locked for this order) and the record that answers it.
            requests.Reset();
            var replay = await orders.LockAsync(orderId, customer, coupon);
            Assert.Equal("used", (string?)(await replay.AssertStatusAsync(HttpStatusCode.Created))["state"]);
            Assert.Equal(2, requests.Count);
        }
        var budget = await BudgetAsync(app, budgeted);
        Assert.Equal((2 * Discount, 0L), (budget.Spent, budget.Reserved));
    }

    public static TheoryData<string, string> Flows => new()
    {
        { "lock", "replay" }, { "lock", "timer" },
        { "confirm", "replay" }, { "confirm", "timer" },
        { "cancel", "replay" }, { "cancel", "timer" },
    };

    [Theory]
    [MemberData(nameof(Flows))]
    public async Task A_crash_after_any_cosmos_request_converges_by_a_replay_or_the_timer(string step, string then)
    {
        await using var app = await StartAsync($"crash-{step}-{then}");
        var campaign = await BudgetedCampaignAsync(app);
        var crash = new Crash();
        await using var crashing = app.WithWebHostBuilder(b => b.ConfigureServices(services =>
        {
            services.RemoveAll<CosmosClient>();
            services.AddSingleton(_ => TestCosmos.Client(crash));
        }));
        HttpClient Crashing()
        {
            var client = crashing.CreateClient();
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", app.Token("orders", ["order_system"]));
            return client;
        }
        // Warm the crashing instance's client (metadata), so that the crash counts document requests only.
        var (wc, wk) = await app.CustomerWithCouponAsync(campaign);
        var warm = Api.NewId("o");
        await (await Crashing().LockAsync(warm, wc, wk)).AssertStatusAsync(HttpStatusCode.Created);
        await (await Crashing().StepAsync(warm, "cancel")).AssertStatusAsync(HttpStatusCode.OK);

        var requestsOfStep = step == "lock" ? 4 : 3;
        var spent = 0L;
        for (var survive = 0; survive < requestsOfStep; survive++)
        {
            var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
            var orderId = Api.NewId("o");
            if (step != "lock") await (await app.OrderSystem().LockAsync(orderId, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);

            crash.Arm(survive);
            var crashed = step == "lock" ? await Crashing().LockAsync(orderId, customer, coupon) : await Crashing().StepAsync(orderId, step);
            crash.Disarm();
            Assert.True((int)crashed.StatusCode >= 500, $"{step} with {survive} requests through: {(int)crashed.StatusCode} {await crashed.Content.ReadAsStringAsync()}");

            string expected;
            if (then == "replay")
            {
                // Past the crashed attempt's writing window, so a retry of a lock may take it over.
                app.Clock.Advance(TimeSpan.FromMinutes(1));
                var orders = app.OrderSystem();
                if (step == "cancel")
                {
                    await (await orders.StepAsync(orderId, "cancel")).AssertStatusAsync(HttpStatusCode.OK);
                    expected = "cancelled";
                }
                else
                {
                    if (step == "lock") Assert.Equal("locked", (string?)(await (await orders.LockAsync(orderId, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created))["state"]);
                    await (await orders.StepAsync(orderId, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
                    expected = "used";
                }
            }
            else
            {
                app.Clock.Advance(TimeSpan.FromMinutes(31)); // past the lock's 30 minutes
                await ExpireAsync(app);
                var record = await RecordAsync(app, orderId);
                // A confirm whose record was written is finished by the timer; anything else is released.
                expected = (string?)record?["state"] == "used" ? "used" : "cancelled";
                Assert.True(step != "confirm" || survive == 0 || expected == "used", $"confirm with {survive} requests through was not finished");
                Assert.Equal(expected, (string?)record?["state"] ?? "cancelled");
                Assert.Equal(0, (await ExpireAsync(app)).LapsedLocksRead); // nothing left for the next run
            }

            spent += expected == "used" ? Discount : 0;
            var stored = await StoredAsync(app, customer, coupon);
            Assert.Equal(expected == "used" ? CouponStatus.Used : CouponStatus.Available, stored.State);
            var budget = await BudgetAsync(app, campaign);
            Assert.Equal((0L, spent), (budget.Reserved, budget.Spent));
        }
    }

    [Fact]
    public async Task A_confirm_racing_the_timers_expire_at_the_lapse_has_exactly_one_winner()
    {
        var database = Database("race");
        await using var orderSide = await TestApp.StartAsync(database);
        await using var timerSide = await TestApp.StartAsync(database); // another instance, with its own clock
        var campaign = await BudgetedCampaignAsync(orderSide);
        var (confirmed, expired) = (0, 0);
        for (var round = 0; round < 8; round++)
        {
            var (customer, coupon) = await orderSide.CustomerWithCouponAsync(campaign);
            var orderId = Api.NewId("o");
            var locked = await (await orderSide.OrderSystem().LockAsync(orderId, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
            var until = DateTimeOffset.Parse((string)locked["lockedUntil"]!);
            // The order system's instance still sees the lock held (1 ms left); the timer's sees it lapsed.
            orderSide.Clock.Set(until.AddMilliseconds(-1));
            timerSide.Clock.Set(until);
            var orders = orderSide.OrderSystem();

            var confirming = orders.StepAsync(orderId, "confirm");
            var expiring = ExpireAsync(timerSide);
            await Task.WhenAll(confirming, expiring);
            var (confirm, timer) = (await confirming, await expiring);

            var record = (await RecordAsync(orderSide, orderId))!;
            var stored = await StoredAsync(orderSide, customer, coupon);
            if (confirm.StatusCode == HttpStatusCode.OK)
            {
                confirmed++;
                Assert.Equal(0, timer.LocksReleased);
                Assert.Equal(("used", CouponStatus.Used), ((string?)record["state"], stored.State));
            }
            else
            {
                expired++;
                await confirm.AssertProblemAsync(HttpStatusCode.Conflict, "invalid-transition");
                Assert.Equal(1, timer.LocksReleased);
                Assert.Equal(("cancelled", CouponStatus.Available), ((string?)record["state"], stored.State));
            }
            Assert.Single(record["history"]!.AsArray(), h => (string?)h!["step"] is "confirm" or "expire");
            orderSide.Clock.Set(until.AddMinutes(1));
            timerSide.Clock.Set(until.AddMinutes(1));
        }
        var budget = await BudgetAsync(orderSide, campaign);
        Assert.Equal((0L, confirmed * Discount), (budget.Reserved, budget.Spent));
        Assert.Equal(8, confirmed + expired);
    }

    [Fact]
    public async Task Two_locks_of_one_order_with_different_coupons_of_one_budgeted_campaign_leave_one_record_and_the_winners_reservation()
    {
        await using var app = await StartAsync("two");
        var campaign = await BudgetedCampaignAsync(app, change: t => t["perCustomerLimit"] = 2);
        var orders = app.OrderSystem();
        const int rounds = 15;
        for (var round = 0; round < rounds; round++)
        {
            var customer = Api.NewId("c");
            var coupons = new List<string>();
            for (var i = 0; i < 2; i++)
                coupons.Add((string)(await (await app.Customer(customer).ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created))["id"]!);
            var orderId = Api.NewId("o");

            var responses = await Task.WhenAll(coupons.Select(c => orders.LockAsync(orderId, customer, c)));

            var won = Array.FindIndex(responses, r => r.StatusCode == HttpStatusCode.Created);
            Assert.True(won >= 0 && responses.Count(r => r.StatusCode == HttpStatusCode.Created) == 1, $"round {round}: " +
                string.Join(", ", responses.Select(r => (int)r.StatusCode)));
            var lost = 1 - won;
            Assert.Equal(HttpStatusCode.Conflict, responses[lost].StatusCode);
            var record = (await RecordAsync(app, orderId))!;
            Assert.Equal(coupons[won], (string?)record["couponId"]);
            Assert.Equal(CouponStatus.Locked, (await StoredAsync(app, customer, coupons[won])).State);
            Assert.Equal(CouponStatus.Available, (await StoredAsync(app, customer, coupons[lost])).State);
        }
        var budget = await BudgetAsync(app, campaign);
        Assert.Equal(rounds * Discount, budget.Reserved); // every winner's reservation intact, no loser's left
    }

    [Fact]
    public async Task A_pending_record_of_the_previous_release_is_resumed_by_a_retry_or_cancelled_by_the_timer_with_its_due_entry()
    {
        await using var app = await StartAsync("pending");
        var campaign = await BudgetedCampaignAsync(app);
        var wallets = app.Services.GetRequiredService<WalletStore>();
        var stock = app.Services.GetRequiredService<StockStore>();
        var due = app.Services.GetRequiredService<DueIndex>();
        var now = app.Clock.GetUtcNow();

        // The previous release: due entry, pending record, then coupon and budget, then record → locked. Three locks
        // interrupted at different points, and one that completed.
        async Task<(string Customer, string Coupon, string Order)> OldLockAsync(RedemptionState state, bool couponLocked)
        {
            var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
            var orderId = Api.NewId("o");
            var slot = (await wallets.FindSlotAsync(customer, coupon))!;
            var until = now.AddMinutes(30);
            await due.AddLockExpiryAsync(orderId, until);
            var record = new Redemption
            {
                Id = orderId, OrderId = orderId, CustomerId = customer, CouponId = coupon, CouponCode = slot.Coupon.Code, CampaignId = campaign,
                CouponIndex = slot.Ref.Index, CouponValidTo = slot.Coupon.ValidTo, Discount = Discount, Currency = "CNY", Budgeted = true,
                ReturnOnRefund = false, State = state, LockedUntil = until, RequestHash = Fingerprint(orderId, customer, coupon), CreatedAt = now,
                History = state == RedemptionState.Locked ? [new RedemptionStep("lock", RedemptionState.Locked, now, "orders")] : [],
            };
            Assert.NotNull(await app.Services.GetRequiredService<RedemptionStore>().TryCreateAsync(record));
            if (couponLocked)
            {
                Assert.True(await wallets.TryChangeCouponAsync(slot.Ref, CouponStatus.Available, null, CouponStatus.Locked, orderId, until));
                Assert.Equal(0, await stock.TryReserveBudgetAsync(campaign, orderId, coupon, Discount));
            }
            return (customer, coupon, orderId);
        }
        var beforeLocking = await OldLockAsync(RedemptionState.Pending, couponLocked: false);
        var afterLocking = await OldLockAsync(RedemptionState.Pending, couponLocked: true);
        var lapsing = await OldLockAsync(RedemptionState.Pending, couponLocked: true);
        var lockedOld = await OldLockAsync(RedemptionState.Locked, couponLocked: true);
        Assert.Equal(3 * Discount, (await BudgetAsync(app, campaign)).Reserved);

        // Within 30 s the pending records are in flight; after that a retry of the same lock finishes them.
        await (await app.OrderSystem().LockAsync(afterLocking.Order, afterLocking.Customer, afterLocking.Coupon))
            .AssertProblemAsync(HttpStatusCode.Conflict, "idempotency-in-flight");
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        var orders = app.OrderSystem();
        foreach (var resumed in new[] { beforeLocking, afterLocking })
        {
            var locked = await (await orders.LockAsync(resumed.Order, resumed.Customer, resumed.Coupon)).AssertStatusAsync(HttpStatusCode.Created);
            Assert.Equal("locked", (string?)locked["state"]);
            await (await orders.StepAsync(resumed.Order, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
            Assert.Equal(CouponStatus.Used, (await StoredAsync(app, resumed.Customer, resumed.Coupon)).State);
        }

        // The others lapse: their due entries (still read) and the lapsed-lock phase release each once.
        app.Clock.Advance(TimeSpan.FromMinutes(31));
        var run = await ExpireAsync(app);
        Assert.Equal(2, run.LocksReleased);
        foreach (var released in new[] { lapsing, lockedOld })
        {
            var record = (await RecordAsync(app, released.Order))!;
            Assert.Equal("cancelled", (string?)record["state"]);
            Assert.Single(record["history"]!.AsArray(), h => (string?)h!["step"] == "expire");
            Assert.Equal(CouponStatus.Available, (await StoredAsync(app, released.Customer, released.Coupon)).State);
        }
        var budget = await BudgetAsync(app, campaign);
        Assert.Equal((0L, 2 * Discount), (budget.Reserved, budget.Spent));
        var again = await ExpireAsync(app);
        Assert.Equal((0, 0), (again.LocksReleased, again.EntriesRead));
    }

    [Fact]
    public async Task The_lapsed_lock_phase_stops_at_its_deadline_and_the_next_run_finishes()
    {
        await using var app = await StartAsync("deadline");
        var campaign = await BudgetedCampaignAsync(app);
        var orders = app.OrderSystem();
        var holders = new List<(string Customer, string Coupon)>();
        for (var i = 0; i < 10; i++)
        {
            var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
            await (await orders.LockAsync(Api.NewId("o"), customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
            holders.Add((customer, coupon));
        }
        app.Clock.Advance(TimeSpan.FromMinutes(31));
        var timers = new TimerOptions { PageSize = 4, Parallelism = 2 };

        // A clock that moves one second each time it is read: the deadline comes after 7 looks (one per page, one per lock).
        var ticking = new TickingClock(app.Clock.GetUtcNow());
        var deadline = new RunDeadline(ticking, app.Clock.GetUtcNow().AddSeconds(6.5));
        var first = await RunAsync(app, timers, deadline);

        Assert.True(deadline.Stopped);
        Assert.InRange(first.LocksReleased, 1, 9);
        var stillLocked = 0;
        foreach (var (customer, coupon) in holders)
            stillLocked += (await StoredAsync(app, customer, coupon)).State == CouponStatus.Locked ? 1 : 0;
        Assert.Equal(10 - first.LocksReleased, stillLocked);

        var second = await RunAsync(app, timers, RunDeadline.None);
        Assert.Equal(10, first.LocksReleased + second.LocksReleased);
        foreach (var (customer, coupon) in holders)
            Assert.Equal(CouponStatus.Available, (await StoredAsync(app, customer, coupon)).State);
        Assert.Equal(0, (await BudgetAsync(app, campaign)).Reserved);
    }

    private static Task<ExpiryReport> RunAsync(TestApp app, TimerOptions timers, RunDeadline deadline)
    {
        var s = app.Services;
        return ExpireCoupons.RunAsync(s.GetRequiredService<DueIndex>(), s.GetRequiredService<WalletStore>(), s.GetRequiredService<RedemptionStore>(),
            s.GetRequiredService<CampaignStore>(), s.GetRequiredService<StockStore>(), s.GetRequiredService<CampaignCache>(), TimeSpan.FromMinutes(5),
            app.Clock.GetUtcNow(), CancellationToken.None, timers: timers, deadline: deadline);
    }

    /// <summary>The lock request's fingerprint as LockCoupon computes it (for records written the previous release's way).</summary>
    private static string Fingerprint(string orderId, string customer, string coupon)
    {
        var body = new JsonObject { ["orderId"] = orderId, ["customerId"] = customer, ["couponId"] = coupon, ["order"] = Orders.Draft() };
        var request = JsonSerializer.Deserialize<LockRequest>(body.ToJsonString(), Json.Options)!;
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(request, Json.Options))));
    }

    /// <summary>Counts document requests (reads, writes, queries) to any container; not the SDK's metadata reads.</summary>
    private sealed partial class DocumentRequests : RequestHandler
    {
        private long count;
        public long Count => Interlocked.Read(ref count);
        public void Reset() => Interlocked.Exchange(ref count, 0);

        public override Task<ResponseMessage> SendAsync(RequestMessage request, CancellationToken cancellationToken)
        {
            var uri = "/" + request.RequestUri.OriginalString.Trim('/');
            if (uri.Contains("/docs", StringComparison.Ordinal) || (Collection().IsMatch(uri) && request.Method != HttpMethod.Get))
                Interlocked.Increment(ref count);
            return base.SendAsync(request, cancellationToken);
        }

        [GeneratedRegex("/colls/[^/]+$")]
        private static partial Regex Collection();
    }

    /// <summary>A clock that moves one second each time it is read.</summary>
    private sealed class TickingClock(DateTimeOffset start) : TimeProvider
    {
        private long reads;
        public override DateTimeOffset GetUtcNow() => start.AddSeconds(Interlocked.Increment(ref reads) - 1);
    }
}
