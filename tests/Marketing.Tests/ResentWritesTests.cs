using System.Net;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Wallet;
using Marketing.Tests.Support;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// Against a real account the SDK may send a write twice (the first attempt applied, its answer lost). These
/// tests send every document write of whole flows twice (<see cref="ResentWrites"/>) and prove that nothing is
/// done twice: never an oversold unit, a budget moved twice, a step answered as someone else's, or a
/// commission credited twice. A re-sent take of stock may under-sell by a unit until the stock recount (the
/// safe direction, by design: docs/claiming.md).
/// </summary>
public sealed class ResentWritesTests
{
    private static async Task<(TestApp App, ResentWrites Resend)> StartAsync(string name)
    {
        var resend = new ResentWrites();
        var app = await TestApp.StartAsync($"{Settings.Get("Cosmos__Database")}-resend-{name}-{Guid.NewGuid():N}"[..60],
            b => b.ConfigureServices(s => s.AddSingleton<RequestHandler>(resend)));
        resend.Armed = true;
        return (app, resend);
    }

    [Fact]
    public async Task A_give_back_sent_twice_returns_its_unit_once()
    {
        await using var app = await TestApp.StartAsync();
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["totalQuantity"] = 5));
        var stocks = app.Services.GetRequiredService<StockStore>();
        await stocks.TryTakeAsync(campaign, app.Clock.GetUtcNow());
        await stocks.TryTakeAsync(campaign, app.Clock.GetUtcNow());

        Assert.True(await stocks.GiveBackAsync(campaign, "cpn_refused1", app.Clock.GetUtcNow()));
        Assert.False(await stocks.GiveBackAsync(campaign, "cpn_refused1", app.Clock.GetUtcNow()));

        var stock = (await stocks.FindAsync(campaign))!;
        Assert.Equal((4, 1), (stock.Remaining, stock.Issued));
        Assert.Equal(Stock.GiveBackMemory, stock.GivenBack.Count);
        Assert.Equal("cpn_refused1", stock.GivenBack[0]);
    }

    [Fact]
    public async Task A_write_refused_by_anything_but_another_write_is_an_error_not_a_lost_race()
    {
        await using var app = await TestApp.StartAsync();
        // A missing container (infra and code drifted apart): a create-if-absent must not read as "someone else created it".
        var missing = app.Services.GetRequiredService<CosmosClient>().GetContainer(app.Database, "no-such-container");
        var error = await Assert.ThrowsAsync<CosmosException>(() => missing.TryCreateAsync(new { id = "x", pk = "p" }, "p", CancellationToken.None));
        Assert.Equal(HttpStatusCode.NotFound, error.StatusCode);
    }

    [Fact]
    public async Task Claims_refusals_and_replays_with_every_write_sent_twice_never_oversell_and_recount_exactly()
    {
        var (app, resend) = await StartAsync("claims");
        await using var _ = app;
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["totalQuantity"] = 100));
        var customers = Enumerable.Range(0, 10).Select(i => Api.NewId($"c{i}")).ToArray();
        foreach (var customer in customers)
        {
            var client = app.Customer(customer);
            var key = Guid.NewGuid().ToString();
            await (await client.ClaimAsync(campaign, key)).AssertStatusAsync(HttpStatusCode.Created);
            await (await client.ClaimAsync(campaign, key)).AssertStatusAsync(HttpStatusCode.Created); // a replay
            await (await client.ClaimAsync(campaign)).AssertProblemAsync(HttpStatusCode.Conflict, "limit-reached"); // a give-back
        }
        Assert.True(resend.Resent > 0);

        var stocks = app.Services.GetRequiredService<StockStore>();
        var stock = (await stocks.FindAsync(campaign))!;
        Assert.Equal(100, stock.Issued + stock.Remaining);
        Assert.InRange(stock.Issued, 10, 100); // never fewer counted than issued: no oversell

        app.Clock.Advance(TimeSpan.FromMinutes(10));
        await app.InvokeTimerAsync("ReconcileStock");
        stock = (await stocks.FindAsync(campaign))!;
        Assert.Equal((10, 90), (stock.Issued, stock.Remaining));
        foreach (var customer in customers)
            Assert.Single((await (await app.Customer(customer).GetAsync("/api/me/coupons")).ReadJsonAsync())["items"]!.AsArray());
    }

    /// <summary>
    /// A sharded campaign (4 shards of 3). Every take the SDK sends twice takes a second unit (under-selling, never
    /// over-selling); a shard's last unit cannot be sold at all while every write is re-sent (the first attempt takes it,
    /// the second is refused on remaining = 0, and the claim answers sold-out): it is lost until the next recount, which
    /// returns it, and lost again. So: rounds of claims (with replays and over-the-limit give-backs) and ExpireCoupons
    /// runs, every write sent twice, until no more coupons come; each shard's counters stay exact (issued + remaining =
    /// total, nothing negative, issued = its coupons after each recount) and the timer never closes the campaign while
    /// units are only lost. Then claims go through once (the connection failures stop) and the sold-out close, every
    /// write again sent twice, ends it with exactly the stock in coupons.
    /// </summary>
    [Fact]
    public async Task A_sharded_campaign_with_every_write_sent_twice_never_oversells_is_closed_only_when_truly_sold_out_and_ends_with_exactly_its_stock()
    {
        var (app, resend) = await StartAsync("shards");
        await using var _ = app;
        const int shards = 4, quantity = 12;
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
        {
            t["stockShards"] = shards;
            t["totalQuantity"] = quantity;
        }));
        var stocks = app.Services.GetRequiredService<StockStore>();
        var walletStore = app.Services.GetRequiredService<WalletStore>();
        var holders = new List<string>();

        async Task ClaimRoundAsync(int round)
        {
            var customers = Enumerable.Range(0, 8).Select(i => Api.NewId($"r{round}c{i}")).ToArray();
            var keys = customers.Select(_ => Guid.NewGuid().ToString()).ToArray();
            var claims = await Task.WhenAll(customers.Select((c, i) => app.Customer(c).ClaimAsync(campaign, keys[i])));
            for (var i = 0; i < customers.Length; i++)
            {
                if (claims[i].StatusCode != HttpStatusCode.Created)
                {
                    await claims[i].AssertProblemAsync(HttpStatusCode.Conflict, "sold-out");
                    continue;
                }
                holders.Add(customers[i]);
                var client = app.Customer(customers[i]);
                await (await client.ClaimAsync(campaign, keys[i])).AssertStatusAsync(HttpStatusCode.Created); // a replay
                // A second coupon: over the limit (its unit given back) or sold out.
                Assert.Equal(HttpStatusCode.Conflict, (await client.ClaimAsync(campaign)).StatusCode);
            }
            // Never more counted than the stock, never a shard below zero, whatever was sent twice.
            Assert.All(await stocks.FindShardsAsync(campaign, shards), c =>
                Assert.True(c.Remaining >= 0 && c.Issued + c.Remaining == c.Total, $"shard {c.ShardNumber}: {c.Issued} + {c.Remaining} of {c.Total}"));
            Assert.InRange(holders.Count, 0, quantity);
        }

        async Task<bool> ExpiryRunClosesAsync()
        {
            app.Clock.Advance(TimeSpan.FromMinutes(10)); // past the stock quiet period
            var closed = (int)(await app.InvokeTimerAsync("ExpireCoupons"))["ReturnValue"]!["CampaignsClosed"]!;
            // Later claims come after the run (a recount stamps its instant; a claim at that same instant counts as seen).
            app.Clock.Advance(TimeSpan.FromSeconds(1));
            return closed == 1;
        }

        var stalled = 0;
        for (var round = 0; stalled < 2; round++)
        {
            var before = holders.Count;
            await ClaimRoundAsync(round);
            Assert.False(await ExpiryRunClosesAsync(), $"closed as sold out with {holders.Count} of {quantity} coupons");
            // The recount made every shard's issued exactly its coupons again, and returned the lost units.
            var byShard = await walletStore.CountIssuedByShardAsync(campaign, shards);
            Assert.Equal(byShard, (await stocks.FindShardsAsync(campaign, shards)).Select(s => s.Issued).ToArray());
            stalled = holders.Count == before ? stalled + 1 : 0;
            Assert.True(round < 20, "claims kept selling under re-sent writes for 20 rounds");
        }
        Assert.True(resend.Resent > 0);
        // Some sold, never all: a shard's last unit is stuck while every take is re-sent (how many sell before two rounds
        // in a row sell nothing depends on which shards the claims hit, so only the bounds are certain).
        Assert.InRange(holders.Count, 1, quantity - 1);

        // The connection failures stop for the claims; the timer's writes are still sent twice.
        resend.Armed = false;
        for (var round = 100; holders.Count < quantity && round < 110; round++)
            await ClaimRoundAsync(round);
        resend.Armed = true;
        var resentBefore = resend.Resent;
        Assert.True(await ExpiryRunClosesAsync());
        Assert.True(resend.Resent > resentBefore);
        Assert.False(await ExpiryRunClosesAsync()); // closed once

        // Exactly the stock in coupons, one per customer; every shard issued exactly the coupons that name it, nothing left.
        Assert.Equal(quantity, holders.Count);
        foreach (var customer in holders)
            Assert.Single((await (await app.Customer(customer).GetAsync("/api/me/coupons")).ReadJsonAsync())["items"]!.AsArray());
        var final = await stocks.FindShardsAsync(campaign, shards);
        Assert.Equal(await walletStore.CountIssuedByShardAsync(campaign, shards), final.Select(s => s.Issued).ToArray());
        Assert.All(final, s => Assert.Equal((StockSharding.Share(quantity, shards, s.ShardNumber), 0, false), (s.Issued, s.Remaining, s.Open)));
        var view = await (await app.Operator().GetAsync($"/api/campaigns/{campaign}")).ReadJsonAsync();
        Assert.Equal(("ended", "sold_out"), ((string?)view["status"], (string?)view["endReason"]));
    }

    [Fact]
    public async Task Lifecycle_and_redemption_steps_with_every_write_sent_twice_answer_as_once_and_move_the_budget_once()
    {
        var (app, resend) = await StartAsync("steps");
        await using var _ = app;
        var op = app.Operator();
        var campaign = await op.PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
        {
            t["totalQuantity"] = 50;
            t["amountOff"] = 1000;
            t["budget"] = 100000;
            t["returnOnRefund"] = true;
        }));
        await (await op.PostAsync($"/api/campaigns/{campaign}/pause", null)).AssertStatusAsync(HttpStatusCode.OK);
        await (await op.PostAsync($"/api/campaigns/{campaign}/resume", null)).AssertStatusAsync(HttpStatusCode.OK);
        var orders = app.OrderSystem();
        var holders = new List<(string Customer, string Coupon)>();
        for (var i = 0; i < 3; i++) holders.Add(await app.CustomerWithCouponAsync(campaign));
        var (confirmed, cancelled, refunded) = (Api.NewId("o"), Api.NewId("o"), Api.NewId("o"));

        await (await orders.LockAsync(confirmed, holders[0].Customer, holders[0].Coupon)).AssertStatusAsync(HttpStatusCode.Created);
        await (await orders.StepAsync(confirmed, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
        await (await orders.LockAsync(cancelled, holders[1].Customer, holders[1].Coupon)).AssertStatusAsync(HttpStatusCode.Created);
        await (await orders.StepAsync(cancelled, "cancel", "changed mind")).AssertStatusAsync(HttpStatusCode.OK);
        await (await orders.LockAsync(refunded, holders[2].Customer, holders[2].Coupon)).AssertStatusAsync(HttpStatusCode.Created);
        await (await orders.StepAsync(refunded, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
        await (await orders.StepAsync(refunded, "refund", "returned")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.True(resend.Resent > 0);

        var budget = (await app.Services.GetRequiredService<StockStore>().FindBudgetAsync(campaign))!;
        Assert.Equal((100000, 99000, 0, 1000), (budget.Budget, budget.Left, budget.Reserved, budget.Spent));
        Assert.Equal("used", await app.CouponStatusAsync(holders[0].Customer, holders[0].Coupon));
        Assert.Equal("available", await app.CouponStatusAsync(holders[1].Customer, holders[1].Coupon));
        Assert.Equal("available", await app.CouponStatusAsync(holders[2].Customer, holders[2].Coupon));
    }

    [Fact]
    public async Task Lapsed_locks_a_dead_locks_takeover_and_its_release_by_the_timer_with_every_write_sent_twice_move_the_budget_once()
    {
        var (app, resend) = await StartAsync("lapse");
        await using var _ = app;
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
        {
            t["amountOff"] = 1000;
            t["budget"] = 100000;
        }));
        var wallets = app.Services.GetRequiredService<WalletStore>();
        var stock = app.Services.GetRequiredService<StockStore>();
        var now = app.Clock.GetUtcNow();
        // Two locks whose attempts died after the coupon and the reservation, before the record (what a crash leaves).
        async Task<(string Customer, string Coupon, string Order)> DeadLockAsync()
        {
            var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
            var order = Api.NewId("o");
            var slot = (await wallets.FindSlotAsync(customer, coupon))!;
            Assert.True(await wallets.TryLockCouponAsync(slot.Ref, null, order, now.AddMinutes(30), now, 1000));
            Assert.Equal(0, await stock.TryReserveBudgetAsync(campaign, order, coupon, 1000));
            return (customer, coupon, order);
        }
        var retried = await DeadLockAsync();
        var abandoned = await DeadLockAsync();
        var (lapsing, lapsingCoupon) = await app.CustomerWithCouponAsync(campaign);
        await (await app.OrderSystem().LockAsync(Api.NewId("o"), lapsing, lapsingCoupon)).AssertStatusAsync(HttpStatusCode.Created);

        // A retry of the first, once its attempt can no longer write, takes it over and confirms.
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        var orders = app.OrderSystem();
        await (await orders.LockAsync(retried.Order, retried.Customer, retried.Coupon)).AssertStatusAsync(HttpStatusCode.Created);
        await (await orders.StepAsync(retried.Order, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
        // The timer releases the other dead lock and the lapsed one.
        app.Clock.Advance(TimeSpan.FromMinutes(31));
        var report = (await app.InvokeTimerAsync("ExpireCoupons"))["ReturnValue"]!;
        Assert.Equal(2, (int)report["LocksReleased"]!);
        Assert.True(resend.Resent > 0);

        var budget = (await stock.FindBudgetAsync(campaign))!;
        Assert.Equal((100000, 99000, 0, 1000), (budget.Budget, budget.Left, budget.Reserved, budget.Spent));
        Assert.Equal("used", await app.CouponStatusAsync(retried.Customer, retried.Coupon));
        Assert.Equal("available", await app.CouponStatusAsync(abandoned.Customer, abandoned.Coupon));
        Assert.Equal("available", await app.CouponStatusAsync(lapsing, lapsingCoupon));
        Assert.Equal("cancelled", (string?)(await (await app.OrderSystem().GetAsync($"/api/redemptions/{abandoned.Order}")).ReadJsonAsync())["state"]);
    }

    [Fact]
    public async Task Settlement_and_payout_with_every_write_sent_twice_credit_once_and_report_applied()
    {
        var (app, resend) = await StartAsync("ledger");
        await using var _ = app;
        await app.SetRulesAsync(1000, 500);
        var inviter = Api.NewId("p");
        var promoter = Api.NewId("p");
        var promoterCode = await app.RegisterPromoterAsync(promoter, await app.RegisterPromoterAsync(inviter));
        var buyer = Api.NewId("b");
        await (await app.VisitAsync(buyer, promoterCode)).AssertStatusAsync(HttpStatusCode.OK);
        var paid = Distribution.OrderEvent("paid", Api.NewId("o"), buyer, app.Clock.GetUtcNow(), Distribution.Line("l1", "shoes", 30000));

        Assert.Equal("applied", await app.SettleAsync(paid));
        Assert.Equal("duplicate", await app.SettleAsync(paid));
        Assert.True(resend.Resent > 0);

        Assert.Equal(3000, (long)(await app.CommissionsAsync(promoter)).Sum(e => (long)e["amount"]!));
        Assert.Equal(1500, (long)(await app.CommissionsAsync(inviter)).Sum(e => (long)e["amount"]!));
        app.Clock.Advance(TimeSpan.FromDays(8));
        await app.InvokeTimerAsync("ReleaseCommissions");
        var batch = Api.NewId("b");
        var csv = await (await app.PayoutAsync(batch, 1)).Content.ReadAsStringAsync();
        Assert.Equal(3000, Distribution.ParseCsv(csv)[promoter]);
        Assert.Equal(csv, await (await app.PayoutAsync(batch, 1)).Content.ReadAsStringAsync());
        Assert.Equal(0, (long)(await app.BalanceAsync(promoter))["available"]!);
    }
}
