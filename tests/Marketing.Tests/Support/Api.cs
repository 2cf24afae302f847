using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Xunit;

namespace Marketing.Tests.Support;

/// <summary>Small helpers that keep tests about behaviour, not about HTTP plumbing.</summary>
public static class Api
{
    public static StringContent JsonContent(object body)
        => new(body is string s ? s : JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");

    public static async Task<JsonNode> ReadJsonAsync(this HttpResponseMessage response)
        => JsonNode.Parse(await response.Content.ReadAsStringAsync())!;

    /// <summary>Asserts a problem+json answer with the given status and type suffix; returns the body.</summary>
    public static async Task<JsonNode> AssertProblemAsync(this HttpResponseMessage response, HttpStatusCode status, string type)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status} {type}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var json = JsonNode.Parse(body)!;
        Assert.Equal("urn:marketing:problem:" + type, (string?)json["type"]);
        Assert.Equal((int)status, (int?)json["status"]);
        return json;
    }

    public static async Task<JsonNode> AssertStatusAsync(this HttpResponseMessage response, HttpStatusCode status)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        return body.Length == 0 ? new JsonObject() : JsonNode.Parse(body)!;
    }

    /// <summary>Campaign terms that are valid as they are; tests override what they are about.</summary>
    public static JsonObject Terms(DateTimeOffset now, Action<JsonObject>? change = null)
    {
        var terms = new JsonObject
        {
            ["name"] = "Spend 100 save 20",
            ["kind"] = "amount_off",
            ["amountOff"] = 2000,
            ["minimumSpend"] = 10000,
            ["currency"] = "CNY",
            ["categories"] = new JsonArray(),
            ["newCustomersOnly"] = false,
            ["channels"] = new JsonArray("app", "mini_program", "h5"),
            ["claimStartsAt"] = Instant(now.AddHours(-1)),
            ["claimEndsAt"] = Instant(now.AddDays(10)),
            ["validity"] = new JsonObject { ["type"] = "relative", ["days"] = 7 },
            ["totalQuantity"] = 100,
            ["perCustomerLimit"] = 1,
            ["timeZone"] = "Asia/Shanghai",
        };
        change?.Invoke(terms);
        return terms;
    }

    public static string Instant(DateTimeOffset value) => value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'");

    public static async Task<string> CreateCampaignAsync(this HttpClient operatorClient, JsonObject terms)
    {
        var response = await operatorClient.PostAsync("/api/campaigns", JsonContent(terms));
        var json = await response.AssertStatusAsync(HttpStatusCode.Created);
        return (string)json["id"]!;
    }

    /// <summary>Creates the campaign, submits it, has someone else approve it (maker-checker) and publishes it.</summary>
    public static async Task<string> PublishedCampaignAsync(this HttpClient operatorClient, JsonObject terms)
    {
        var id = await operatorClient.CreateCampaignAsync(terms);
        await operatorClient.ApprovedCampaignAsync(id);
        await (await operatorClient.PostAsync($"/api/campaigns/{id}/publish", null)).AssertStatusAsync(HttpStatusCode.OK);
        return id;
    }

    /// <summary>Submits the draft as the operator, and approves it as an approver who is someone else (<see cref="CheckerToken"/>).</summary>
    public static async Task ApprovedCampaignAsync(this HttpClient operatorClient, string id)
    {
        await (await operatorClient.PostAsync($"/api/campaigns/{id}/submit", null)).AssertStatusAsync(HttpStatusCode.OK);
        using var approve = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{id}/approve");
        // A header on the request wins over the client's default one: the same app, another person.
        approve.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", CheckerToken(operatorClient));
        await (await operatorClient.SendAsync(approve)).AssertStatusAsync(HttpStatusCode.OK);
    }

    /// <summary>
    /// A dev token for an approver ("avery", or "avery-2" when the client is avery) shaped like the client's own: same
    /// issuer, audience and lifetime (on the app's clock, whatever a test did to it).
    /// </summary>
    public static string CheckerToken(HttpClient maker)
    {
        var own = new JsonWebToken(maker.DefaultRequestHeaders.Authorization?.Parameter
            ?? throw new InvalidOperationException("The client has no bearer token."));
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = own.Issuer,
            Audience = own.Audiences.First(),
            Claims = new Dictionary<string, object> { ["sub"] = own.Subject == "avery" ? "avery-2" : "avery", ["roles"] = new[] { "approver" } },
            IssuedAt = own.IssuedAt,
            NotBefore = own.ValidFrom,
            Expires = own.ValidTo,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(Settings.Get("Auth__DevSigningKey"))),
                SecurityAlgorithms.HmacSha256),
        });
    }

    public static Task<HttpResponseMessage> ClaimAsync(this HttpClient customer, string campaignId, string? key = null, string channel = "app")
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{campaignId}/claims")
        {
            Content = JsonContent(new { channel }),
        };
        request.Headers.Add("Idempotency-Key", key ?? Guid.NewGuid().ToString());
        return customer.SendAsync(request);
    }

    public static string NewId(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 13)];
}

/// <summary>Helpers for the order system's side: locking and settling coupons on orders.</summary>
public static class Orders
{
    public static HttpClient OrderSystem(this TestApp app) => app.As("orders", "order_system");

    /// <summary>An order draft of 300.00 of shoes and 2 × 50.00 of food, on the app, in CNY.</summary>
    public static JsonObject Draft(string currency = "CNY", string channel = "app", long shoes = 30000, long food = 5000) => new()
    {
        ["channel"] = channel,
        ["currency"] = currency,
        ["lines"] = new JsonArray(
            new JsonObject { ["sku"] = "sh-1", ["category"] = "shoes", ["unitPrice"] = shoes, ["quantity"] = 1 },
            new JsonObject { ["sku"] = "fd-1", ["category"] = "food", ["unitPrice"] = food, ["quantity"] = 2 }),
    };

    public static Task<HttpResponseMessage> LockAsync(this HttpClient orderSystem, string orderId, string customerId, string couponId,
        JsonObject? draft = null)
        => orderSystem.PostAsync("/api/redemptions", Api.JsonContent(new JsonObject
        {
            ["orderId"] = orderId,
            ["customerId"] = customerId,
            ["couponId"] = couponId,
            ["order"] = draft ?? Draft(),
        }));

    public static Task<HttpResponseMessage> StepAsync(this HttpClient orderSystem, string orderId, string step, string? reason = null)
        => orderSystem.PostAsync($"/api/redemptions/{orderId}/{step}", reason is null ? null : Api.JsonContent(new { reason }));

    /// <summary>A customer with one freshly claimed coupon of the campaign: (customerId, couponId).</summary>
    public static async Task<(string Customer, string Coupon)> CustomerWithCouponAsync(this TestApp app, string campaign)
    {
        var customer = Api.NewId("c");
        var claimed = await (await app.Customer(customer).ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created);
        return (customer, (string)claimed["id"]!);
    }

    public static async Task<string> CouponStatusAsync(this TestApp app, string customer, string coupon)
        => (string)(await (await app.Customer(customer).GetAsync($"/api/me/coupons/{coupon}")).AssertStatusAsync(HttpStatusCode.OK))["status"]!;
}
