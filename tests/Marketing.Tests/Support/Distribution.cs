using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Xunit;

namespace Marketing.Tests.Support;

/// <summary>Helpers for the distribution programme: promoters, referral visits, rules, and order events over the payload protocol.</summary>
public static class Distribution
{
    /// <summary>Registers <paramref name="customerId"/> as a promoter (optionally invited); returns their referral code.</summary>
    public static async Task<string> RegisterPromoterAsync(this TestApp app, string customerId, string? inviterCode = null)
    {
        var response = await app.Customer(customerId).PostAsync("/api/promoters",
            Api.JsonContent(inviterCode is null ? new JsonObject() : new JsonObject { ["inviterCode"] = inviterCode }));
        var body = await response.AssertStatusAsync(HttpStatusCode.Created);
        return (string)body["code"]!;
    }

    public static Task<HttpResponseMessage> VisitAsync(this TestApp app, string buyerId, string code)
        => app.Customer(buyerId).PostAsync("/api/referrals/visits", Api.JsonContent(new { code }));

    /// <summary>Sets the rules in force from now (or <paramref name="from"/>): default rates, plus per-category overrides.</summary>
    public static async Task SetRulesAsync(this TestApp app, int level1Bps, int level2Bps, Dictionary<string, int>? level1Categories = null,
        Dictionary<string, int>? level2Categories = null, DateTimeOffset? from = null)
    {
        var body = new JsonObject
        {
            ["level1"] = new JsonObject { ["defaultBps"] = level1Bps, ["categoryBps"] = Map(level1Categories) },
            ["level2"] = new JsonObject { ["defaultBps"] = level2Bps, ["categoryBps"] = Map(level2Categories) },
        };
        if (from is { } f) body["effectiveFrom"] = Api.Instant(f);
        await (await app.Operator().PutAsync("/api/commission-rules", Api.JsonContent(body))).AssertStatusAsync(HttpStatusCode.OK);
    }

    private static JsonObject Map(Dictionary<string, int>? rates)
    {
        var map = new JsonObject();
        foreach (var (category, bps) in rates ?? []) map[category] = bps;
        return map;
    }

    public static JsonObject Line(string lineId, string category, long amount)
        => new() { ["lineId"] = lineId, ["category"] = category, ["amount"] = amount };

    /// <summary>An order event body as the order system sends it.</summary>
    public static JsonObject OrderEvent(string type, string orderId, string buyerId, DateTimeOffset occurredAt, params JsonObject[] lines)
        => new()
        {
            ["eventId"] = Api.NewId("ev"),
            ["type"] = type,
            ["orderId"] = orderId,
            ["buyerId"] = buyerId,
            ["occurredAt"] = Api.Instant(occurredAt),
            ["currency"] = "CNY",
            ["lines"] = new JsonArray(lines.Select(l => (JsonNode)l.DeepClone()).ToArray()),
        };

    /// <summary>
    /// Delivers a message to SettleCommission the way the Functions host does for a serviceBusTrigger: the body
    /// as a JSON-encoded string in Data.message, the broker properties in Metadata. Returns the HTTP answer
    /// (2xx completes the message; anything else makes Service Bus deliver it again).
    /// </summary>
    public static Task<HttpResponseMessage> DeliverAsync(this TestApp app, string body, string? messageId = null, int deliveryCount = 1)
    {
        var now = app.Clock.GetUtcNow();
        messageId ??= Guid.NewGuid().ToString("N");
        var payload = new JsonObject
        {
            ["Data"] = new JsonObject { ["message"] = body },
            ["Metadata"] = new JsonObject
            {
                ["MessageId"] = messageId,
                ["DeliveryCount"] = deliveryCount,
                ["SequenceNumber"] = Random.Shared.NextInt64(1, long.MaxValue),
                ["EnqueuedTimeUtc"] = now.UtcDateTime.ToString("O"),
                ["ExpiresAtUtc"] = now.AddDays(14).UtcDateTime.ToString("O"),
                ["LockToken"] = Guid.NewGuid().ToString(),
                ["ContentType"] = "application/json",
                ["CorrelationId"] = null,
                ["Label"] = null,
                ["ApplicationProperties"] = new JsonObject(),
                ["UserProperties"] = new JsonObject(),
                ["sys"] = new JsonObject
                {
                    ["MethodName"] = "SettleCommission",
                    ["UtcNow"] = now.UtcDateTime.ToString("O"),
                    ["RandGuid"] = Guid.NewGuid().ToString(),
                },
            },
        };
        return app.Anonymous().PostAsJsonAsync("/SettleCommission", payload);
    }

    /// <summary>Delivers an event and asserts it was completed; returns the outcome ("applied", "parked", "duplicate", ...).</summary>
    public static async Task<string> SettleAsync(this TestApp app, JsonObject orderEvent, string? messageId = null, int deliveryCount = 1)
    {
        var response = await app.DeliverAsync(orderEvent.ToJsonString(), messageId, deliveryCount);
        var body = await response.AssertStatusAsync(HttpStatusCode.OK);
        return (string)body["ReturnValue"]!["Outcome"]!;
    }

    public static async Task<JsonNode> BalanceAsync(this TestApp app, string promoterId)
        => await (await app.Customer(promoterId).GetAsync("/api/promoters/me/balance")).AssertStatusAsync(HttpStatusCode.OK);

    /// <summary>Every ledger entry of the promoter, through the API (all pages).</summary>
    public static async Task<List<JsonNode>> CommissionsAsync(this TestApp app, string promoterId, string? status = null)
    {
        var client = app.Customer(promoterId);
        var items = new List<JsonNode>();
        string? token = null;
        do
        {
            var url = "/api/promoters/me/commissions?limit=200" + (status is null ? "" : "&status=" + status)
                + (token is null ? "" : "&continuationToken=" + Uri.EscapeDataString(token));
            var page = await (await client.GetAsync(url)).AssertStatusAsync(HttpStatusCode.OK);
            items.AddRange(page["items"]!.AsArray().Select(i => i!));
            token = (string?)page["continuationToken"];
        } while (token is not null);
        return items;
    }

    public static async Task<HttpResponseMessage> PayoutAsync(this TestApp app, string batchId, long minimum)
        => await app.Operator().PostAsync("/api/payouts", Api.JsonContent(new { batchId, minimum }));

    /// <summary>Rows of a payout CSV (header skipped) as promoter id → amount.</summary>
    public static Dictionary<string, long> ParseCsv(string csv)
    {
        var rows = csv.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("batch_id,promoter_id,currency,amount_minor,entries", rows[0]);
        return rows.Skip(1).Select(r => r.Split(',')).ToDictionary(c => c[1], c => long.Parse(c[3]));
    }
}
