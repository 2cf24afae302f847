using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Marketing.Functions.Hosting;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Notifications;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// Operator alerts raised by the SendReminders timer (invoked as the Functions host does it) against the Cosmos emulator:
/// once per campaign per condition across reruns and concurrent runs, only for published campaigns, delivered to the
/// operators' webhook (a real receiver checking signatures), healed by the outbox sweep. Each test has its own database:
/// the timer reads the whole catalog and the sweep every unsent record.
/// </summary>
public sealed class OperatorAlertsTests
{
    private static Task<TestApp> StartAsync(string name, Action<IWebHostBuilder>? customize = null)
        => TestApp.StartAsync($"{Settings.Get("Cosmos__Database")}-alerts-{name}-{Guid.NewGuid():N}"[..60], customize);

    /// <summary>One run: its report and the operator alerts it put on the queue (its output binding).</summary>
    private static async Task<(JsonNode Report, List<JsonNode> Alerts)> RunAsync(TestApp app)
    {
        var body = await app.InvokeTimerAsync(SendReminders.FunctionName);
        var queued = body["Outputs"]![SendReminders.Output]!.AsArray();
        return (body["ReturnValue"]!, [.. queued.OfType<JsonNode>().Where(m => (string?)m["kind"] == "operator_alert")]);
    }

    private static string IdOf(JsonNode message) => (string)message["recordId"]!;

    private static async Task ClaimAsync(TestApp app, string campaign, int count)
    {
        for (var i = 0; i < count; i++) await app.CustomerWithCouponAsync(campaign);
    }

    /// <summary>
    /// One campaign per condition, each meeting only that one, and one campaign at every threshold's edge (meets none).
    /// Returns the alert ids the conditions call for.
    /// </summary>
    private static async Task<(string[] Expected, string Budgeted, string Sharded, string Quiet)> CatalogAsync(TestApp app)
    {
        var now = app.Clock.GetUtcNow();
        var op = app.Operator();
        // Budget 2,000 and one 2,000 discount locked: 0 left of 2,000.
        var budgeted = await op.PublishedCampaignAsync(Api.Terms(now, t => { t["name"] = "Budgeted"; t["budget"] = 2000; }));
        var (customer, coupon) = await app.CustomerWithCouponAsync(budgeted);
        await (await app.OrderSystem().LockAsync(Api.NewId("o"), customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
        // 1 of 11 left: 9.1 % < 10 %.
        var scarce = await op.PublishedCampaignAsync(Api.Terms(now, t => { t["name"] = "Scarce"; t["totalQuantity"] = 11; }));
        await ClaimAsync(app, scarce, 10);
        // Two shards of 5: 0 of 10 left, counted over both shards.
        var sharded = await op.PublishedCampaignAsync(Api.Terms(now, t => { t["name"] = "Sharded"; t["totalQuantity"] = 10; t["stockShards"] = 2; }));
        await ClaimAsync(app, sharded, 10);
        // Claiming ends in 23 hours.
        var ending = await op.PublishedCampaignAsync(Api.Terms(now, t => { t["name"] = "Ending"; t["claimEndsAt"] = Api.Instant(now.AddHours(23)); }));
        // At every edge: 1 of 10 left (exactly 10 %), a budget untouched, claiming ends in 25 hours.
        var quiet = await op.PublishedCampaignAsync(Api.Terms(now, t =>
        {
            t["name"] = "Quiet";
            t["totalQuantity"] = 10;
            t["budget"] = 100000;
            t["claimEndsAt"] = Api.Instant(now.AddHours(25));
        }));
        await ClaimAsync(app, quiet, 9);
        string[] expected =
        [
            OperatorAlerts.IdOf(budgeted, AlertCondition.BudgetLow), OperatorAlerts.IdOf(scarce, AlertCondition.StockLow),
            OperatorAlerts.IdOf(sharded, AlertCondition.StockLow), OperatorAlerts.IdOf(ending, AlertCondition.EndingSoon),
        ];
        return (expected, budgeted, sharded, quiet);
    }

    [Fact]
    public async Task Each_condition_raises_exactly_one_alert_over_two_runs_and_a_campaign_at_the_thresholds_none()
    {
        await using var app = await StartAsync("twice");
        var (expected, budgeted, sharded, quiet) = await CatalogAsync(app);

        var (first, alerts) = await RunAsync(app);
        Assert.Equal(expected.Order(), alerts.Select(IdOf).Order());
        Assert.Equal(4, (int)first["Alerts"]!);
        Assert.DoesNotContain(alerts, a => ((string?)a["body"])!.Contains(quiet));

        // What they say: the campaign, the condition and its figures.
        var store = app.Services.GetRequiredService<NotificationStore>();
        var budget = (await store.FindAsync(NotificationRecord.OperatorsPartition, OperatorAlerts.IdOf(budgeted, AlertCondition.BudgetLow), default))!;
        Assert.Equal((NotificationKind.OperatorAlert, NotificationChannel.Operators, budgeted), (budget.Kind, budget.Channel, budget.CampaignId));
        Assert.Equal("Budget low: Budgeted", budget.Title);
        Assert.Contains("budget left 0 of 2,000 (CNY minor units, 0%), below the 10% alert threshold", budget.Body);
        Assert.Equal(new DeliveryStatus(DeliveryState.Pending), budget.Delivery);
        // Kept until the claim window ends (10 days) and 90 days after: no second alert while the campaign runs.
        Assert.Equal(100 * 86_400, budget.Ttl);
        var shards = (await store.FindAsync(NotificationRecord.OperatorsPartition, OperatorAlerts.IdOf(sharded, AlertCondition.StockLow), default))!;
        Assert.Contains("0 of 10 coupons left (0%)", shards.Body);

        app.Clock.Advance(TimeSpan.FromMinutes(5));
        var (second, again) = await RunAsync(app);
        Assert.Empty(again);
        Assert.Equal(0, (int)second["Alerts"]!);
    }

    [Fact]
    public async Task Two_concurrent_runs_on_two_instances_raise_each_alert_once()
    {
        await using var app = await StartAsync("concurrent");
        var now = app.Clock.GetUtcNow();
        var op = app.Operator();
        var scarce = await op.PublishedCampaignAsync(Api.Terms(now, t => { t["totalQuantity"] = 1; t["claimEndsAt"] = Api.Instant(now.AddHours(2)); }));
        await ClaimAsync(app, scarce, 1);
        await using var other = TestApp.Over(app.Database);
        other.Clock.Set(now);

        var runs = await Task.WhenAll(RunAsync(app), RunAsync(other), RunAsync(app), RunAsync(other));

        var ids = runs.SelectMany(r => r.Alerts).Select(IdOf).ToList();
        Assert.Equal([OperatorAlerts.IdOf(scarce, AlertCondition.EndingSoon), OperatorAlerts.IdOf(scarce, AlertCondition.StockLow)], ids.Order());
        Assert.Equal(2, runs.Sum(r => (int)r.Report["Alerts"]!));
    }

    [Fact]
    public async Task A_draft_paused_or_ended_campaign_raises_none()
    {
        await using var app = await StartAsync("status");
        var now = app.Clock.GetUtcNow();
        var op = app.Operator();
        // Each would meet every condition were it published: 1 unit, claimed; ending within the day.
        JsonObject Terms() => Api.Terms(now, t => { t["totalQuantity"] = 1; t["claimEndsAt"] = Api.Instant(now.AddHours(1)); });
        await op.CreateCampaignAsync(Terms());
        var paused = await op.PublishedCampaignAsync(Terms());
        await ClaimAsync(app, paused, 1);
        await (await op.PostAsync($"/api/campaigns/{paused}/pause", null)).AssertStatusAsync(HttpStatusCode.OK);
        var ended = await op.PublishedCampaignAsync(Terms());
        await ClaimAsync(app, ended, 1);
        await (await op.PostAsync($"/api/campaigns/{ended}/end", null)).AssertStatusAsync(HttpStatusCode.OK);

        var (report, alerts) = await RunAsync(app);
        Assert.Empty(alerts);
        Assert.Equal(0, (int)report["Alerts"]!);

        // Resumed, the paused one is published again: now it is alerted (the check above could have failed).
        await (await op.PostAsync($"/api/campaigns/{paused}/resume", null)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(2, (await RunAsync(app)).Alerts.Count);
    }

    [Fact]
    public async Task A_request_waiting_for_an_approver_is_alerted_once_and_a_resubmission_again()
    {
        await using var app = await StartAsync("approval");
        var op = app.Operator();
        var id = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["name"] = "Needs a look"));
        Assert.Empty((await RunAsync(app)).Alerts); // a draft waits for nobody

        await (await op.PostAsync($"/api/campaigns/{id}/submit", null)).AssertStatusAsync(HttpStatusCode.OK);
        var (report, alerts) = await RunAsync(app);
        var alert = Assert.Single(alerts);
        Assert.StartsWith("alert-approval-", IdOf(alert));
        Assert.Equal("operators", (string?)alert["channel"]);
        Assert.Contains("Needs a look", (string?)alert["title"]);
        Assert.Contains($"campaigns/{id}/approve", (string?)alert["body"]);
        Assert.Equal(1, (int)report["Alerts"]!);
        Assert.Empty((await RunAsync(app)).Alerts); // still waiting: not alerted again

        // Returned for changes and submitted again: a new request, a new alert.
        await (await app.As("avery", "approver").PostAsync($"/api/campaigns/{id}/return", Api.JsonContent(new { comments = "Name it better" })))
            .AssertStatusAsync(HttpStatusCode.OK);
        Assert.Empty((await RunAsync(app)).Alerts);
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        await (await app.Operator().PostAsync($"/api/campaigns/{id}/submit", null)).AssertStatusAsync(HttpStatusCode.OK);
        var again = Assert.Single((await RunAsync(app)).Alerts);
        Assert.NotEqual(IdOf(alert), IdOf(again));
    }

    [Fact]
    public async Task An_alert_is_delivered_to_the_operators_webhook_signed_once_and_never_reaches_an_inbox()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var app = await StartAsync("deliver", b =>
        {
            b.UseSetting("NotificationDelivery:OperatorsWebhook", receiver.Url + "/operators");
            b.UseSetting("NotificationDelivery:SmsWebhook", receiver.Url + "/sms");
            b.UseSetting("NotificationDelivery:WebhookSecret", WebhookReceiver.Secret);
            b.UseSetting("NotificationDelivery:AllowLoopback", "true");
        });
        var now = app.Clock.GetUtcNow();
        var ending = await app.Operator().PublishedCampaignAsync(Api.Terms(now, t => { t["name"] = "Last call"; t["claimEndsAt"] = Api.Instant(now.AddHours(3)); }));
        var message = Assert.Single((await RunAsync(app)).Alerts);

        // The queue message exactly as the run's output binding carries it, delivered twice (Service Bus: at least once).
        Assert.Equal("delivered", await DeliverAsync(app, message, 1));
        Assert.Equal("duplicate", await DeliverAsync(app, message, 2));

        var call = Assert.Single(receiver.Calls);
        Assert.Equal("/operators", call.Path);
        Assert.True(call.SignatureValid, $"signature {call.Signature} over timestamp {call.Timestamp}");
        var id = OperatorAlerts.IdOf(ending, AlertCondition.EndingSoon);
        Assert.Equal(id, call.IdempotencyKey);
        var sent = JsonNode.Parse(call.Body)!;
        Assert.Equal(("operator_alert", "operators", "Ending soon: Last call"), ((string?)sent["kind"], (string?)sent["channel"], (string?)sent["title"]));
        Assert.Contains("claiming ends", (string?)sent["body"]);
        var record = (await app.Services.GetRequiredService<NotificationStore>().FindAsync(NotificationRecord.OperatorsPartition, id, default))!;
        Assert.Equal(DeliveryState.Delivered, record.Delivery!.State);

        // Not in anybody's inbox, not even a customer whose subject is the alerts' partition.
        var inbox = await (await app.Customer(NotificationRecord.OperatorsPartition).GetAsync("/api/me/notifications")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Empty(inbox["items"]!.AsArray());
        await (await app.Customer(NotificationRecord.OperatorsPartition).PostAsync($"/api/me/notifications/{id}/read", null))
            .AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
    }

    private static async Task<string> DeliverAsync(TestApp app, JsonNode message, int deliveryCount)
    {
        var response = await app.DeliverNotificationAsync(message.Deserialize<NotificationMessage>(Json.Options)!, deliveryCount);
        return (string)(await response.AssertStatusAsync(HttpStatusCode.OK))["ReturnValue"]!["Outcome"]!;
    }

    [Fact]
    public async Task An_alert_whose_queue_message_was_lost_is_requeued_once_by_the_outbox_sweep()
    {
        await using var app = await StartAsync("sweep");
        var now = app.Clock.GetUtcNow();
        var ending = await app.Operator().PublishedCampaignAsync(Api.Terms(now, t => t["claimEndsAt"] = Api.Instant(now.AddHours(12))));
        // A run that wrote the alert and died before its output binding left: the message is dropped.
        var alerts = app.Services.GetRequiredService<OperatorAlerts>();
        var campaign = (await app.Services.GetRequiredService<CampaignStore>().ListLaunchedAsync(default)).Single();
        var lost = Assert.Single((await alerts.RaiseAsync([campaign], now, RunDeadline.None, default)).Messages);
        var id = OperatorAlerts.IdOf(ending, AlertCondition.EndingSoon);
        Assert.Equal(id, lost.RecordId);

        // Within the sweep's wait nothing is sent again (the message may still be on its way), and the alert is not raised again.
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        var (early, none) = await RunAsync(app);
        Assert.Empty(none);
        Assert.Equal((0, 0), ((int)early["Alerts"]!, (int)early["Requeued"]!));

        app.Clock.Advance(TimeSpan.FromMinutes(6));
        var (swept, requeued) = await RunAsync(app);
        Assert.Equal(id, IdOf(Assert.Single(requeued)));
        Assert.Equal((0, 1), ((int)swept["Alerts"]!, (int)swept["Requeued"]!));

        app.Clock.Advance(TimeSpan.FromMinutes(5));
        var (later, nothing) = await RunAsync(app);
        Assert.Empty(nothing);
        Assert.Equal((0, 0), ((int)later["Alerts"]!, (int)later["Requeued"]!));
    }

    /// <summary>
    /// A run killed after 0 to 3 Cosmos requests of its alerts (the stock read, the look-up of alerts raised before, two
    /// creates), its output lost: the
    /// next runs (and the sweep, for a record written before the kill) put each alert on the queue, and the operators'
    /// webhook receives each exactly once.
    /// </summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public async Task A_run_killed_after_any_cosmos_request_then_rerun_alerts_each_condition_once(int survive)
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var app = await StartAsync($"crash{survive}", b =>
        {
            b.UseSetting("NotificationDelivery:OperatorsWebhook", receiver.Url + "/operators");
            b.UseSetting("NotificationDelivery:WebhookSecret", WebhookReceiver.Secret);
            b.UseSetting("NotificationDelivery:AllowLoopback", "true");
            // The count is of the campaign conditions' requests (approval alerts, tested on their own, read the queue first).
            b.UseSetting("Alerts:ApprovalRequests", "false");
        });
        var now = app.Clock.GetUtcNow();
        var scarce = await app.Operator().PublishedCampaignAsync(Api.Terms(now, t => { t["totalQuantity"] = 1; t["claimEndsAt"] = Api.Instant(now.AddHours(2)); }));
        await ClaimAsync(app, scarce, 1);
        var crash = new Crash();
        await using var crashing = app.WithWebHostBuilder(b => b.ConfigureServices(services =>
        {
            services.RemoveAll<CosmosClient>();
            services.AddSingleton(_ => TestCosmos.Client(crash));
        }));
        var alerts = crashing.Services.GetRequiredService<OperatorAlerts>();
        var catalog = await crashing.Services.GetRequiredService<CampaignStore>().ListLaunchedAsync(default);
        // Warm the crashing client (metadata, the stock read) so the count is of the alerts' own requests.
        await crashing.Services.GetRequiredService<StockStore>().ReadLevelsAsync(scarce, 1, default);

        crash.Arm(survive);
        var killed = await alerts.RaiseAsync(catalog, now, RunDeadline.None, default);
        crash.Disarm();
        Assert.Equal(survive < 4, killed.Failed > 0);
        // The process died: whatever it meant to queue never left.

        string[] expected = [OperatorAlerts.IdOf(scarce, AlertCondition.EndingSoon), OperatorAlerts.IdOf(scarce, AlertCondition.StockLow)];
        var queued = new List<string>();
        foreach (var minutes in new[] { 1, 11, 5 })
        {
            app.Clock.Advance(TimeSpan.FromMinutes(minutes));
            var (_, sent) = await RunAsync(app);
            queued.AddRange(sent.Select(IdOf));
            foreach (var message in sent) await DeliverAsync(app, message, 1);
        }
        // Written before the kill: queued by the sweep; after it: by the next run. Delivered at once, none is swept again.
        Assert.Equal(expected, queued.Order());
        Assert.Equal(expected, receiver.Calls.Select(c => c.IdempotencyKey).Order());
        Assert.All(receiver.Calls, c => Assert.True(c.SignatureValid));
    }

    /// <summary>
    /// What a run costs (docs/notifications.md, "Operator alerts"): one query per published campaign, whatever its shard
    /// count, one look-up of the alerts raised before, one create per new alert; a condition that still holds costs no
    /// write. Drafts cost nothing.
    /// </summary>
    [Fact]
    public async Task A_run_reads_one_query_per_published_campaign_and_writes_only_new_alerts()
    {
        var stock = new ContainerTraffic(StockStore.Spec.Name);
        var notifications = new ContainerTraffic(NotificationStore.Spec.Name);
        // The campaign conditions' costs; approval alerts add one queue read per kind per run (docs/notifications.md).
        await using var app = await StartAsync("cost", b => b.UseSetting("Alerts:ApprovalRequests", "false").ConfigureServices(s =>
        {
            s.AddSingleton<RequestHandler>(stock);
            s.AddSingleton<RequestHandler>(notifications);
        }));
        var now = app.Clock.GetUtcNow();
        var op = app.Operator();
        await op.PublishedCampaignAsync(Api.Terms(now, t => { t["budget"] = 100000; t["stockShards"] = 4; }));
        await op.PublishedCampaignAsync(Api.Terms(now));
        var ending = await op.PublishedCampaignAsync(Api.Terms(now, t => t["claimEndsAt"] = Api.Instant(now.AddHours(6))));
        await op.CreateCampaignAsync(Api.Terms(now, t => t["claimEndsAt"] = Api.Instant(now.AddHours(6))));
        var alerts = app.Services.GetRequiredService<OperatorAlerts>();
        var catalog = await app.Services.GetRequiredService<CampaignStore>().ListLaunchedAsync(default);
        Assert.Equal(3, catalog.Count);

        stock.Reset();
        notifications.Reset();
        var first = await alerts.RaiseAsync(catalog, now, RunDeadline.None, default);
        Assert.Equal(OperatorAlerts.IdOf(ending, AlertCondition.EndingSoon), Assert.Single(first.Messages).RecordId);
        Assert.Equal(3, stock.Requests);
        Assert.Equal(2, notifications.Requests); // the look-up, the create

        stock.Reset();
        notifications.Reset();
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        var second = await alerts.RaiseAsync(catalog, app.Clock.GetUtcNow(), RunDeadline.None, default);
        Assert.Empty(second.Messages);
        Assert.Equal(3, stock.Requests);
        Assert.Equal(1, notifications.Requests); // the look-up only
    }

    [Theory]
    [InlineData("Alerts:BudgetPercent", "100", "BudgetPercent")]
    [InlineData("Alerts:StockPercent", "-1", "StockPercent")]
    [InlineData("Alerts:EndingHours", "721", "EndingHours")]
    [InlineData("Alerts:RetentionDays", "0", "RetentionDays")]
    public void An_out_of_range_alert_setting_stops_the_start(string setting, string value, string field)
    {
        var error = Assert.Throws<OptionsValidationException>(() => ValidateAtStart(new() { [setting] = value }));
        Assert.Contains(error.Failures, f => f.Contains(field));
        ValidateAtStart(new() { ["Alerts:BudgetPercent"] = "0", ["Alerts:StockPercent"] = "99", ["Alerts:EndingHours"] = "720" }); // the edges start
    }

    [Fact]
    public void The_operators_webhook_must_be_a_signed_absolute_url()
    {
        var error = Assert.Throws<OptionsValidationException>(() => ValidateAtStart(new() { ["NotificationDelivery:OperatorsWebhook"] = "https://hooks.example/x" }));
        Assert.Contains(error.Failures, f => f.Contains("WebhookSecret"));
        error = Assert.Throws<OptionsValidationException>(() => ValidateAtStart(new()
        {
            ["NotificationDelivery:OperatorsWebhook"] = "ftp://hooks.example/x", ["NotificationDelivery:WebhookSecret"] = WebhookReceiver.Secret,
        }));
        Assert.Contains(error.Failures, f => f.Contains("ftp://hooks.example/x"));
    }

    private static void ValidateAtStart(Dictionary<string, string?> settings)
    {
        var services = new ServiceCollection().AddLogging().AddSingleton(TimeProvider.System);
        services.AddNotifications(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        using var provider = services.BuildServiceProvider();
        provider.GetRequiredService<IStartupValidator>().Validate();
    }

    [Fact]
    public async Task A_customer_can_neither_choose_nor_see_the_operators_channel()
    {
        var customer = Api.NewId("c");
        await using var app = await TestApp.StartAsync();
        var client = app.Customer(customer);
        var problem = await (await client.PutAsync("/api/me/notification-preferences", Api.JsonContent(new { channels = new[] { "push", "operators" } })))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(problem["errors"]!["channels[1]"]);
        var view = await (await client.GetAsync("/api/me/notification-preferences")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(["inapp", "push", "sms", "wechat", "email"], view["channels"]!.AsArray().Select(c => (string)c!["channel"]!));
    }
}
