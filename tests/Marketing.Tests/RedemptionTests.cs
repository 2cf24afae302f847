using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>The redemption lifecycle: lock, confirm, cancel, refund — every transition, replays and impossible steps.</summary>
public sealed class RedemptionTests(TestApp app) : IClassFixture<TestApp>
{
    private DateTimeOffset Now => app.Clock.GetUtcNow();

    [Fact]
    public async Task A_lock_reserves_the_coupon_for_the_order_and_returns_the_discount()
    {
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(Now));
        var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
        var orders = app.OrderSystem();
        var orderId = Api.NewId("o");

        var response = await orders.LockAsync(orderId, customer, coupon);
        var locked = await response.AssertStatusAsync(HttpStatusCode.Created);
        Assert.Equal($"/api/redemptions/{orderId}", response.Headers.Location?.ToString());
        Assert.Equal(2000, (long)locked["discount"]!);
        Assert.Equal("locked", (string?)locked["state"]);
        Assert.Equal(Api.Instant(Now.AddMinutes(30)), (string?)locked["lockedUntil"]);
        var step = Assert.Single(locked["history"]!.AsArray())!;
        Assert.Equal("lock", (string?)step["step"]);
        Assert.Equal("orders", (string?)step["by"]);
        Assert.Equal(Api.Instant(Now), (string?)step["at"]);
        Assert.Equal("locked", await app.CouponStatusAsync(customer, coupon));

        // Replaying the same lock answers the same record; anything else on this order or coupon is refused.
        var replay = await orders.LockAsync(orderId, customer, coupon);
        Assert.Equal("true", replay.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal(locked.ToJsonString(), (await replay.AssertStatusAsync(HttpStatusCode.Created)).ToJsonString());
        await (await orders.LockAsync(Api.NewId("o"), customer, coupon)).AssertProblemAsync(HttpStatusCode.Conflict, "coupon-locked");
        var (_, other) = await app.CustomerWithCouponAsync(campaign);
        await (await orders.LockAsync(orderId, customer, other)).AssertProblemAsync(HttpStatusCode.Conflict, "invalid-transition");
        await (await orders.LockAsync(orderId, customer, coupon, Orders.Draft(shoes: 40000))).AssertProblemAsync(HttpStatusCode.Conflict, "invalid-transition");

        // Operators and the order system can read it.
        var read = await (await app.Operator().GetAsync($"/api/redemptions/{orderId}")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(locked.ToJsonString(), read.ToJsonString());
    }

    [Fact]
    public async Task Confirm_then_refund_without_return_keeps_the_coupon_used_and_records_every_step()
    {
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(Now));
        var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
        var orders = app.OrderSystem();
        var orderId = Api.NewId("o");
        await (await orders.LockAsync(orderId, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);

        var confirmed = await (await orders.StepAsync(orderId, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("used", (string?)confirmed["state"]);
        Assert.Equal("used", await app.CouponStatusAsync(customer, coupon));
        var again = await orders.StepAsync(orderId, "confirm");
        Assert.Equal(confirmed.ToJsonString(), (await again.AssertStatusAsync(HttpStatusCode.OK)).ToJsonString());
        Assert.Equal("true", again.Headers.GetValues("Idempotent-Replayed").Single());
        await (await orders.StepAsync(orderId, "cancel")).AssertProblemAsync(HttpStatusCode.Conflict, "invalid-transition");
        // A used coupon cannot go on another order.
        await (await orders.LockAsync(Api.NewId("o"), customer, coupon)).AssertProblemAsync(HttpStatusCode.Conflict, "invalid-transition");

        var refunded = await (await orders.StepAsync(orderId, "refund", "customer returned the shoes")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("refunded", (string?)refunded["state"]);
        Assert.False((bool)refunded["couponReturned"]!);
        Assert.Equal(["lock:locked", "confirm:used", "refund:refunded"],
            refunded["history"]!.AsArray().Select(h => $"{h!["step"]}:{h["state"]}").ToArray());
        Assert.Equal("customer returned the shoes", (string?)refunded["history"]![2]!["reason"]);
        Assert.Equal("used", await app.CouponStatusAsync(customer, coupon));
        Assert.Equal(refunded.ToJsonString(), (await (await orders.StepAsync(orderId, "refund")).AssertStatusAsync(HttpStatusCode.OK)).ToJsonString());
        await (await orders.StepAsync(orderId, "confirm")).AssertStatusAsync(HttpStatusCode.OK); // a late confirm replay is harmless
        Assert.Equal("refunded", (string?)(await (await orders.GetAsync($"/api/redemptions/{orderId}")).ReadJsonAsync())["state"]);
    }

    [Fact]
    public async Task Refund_with_return_on_refund_gives_a_valid_coupon_back_for_another_order()
    {
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(Now, t => t["returnOnRefund"] = true));
        var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
        var orders = app.OrderSystem();
        var first = Api.NewId("o");
        await (await orders.LockAsync(first, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
        await (await orders.StepAsync(first, "confirm")).AssertStatusAsync(HttpStatusCode.OK);

        var refunded = await (await orders.StepAsync(first, "refund")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.True((bool)refunded["couponReturned"]!);
        Assert.Equal("available", await app.CouponStatusAsync(customer, coupon));
        var second = Api.NewId("o");
        await (await orders.LockAsync(second, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
        // Replaying the first order's refund does not take the coupon from the second order.
        await (await orders.StepAsync(first, "refund")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("locked", await app.CouponStatusAsync(customer, coupon));
        await (await orders.StepAsync(second, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Cancel_returns_the_coupon_and_no_later_step_can_revive_the_order()
    {
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(Now));
        var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
        var orders = app.OrderSystem();
        var orderId = Api.NewId("o");
        await (await orders.LockAsync(orderId, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
        await (await orders.StepAsync(orderId, "refund")).AssertProblemAsync(HttpStatusCode.Conflict, "invalid-transition");

        var cancelled = await (await orders.StepAsync(orderId, "cancel", "customer changed their mind")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("cancelled", (string?)cancelled["state"]);
        Assert.Equal("available", await app.CouponStatusAsync(customer, coupon));
        Assert.Equal(cancelled.ToJsonString(), (await (await orders.StepAsync(orderId, "cancel")).AssertStatusAsync(HttpStatusCode.OK)).ToJsonString());
        await (await orders.StepAsync(orderId, "confirm")).AssertProblemAsync(HttpStatusCode.Conflict, "invalid-transition");
        await (await orders.StepAsync(orderId, "refund")).AssertProblemAsync(HttpStatusCode.Conflict, "invalid-transition");
        // The coupon is free for another order; the cancelled order's lock replays as cancelled.
        Assert.Equal("cancelled", (string?)(await (await orders.LockAsync(orderId, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created))["state"]);
        await (await orders.LockAsync(Api.NewId("o"), customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
    }

    [Theory]
    [InlineData("below_threshold")]
    [InlineData("currency")]
    [InlineData("category")]
    [InlineData("channel")]
    [InlineData("not_yet_valid")]
    public async Task A_coupon_that_does_not_apply_is_refused_with_its_reason_and_nothing_is_written(string reason)
    {
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(Now, t =>
        {
            t["categories"] = new JsonArray("shoes", "food");
            t["channels"] = new JsonArray("app", "h5");
            if (reason == "not_yet_valid")
                t["validity"] = new JsonObject { ["type"] = "absolute", ["from"] = Api.Instant(Now.AddDays(1)), ["to"] = Api.Instant(Now.AddDays(5)) };
        }));
        var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
        var draft = reason switch
        {
            "below_threshold" => Orders.Draft(shoes: 1000, food: 1000),
            "currency" => Orders.Draft(currency: "USD"),
            "channel" => Orders.Draft(channel: "mini_program"),
            "category" => new JsonObject
            {
                ["channel"] = "app", ["currency"] = "CNY",
                ["lines"] = new JsonArray(new JsonObject { ["sku"] = "tv", ["category"] = "electronics", ["unitPrice"] = 500000, ["quantity"] = 1 }),
            },
            _ => Orders.Draft(),
        };
        var orderId = Api.NewId("o");

        var problem = await (await app.OrderSystem().LockAsync(orderId, customer, coupon, draft))
            .AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "coupon-not-applicable");

        Assert.Equal(reason, (string?)problem["reason"]);
        await (await app.OrderSystem().GetAsync($"/api/redemptions/{orderId}")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        Assert.Equal("available", await app.CouponStatusAsync(customer, coupon));
    }

    [Fact]
    public async Task Bad_requests_are_clear_400s_and_unknown_things_404()
    {
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(Now));
        var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
        var orders = app.OrderSystem();

        var invalid = await (await orders.LockAsync("has space", customer, "Not/A-Coupon")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(invalid["errors"]!["orderId"]);
        Assert.NotNull(invalid["errors"]!["couponId"]);
        var badLine = Orders.Draft();
        badLine["lines"]![0]!["quantity"] = 0;
        var lines = await (await orders.LockAsync(Api.NewId("o"), customer, coupon, badLine)).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(lines["errors"]!["order.lines[0].quantity"]);
        await (await orders.PostAsync("/api/redemptions", Api.JsonContent(new { orderId = "o1" }))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        // Another customer's coupon is not in this customer's wallet.
        await (await orders.LockAsync(Api.NewId("o"), Api.NewId("someone"), coupon)).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        foreach (var step in new[] { "confirm", "cancel", "refund" })
            await (await orders.StepAsync(Api.NewId("o"), step)).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        await (await orders.PostAsync($"/api/redemptions/{Api.NewId("o")}/cancel", Api.JsonContent(new { reason = "" })))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.Equal("available", await app.CouponStatusAsync(customer, coupon));
    }

    [Fact]
    public async Task Two_orders_racing_for_one_coupon_lock_it_exactly_once_in_each_of_50_rounds()
    {
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(Now, t => t["totalQuantity"] = 50));
        var orders = app.OrderSystem();
        for (var round = 0; round < 50; round++)
        {
            var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
            var ids = new[] { Api.NewId("o"), Api.NewId("o") };
            var responses = await Task.WhenAll(ids.Select(id => orders.LockAsync(id, customer, coupon)));

            var winners = responses.Count(r => r.StatusCode == HttpStatusCode.Created);
            Assert.True(winners == 1, $"round {round}: {winners} locks won");
            var loser = Array.FindIndex(responses, r => r.StatusCode != HttpStatusCode.Created);
            await responses[loser].AssertProblemAsync(HttpStatusCode.Conflict, "coupon-locked");
            // The loser left nothing behind.
            await (await orders.GetAsync($"/api/redemptions/{ids[loser]}")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        }
    }

    [Fact]
    public async Task A_confirm_after_the_lock_lapsed_is_refused()
    {
        await using var own = await TestApp.StartAsync();
        var campaign = await own.Operator().PublishedCampaignAsync(Api.Terms(own.Clock.GetUtcNow()));
        var (customer, coupon) = await own.CustomerWithCouponAsync(campaign);
        var orders = own.OrderSystem();
        var orderId = Api.NewId("o");
        await (await orders.LockAsync(orderId, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);

        own.Clock.Advance(TimeSpan.FromMinutes(30));

        await (await orders.StepAsync(orderId, "confirm")).AssertProblemAsync(HttpStatusCode.Conflict, "invalid-transition");
        Assert.Equal("locked", await own.CouponStatusAsync(customer, coupon)); // until the expiry timer or a cancel
        await (await orders.StepAsync(orderId, "cancel")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("available", await own.CouponStatusAsync(customer, coupon));
    }

    [Fact]
    public async Task An_expired_coupon_cannot_be_locked_and_a_refund_after_validity_does_not_return_it()
    {
        await using var own = await TestApp.StartAsync();
        var now = own.Clock.GetUtcNow();
        var campaign = await own.Operator().PublishedCampaignAsync(Api.Terms(now, t =>
        {
            t["returnOnRefund"] = true;
            t["validity"] = new JsonObject { ["type"] = "absolute", ["from"] = Api.Instant(now.AddHours(-1)), ["to"] = Api.Instant(now.AddDays(2)) };
        }));
        var (customer, coupon) = await own.CustomerWithCouponAsync(campaign);
        var (late, lateCoupon) = await own.CustomerWithCouponAsync(campaign);
        var orderId = Api.NewId("o");
        await (await own.OrderSystem().LockAsync(orderId, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
        await (await own.OrderSystem().StepAsync(orderId, "confirm")).AssertStatusAsync(HttpStatusCode.OK);

        own.Clock.Advance(TimeSpan.FromDays(2));
        var orders = own.OrderSystem(); // tokens are minted on the test clock

        var refunded = await (await orders.StepAsync(orderId, "refund")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.False((bool)refunded["couponReturned"]!);
        Assert.Equal("used", await own.CouponStatusAsync(customer, coupon));
        var problem = await (await orders.LockAsync(Api.NewId("o"), late, lateCoupon)).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "coupon-not-applicable");
        Assert.Equal("expired", (string?)problem["reason"]);
    }
}
