using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>Who may claim what, when, and what an Idempotency-Key guarantees.</summary>
public sealed class ClaimTests(TestApp app) : IClassFixture<TestApp>
{
    private DateTimeOffset Now => app.Clock.GetUtcNow();

    [Fact]
    public async Task A_claim_returns_201_with_the_coupon_and_its_location()
    {
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(Now));
        var customer = app.Customer(Api.NewId("c"));

        var response = await customer.ClaimAsync(campaign);

        var coupon = await response.AssertStatusAsync(HttpStatusCode.Created);
        Assert.Equal(campaign, (string?)coupon["campaignId"]);
        Assert.Equal("available", (string?)coupon["status"]);
        Assert.Matches("^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$", (string)coupon["code"]!);
        Assert.Equal($"/api/me/coupons/{coupon["id"]}", response.Headers.Location!.ToString());
        var read = await (await customer.GetAsync(response.Headers.Location)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.True(JsonNode.DeepEquals(coupon, read));
    }

    [Fact]
    public async Task Replaying_a_key_returns_the_first_answer_byte_for_byte_and_takes_no_stock()
    {
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(Now, t => t["perCustomerLimit"] = 3));
        var customer = app.Customer(Api.NewId("c"));
        var key = Guid.NewGuid().ToString();

        var first = await customer.ClaimAsync(campaign, key);
        var firstBody = await first.Content.ReadAsStringAsync();
        app.Clock.Advance(TimeSpan.FromSeconds(1)); // a replay later must not produce new timestamps
        var second = await customer.ClaimAsync(campaign, key);

        Assert.Equal(HttpStatusCode.Created, second.StatusCode);
        Assert.Equal(firstBody, await second.Content.ReadAsStringAsync());
        Assert.Equal(first.Headers.Location, second.Headers.Location);
        Assert.Equal("true", second.Headers.GetValues("Idempotent-Replayed").Single());
        var stock = await app.Services.GetRequiredService<StockStore>().FindAsync(campaign);
        Assert.Equal(1, stock!.Issued);
    }

    [Fact]
    public async Task Reusing_a_key_with_another_body_is_422_and_claims_nothing()
    {
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(Now, t => t["perCustomerLimit"] = 3));
        var customer = app.Customer(Api.NewId("c"));
        var key = Guid.NewGuid().ToString();
        await (await customer.ClaimAsync(campaign, key, channel: "app")).AssertStatusAsync(HttpStatusCode.Created);

        await (await customer.ClaimAsync(campaign, key, channel: "h5")).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "idempotency-key-reused");

        var wallet = await (await customer.GetAsync("/api/me/coupons")).ReadJsonAsync();
        Assert.Single(wallet["items"]!.AsArray());
        var stock = await app.Services.GetRequiredService<StockStore>().FindAsync(campaign);
        Assert.Equal(1, stock!.Issued);
    }

    [Fact]
    public async Task A_replay_still_gets_its_coupon_after_the_campaign_sold_out_or_paused()
    {
        var op = app.Operator();
        var campaign = await op.PublishedCampaignAsync(Api.Terms(Now, t => t["totalQuantity"] = 1));
        var customer = app.Customer(Api.NewId("c"));
        var key = Guid.NewGuid().ToString();
        var first = await (await customer.ClaimAsync(campaign, key)).Content.ReadAsStringAsync();
        await (await app.Customer(Api.NewId("late")).ClaimAsync(campaign)).AssertProblemAsync(HttpStatusCode.Conflict, "sold-out");

        Assert.Equal(first, await (await customer.ClaimAsync(campaign, key)).Content.ReadAsStringAsync());
        await op.PostAsync($"/api/campaigns/{campaign}/pause", null);
        var replay = await customer.ClaimAsync(campaign, key);
        Assert.Equal(HttpStatusCode.Created, replay.StatusCode);
        Assert.Equal(first, await replay.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("has spaces")]
    [InlineData("quote\"injection")]
    public async Task The_idempotency_key_is_required_and_well_formed(string? key)
    {
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(Now));
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{campaign}/claims") { Content = Api.JsonContent(new { channel = "app" }) };
        if (key is not null) request.Headers.TryAddWithoutValidation("Idempotency-Key", key);
        var problem = await (await app.Customer(Api.NewId("c")).SendAsync(request)).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(problem["errors"]!["Idempotency-Key"]);
    }

    [Theory]
    [InlineData("""{"channel":"tv"}""", "validation-failed")]
    [InlineData("""{"channel":"app","customerId":"someone-else"}""", "validation-failed")]
    [InlineData("""{}""", "validation-failed")]
    [InlineData("""{"channel":""", "malformed-json")]
    public async Task Bad_claim_bodies_are_400_and_take_nothing(string body, string type)
    {
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(Now));
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{campaign}/claims") { Content = Api.JsonContent(body) };
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
        await (await app.Customer(Api.NewId("c")).SendAsync(request)).AssertProblemAsync(HttpStatusCode.BadRequest, type);
        Assert.Equal(0, (await app.Services.GetRequiredService<StockStore>().FindAsync(campaign))!.Issued);
    }

    [Fact]
    public async Task Claims_are_refused_outside_the_claim_window()
    {
        await using var own = await TestApp.StartAsync(); // moves its clock
        var campaign = await own.Operator().PublishedCampaignAsync(Api.Terms(own.Clock.GetUtcNow(), t =>
        {
            t["claimStartsAt"] = Api.Instant(own.Clock.GetUtcNow().AddHours(1));
            t["claimEndsAt"] = Api.Instant(own.Clock.GetUtcNow().AddHours(2));
        }));
        var customer = own.Customer(Api.NewId("c"));

        var early = await (await customer.ClaimAsync(campaign)).AssertProblemAsync(HttpStatusCode.Conflict, "campaign-not-active");
        Assert.Contains("not started", (string?)early["detail"]);
        own.Clock.Advance(TimeSpan.FromHours(1));
        await (await customer.ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created);
        own.Clock.Advance(TimeSpan.FromHours(1));
        var late = await (await own.Customer(Api.NewId("d")).ClaimAsync(campaign)).AssertProblemAsync(HttpStatusCode.Conflict, "campaign-not-active");
        Assert.Contains("ended", (string?)late["detail"]);
    }

    [Fact]
    public async Task Claims_are_refused_on_channels_the_campaign_does_not_offer()
    {
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(Now, t => t["channels"] = new JsonArray("mini_program")));
        var customer = app.Customer(Api.NewId("c"));
        await (await customer.ClaimAsync(campaign, channel: "app")).AssertProblemAsync(HttpStatusCode.Forbidden, "not-eligible");
        await (await customer.ClaimAsync(campaign, channel: "mini_program")).AssertStatusAsync(HttpStatusCode.Created);
    }

    [Fact]
    public async Task Drafts_are_not_found_and_paused_or_ended_campaigns_are_not_active_at_once_on_every_instance()
    {
        var op = app.Operator();
        var draft = await op.CreateCampaignAsync(Api.Terms(Now));
        await (await app.Customer(Api.NewId("c")).ClaimAsync(draft)).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");

        // Another instance has the published campaign in its cache when the operator pauses it here.
        await using var other = TestApp.Over(app.Database);
        other.Clock.Set(Now);
        var campaign = await op.PublishedCampaignAsync(Api.Terms(Now, t => t["perCustomerLimit"] = 5));
        await (await other.Customer(Api.NewId("c")).ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created);
        await (await op.PostAsync($"/api/campaigns/{campaign}/pause", null)).AssertStatusAsync(HttpStatusCode.OK);

        await (await other.Customer(Api.NewId("c")).ClaimAsync(campaign)).AssertProblemAsync(HttpStatusCode.Conflict, "campaign-not-active");
        await op.PostAsync($"/api/campaigns/{campaign}/resume", null);
        await (await other.Customer(Api.NewId("c")).ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created);
        await op.PostAsync($"/api/campaigns/{campaign}/end", null);
        await (await other.Customer(Api.NewId("c")).ClaimAsync(campaign)).AssertProblemAsync(HttpStatusCode.Conflict, "campaign-not-active");
        await (await app.Customer(Api.NewId("c")).ClaimAsync("cmp_missing")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
    }

    [Fact]
    public async Task New_customer_campaigns_admit_only_customers_without_other_coupons_and_only_one_such_campaign()
    {
        var op = app.Operator();
        var regular = await op.PublishedCampaignAsync(Api.Terms(Now));
        var welcome = await op.PublishedCampaignAsync(Api.Terms(Now, t => { t["newCustomersOnly"] = true; t["perCustomerLimit"] = 2; }));
        var welcome2 = await op.PublishedCampaignAsync(Api.Terms(Now, t => t["newCustomersOnly"] = true));

        var veteran = app.Customer(Api.NewId("vet"));
        await (await veteran.ClaimAsync(regular)).AssertStatusAsync(HttpStatusCode.Created);
        await (await veteran.ClaimAsync(welcome)).AssertProblemAsync(HttpStatusCode.Forbidden, "not-eligible");

        var newcomer = app.Customer(Api.NewId("new"));
        await (await newcomer.ClaimAsync(welcome)).AssertStatusAsync(HttpStatusCode.Created);
        await (await newcomer.ClaimAsync(welcome)).AssertStatusAsync(HttpStatusCode.Created); // same campaign, within its limit
        await (await newcomer.ClaimAsync(welcome2)).AssertProblemAsync(HttpStatusCode.Forbidden, "not-eligible");

        // Racing two newcomer campaigns at once: at most one wins.
        var racer = app.Customer(Api.NewId("race"));
        var results = await Task.WhenAll(racer.ClaimAsync(welcome), racer.ClaimAsync(welcome2), racer.ClaimAsync(welcome2));
        var wallet = (await (await racer.GetAsync("/api/me/coupons")).ReadJsonAsync())["items"]!.AsArray();
        Assert.Single(wallet.Select(c => (string?)c!["campaignId"]).Distinct());
        Assert.Contains(results, r => r.StatusCode == HttpStatusCode.Created);
    }

    [Fact]
    public async Task A_sold_out_newcomer_campaign_does_not_use_up_newcomer_status()
    {
        var op = app.Operator();
        var gone = await op.PublishedCampaignAsync(Api.Terms(Now, t => { t["newCustomersOnly"] = true; t["totalQuantity"] = 1; }));
        var other = await op.PublishedCampaignAsync(Api.Terms(Now, t => t["newCustomersOnly"] = true));
        await (await app.Customer(Api.NewId("first")).ClaimAsync(gone)).AssertStatusAsync(HttpStatusCode.Created);

        var customer = app.Customer(Api.NewId("c"));
        await (await customer.ClaimAsync(gone)).AssertProblemAsync(HttpStatusCode.Conflict, "sold-out");
        await (await customer.ClaimAsync(other)).AssertStatusAsync(HttpStatusCode.Created);
    }

    [Fact]
    public async Task The_claimable_list_shows_published_campaigns_in_their_window_for_the_channel()
    {
        var op = app.Operator();
        var appOnly = await op.PublishedCampaignAsync(Api.Terms(Now, t => t["channels"] = new JsonArray("app")));
        var h5Only = await op.PublishedCampaignAsync(Api.Terms(Now, t => t["channels"] = new JsonArray("h5")));
        var draft = await op.CreateCampaignAsync(Api.Terms(Now));
        var later = await op.PublishedCampaignAsync(Api.Terms(Now, t => t["claimStartsAt"] = Api.Instant(Now.AddDays(1))));
        var customer = app.Customer(Api.NewId("c"));

        var forApp = (await (await customer.GetAsync("/api/campaigns/claimable?channel=app")).AssertStatusAsync(HttpStatusCode.OK))["items"]!
            .AsArray().Select(c => (string)c!["id"]!).ToList();
        Assert.Contains(appOnly, forApp);
        Assert.DoesNotContain(h5Only, forApp);
        Assert.DoesNotContain(draft, forApp);
        Assert.DoesNotContain(later, forApp);
        var all = (await (await customer.GetAsync("/api/campaigns/claimable")).ReadJsonAsync())["items"]!.AsArray().Select(c => (string)c!["id"]!).ToList();
        Assert.Contains(h5Only, all);
        await (await customer.GetAsync("/api/campaigns/claimable?channel=tv")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
    }

    [Fact]
    public async Task One_key_on_two_campaigns_at_once_is_two_claims_not_in_flight()
    {
        var op = app.Operator();
        var first = await op.PublishedCampaignAsync(Api.Terms(Now));
        var second = await op.PublishedCampaignAsync(Api.Terms(Now));
        var customer = app.Customer(Api.NewId("c"));
        var key = Guid.NewGuid().ToString();

        var responses = await Task.WhenAll(customer.ClaimAsync(first, key), customer.ClaimAsync(second, key));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.Created, r.StatusCode));
    }
}
