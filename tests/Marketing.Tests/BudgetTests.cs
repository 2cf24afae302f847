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
        Assert.Equal(7000, (long)view["budget"]!);
        var budget = await BudgetAsync(campaign);
        Assert.Equal((7000, 5000, 2000), (budget.Budget, budget.Left, budget.Reserved));
        Assert.True(view["topUps"]!.AsArray().Count == 1, view.ToJsonString());
        var entry = view["topUps"]![0]!;
        Assert.Equal(("olivia", "weekend push", 5000L, Now), ((string)entry["by"]!, (string)entry["reason"]!, (long)entry["amount"]!, (DateTimeOffset)entry["at"]!));
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

    private static Task<HttpResponseMessage> TopUpAsync(HttpClient op, string campaign, string? key, long amount, string reason)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{campaign}/budget") { Content = Api.JsonContent(new { amount, reason }) };
        if (key is not null) request.Headers.Add("Idempotency-Key", key);
        return op.SendAsync(request);
    }
}
