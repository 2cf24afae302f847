using System.Net;
using Marketing.Functions.Hosting;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>Every route authorizes by role; customers reach only their own wallet.</summary>
public sealed class AuthorizationTests(TestApp app) : IClassFixture<TestApp>
{
    /// <summary>Who may call each HTTP function. A new function must be added here, or the completeness test fails.</summary>
    private static readonly Dictionary<string, string?> Access = new()
    {
        ["CreateCampaign"] = "operator",
        ["GetCampaign"] = "operator",
        ["ListCampaigns"] = "operator",
        ["UpdateCampaign"] = "operator",
        ["PublishCampaign"] = "operator",
        ["PauseCampaign"] = "operator",
        ["ResumeCampaign"] = "operator",
        ["EndCampaign"] = "operator",
        ["SubmitCampaign"] = "operator",
        ["ApproveCampaign"] = "approver",
        ["RejectCampaign"] = "approver",
        ["ReturnCampaign"] = "approver",
        ["ListClaimableCampaigns"] = "customer",
        ["ClaimCoupon"] = "customer",
        ["ListMyCoupons"] = "customer",
        ["GetMyCoupon"] = "customer",
        ["QuoteCoupons"] = "customer", // or order_system
        ["LockCoupon"] = "order_system",
        ["ConfirmRedemption"] = "order_system",
        ["CancelRedemption"] = "order_system",
        ["RefundRedemption"] = "order_system",
        ["GetRedemption"] = "order_system", // or operator
        ["TopUpBudget"] = "operator",
        ["GetBudget"] = "operator",
        ["ApproveTopUp"] = "approver", // or admin
        ["RejectTopUp"] = "approver",
        ["GetCampaignStats"] = "operator",
        ["ExportCampaignStats"] = "operator",
        ["GetStatsOverview"] = "operator",
        ["GetDistributionStats"] = "operator",
        ["RegisterPromoter"] = "customer",
        ["GetMyPromoter"] = "promoter",
        ["RecordReferralVisit"] = "customer",
        ["SetCommissionRules"] = "operator",
        ["GetCommissionRules"] = "operator",
        ["ListMyCommissions"] = "promoter",
        ["GetMyBalance"] = "promoter",
        ["CreatePayoutBatch"] = "operator",
        ["GetPayoutBatch"] = "operator", // or finance, admin
        ["ListPayoutBatches"] = "operator", // or finance, admin
        ["GetPayoutCsvLink"] = "finance",
        ["ApprovePayoutBatch"] = "finance", // or admin
        ["RejectPayoutBatch"] = "finance",
        ["ListQuarantinedEvents"] = "operator",
        ["GetNotificationPreferences"] = "customer",
        ["SetNotificationPreferences"] = "customer",
        ["AddWechatConsent"] = "customer",
        ["ListMyNotifications"] = "customer",
        ["MarkNotificationRead"] = "customer",
        ["StartMediaUpload"] = "operator",
        ["CompleteMediaUpload"] = "operator",
        ["ListMedia"] = "operator",
        ["DeleteMedia"] = "operator",
        ["GetCampaignPage"] = "customer",
        ["ListApprovals"] = "approver",
        ["ListAuditEntries"] = "approver", // or admin

        ["Health"] = null,
        ["OpenApi"] = null,
        ["ApiReference"] = null,
        ["OperatorConsole"] = null, // static files; the console calls /api with the user's bearer token
        ["GetConsoleConfig"] = null, // the console's public sign-in settings, read before anyone signs in
    };

    public static TheoryData<string> Functions() => new(Access.Keys);

    [Fact]
    public void Every_http_function_has_an_access_rule_in_this_test()
    {
        var declared = HttpFunctions().Select(f => f.Name).Distinct().Order().ToArray();
        Assert.Equal(Access.Keys.Order().ToArray(), declared);
    }

    [Theory]
    [MemberData(nameof(Functions))]
    public async Task Without_a_token_protected_functions_answer_401_problem(string function)
    {
        var response = await app.Anonymous().SendAsync(RequestFor(function));
        if (Access[function] is null)
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        else
        {
            await response.AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
            Assert.Equal("Bearer", response.Headers.WwwAuthenticate.ToString());
        }
    }

    [Theory]
    [MemberData(nameof(Functions))]
    public async Task With_the_wrong_role_protected_functions_answer_403_problem(string function)
    {
        var role = Access[function];
        if (role is null) return; // anonymous functions have no wrong role
        var wrong = role == "customer" ? "operator" : "customer";
        var response = await app.As(Api.NewId("x"), wrong).SendAsync(RequestFor(function));
        await response.AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
    }

    [Fact]
    public async Task Customers_and_operators_cannot_take_the_order_systems_steps_and_customers_cannot_read_redemptions()
    {
        foreach (var step in new[] { "confirm", "cancel", "refund" })
        {
            await (await app.Customer(Api.NewId("c")).StepAsync("o-1", step)).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
            await (await app.Operator().StepAsync("o-1", step)).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        }
        await (await app.Customer(Api.NewId("c")).GetAsync("/api/redemptions/o-1")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await app.Operator().GetAsync("/api/redemptions/o-unknown")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        await (await app.OrderSystem().PostAsync("/api/campaigns/cmp_x/budget", Api.JsonContent(new { amount = 1, reason = "x" })))
            .AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
    }

    [Fact]
    public async Task Admins_may_do_what_operators_do()
    {
        var response = await app.As("root", "admin").GetAsync("/api/campaigns");
        await response.AssertStatusAsync(HttpStatusCode.OK);
    }

    [Theory]
    [InlineData("expired")]
    [InlineData("wrong-key")]
    [InlineData("wrong-audience")]
    [InlineData("garbage")]
    public async Task Invalid_tokens_are_401(string kind)
    {
        var token = kind switch
        {
            "expired" => app.Token("alice", ["customer"], lifetime: TimeSpan.FromMinutes(-5)),
            "wrong-key" => app.Token("alice", ["customer"], signingKey: "another-key-of-at-least-thirty-two-bytes!!"),
            "wrong-audience" => app.Token("alice", ["customer"], audience: "someone-else"),
            _ => "not.a.jwt",
        };
        var client = app.Anonymous();
        client.DefaultRequestHeaders.Authorization = new("Bearer", token);
        var response = await client.GetAsync("/api/me/coupons");
        await response.AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
    }

    [Fact]
    public async Task A_customer_cannot_read_another_customers_coupon()
    {
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var alice = app.Customer(Api.NewId("alice"));
        var claimed = await (await alice.ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created);
        var couponId = (string)claimed["id"]!;

        await (await alice.GetAsync($"/api/me/coupons/{couponId}")).AssertStatusAsync(HttpStatusCode.OK);
        var mallory = app.Customer(Api.NewId("mallory"));
        await (await mallory.GetAsync($"/api/me/coupons/{couponId}")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        var list = await (await mallory.GetAsync("/api/me/coupons")).ReadJsonAsync();
        Assert.Empty(list["items"]!.AsArray());
    }

    private IEnumerable<HttpFunction> HttpFunctions()
        => app.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .Select(e => e.Metadata.GetMetadata<FunctionDeclaration>()).OfType<HttpFunction>();

    /// <summary>A request to the function's own route and method, with a plausible body.</summary>
    private HttpRequestMessage RequestFor(string function)
    {
        var endpoint = app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<HttpFunction>()?.Name == function)
            .MaxBy(e => e.RoutePattern.Parameters.Count)!; // of the API reference's endpoints, the page itself
        var method = endpoint.Metadata.GetMetadata<HttpMethodMetadata>()!.HttpMethods[0];
        var path = "/" + endpoint.RoutePattern.RawText!.TrimStart('/')
            .Replace("{id}", "cmp_unknown").Replace("{couponId}", "cpn_unknown").Replace("{orderId}", "o-unknown").Replace("{mediaId}", "med_unknown").Replace("{key}", "k-unknown").Replace("{batchId}", "b-unknown").Replace("{documentName?}", "").Replace("{*path}", "");
        var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (method is "POST" or "PUT")
        {
            request.Content = Api.JsonContent(function switch
            {
                "ClaimCoupon" => new { channel = "app" },
                "QuoteCoupons" => new { channel = "app", currency = "CNY", lines = new[] { new { sku = "s", category = "c", unitPrice = 100, quantity = 1 } } },
                "LockCoupon" => new { orderId = "o-1", customerId = "c-1", couponId = "cpn_unknown", order = Orders.Draft() },
                "ConfirmRedemption" or "CancelRedemption" or "RefundRedemption" => new { reason = "test" },
                "TopUpBudget" => new { amount = 100, reason = "test" },
                "RegisterPromoter" => new { },
                "RecordReferralVisit" => new { code = "ABCDEFGH" },
                "SetCommissionRules" => new { level1 = new { defaultBps = 1000 }, level2 = new { defaultBps = 300 } },
                "CreatePayoutBatch" => new { batchId = "b-auth", minimum = 1 },
                "RejectTopUp" or "RejectPayoutBatch" => new { reason = "test" },
                "SetNotificationPreferences" => new { channels = new[] { "push" } },
                "StartMediaUpload" => new { kind = "banner", contentType = "image/png", length = 100 },
                _ => (object)Api.Terms(app.Clock.GetUtcNow()),
            });
            request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
        }
        return request;
    }
}
