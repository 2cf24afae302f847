using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>Campaign budgets: exact under concurrency, every move once per order, top-ups recorded and idempotent.</summary>
public sealed class BudgetTests(TestApp app) : IClassFixture<TestApp>
{
    private DateTimeOffset Now => app.Clock.GetUtcNow();

    private async Task<CampaignBudget> BudgetAsync(string campaign)
    {
        var budget = (await app.Services.GetRequiredService<StockStore>().FindBudgetAsync(campaign))!;
        Assert.Equal(budget.Budget, budget.Left + budget.Reserved + budget.Spent);
        return budget;
    }

    [Fact]
    public async Task A_budget_of_1000_with_20_coupons_lets_exactly_50_of_100_concurrent_locks_through_and_cancels_free_room()
    {
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(Now, t =>
        {
            t["totalQuantity"] = 200;
            t["amountOff"] = 2000;
            t["budget"] = 100000;
        }));
        var holders = await Task.WhenAll(Enumerable.Range(0, 150).Select(_ => app.CustomerWithCouponAsync(campaign)));
        var orders = app.OrderSystem();
        var first = holders[..100].Select(h => (Order: Api.NewId("o"), h.Customer, h.Coupon)).ToArray();

        var responses = await Task.WhenAll(first.Select(l => orders.LockAsync(l.Order, l.Customer, l.Coupon)));

        var won = first.Where((_, i) => responses[i].StatusCode == HttpStatusCode.Created).ToArray();
        Assert.Equal(50, won.Length);
        foreach (var refused in responses.Where(r => r.StatusCode != HttpStatusCode.Created))
            await refused.AssertProblemAsync(HttpStatusCode.Conflict, "budget-exhausted");
        var budget = await BudgetAsync(campaign);
        Assert.Equal((0, 100000, 0), (budget.Left, budget.Reserved, budget.Spent));
        // Refused locks left their coupons free and no record behind.
        var refusedLock = first.First(l => !won.Contains(l));
        Assert.Equal("available", await app.CouponStatusAsync(refusedLock.Customer, refusedLock.Coupon));
        await (await orders.GetAsync($"/api/redemptions/{refusedLock.Order}")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");

        // Cancelling 10 (each twice, concurrently) frees exactly 10 × 20.00: 10 of 50 newcomers get in.
        await Task.WhenAll(won[..10].SelectMany(l => new[] { orders.StepAsync(l.Order, "cancel"), orders.StepAsync(l.Order, "cancel") }));
        Assert.Equal((20000, 80000), ((await BudgetAsync(campaign)).Left, (await BudgetAsync(campaign)).Reserved));
        var next = holders[100..].Select(h => (Order: Api.NewId("o"), h.Customer, h.Coupon)).ToArray();
        var second = await Task.WhenAll(next.Select(l => orders.LockAsync(l.Order, l.Customer, l.Coupon)));
        Assert.Equal(10, second.Count(r => r.StatusCode == HttpStatusCode.Created));

        // Confirm 5 (twice each), refund 2 (twice each): the money moves once per order.
        await Task.WhenAll(won[10..15].SelectMany(l => new[] { orders.StepAsync(l.Order, "confirm"), orders.StepAsync(l.Order, "confirm") }));
        foreach (var l in won[10..12])
            await Task.WhenAll(orders.StepAsync(l.Order, "refund"), orders.StepAsync(l.Order, "refund"));
        budget = await BudgetAsync(campaign);
        Assert.Equal((4000, 100000 - 4000 - 6000, 6000), (budget.Left, budget.Reserved, budget.Spent));
    }

    [Fact]
    public async Task A_top_up_is_recorded_with_who_and_why_applies_once_per_key_and_makes_room()
    {
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(Now, t => t["budget"] = 2000));
        var orders = app.OrderSystem();
        var (c1, k1) = await app.CustomerWithCouponAsync(campaign);
        var (c2, k2) = await app.CustomerWithCouponAsync(campaign);
        await (await orders.LockAsync(Api.NewId("o"), c1, k1)).AssertStatusAsync(HttpStatusCode.Created);
        await (await orders.LockAsync(Api.NewId("o"), c2, k2)).AssertProblemAsync(HttpStatusCode.Conflict, "budget-exhausted");

        var key = Guid.NewGuid().ToString();
        // Three at once with one key: one applies it; the others answer its result, or in-flight while it is applying.
        var topUps = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => TopUpAsync(app.Operator("olivia"), campaign, key, 5000, "weekend push")));
        Assert.Contains(topUps, r => r.StatusCode == HttpStatusCode.OK);
        foreach (var response in topUps.Where(r => r.StatusCode != HttpStatusCode.OK))
            await response.AssertProblemAsync(HttpStatusCode.Conflict, "idempotency-in-flight");
        var replay = await TopUpAsync(app.Operator("olivia"), campaign, key, 5000, "weekend push");
        var view = await replay.AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("true", replay.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal((7000L, 5000L, 2000L, 0L), ((long)view["total"]!, (long)view["left"]!, (long)view["reserved"]!, (long)view["spent"]!));
        var budget = await BudgetAsync(campaign);
        Assert.Equal((7000, 5000, 2000), (budget.Budget, budget.Left, budget.Reserved));
        // The replay answers the top-up its key recorded (who, why, how much, when), and it is listed once.
        var entry = view["topUp"]!;
        Assert.Equal((key, "olivia", "weekend push", 5000L, Now), ((string)entry["key"]!, (string)entry["by"]!, (string)entry["reason"]!, (long)entry["amount"]!, (DateTimeOffset)entry["at"]!));
        var listed = await (await app.Operator().GetAsync($"/api/campaigns/{campaign}/budget")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.True(listed["topUps"]!.AsArray().Count == 1, listed.ToJsonString());
        Assert.Empty(budget.Applying); // the per-key entry is gone once the top-up is marked applied
        await (await TopUpAsync(app.Operator(), campaign, key, 9000, "weekend push")).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "idempotency-key-reused");

        await (await orders.LockAsync(Api.NewId("o"), c2, k2)).AssertStatusAsync(HttpStatusCode.Created);
    }

    [Fact]
    public async Task Top_ups_are_refused_for_drafts_campaigns_without_a_budget_and_bad_input()
    {
        var op = app.Operator();
        var draft = await op.CreateCampaignAsync(Api.Terms(Now, t => t["budget"] = 1000));
        await (await TopUpAsync(op, draft, Guid.NewGuid().ToString(), 100, "x")).AssertProblemAsync(HttpStatusCode.Conflict, "campaign-not-editable");
        var unlimited = await op.PublishedCampaignAsync(Api.Terms(Now));
        await (await TopUpAsync(op, unlimited, Guid.NewGuid().ToString(), 100, "x")).AssertProblemAsync(HttpStatusCode.Conflict, "campaign-not-editable");
        var budgeted = await op.PublishedCampaignAsync(Api.Terms(Now, t => t["budget"] = 1000));
        var invalid = await (await TopUpAsync(op, budgeted, Guid.NewGuid().ToString(), 0, "")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(invalid["errors"]!["amount"]);
        Assert.NotNull(invalid["errors"]!["reason"]);
        await (await TopUpAsync(op, budgeted, null, 100, "x")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        await (await TopUpAsync(op, "cmp_missing", Guid.NewGuid().ToString(), 100, "x")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        // A published campaign's budget only grows through top-ups.
        var changed = await (await op.PutAsync($"/api/campaigns/{budgeted}", Api.JsonContent(Api.Terms(Now, t => t["budget"] = 5000))))
            .AssertProblemAsync(HttpStatusCode.Conflict, "campaign-not-editable");
        Assert.NotNull(changed["errors"]!["budget"]);
        Assert.Equal(1000, (await BudgetAsync(budgeted)).Budget);
    }

    [Fact]
    public async Task An_operator_reads_the_budget_after_locks_confirms_a_refund_and_top_ups_and_the_campaign_carries_its_summary()
    {
        var op = app.Operator();
        var campaign = await op.PublishedCampaignAsync(Api.Terms(Now, t =>
        {
            t["amountOff"] = 1000;
            t["budget"] = 10_000;
        }));
        var holders = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => app.CustomerWithCouponAsync(campaign)));
        var orders = app.OrderSystem();
        var placed = holders.Select(h => (Order: Api.NewId("o"), h.Customer, h.Coupon)).ToArray();
        foreach (var (order, customer, coupon) in placed)
            await (await orders.LockAsync(order, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
        // 4 locked; 2 confirmed (paid), of which 1 refunded; 1 cancelled; 1 still locked.
        await (await orders.StepAsync(placed[0].Order, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
        await (await orders.StepAsync(placed[1].Order, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
        await (await orders.StepAsync(placed[1].Order, "refund")).AssertStatusAsync(HttpStatusCode.OK);
        await (await orders.StepAsync(placed[2].Order, "cancel")).AssertStatusAsync(HttpStatusCode.OK);
        await (await TopUpAsync(app.Operator("olivia"), campaign, Guid.NewGuid().ToString(), 500, "first push")).AssertStatusAsync(HttpStatusCode.OK);
        var firstAt = Now;
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        var secondKey = Guid.NewGuid().ToString();
        var topUp = await (await TopUpAsync(app.Operator("oscar"), campaign, secondKey, 700, "second push")).AssertStatusAsync(HttpStatusCode.OK);
        // The top-up answers the figures after it and the top-up it recorded.
        Assert.Equal((11_200L, 9_200L, 1_000L, 1_000L), Figures(topUp));
        Assert.Equal((secondKey, "oscar", 700L), ((string)topUp["topUp"]!["key"]!, (string)topUp["topUp"]!["by"]!, (long)topUp["topUp"]!["amount"]!));

        var view = await (await op.GetAsync($"/api/campaigns/{campaign}/budget")).AssertStatusAsync(HttpStatusCode.OK);
        // total 10,000 + 500 + 700; spent 1 confirm (the other refunded); reserved the one open lock; left the rest.
        Assert.Equal((11_200L, 9_200L, 1_000L, 1_000L), Figures(view));
        Assert.Null(view["continuationToken"]);
        Assert.Equal([("second push", "oscar", 700L, Now), ("first push", "olivia", 500L, firstAt)], view["topUps"]!.AsArray()
            .Select(t => ((string)t!["reason"]!, (string)t["by"]!, (long)t["amount"]!, (DateTimeOffset)t["at"]!)));
        var store = await BudgetAsync(campaign);
        Assert.Equal((store.Budget, store.Left, store.Reserved, store.Spent), Figures(view));

        // Paged, newest first, with the project's opaque tokens.
        var page = await (await op.GetAsync($"/api/campaigns/{campaign}/budget?limit=1")).AssertStatusAsync(HttpStatusCode.OK);
        var reasons = page["topUps"]!.AsArray().Select(t => (string)t!["reason"]!).ToList();
        while ((string?)page["continuationToken"] is { } token)
        {
            page = await (await op.GetAsync($"/api/campaigns/{campaign}/budget?limit=1&continuationToken={Uri.EscapeDataString(token)}"))
                .AssertStatusAsync(HttpStatusCode.OK);
            Assert.InRange(page["topUps"]!.AsArray().Count, 0, 1);
            reasons.AddRange(page["topUps"]!.AsArray().Select(t => (string)t!["reason"]!));
        }
        Assert.Equal(["second push", "first push"], reasons);
        await (await op.GetAsync($"/api/campaigns/{campaign}/budget?continuationToken=%7B%7D")).AssertProblemAsync(HttpStatusCode.BadRequest, "invalid-page-token");
        await (await op.GetAsync($"/api/campaigns/{campaign}/budget?limit=0")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");

        // GET /api/campaigns/{id} carries the same summary (no top-ups).
        var read = await (await op.GetAsync($"/api/campaigns/{campaign}")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal((11_200L, 9_200L, 1_000L, 1_000L), Figures(read["budget"]!));
        Assert.Equal(["left", "reserved", "spent", "total"], read["budget"]!.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Only_operators_and_admins_read_a_budget_and_campaigns_without_one_answer_404()
    {
        var op = app.Operator();
        var campaign = await op.PublishedCampaignAsync(Api.Terms(Now, t => t["budget"] = 3000));
        var path = $"/api/campaigns/{campaign}/budget";
        await (await app.Customer(Api.NewId("c")).GetAsync(path)).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await app.OrderSystem().GetAsync(path)).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await app.As(Api.NewId("p"), "promoter").GetAsync(path)).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await app.Anonymous().GetAsync(path)).AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
        Assert.Equal((3000L, 3000L, 0L, 0L), Figures(await (await app.As("root", "admin").GetAsync(path)).AssertStatusAsync(HttpStatusCode.OK)));

        // No budget: unknown, unlimited, or a draft (its budget is created when it is published).
        var unlimited = await op.PublishedCampaignAsync(Api.Terms(Now));
        var draft = await op.CreateCampaignAsync(Api.Terms(Now, t => t["budget"] = 1000));
        foreach (var id in new[] { "cmp_missing", unlimited, draft })
            await (await op.GetAsync($"/api/campaigns/{id}/budget")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        Assert.Null((await (await op.GetAsync($"/api/campaigns/{unlimited}")).AssertStatusAsync(HttpStatusCode.OK))["budget"]);
        var drafted = await (await op.GetAsync($"/api/campaigns/{draft}")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Null(drafted["budget"]);
        Assert.Equal(1000, (long)drafted["terms"]!["budget"]!); // the planned budget is in its terms
    }

    [Fact]
    public async Task A_sharded_campaigns_budget_is_the_sum_of_its_shards()
    {
        var op = app.Operator();
        var campaign = await op.PublishedCampaignAsync(Api.Terms(Now, t =>
        {
            t["totalQuantity"] = 40;
            t["stockShards"] = 4;
            t["amountOff"] = 1000;
            t["budget"] = 40_000; // 10,000 per shard
        }));
        var holders = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => app.CustomerWithCouponAsync(campaign)));
        var orders = app.OrderSystem();
        var placed = holders.Select(h => (Order: Api.NewId("o"), h.Customer, h.Coupon)).ToArray();
        await Task.WhenAll(placed.Select(async p => await (await orders.LockAsync(p.Order, p.Customer, p.Coupon)).AssertStatusAsync(HttpStatusCode.Created)));
        await Task.WhenAll(placed[..5].Select(async p => await (await orders.StepAsync(p.Order, "confirm")).AssertStatusAsync(HttpStatusCode.OK)));
        await (await orders.StepAsync(placed[0].Order, "refund")).AssertStatusAsync(HttpStatusCode.OK);
        // 1,001 does not split evenly over 4 shards: 251 + 250 + 250 + 250.
        await (await TopUpAsync(op, campaign, Guid.NewGuid().ToString(), 1001, "uneven")).AssertStatusAsync(HttpStatusCode.OK);

        var shards = await app.Services.GetRequiredService<StockStore>().FindBudgetShardsAsync(campaign);
        Assert.Equal(4, shards.Count);
        Assert.True(shards.Count(s => s.Reserved + s.Spent > 0) > 1, "the orders' money should be spread over several shards");
        var view = await (await op.GetAsync($"/api/campaigns/{campaign}/budget")).AssertStatusAsync(HttpStatusCode.OK);
        // 12 locks: 5 confirmed, 1 of them refunded; 7 still reserved.
        Assert.Equal((41_001L, 41_001L - 4_000 - 7_000, 7_000L, 4_000L), Figures(view));
        Assert.Equal((shards.Sum(s => s.Budget), shards.Sum(s => s.Left), shards.Sum(s => s.Reserved), shards.Sum(s => s.Spent)), Figures(view));
        var read = await (await op.GetAsync($"/api/campaigns/{campaign}")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(Figures(view), Figures(read["budget"]!));
    }

    private static (long Total, long Left, long Reserved, long Spent) Figures(JsonNode budget)
        => ((long)budget["total"]!, (long)budget["left"]!, (long)budget["reserved"]!, (long)budget["spent"]!);

    private static Task<HttpResponseMessage> TopUpAsync(HttpClient op, string campaign, string? key, long amount, string reason)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{campaign}/budget") { Content = Api.JsonContent(new { amount, reason }) };
        if (key is not null) request.Headers.Add("Idempotency-Key", key);
        return op.SendAsync(request);
    }
}
