using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// Issue 11: a campaign's budget never grows with its orders or top-ups (refund entries leave after the commit, top-ups
/// are their own documents, open reservations are capped per shard), is split across shards for hot campaigns, and
/// still moves every amount exactly once under retries, re-sent writes and crashes (docs/redemption.md, "Budgets").
/// </summary>
public sealed class BudgetScaleTests
{
    private static readonly TimeSpan PastLease = StockStore.Lease + StockStore.LeaseMargin;

    [Fact]
    public async Task A_budget_document_keeps_its_size_over_two_thousand_lock_confirm_refund_cycles_and_two_hundred_top_ups()
    {
        await using var app = await TestApp.StartAsync();
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
        {
            t["totalQuantity"] = 20;
            t["amountOff"] = 100;
            t["budget"] = 1_000_000;
            t["returnOnRefund"] = true; // a refund gives the coupon back, so one coupon serves many orders
        }));
        var start = await DocumentSizeAsync(app, campaign);
        var holders = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => app.CustomerWithCouponAsync(campaign)));
        var orders = app.OrderSystem();

        // 8 customers × 250 orders each: lock, confirm (pay), refund (the coupon comes back for the next order).
        await Task.WhenAll(holders.Select(async h =>
        {
            for (var i = 0; i < 250; i++)
            {
                var order = Api.NewId("o");
                await (await orders.LockAsync(order, h.Customer, h.Coupon)).AssertStatusAsync(HttpStatusCode.Created);
                await (await orders.StepAsync(order, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
                await (await orders.StepAsync(order, "refund")).AssertStatusAsync(HttpStatusCode.OK);
            }
        }));
        await Task.WhenAll(Enumerable.Range(0, 8).Select(async worker =>
        {
            for (var i = 0; i < 25; i++)
                await (await TopUpAsync(app.Operator(), campaign, Guid.NewGuid().ToString(), 1, "more")).AssertStatusAsync(HttpStatusCode.OK);
        }));

        var budget = (await app.Services.GetRequiredService<StockStore>().FindBudgetAsync(campaign))!;
        Assert.Equal((1_000_200L, 1_000_200L, 0L, 0L), (budget.Budget, budget.Left, budget.Reserved, budget.Spent));
        Assert.Equal((0, 0, 0), (budget.Orders.Count, budget.Applying.Count, budget.Holds));
        Assert.Null(budget.TopUps);
        // Same numbers of digits, no entries: the document is the size it was at publish (the old shape grew by ~40 bytes per
        // refunded order and ~250 per top-up: ~130 KB here).
        var end = await DocumentSizeAsync(app, campaign);
        Assert.InRange(end, start - 16, start + 16);
        await (await TopUpAsync(app.Operator(), campaign, Guid.NewGuid().ToString(), 1, "listed")).AssertStatusAsync(HttpStatusCode.OK);
        // Every top-up still listed, from its own document, a page at a time (the list grows with the campaign's life).
        var listed = new List<string>();
        string? token = null;
        do
        {
            var page = await (await app.Operator().GetAsync($"/api/campaigns/{campaign}/budget?limit=60"
                + (token is null ? "" : "&continuationToken=" + Uri.EscapeDataString(token)))).AssertStatusAsync(HttpStatusCode.OK);
            Assert.InRange(page["topUps"]!.AsArray().Count, 0, 60);
            listed.AddRange(page["topUps"]!.AsArray().Select(t => (string)t!["key"]!));
            token = (string?)page["continuationToken"];
        } while (token is not null);
        Assert.Equal(201, listed.Distinct().Count());
        Assert.Equal(201, listed.Count);
    }

    [Fact]
    public async Task Concurrent_locks_over_a_budget_covering_exactly_twenty_across_four_shards_let_exactly_twenty_through()
    {
        await using var app = await TestApp.StartAsync();
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
        {
            t["totalQuantity"] = 80;
            t["stockShards"] = 4;
            t["amountOff"] = 1000;
            t["budget"] = 20_000; // 5,000 per shard: five discounts each
        }));
        var holders = await Task.WhenAll(Enumerable.Range(0, 60).Select(_ => app.CustomerWithCouponAsync(campaign)));
        var orders = app.OrderSystem();
        var locks = holders.Select(h => (Order: Api.NewId("o"), h.Customer, h.Coupon)).ToArray();

        var responses = await Task.WhenAll(locks.Select(l => orders.LockAsync(l.Order, l.Customer, l.Coupon)));

        Assert.Equal(20, responses.Count(r => r.StatusCode == HttpStatusCode.Created));
        foreach (var refused in responses.Where(r => r.StatusCode != HttpStatusCode.Created))
            await refused.AssertProblemAsync(HttpStatusCode.Conflict, "budget-exhausted");
        var stocks = app.Services.GetRequiredService<StockStore>();
        var shards = await stocks.FindBudgetShardsAsync(campaign);
        Assert.Equal(4, shards.Count);
        foreach (var shard in shards)
            Assert.Equal((5000L, 0L, 5000L, 5), (shard.Budget, shard.Left, shard.Reserved, shard.Orders.Count));

        // Each step moves its own shard: confirm 5, cancel 5; the cancelled money is free again, in the shards it came from.
        var won = locks.Where((_, i) => responses[i].StatusCode == HttpStatusCode.Created).ToArray();
        await Task.WhenAll(won[..5].Select(l => orders.StepAsync(l.Order, "confirm")));
        await Task.WhenAll(won[5..10].Select(l => orders.StepAsync(l.Order, "cancel")));
        await (await orders.StepAsync(won[0].Order, "refund")).AssertStatusAsync(HttpStatusCode.OK);
        var budget = (await stocks.FindBudgetAsync(campaign))!;
        Assert.Equal((20_000L, 6000L, 10_000L, 4000L, 10), (budget.Budget, budget.Left, budget.Reserved, budget.Spent, budget.Orders.Count));
        foreach (var shard in await stocks.FindBudgetShardsAsync(campaign))
        {
            Assert.Equal(shard.Budget, shard.Left + shard.Reserved + shard.Spent);
            Assert.Equal(shard.Orders.Count, shard.Holds);
        }
    }

    [Fact]
    public async Task A_shard_at_its_cap_of_open_reservations_sends_locks_to_the_next_and_when_all_are_full_answers_busy_until_one_closes()
    {
        await using var app = await TestApp.StartAsync(customize: b => b.UseSetting("Stock:BudgetHoldsPerShard", "3"));
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
        {
            t["totalQuantity"] = 20;
            t["stockShards"] = 2;
            t["amountOff"] = 100;
            t["budget"] = 100_000; // money for all: only the cap stops them
        }));
        var holders = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => app.CustomerWithCouponAsync(campaign)));
        var orders = app.OrderSystem();
        var locks = holders.Select(h => (Order: Api.NewId("o"), h.Customer, h.Coupon)).ToArray();

        var responses = new List<HttpResponseMessage>();
        foreach (var l in locks[..7]) responses.Add(await orders.LockAsync(l.Order, l.Customer, l.Coupon));

        Assert.Equal(6, responses.Count(r => r.StatusCode == HttpStatusCode.Created)); // 2 shards × 3, whatever the hashes
        var busy = await responses[6].AssertProblemAsync(HttpStatusCode.ServiceUnavailable, "busy");
        Assert.NotNull(busy);
        Assert.Equal("available", await app.CouponStatusAsync(locks[6].Customer, locks[6].Coupon)); // the refused lock left nothing behind
        foreach (var shard in await app.Services.GetRequiredService<StockStore>().FindBudgetShardsAsync(campaign))
            Assert.Equal((3, 3), (shard.Holds, shard.Orders.Count));

        await (await orders.StepAsync(locks[0].Order, "confirm")).AssertStatusAsync(HttpStatusCode.OK); // one closes (paid)
        await (await orders.LockAsync(locks[7].Order, locks[7].Customer, locks[7].Coupon)).AssertStatusAsync(HttpStatusCode.Created);
    }

    [Fact]
    public async Task Every_budget_move_and_top_up_happens_once_with_every_write_sent_twice_on_a_sharded_budget()
    {
        var resend = new ResentWrites();
        await using var app = await TestApp.StartAsync($"{Settings.Get("Cosmos__Database")}-resend-budget-{Guid.NewGuid():N}"[..60],
            b => b.ConfigureServices(s => s.AddSingleton<RequestHandler>(resend)));
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
        {
            t["totalQuantity"] = 30;
            t["stockShards"] = 3;
            t["amountOff"] = 1000;
            t["budget"] = 30_000;
            t["returnOnRefund"] = true;
        }));
        var holders = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => app.CustomerWithCouponAsync(campaign)));
        var orders = app.OrderSystem();
        resend.Armed = true;

        var ids = holders.Select(_ => Api.NewId("o")).ToArray();
        for (var i = 0; i < holders.Length; i++)
            await (await orders.LockAsync(ids[i], holders[i].Customer, holders[i].Coupon)).AssertStatusAsync(HttpStatusCode.Created);
        foreach (var id in ids[..4]) await (await orders.StepAsync(id, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
        foreach (var id in ids[4..]) await (await orders.StepAsync(id, "cancel")).AssertStatusAsync(HttpStatusCode.OK);
        foreach (var id in ids[..2]) await (await orders.StepAsync(id, "refund")).AssertStatusAsync(HttpStatusCode.OK);
        foreach (var id in ids[..2]) await (await orders.StepAsync(id, "refund")).AssertStatusAsync(HttpStatusCode.OK); // replays
        var key = Guid.NewGuid().ToString();
        await (await TopUpAsync(app.Operator(), campaign, key, 3001, "push")).AssertStatusAsync(HttpStatusCode.OK);
        await (await TopUpAsync(app.Operator(), campaign, key, 3001, "push")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.True(resend.Resent > 20);
        resend.Armed = false;

        var stocks = app.Services.GetRequiredService<StockStore>();
        var budget = (await stocks.FindBudgetAsync(campaign))!;
        Assert.Equal((33_001L, 33_001L - 2000, 0L, 2000L), (budget.Budget, budget.Left, budget.Reserved, budget.Spent));
        var shards = await stocks.FindBudgetShardsAsync(campaign);
        Assert.Equal([1001L, 1000L, 1000L], shards.Select(s => s.ToppedUp)); // split across the shards, once each
        foreach (var shard in shards)
            Assert.Equal((0, 0, 0, shard.Budget), (shard.Orders.Count, shard.Applying.Count, shard.Holds, shard.Left + shard.Reserved + shard.Spent));
    }

    [Fact]
    public async Task A_refund_killed_after_any_of_its_cosmos_requests_and_replayed_returns_the_discount_once_and_leaves_no_entry()
    {
        await using var app = await TestApp.StartAsync();
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
        {
            t["totalQuantity"] = 10;
            t["amountOff"] = 1000;
            t["budget"] = 100_000;
            t["returnOnRefund"] = true;
        }));
        var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
        var orders = app.OrderSystem();
        var crash = new Crash();
        await using var crashing = app.WithWebHostBuilder(b => b.ConfigureServices(services =>
        {
            services.RemoveAll<CosmosClient>();
            services.AddSingleton(_ => TestCosmos.Client(crash));
        }));
        var crashingOrders = crashing.CreateClient();
        crashingOrders.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", app.Token("orders", ["order_system"]));
        await (await crashingOrders.GetAsync("/api/redemptions/none")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found"); // warm up
        var stocks = app.Services.GetRequiredService<StockStore>();

        var interrupted = 0;
        for (var crashAfter = 0; crashAfter < 8; crashAfter++)
        {
            // A paid order (the coupon came back from the previous refund).
            var order = Api.NewId("o");
            await (await orders.LockAsync(order, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
            await (await orders.StepAsync(order, "confirm")).AssertStatusAsync(HttpStatusCode.OK);

            crash.Arm(crashAfter);
            var killed = await crashingOrders.PostAsync($"/api/redemptions/{order}/refund", null);
            crash.Disarm();
            if (killed.StatusCode != HttpStatusCode.OK) interrupted++;
            // A replay while the killed attempt's lease could still be running is told to come back; after it, it finishes.
            var early = await orders.StepAsync(order, "refund");
            if (early.StatusCode != HttpStatusCode.OK) await early.AssertProblemAsync(HttpStatusCode.Conflict, "idempotency-in-flight");
            app.Clock.Advance(PastLease);
            var replayed = await (await orders.StepAsync(order, "refund")).AssertStatusAsync(HttpStatusCode.OK);
            Assert.Equal("refunded", (string)replayed["state"]!);

            var budget = (await stocks.FindBudgetAsync(campaign))!;
            Assert.True((100_000L, 0L, 0L, 0, 0) == (budget.Left, budget.Reserved, budget.Spent, budget.Orders.Count, budget.Holds),
                $"crash after {crashAfter}: left {budget.Left}, spent {budget.Spent}, entries {string.Join(",", budget.Orders)}, holds {budget.Holds}");
            Assert.Equal("available", await app.CouponStatusAsync(customer, coupon));
        }
        Assert.True(interrupted >= 5, $"only {interrupted} refunds were interrupted"); // read, lease, coupon, budget, commit, entry
    }

    [Fact]
    public async Task A_top_up_killed_after_any_of_its_cosmos_requests_and_replayed_adds_its_money_once_to_every_shard()
    {
        await using var app = await TestApp.StartAsync();
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
        {
            t["totalQuantity"] = 10;
            t["stockShards"] = 2;
            t["amountOff"] = 1000;
            t["budget"] = 10_000;
        }));
        var crash = new Crash();
        await using var crashing = app.WithWebHostBuilder(b => b.ConfigureServices(services =>
        {
            services.RemoveAll<CosmosClient>();
            services.AddSingleton(_ => TestCosmos.Client(crash));
        }));
        var crashingOperator = crashing.CreateClient();
        crashingOperator.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", app.Token("olivia", ["operator"]));
        await (await crashingOperator.GetAsync("/api/campaigns/none")).AssertStatusAsync(HttpStatusCode.NotFound); // warm up
        var stocks = app.Services.GetRequiredService<StockStore>();

        var interrupted = 0;
        var expected = 10_000L;
        for (var crashAfter = 0; crashAfter < 14; crashAfter++)
        {
            var key = Guid.NewGuid().ToString();
            crash.Arm(crashAfter);
            var killed = await TopUpAsync(crashingOperator, campaign, key, 101, "killed");
            crash.Disarm();
            if (killed.StatusCode != HttpStatusCode.OK) interrupted++;
            app.Clock.Advance(PastLease);
            await (await TopUpAsync(app.Operator(), campaign, key, 101, "killed")).AssertStatusAsync(HttpStatusCode.OK);
            expected += 101;

            var shards = await stocks.FindBudgetShardsAsync(campaign);
            Assert.True(expected == shards.Sum(s => s.Budget) && expected == shards.Sum(s => s.Left),
                $"crash after {crashAfter}: budget {shards.Sum(s => s.Budget)}, expected {expected}");
            Assert.All(shards, s => Assert.Empty(s.Applying));
        }
        Assert.True(interrupted >= 8, $"only {interrupted} top-ups were interrupted");
    }

    [Fact]
    public async Task A_budget_document_of_the_old_shape_keeps_working_its_old_key_and_its_old_refund_replay_and_never_grows_again()
    {
        await using var app = await TestApp.StartAsync();
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
        {
            t["totalQuantity"] = 10;
            t["amountOff"] = 1000;
            t["budget"] = 50_000;
        }));
        var holders = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => app.CustomerWithCouponAsync(campaign)));
        var orders = app.OrderSystem();
        // An order refunded under the old code, then an order still locked when the new code arrives.
        var (refunded, locked) = (Api.NewId("o"), Api.NewId("o"));
        await (await orders.LockAsync(refunded, holders[0].Customer, holders[0].Coupon)).AssertStatusAsync(HttpStatusCode.Created);
        await (await orders.StepAsync(refunded, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
        await (await orders.StepAsync(refunded, "refund")).AssertStatusAsync(HttpStatusCode.OK);
        await (await orders.LockAsync(locked, holders[1].Customer, holders[1].Coupon)).AssertStatusAsync(HttpStatusCode.Created);

        // The document as the old code left it: its refunded order's entry, a top-up of 5,000 in its lists, no counters.
        var oldKey = Guid.NewGuid().ToString();
        var oldHash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(
            campaign + "\n" + JsonSerializer.Serialize(new TopUpRequest(5000, "old push"), Json.Options))));
        var stock = app.Services.GetRequiredService<CosmosClient>().GetContainer(app.Database, StockStore.Spec.Name);
        var old = new JsonObject
        {
            ["id"] = "budget", ["campaignId"] = campaign, ["budget"] = 55_000, ["left"] = 54_000, ["reserved"] = 1000, ["spent"] = 0,
            ["orders"] = new JsonObject { [refunded] = "refunded", [locked] = StockStore.Reserved(holders[1].Coupon) },
            ["topUps"] = new JsonArray(new JsonObject
            {
                ["key"] = oldKey, ["amount"] = 5000, ["reason"] = "old push", ["by"] = "olivia", ["at"] = "2026-11-20T10:00:00.000Z", ["requestHash"] = oldHash,
            }),
            ["topUpKeys"] = new JsonArray(oldKey),
        };
        using (var written = await stock.UpsertItemStreamAsync(new MemoryStream(Encoding.UTF8.GetBytes(old.ToJsonString())), new PartitionKey(campaign)))
            Assert.True(written.IsSuccessStatusCode);

        // The old refund replayed: answered as before, no money moves, its entry stays (it counts nowhere).
        await (await orders.StepAsync(refunded, "refund")).AssertStatusAsync(HttpStatusCode.OK);
        // The old key replayed: the same answer (replayed), or refused with another body; nothing added.
        var replay = await TopUpAsync(app.Operator(), campaign, oldKey, 5000, "old push");
        var view = await replay.AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("true", replay.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal(55_000, (long)view["total"]!);
        Assert.Equal((oldKey, "olivia", "old push"), ((string)view["topUp"]!["key"]!, (string)view["topUp"]!["by"]!, (string)view["topUp"]!["reason"]!));
        await (await TopUpAsync(app.Operator(), campaign, oldKey, 7000, "other")).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "idempotency-key-reused");
        // The lock placed under the old shape is confirmed and refunded; a new lock, a new top-up.
        await (await orders.StepAsync(locked, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
        await (await orders.StepAsync(locked, "refund")).AssertStatusAsync(HttpStatusCode.OK);
        var fresh = Api.NewId("o");
        await (await orders.LockAsync(fresh, holders[2].Customer, holders[2].Coupon)).AssertStatusAsync(HttpStatusCode.Created);
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        await (await TopUpAsync(app.Operator(), campaign, Guid.NewGuid().ToString(), 2000, "new push")).AssertStatusAsync(HttpStatusCode.OK);
        // The old shape's top-ups are listed after the new ones (they are older), on the last page.
        var first = await (await app.Operator().GetAsync($"/api/campaigns/{campaign}/budget?limit=1")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("new push", (string)first["topUps"]![0]!["reason"]!);
        var reasons = first["topUps"]!.AsArray().Select(t => (string)t!["reason"]!).ToList();
        var after = first;
        while ((string?)after["continuationToken"] is { } token)
        {
            after = await (await app.Operator().GetAsync($"/api/campaigns/{campaign}/budget?limit=1&continuationToken=" + Uri.EscapeDataString(token)))
                .AssertStatusAsync(HttpStatusCode.OK);
            reasons.AddRange(after["topUps"]!.AsArray().Select(t => (string)t!["reason"]!));
        }
        Assert.Equal(["new push", "old push"], reasons);
        Assert.Equal((57_000L, 56_000L, 1000L, 0L), ((long)after["total"]!, (long)after["left"]!, (long)after["reserved"]!, (long)after["spent"]!));

        var budget = (await app.Services.GetRequiredService<StockStore>().FindBudgetAsync(campaign))!;
        Assert.Equal((57_000L, 56_000L, 1000L, 0L), (budget.Budget, budget.Left, budget.Reserved, budget.Spent));
        Assert.Equal([oldKey], budget.TopUpKeys!); // never appended again
        Assert.Single(budget.TopUps!);
        Assert.Equal(new Dictionary<string, string> { [refunded] = "refunded", [fresh] = StockStore.Reserved(holders[2].Coupon) }, budget.Orders);
    }

    private static async Task<int> DocumentSizeAsync(TestApp app, string campaign)
    {
        var stock = app.Services.GetRequiredService<CosmosClient>().GetContainer(app.Database, StockStore.Spec.Name);
        using var response = await stock.ReadItemStreamAsync(CampaignBudget.DocumentId, new PartitionKey(campaign));
        response.EnsureSuccessStatusCode();
        using var buffer = new MemoryStream();
        await response.Content.CopyToAsync(buffer);
        return (int)buffer.Length;
    }

    private static Task<HttpResponseMessage> TopUpAsync(HttpClient op, string campaign, string key, long amount, string reason)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{campaign}/budget") { Content = Api.JsonContent(new { amount, reason }) };
        request.Headers.Add("Idempotency-Key", key);
        return op.SendAsync(request);
    }
}
