using System.Net;
using System.Text.Json.Nodes;
using Marketing.Tests.Support;
using Xunit;

namespace Marketing.Tests;

/// <summary>QuoteCoupons prices a customer's wallet against an order draft and picks the best coupon.</summary>
public sealed class QuoteTests(TestApp app) : IClassFixture<TestApp>
{
    private DateTimeOffset Now => app.Clock.GetUtcNow();

    private static object Cart(string? customerId = null, string currency = "CNY", long shoes = 30000, long food = 5000) => new
    {
        customerId,
        channel = "app",
        currency,
        lines = new object[]
        {
            new { sku = "sh-1", category = "shoes", unitPrice = shoes, quantity = 1 },
            new { sku = "fd-1", category = "food", unitPrice = food, quantity = 2 },
        },
    };

    [Fact]
    public async Task A_quote_lists_what_applies_with_its_discount_what_does_not_with_why_and_the_best()
    {
        var op = app.Operator();
        var twentyOff = await op.PublishedCampaignAsync(Api.Terms(Now, t => { t["amountOff"] = 2000; t["minimumSpend"] = 10000; }));
        var shoesTenPercent = await op.PublishedCampaignAsync(Api.Terms(Now, t =>
        {
            t["kind"] = "percent_off"; t["amountOff"] = null; t["percentOff"] = 10; t["maxDiscount"] = 5000; t["minimumSpend"] = 0;
            t["categories"] = new JsonArray("shoes");
        }));
        var bigThreshold = await op.PublishedCampaignAsync(Api.Terms(Now, t => t["minimumSpend"] = 1_000_000));
        var customerId = Api.NewId("c");
        var customer = app.Customer(customerId);
        foreach (var campaign in new[] { twentyOff, shoesTenPercent, bigThreshold })
            await (await customer.ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created);

        var quote = await (await customer.PostAsync("/api/redemptions/quote", Api.JsonContent(Cart()))).AssertStatusAsync(HttpStatusCode.OK);

        var applicable = quote["applicable"]!.AsArray();
        Assert.Equal([shoesTenPercent, twentyOff], applicable.Select(c => (string)c!["campaignId"]!).ToArray());
        Assert.Equal(3000, (long)applicable[0]!["discount"]!); // 10% of the 300.00 shoes
        Assert.Equal(30000, (long)applicable[0]!["eligibleSubtotal"]!);
        Assert.Equal(2000, (long)applicable[1]!["discount"]!);
        Assert.Equal(shoesTenPercent, (string?)quote["best"]!["campaignId"]);
        var not = Assert.Single(quote["notApplicable"]!.AsArray());
        Assert.Equal(bigThreshold, (string?)not!["campaignId"]);
        Assert.Equal("below_threshold", (string?)not["reason"]);

        // The order system quotes the same wallet by naming the customer.
        var system = app.As("orders", "order_system");
        var forSystem = await (await system.PostAsync("/api/redemptions/quote", Api.JsonContent(Cart(customerId)))).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(shoesTenPercent, (string?)forSystem["best"]!["campaignId"]);
        var currency = await (await customer.PostAsync("/api/redemptions/quote", Api.JsonContent(Cart(currency: "USD")))).ReadJsonAsync();
        Assert.Null(currency["best"]);
        Assert.All(currency["notApplicable"]!.AsArray(), c => Assert.Equal("currency", (string?)c!["reason"]));
    }

    [Fact]
    public async Task A_customer_cannot_quote_with_someone_elses_wallet()
    {
        var response = await app.Customer(Api.NewId("mallory")).PostAsync("/api/redemptions/quote", Api.JsonContent(Cart("alice")));
        await response.AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
    }

    [Fact]
    public async Task The_order_system_must_name_the_customer()
    {
        var response = await app.As("orders", "order_system").PostAsync("/api/redemptions/quote", Api.JsonContent(Cart()));
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(problem["errors"]!["customerId"]);
    }

    [Theory]
    [InlineData("""{"channel":"app","currency":"CNY","lines":[]}""", "lines")]
    [InlineData("""{"channel":"app","currency":"CNY","lines":[{"sku":"a","category":"c","unitPrice":-1,"quantity":1}]}""", "lines[0].unitPrice")]
    [InlineData("""{"channel":"app","currency":"CNY","lines":[{"sku":"a","category":"c","unitPrice":1,"quantity":0}]}""", "lines[0].quantity")]
    [InlineData("""{"channel":"app","currency":"yuan","lines":[{"sku":"a","category":"c","unitPrice":1,"quantity":1}]}""", "currency")]
    public async Task Bad_order_drafts_are_400_with_the_field_named(string body, string field)
    {
        var response = await app.Customer(Api.NewId("c")).PostAsync("/api/redemptions/quote", Api.JsonContent(body));
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(problem["errors"]![field]);
    }
}
