using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Xunit;

namespace Marketing.Tests;

/// <summary>Promoters join the programme, get a unique referral code, and bind buyers through referral visits.</summary>
public sealed class PromoterTests(TestApp app) : IClassFixture<TestApp>
{
    [Fact]
    public async Task A_customer_registers_once_and_gets_a_referral_code_that_names_them()
    {
        var alice = Api.NewId("alice");
        var response = await app.Customer(alice).PostAsync("/api/promoters", null);
        var created = await response.AssertStatusAsync(HttpStatusCode.Created);
        var code = (string)created["code"]!;
        Assert.Matches("^[0-9A-HJKMNP-TV-Z]{8}$", code);
        Assert.Equal(alice, (string?)created["id"]);
        Assert.Null(created["invitedWithCode"]);

        // Again: the same registration, not a second code.
        var again = await (await app.Customer(alice).PostAsync("/api/promoters", Api.JsonContent(new { }))).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(code, (string?)again["code"]);
        var me = await (await app.Customer(alice).GetAsync("/api/promoters/me")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(code, (string?)me["code"]);
    }

    [Fact]
    public async Task Concurrent_registrations_of_one_customer_make_one_promoter_with_one_code()
    {
        var bob = Api.NewId("bob");
        var answers = await Task.WhenAll(Enumerable.Range(0, 12).Select(async _ =>
            await (await app.Customer(bob).PostAsync("/api/promoters", null)).ReadJsonAsync()));
        Assert.Single(answers.Select(a => (string?)a["code"]).Distinct());
    }

    [Fact]
    public async Task An_inviter_code_makes_the_inviter_the_level_2_parent_for_good()
    {
        var inviterCode = await app.RegisterPromoterAsync(Api.NewId("p1"));
        var carol = Api.NewId("carol");
        var created = await (await app.Customer(carol).PostAsync("/api/promoters", Api.JsonContent(new { inviterCode })))
            .AssertStatusAsync(HttpStatusCode.Created);
        Assert.Equal(inviterCode, (string?)created["invitedWithCode"]);

        // Registering again with another inviter changes nothing.
        var other = await app.RegisterPromoterAsync(Api.NewId("p9"));
        var again = await (await app.Customer(carol).PostAsync("/api/promoters", Api.JsonContent(new { inviterCode = other })))
            .AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(inviterCode, (string?)again["invitedWithCode"]);
    }

    [Theory]
    [InlineData("{\"inviterCode\":\"ZZZZZZZZ\"}", HttpStatusCode.UnprocessableEntity, "unknown-referral-code")]
    [InlineData("{\"inviterCode\":\"abc\"}", HttpStatusCode.BadRequest, "validation-failed")]
    [InlineData("{\"inviterCode\":12}", HttpStatusCode.BadRequest, "validation-failed")]
    [InlineData("{\"friend\":\"x\"}", HttpStatusCode.BadRequest, "validation-failed")]
    [InlineData("[1]", HttpStatusCode.BadRequest, "validation-failed")]
    [InlineData("{", HttpStatusCode.BadRequest, "malformed-json")]
    public async Task A_bad_registration_is_refused_and_registers_nothing(string body, HttpStatusCode status, string type)
    {
        var dave = Api.NewId("dave");
        await (await app.Customer(dave).PostAsync("/api/promoters", Api.JsonContent(body))).AssertProblemAsync(status, type);
        // Not a promoter: promoter routes stay closed.
        await (await app.Customer(dave).GetAsync("/api/promoters/me")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
    }

    [Fact]
    public async Task A_visit_binds_the_buyer_for_the_window_and_a_later_code_does_not_steal_them()
    {
        await using var own = await TestApp.StartAsync();
        var first = await own.RegisterPromoterAsync(Api.NewId("pa"));
        var second = await own.RegisterPromoterAsync(Api.NewId("pb"));
        var buyer = Api.NewId("buyer");
        var start = own.Clock.GetUtcNow();

        var bound = await (await own.VisitAsync(buyer, first)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("bound", (string?)bound["status"]);
        Assert.Equal(Api.Instant(start.AddDays(30)), (string?)bound["boundUntil"]);

        own.Clock.Advance(TimeSpan.FromDays(10));
        var kept = await (await own.VisitAsync(buyer, second)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("kept_earlier", (string?)kept["status"]);
        Assert.Null(kept["boundUntil"]); // who holds the buyer is not said
        // The same promoter again: no extension of the window (it counts from the first visit).
        var same = await (await own.VisitAsync(buyer, first)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("already_bound", (string?)same["status"]);
        Assert.Equal(Api.Instant(start.AddDays(30)), (string?)same["boundUntil"]);

        // The window is over at exactly 30 days: the next code binds.
        own.Clock.Set(start.AddDays(30));
        var rebound = await (await own.VisitAsync(buyer, second)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("bound", (string?)rebound["status"]);
        Assert.Equal(Api.Instant(start.AddDays(60)), (string?)rebound["boundUntil"]);
    }

    [Fact]
    public async Task Concurrent_visits_through_different_codes_bind_the_buyer_to_exactly_one_promoter()
    {
        var codes = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => app.RegisterPromoterAsync(Api.NewId("pc"))));
        var buyer = Api.NewId("buyer");
        var answers = await Task.WhenAll(codes.Select(async code =>
            await (await app.VisitAsync(buyer, code)).AssertStatusAsync(HttpStatusCode.OK)));
        Assert.Single(answers, a => (string?)a["status"] == "bound");
        Assert.All(answers.Where(a => (string?)a["status"] != "bound"), a => Assert.Equal("kept_earlier", (string?)a["status"]));
    }

    [Fact]
    public async Task Self_referral_and_referral_by_ones_own_invitee_are_refused()
    {
        var parent = Api.NewId("parent");
        var parentCode = await app.RegisterPromoterAsync(parent);
        var childCode = await app.RegisterPromoterAsync(Api.NewId("child"), parentCode);

        await (await app.VisitAsync(parent, parentCode)).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "self-referral");
        // The parent would earn level-2 commission on their own purchase through their invitee's code.
        await (await app.VisitAsync(parent, childCode)).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "self-referral");
        // Nothing was bound: a legitimate code still binds.
        var stranger = await app.RegisterPromoterAsync(Api.NewId("stranger"));
        var bound = await (await app.VisitAsync(parent, stranger)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("bound", (string?)bound["status"]);
    }

    [Theory]
    [InlineData("{\"code\":\"ZZZZZZZZ\"}", HttpStatusCode.UnprocessableEntity, "unknown-referral-code")]
    [InlineData("{\"code\":\"ILOU0000\"}", HttpStatusCode.BadRequest, "validation-failed")]
    [InlineData("{}", HttpStatusCode.BadRequest, "validation-failed")]
    [InlineData("{\"code\":null}", HttpStatusCode.BadRequest, "validation-failed")]
    [InlineData("{\"code\":\"ABCDEFGH\",\"promoterId\":\"me\"}", HttpStatusCode.BadRequest, "validation-failed")]
    public async Task A_bad_visit_is_refused(string body, HttpStatusCode status, string type)
    {
        var response = await app.Customer(Api.NewId("v")).PostAsync("/api/referrals/visits", Api.JsonContent(body));
        await response.AssertProblemAsync(status, type);
    }

    [Fact]
    public async Task With_last_touch_attribution_every_visit_rebinds()
    {
        await using var own = await TestApp.StartAsync();
        await using var lastTouch = own.WithWebHostBuilder(b => b.UseSetting("Referrals:Attribution", "LastTouch"));
        var first = await own.RegisterPromoterAsync(Api.NewId("pa"));
        var second = await own.RegisterPromoterAsync(Api.NewId("pb"));
        var buyer = Api.NewId("buyer");
        HttpClient Client()
        {
            var client = lastTouch.CreateClient();
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", own.Token(buyer, ["customer"]));
            return client;
        }

        await (await Client().PostAsync("/api/referrals/visits", Api.JsonContent(new { code = first }))).AssertStatusAsync(HttpStatusCode.OK);
        own.Clock.Advance(TimeSpan.FromDays(3));
        var rebound = await (await Client().PostAsync("/api/referrals/visits", Api.JsonContent(new { code = second }))).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("bound", (string?)rebound["status"]);
        Assert.Equal(Api.Instant(own.Clock.GetUtcNow().AddDays(30)), (string?)rebound["boundUntil"]);
    }

    [Fact]
    public async Task Promoter_routes_answer_a_registered_customer_or_a_promoter_token_only()
    {
        var erin = Api.NewId("erin");
        await (await app.Customer(erin).GetAsync("/api/promoters/me/balance")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await app.RegisterPromoterAsync(erin);
        var balance = await app.BalanceAsync(erin);
        Assert.Equal(0, (long)balance["net"]!);
        // An identity provider that knows the programme may issue role "promoter" directly.
        var asPromoter = await (await app.As(erin, "promoter").GetAsync("/api/promoters/me")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(erin, (string?)asPromoter["id"]);
        // Operators are not promoters.
        await (await app.Operator().GetAsync("/api/promoters/me")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
    }
}
