using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Marketing.Functions.Hosting;
using Marketing.Tests.Support;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// One request contract (docs/api.md, "Request bodies"): step bodies are optional JSON objects with only their
/// own members, every error of a body comes back in one answer, and no stored text holds control characters.
/// </summary>
public sealed class RequestContractTests(TestApp app) : IClassFixture<TestApp>
{
    private DateTimeOffset Now => app.Clock.GetUtcNow();

    private static StringContent Body(string json, string mediaType = "application/json") => new(json, Encoding.UTF8, mediaType);

    private async Task<(HttpClient Orders, string OrderId)> LockedOrderAsync(string campaign)
    {
        var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
        var orders = app.OrderSystem();
        var orderId = Api.NewId("o");
        await (await orders.LockAsync(orderId, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
        return (orders, orderId);
    }

    // ---- Item 2: redemption steps and lifecycle steps, one rule each -------------------------------------------

    [Fact]
    public async Task Redemption_steps_accept_no_body_an_empty_object_or_a_reason_and_refuse_anything_else()
    {
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(Now));

        // {} is a body with no reason: accepted by every step (it was 400 "reason: Required.").
        var (orders, paid) = await LockedOrderAsync(campaign);
        var confirmed = await (await orders.PostAsync($"/api/redemptions/{paid}/confirm", Body("{}"))).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("used", (string?)confirmed["state"]);
        var refunded = await (await orders.PostAsync($"/api/redemptions/{paid}/refund", Body("""{"reason":null}"""))).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("refunded", (string?)refunded["state"]);
        var (_, unpaid) = await LockedOrderAsync(campaign);
        await (await orders.PostAsync($"/api/redemptions/{unpaid}/cancel", Body("{}"))).AssertStatusAsync(HttpStatusCode.OK);
        var (_, withReason) = await LockedOrderAsync(campaign);
        var cancelled = await (await orders.PostAsync($"/api/redemptions/{withReason}/cancel", Body("""{"reason":"out of stock"}""")))
            .AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("out of stock", (string?)cancelled["history"]![1]!["reason"]);

        // Anything else is refused before the record is looked at, the same way by every step.
        var (_, open) = await LockedOrderAsync(campaign);
        foreach (var step in new[] { "confirm", "cancel", "refund" })
        {
            var url = $"/api/redemptions/{open}/{step}";
            var unknown = await (await orders.PostAsync(url, Body("""{"reason":"x","refundAmount":5}"""))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
            Assert.Equal(["refundAmount"], unknown["errors"]!.AsObject().Select(e => e.Key));
            await (await orders.PostAsync(url, Body("[]"))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
            await (await orders.PostAsync(url, Body("""{"reason":""}"""))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
            await (await orders.PostAsync(url, Body("reason=x", "application/x-www-form-urlencoded"))).AssertProblemAsync(HttpStatusCode.UnsupportedMediaType, "unsupported-media-type");
        }
        var still = await (await orders.GetAsync($"/api/redemptions/{open}")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("locked", (string?)still["state"]);
    }

    [Fact]
    public async Task Lifecycle_steps_accept_no_body_or_an_empty_object_and_refuse_members_and_other_media_types()
    {
        var op = app.Operator();
        var id = await op.CreateCampaignAsync(Api.Terms(Now));
        await op.ApprovedCampaignAsync(id);

        var member = await (await op.PostAsync($"/api/campaigns/{id}/publish", Body("""{"status":"published"}"""))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(member["errors"]!["status"]);
        await (await op.PostAsync($"/api/campaigns/{id}/publish", Body("null"))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        await (await op.PostAsync($"/api/campaigns/{id}/publish", Body("now", "text/plain"))).AssertProblemAsync(HttpStatusCode.UnsupportedMediaType, "unsupported-media-type");
        Assert.Equal("approved", (string?)(await (await op.GetAsync($"/api/campaigns/{id}")).AssertStatusAsync(HttpStatusCode.OK))["status"]);

        await (await op.PostAsync($"/api/campaigns/{id}/publish", Body("{}"))).AssertStatusAsync(HttpStatusCode.OK);
        await (await op.PostAsync($"/api/campaigns/{id}/pause", null)).AssertStatusAsync(HttpStatusCode.OK);
        // The media type is judged by its header (by routing, before the body is read): even an empty body must not claim another type.
        await (await op.PostAsync($"/api/campaigns/{id}/resume", Body("", "text/plain"))).AssertProblemAsync(HttpStatusCode.UnsupportedMediaType, "unsupported-media-type");
        // An empty body is no body.
        await (await op.PostAsync($"/api/campaigns/{id}/resume", Body(""))).AssertStatusAsync(HttpStatusCode.OK);
        var ended = await (await op.PostAsync($"/api/campaigns/{id}/end", Body("{}"))).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("ended", (string?)ended["status"]);
    }

    [Fact]
    public async Task The_OpenAPI_document_says_step_bodies_are_optional_and_reason_is_optional()
    {
        var document = await (await app.Anonymous().GetAsync("/api/openapi.json")).AssertStatusAsync(HttpStatusCode.OK);
        foreach (var path in new[] { "/api/redemptions/{orderId}/confirm", "/api/redemptions/{orderId}/cancel", "/api/redemptions/{orderId}/refund",
                     "/api/campaigns/{id}/publish", "/api/campaigns/{id}/pause", "/api/campaigns/{id}/resume", "/api/campaigns/{id}/end",
                     "/api/campaigns/{id}/submit", "/api/campaigns/{id}/approve" })
        {
            var body = document["paths"]![path]!["post"]!["requestBody"];
            Assert.True(body is not null, $"{path} documents its body");
            Assert.False((bool?)body!["required"] ?? false, $"{path}: the body is optional");
            Assert.NotNull(body["content"]!["application/json"]);
        }
        var step = document["components"]!["schemas"]!["StepRequest"]!;
        Assert.NotNull(step["properties"]!["reason"]);
        Assert.DoesNotContain("reason", step["required"]?.AsArray().Select(r => (string?)r) ?? []);
        Assert.Empty(document["components"]!["schemas"]!["CampaignStepRequest"]!["properties"]?.AsObject() ?? []);
    }

    // ---- Item 7: every error of a body at once ---------------------------------------------------------------

    [Fact]
    public async Task A_campaign_with_a_missing_an_unknown_a_nested_unknown_a_mistyped_and_an_out_of_range_field_gets_all_five_in_one_400()
    {
        var terms = Api.Terms(Now, t =>
        {
            t.Remove("currency");                                                       // missing
            t["status"] = "published";                                                  // unknown, top level
            t["validity"] = new JsonObject { ["type"] = "relative", ["days"] = 7, ["hours"] = 3 }; // unknown, nested
            t["perCustomerLimit"] = "one";                                              // wrong type
            t["totalQuantity"] = 0;                                                     // value rule
        });

        var problem = await (await app.Operator().PostAsync("/api/campaigns", Api.JsonContent(terms))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");

        var errors = problem["errors"]!.AsObject();
        Assert.Equal(["currency", "perCustomerLimit", "status", "totalQuantity", "validity.hours"], errors.Select(e => e.Key).Order(StringComparer.Ordinal));
        Assert.Equal("Required.", (string?)errors["currency"]![0]);
        Assert.Equal("Unknown field.", (string?)errors["status"]![0]);
        Assert.Equal("Unknown field.", (string?)errors["validity.hours"]![0]);
        Assert.Equal("1 to 100000000.", (string?)errors["totalQuantity"]![0]);
    }

    [Fact]
    public async Task A_lock_with_errors_at_every_level_gets_them_all_in_one_400()
    {
        var draft = Orders.Draft();
        draft["lines"]![0]!["colour"] = "red";   // unknown, inside an array element
        draft["lines"]![1]!["quantity"] = 0;     // value rule, inside an array element
        draft["lines"]![1]!.AsObject().Remove("sku"); // missing, inside an array element
        draft["channel"] = "tv";                 // not one of the channels
        var body = new JsonObject { ["orderId"] = "has space", ["customerId"] = "c1", ["order"] = draft, ["coupon"] = "x" };

        var problem = await (await app.OrderSystem().PostAsync("/api/redemptions", Api.JsonContent(body))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");

        Assert.Equal(["coupon", "couponId", "order.channel", "order.lines[0].colour", "order.lines[1].quantity", "order.lines[1].sku", "orderId"],
            problem["errors"]!.AsObject().Select(e => e.Key).Order(StringComparer.Ordinal));
        Assert.Contains("app", (string?)problem["errors"]!["order.channel"]![0]);
    }

    [Theory]
    [InlineData("""{"name":"x","name":"y"}""", "name", "Given more than once.")]
    [InlineData("""{"name":"x","Name":"y"}""", "name", "Given more than once.")]
    [InlineData("""{"name":null}""", "name", "Required.")]
    [InlineData("""{"validity":"7 days"}""", "validity", "Must be a JSON object.")]
    [InlineData("""{"channels":"app"}""", "channels", "Must be a JSON array.")]
    [InlineData("""{"channels":["app","tv"]}""", "channels[1]", "One of: app, mini_program, h5, ota.")]
    [InlineData("""{"amountOff":20.5}""", "amountOff", "A whole number (no fraction or exponent) within range.")]
    public async Task Shape_errors_name_the_field_and_say_what_is_expected(string patch, string field, string message)
    {
        var terms = Api.Terms(Now);
        foreach (var key in new[] { "name", "validity", "channels", "amountOff" }) terms.Remove(key);
        // Spliced in as text, so repeated members reach the server as sent.
        var json = terms.ToJsonString()[..^1] + "," + patch[1..];

        var problem = await (await app.Operator().PostAsync("/api/campaigns", Body(json))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");

        Assert.Equal(message, (string?)problem["errors"]![field]![0]);
    }

    // ---- Item 8: no control characters in text ---------------------------------------------------------------

    public static TheoryData<string> Texts => new() { "a\u0000b", "a\r\nb", "a\nb", "a\tb", "a\u007fb", "a\u0085b", "a\u2028b" };

    [Theory]
    [MemberData(nameof(Texts))]
    public async Task Campaign_name_refuses_control_characters(string text)
        => await AssertRefusedAsync(await app.Operator().PostAsync("/api/campaigns", Api.JsonContent(Api.Terms(Now, t => t["name"] = text))), "name");

    [Theory]
    [MemberData(nameof(Texts))]
    public async Task Campaign_categories_refuse_control_characters(string text)
        => await AssertRefusedAsync(await app.Operator().PostAsync("/api/campaigns",
            Api.JsonContent(Api.Terms(Now, t => t["categories"] = new JsonArray("shoes", text)))), "categories[1]");

    [Fact]
    public async Task Campaign_update_and_time_zone_refuse_control_characters()
    {
        var op = app.Operator();
        var id = await op.CreateCampaignAsync(Api.Terms(Now));
        await AssertRefusedAsync(await op.PutAsync($"/api/campaigns/{id}", Api.JsonContent(Api.Terms(Now, t => t["name"] = "Double 11\r\nFREE"))), "name");
        await AssertRefusedAsync(await op.PostAsync("/api/campaigns", Api.JsonContent(Api.Terms(Now, t => t["timeZone"] = "Asia/Shanghai\u0000"))), "timeZone");
    }

    [Theory]
    [MemberData(nameof(Texts))]
    public async Task Order_line_sku_and_category_refuse_control_characters_in_quotes_and_locks(string text)
    {
        var draft = Orders.Draft();
        draft["lines"]![0]!["sku"] = text;
        draft["lines"]![1]!["category"] = text;
        var quote = await app.Customer(Api.NewId("c")).PostAsync("/api/redemptions/quote", Api.JsonContent(draft));
        var errors = await AssertRefusedAsync(quote, "lines[0].sku");
        Assert.Equal(JsonBody.ControlCharacters, (string?)errors["lines[1].category"]![0]);

        var locked = await app.OrderSystem().PostAsync("/api/redemptions", Api.JsonContent(new JsonObject
        {
            ["orderId"] = Api.NewId("o"), ["customerId"] = "c1", ["couponId"] = "cpn_x", ["order"] = draft,
        }));
        errors = await AssertRefusedAsync(locked, "order.lines[0].sku");
        Assert.Equal(JsonBody.ControlCharacters, (string?)errors["order.lines[1].category"]![0]);
    }

    [Theory]
    [MemberData(nameof(Texts))]
    public async Task Step_reason_refuses_control_characters(string text)
    {
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(Now));
        var (orders, orderId) = await LockedOrderAsync(campaign);
        foreach (var step in new[] { "confirm", "cancel", "refund" })
            await AssertRefusedAsync(await orders.StepAsync(orderId, step, text), "reason");
    }

    [Fact]
    public async Task Top_up_reason_refuses_control_characters()
    {
        var op = app.Operator();
        var campaign = await op.PublishedCampaignAsync(Api.Terms(Now, t => t["budget"] = 10000));
        foreach (var text in new[] { "weekend\u0000push", "weekend\r\npush" })
        {
            var request = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{campaign}/budget")
            {
                Content = Api.JsonContent(new JsonObject { ["amount"] = 100, ["reason"] = text }),
            };
            request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
            await AssertRefusedAsync(await op.SendAsync(request), "reason");
        }
    }

    [Fact]
    public async Task A_top_up_with_an_unknown_field_and_a_bad_amount_and_no_reason_gets_all_three_in_one_400()
    {
        var op = app.Operator();
        var campaign = await op.PublishedCampaignAsync(Api.Terms(Now, t => t["budget"] = 10000));
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{campaign}/budget")
        {
            Content = Api.JsonContent(new JsonObject { ["amount"] = 0, ["note"] = "weekend" }),
        };
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
        var problem = await (await op.SendAsync(request)).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.Equal(["amount", "note", "reason"], problem["errors"]!.AsObject().Select(e => e.Key).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Promoter_codes_and_commission_categories_refuse_control_characters()
    {
        await AssertRefusedAsync(await app.Customer(Api.NewId("c")).PostAsync("/api/promoters", Api.JsonContent(new { inviterCode = "ABCD\r\nEF" })), "inviterCode");
        await AssertRefusedAsync(await app.Customer(Api.NewId("c")).PostAsync("/api/referrals/visits", Api.JsonContent(new { code = "ABCDEFG\u0000" })), "code");
        var rules = new JsonObject
        {
            ["level1"] = new JsonObject { ["defaultBps"] = 100, ["categoryBps"] = new JsonObject { ["sho\nes"] = 200 } },
            ["level2"] = new JsonObject { ["defaultBps"] = 50 },
        };
        await AssertRefusedAsync(await app.Operator().PutAsync("/api/commission-rules", Api.JsonContent(rules)), "level1.categoryBps.sho\nes");
    }

    [Fact]
    public async Task Text_that_is_not_valid_unicode_is_a_400_not_a_500()
    {
        var json = Api.Terms(Now).ToJsonString().Replace("Spend 100 save 20", "\\ud800");
        var problem = await (await app.Operator().PostAsync("/api/campaigns", Body(json))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(problem["errors"]!["name"]);
    }

    private static async Task<JsonObject> AssertRefusedAsync(HttpResponseMessage response, string field)
    {
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        var errors = problem["errors"]!.AsObject();
        Assert.True(errors[field] is not null, $"no error for {field}: {problem.ToJsonString()}");
        Assert.Equal(JsonBody.ControlCharacters, (string?)errors[field]![0]);
        return errors;
    }
}
