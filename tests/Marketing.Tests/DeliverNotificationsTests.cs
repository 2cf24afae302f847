using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Marketing.Functions.Hosting;
using Marketing.Functions.Notifications;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// DeliverNotifications over the payload protocol, against a real provider (an HTTP listener on 127.0.0.1 that checks
/// signatures) and the Cosmos emulator: exactly one provider call per record, 4xx final, 5xx redelivered, SSRF refused.
/// </summary>
public sealed class DeliverNotificationsTests
{
    private static async Task<TestApp> StartAsync(Dictionary<string, string> settings)
    {
        var all = new Dictionary<string, string>
        {
            ["NotificationDelivery:PushWebhook"] = "",
            ["NotificationDelivery:SmsWebhook"] = "",
            ["NotificationDelivery:WechatWebhook"] = "",
            ["NotificationDelivery:EmailWebhook"] = "",
            ["NotificationDelivery:OperatorsWebhook"] = "",
            ["NotificationDelivery:WebhookSecret"] = WebhookReceiver.Secret,
            ["NotificationDelivery:AllowLoopback"] = "false",
            ["NotificationDelivery:Retries"] = "1",
            ["NotificationDelivery:RetryDelayMilliseconds"] = "0",
        };
        foreach (var (key, value) in settings) all[key] = value;
        return await TestApp.StartAsync(customize: b =>
        {
            foreach (var (key, value) in all) b.UseSetting(key, value);
        });
    }

    /// <summary>An app whose SMS provider is <paramref name="receiver"/>, with the local loopback allowance.</summary>
    private static Task<TestApp> WithProviderAsync(WebhookReceiver receiver, int retries = 1) => StartAsync(new()
    {
        ["NotificationDelivery:SmsWebhook"] = receiver.Url + "/sms",
        ["NotificationDelivery:AllowLoopback"] = "true",
        ["NotificationDelivery:Retries"] = retries.ToString(),
    });

    private static async Task<NotificationRecord> RecordAsync(TestApp app, NotificationChannel channel = NotificationChannel.Sms)
    {
        var record = new NotificationRecord
        {
            Id = "reminder-" + Guid.NewGuid().ToString("N"), CustomerId = "cust-" + Guid.NewGuid().ToString("N")[..12],
            Kind = NotificationKind.ExpiryReminder, Channel = channel, Title = "Coupon expiring", Body = "Your coupon expires in 24 hours.",
            CouponIds = ["coupon-1", "coupon-2"], CampaignId = "campaign-1", CreatedAt = app.Clock.GetUtcNow(),
            Delivery = new DeliveryStatus(DeliveryState.Pending),
        };
        Assert.True(await app.Services.GetRequiredService<NotificationStore>().TryCreateAsync(record, CancellationToken.None));
        return record;
    }

    private static async Task<DeliveryStatus> DeliveryOf(TestApp app, NotificationRecord record)
        => (await app.Services.GetRequiredService<NotificationStore>().FindAsync(record.CustomerId, record.Id, CancellationToken.None))!.Delivery!;

    private static Task<HttpResponseMessage> DeliverAsync(TestApp app, NotificationRecord record, int deliveryCount = 1)
        => app.DeliverNotificationAsync(NotificationMessage.Of(record), deliveryCount);

    private static async Task<string> OutcomeAsync(HttpResponseMessage response, HttpStatusCode status = HttpStatusCode.OK)
        => (string)(await response.AssertStatusAsync(status))["ReturnValue"]!["Outcome"]!;

    [Fact]
    public async Task The_same_message_delivered_three_times_makes_one_signed_provider_call_with_the_record_id_as_idempotency_key()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var app = await WithProviderAsync(receiver);
        var record = await RecordAsync(app);

        Assert.Equal("delivered", await OutcomeAsync(await DeliverAsync(app, record, 1)));
        Assert.Equal("duplicate", await OutcomeAsync(await DeliverAsync(app, record, 2)));
        Assert.Equal("duplicate", await OutcomeAsync(await DeliverAsync(app, record, 3)));

        var call = Assert.Single(receiver.Calls);
        Assert.True(call.SignatureValid, $"signature {call.Signature} over timestamp {call.Timestamp}");
        Assert.Equal(record.Id, call.IdempotencyKey);
        Assert.Equal("/sms", call.Path);
        Assert.Equal(app.Clock.GetUtcNow().ToUnixTimeSeconds().ToString(), call.Timestamp);
        var sent = JsonNode.Parse(call.Body)!;
        Assert.Equal(record.Id, (string?)sent["recordId"]);
        Assert.Equal(record.Body, (string?)sent["body"]);
        var delivery = await DeliveryOf(app, record);
        Assert.Equal(DeliveryState.Delivered, delivery.State);
        Assert.Equal(1, delivery.Attempts);
        Assert.Equal(app.Clock.GetUtcNow(), delivery.At);
    }

    [Fact]
    public async Task A_4xx_marks_the_record_failed_with_the_status_and_completes_without_retry()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var app = await WithProviderAsync(receiver, retries: 2);
        var record = await RecordAsync(app);
        receiver.AnswerNext(422);

        Assert.Equal("failed", await OutcomeAsync(await DeliverAsync(app, record)));
        Assert.Single(receiver.Calls); // no retry within the delivery
        var delivery = await DeliveryOf(app, record);
        Assert.Equal(DeliveryState.Failed, delivery.State);
        Assert.Contains("422", delivery.LastError);
        // Were it delivered again, the record is final: no second call.
        Assert.Equal("duplicate", await OutcomeAsync(await DeliverAsync(app, record, 2)));
        Assert.Single(receiver.Calls);
    }

    [Fact]
    public async Task A_5xx_after_the_retries_asks_for_redelivery_and_counts_the_attempt_then_a_2xx_delivers()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var app = await WithProviderAsync(receiver, retries: 1);
        var record = await RecordAsync(app);
        receiver.AnswerNext(503, 500);

        Assert.Equal("retry", await OutcomeAsync(await DeliverAsync(app, record, 1), HttpStatusCode.ServiceUnavailable));
        Assert.Equal(2, receiver.Calls.Count); // the first call and one retry with backoff
        var pending = await DeliveryOf(app, record);
        Assert.Equal(DeliveryState.Pending, pending.State);
        Assert.Equal(1, pending.Attempts);
        Assert.Contains("500", pending.LastError);

        Assert.Equal("delivered", await OutcomeAsync(await DeliverAsync(app, record, 2)));
        Assert.Equal(3, receiver.Calls.Count);
        Assert.All(receiver.Calls, c => Assert.Equal(record.Id, c.IdempotencyKey));
        Assert.All(receiver.Calls, c => Assert.True(c.SignatureValid));
        var delivered = await DeliveryOf(app, record);
        Assert.Equal(DeliveryState.Delivered, delivered.State);
        Assert.Equal(2, delivered.Attempts);
    }

    [Fact]
    public async Task A_channel_without_a_provider_is_marked_failed_and_completed()
    {
        await using var app = await StartAsync(new());
        var record = await RecordAsync(app, NotificationChannel.Wechat);
        Assert.Equal("failed", await OutcomeAsync(await DeliverAsync(app, record)));
        var delivery = await DeliveryOf(app, record);
        Assert.Equal(DeliveryState.Failed, delivery.State);
        Assert.Equal("no provider configured", delivery.LastError);
    }

    [Fact]
    public async Task An_in_app_record_or_a_malformed_message_is_completed_without_a_provider_call()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var app = await WithProviderAsync(receiver);
        var inapp = await RecordAsync(app, NotificationChannel.Inapp);
        Assert.Equal("ignored", await OutcomeAsync(await DeliverAsync(app, inapp)));
        Assert.Equal(DeliveryState.Pending, (await DeliveryOf(app, inapp)).State); // untouched

        var malformed = new JsonObject { ["Data"] = new JsonObject { ["message"] = "{\"recordId\":42}" }, ["Metadata"] = new JsonObject { ["MessageId"] = "m1" } };
        Assert.Equal("malformed", await OutcomeAsync(await app.Anonymous().PostAsJsonAsync("/" + DeliverNotifications.FunctionName, malformed)));
        Assert.Empty(receiver.Calls);
    }

    /// <summary>Each webhook points inside (PORT = the test receiver, listening on 127.0.0.1): refused, failed, 200, never called.</summary>
    [Theory]
    [InlineData("https://127.0.0.1:PORT/sms")]
    [InlineData("https://10.0.0.1/sms")]
    [InlineData("https://169.254.169.254/latest/meta-data")]
    [InlineData("https://[::1]:PORT/sms")]
    [InlineData("https://[::ffff:127.0.0.1]:PORT/sms")]
    [InlineData("https://localhost:PORT/sms")] // a host name that resolves to loopback
    [InlineData("http://127.0.0.1:PORT/sms")] // http outside local mode
    public async Task A_webhook_inside_the_network_is_refused_after_resolution_and_the_record_failed(string webhook)
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var app = await StartAsync(new() { ["NotificationDelivery:SmsWebhook"] = webhook.Replace("PORT", receiver.Port.ToString()) });
        var record = await RecordAsync(app);

        Assert.Equal("failed", await OutcomeAsync(await DeliverAsync(app, record)));
        var delivery = await DeliveryOf(app, record);
        Assert.Equal(DeliveryState.Failed, delivery.State);
        Assert.StartsWith("address not allowed", delivery.LastError);
        Assert.Empty(receiver.Calls);
    }

    [Theory]
    [InlineData("10.1.2.3", false)]
    [InlineData("172.16.0.1", false)]
    [InlineData("172.31.255.255", false)]
    [InlineData("192.168.1.1", false)]
    [InlineData("127.0.0.1", false)]
    [InlineData("169.254.169.254", false)]
    [InlineData("0.0.0.0", false)]
    [InlineData("100.64.0.1", false)]
    [InlineData("::1", false)]
    [InlineData("::", false)]
    [InlineData("fe80::1", false)]
    [InlineData("fc00::1", false)]
    [InlineData("fd12:3456::1", false)]
    [InlineData("::ffff:10.0.0.1", false)]
    [InlineData("::ffff:169.254.169.254", false)]
    [InlineData("64:ff9b::a00:1", false)]
    [InlineData("2002:a00:1::", false)]
    [InlineData("172.32.0.1", true)]
    [InlineData("93.184.216.34", true)]
    [InlineData("2606:2800:220:1::1", true)]
    public void Only_public_unicast_addresses_are_allowed(string address, bool allowed)
        => Assert.Equal(allowed, ProviderWebhook.IsAllowed(IPAddress.Parse(address), allowLoopback: false));

    [Theory]
    [InlineData("127.0.0.1", true)]
    [InlineData("::1", true)]
    [InlineData("10.0.0.1", false)]
    [InlineData("169.254.169.254", false)]
    public void The_local_allowance_admits_loopback_and_nothing_else_inside(string address, bool allowed)
        => Assert.Equal(allowed, ProviderWebhook.IsAllowed(IPAddress.Parse(address), allowLoopback: true));

    [Fact]
    public async Task DeliverNotifications_is_a_service_bus_trigger_on_the_notifications_queue_setting()
    {
        await using var app = await StartAsync(new());
        var functions = FunctionJson.Build(app.Services.GetRequiredService<EndpointDataSource>());
        var binding = Assert.Single(functions[DeliverNotifications.FunctionName]["bindings"]!.AsArray())!;
        Assert.Equal("serviceBusTrigger", (string?)binding["type"]);
        Assert.Equal("in", (string?)binding["direction"]);
        Assert.Equal("message", (string?)binding["name"]);
        Assert.Equal("%NotificationsQueue%", (string?)binding["queueName"]);
        Assert.Equal("ServiceBusConnection", (string?)binding["connection"]);
    }
}
