using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Expiry;
using Marketing.Functions.Hosting;
using Marketing.Functions.Notifications;
using Marketing.Functions.Wallet;
using Marketing.Tests.Support;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The SendReminders timer, invoked as the Functions host does it (payload protocol, output binding in the answer).
/// Each test has its own database: the timer reads the whole expiry index.
/// </summary>
public sealed class SendRemindersTests
{
    private static Task<TestApp> StartAsync(string name) => TestApp.StartAsync($"{Settings.Get("Cosmos__Database")}-remind-{name}-{Guid.NewGuid():N}"[..60]);

    /// <summary>A run: its report and the messages it put on the queue through its output binding.</summary>
    private static async Task<(JsonNode Report, JsonArray Queued)> RunAsync(TestApp app)
    {
        var body = await app.InvokeTimerAsync("SendReminders");
        return (body["ReturnValue"]!, body["Outputs"]!["notifications"]!.AsArray());
    }

    private static async Task<JsonArray> InboxAsync(TestApp app, string customer)
        => (await (await app.Customer(customer).GetAsync("/api/me/notifications")).AssertStatusAsync(HttpStatusCode.OK))["items"]!.AsArray();

    private static readonly DateTimeOffset Claimed = new(2026, 11, 21, 2, 0, 0, TimeSpan.Zero); // 10:00 in Shanghai
    // Valid 7 local days: until 28 November 00:00 Shanghai.
    private static readonly DateTimeOffset ValidTo = new(2026, 11, 27, 16, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task A_customer_with_default_preferences_gets_one_in_app_reminder_24_hours_before_expiry()
    {
        await using var app = await StartAsync("default");
        app.Clock.Set(Claimed);
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
        await RunAsync(app);

        app.Clock.Set(ValidTo.AddHours(-24).AddMinutes(-1));
        var (early, _) = await RunAsync(app);
        Assert.Equal(0, (int)early["RemindersSent"]!);

        app.Clock.Set(ValidTo.AddHours(-24).AddMinutes(4));
        var (run, queued) = await RunAsync(app);
        Assert.Equal((1, 1, 0), ((int)run["RemindersSent"]!, (int)run["Messages"]!, queued.Count));
        var inbox = await InboxAsync(app, customer);
        var message = Assert.Single(inbox);
        Assert.Equal("inapp", (string?)message!["channel"]);
        Assert.Equal(coupon, (string?)message["couponIds"]![0]);

        app.Clock.Advance(TimeSpan.FromMinutes(5));
        var (again, _) = await RunAsync(app);
        Assert.Equal(0, (int)again["RemindersSent"]!);
        Assert.Single(await InboxAsync(app, customer));
    }

    /// <summary>A run of its own over <paramref name="database"/> (another Cosmos client: a second instance, a crashing one).</summary>
    private static ReminderRun Run(Database database, int parallelism = 8)
        => new(new NotificationStore(database), new WalletStore(database), new CampaignStore(database), new DueIndex(database),
            new ReminderOptions(), new TimerOptions { Parallelism = parallelism });

    /// <summary>
    /// An app whose push and SMS providers are <paramref name="receiver"/>, with <paramref name="customers"/> customers
    /// holding a coupon of one campaign: the even ones opted in to push and SMS (no quiet hours), the odd ones in-app only.
    /// </summary>
    private static async Task<(TestApp App, List<string> External, List<string> InappOnly)> RemindableAsync(string name, WebhookReceiver receiver, int customers)
    {
        var app = await TestApp.StartAsync($"{Settings.Get("Cosmos__Database")}-remind-{name}-{Guid.NewGuid():N}"[..60], b =>
        {
            b.UseSetting("NotificationDelivery:PushWebhook", receiver.Url + "/push");
            b.UseSetting("NotificationDelivery:SmsWebhook", receiver.Url + "/sms");
            b.UseSetting("NotificationDelivery:WebhookSecret", WebhookReceiver.Secret);
            b.UseSetting("NotificationDelivery:AllowLoopback", "true");
        });
        app.Clock.Set(Claimed);
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var external = new List<string>();
        var inapp = new List<string>();
        for (var i = 0; i < customers; i++)
        {
            var (customer, _) = await app.CustomerWithCouponAsync(campaign);
            if (i % 2 == 1)
            {
                inapp.Add(customer);
                continue;
            }
            var body = new JsonObject { ["channels"] = new JsonArray("push", "sms"), ["quietHours"] = new JsonObject { ["from"] = "00:00", ["to"] = "00:00" } };
            await (await app.Customer(customer).PutAsync("/api/me/notification-preferences", Api.JsonContent(body))).AssertStatusAsync(HttpStatusCode.OK);
            external.Add(customer);
        }
        await RunAsync(app); // the cursor starts at the claims
        return (app, external, inapp);
    }

    /// <summary>Every reminder message stored, by customer: (channel, coupons listed).</summary>
    private static async Task<Dictionary<string, List<NotificationRecord>>> MessagesAsync(TestApp app)
    {
        var container = app.Services.GetRequiredService<Database>().GetContainer(NotificationStore.Spec.Name);
        var query = new QueryDefinition("SELECT * FROM c WHERE c.type = 'notification' AND c.kind = 'expiry_reminder'");
        var all = new List<NotificationRecord>();
        using var pages = container.GetItemQueryIterator<NotificationRecord>(query, requestOptions: new QueryRequestOptions { EnableOptimisticDirectExecution = true });
        while (pages.HasMoreResults) all.AddRange(await pages.ReadNextAsync());
        return all.GroupBy(r => r.CustomerId).ToDictionary(g => g.Key, g => g.ToList());
    }

    /// <summary>No customer has two messages on one channel, and none is reminded twice of a coupon.</summary>
    private static void AssertAtMostOnce(Dictionary<string, List<NotificationRecord>> messages)
    {
        foreach (var (customer, records) in messages)
        {
            Assert.True(records.Select(r => r.Channel).Distinct().Count() == records.Count, $"{customer} has two messages on one channel");
            Assert.True(records.Where(r => r.Channel == NotificationChannel.Inapp).Sum(r => r.CouponIds.Count) <= 1, $"{customer} reminded twice in-app");
        }
    }

    /// <summary>Everything sent, exactly once: one push and one SMS per opted-in customer, one in-app message per other.</summary>
    private static void AssertExactlyOnce(Dictionary<string, List<NotificationRecord>> messages, List<string> external, List<string> inapp)
    {
        AssertAtMostOnce(messages);
        Assert.Equal(external.Count + inapp.Count, messages.Count);
        foreach (var customer in external)
            Assert.Equal([NotificationChannel.Push, NotificationChannel.Sms], messages[customer].Select(r => r.Channel).Order());
        foreach (var customer in inapp)
            Assert.Equal(NotificationChannel.Inapp, Assert.Single(messages[customer]).Channel);
    }

    /// <summary>Delivers each queued message twice, as Service Bus may; the providers must see one call per message record.</summary>
    private static async Task AssertDeliveredOnceAsync(TestApp app, WebhookReceiver receiver, IEnumerable<JsonNode?> queued, List<string> external)
    {
        foreach (var message in queued)
        {
            var body = message.Deserialize<NotificationMessage>(Json.Options)!;
            for (var delivery = 1; delivery <= 2; delivery++)
                await (await app.DeliverNotificationAsync(body, delivery)).AssertStatusAsync(HttpStatusCode.OK);
        }
        var calls = receiver.Calls.ToList();
        Assert.All(calls, c => Assert.True(c.SignatureValid));
        Assert.Equal(external.Count * 2, calls.Count);
        Assert.Equal(calls.Count, calls.Select(c => c.IdempotencyKey).Distinct().Count());
    }

    [Fact]
    public async Task Two_overlapping_runs_send_each_reminder_once_and_queue_each_message_once()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var (app, external, inapp) = await RemindableAsync("overlap", receiver, 24);
        await using var _ = app;
        app.Clock.Set(ValidTo.AddHours(-24).AddMinutes(2));

        using var first = TestCosmos.Client();
        using var second = TestCosmos.Client();
        var runs = await Task.WhenAll(
            Run(first.GetDatabase(app.Database), parallelism: 3).RunAsync(app.Clock.GetUtcNow(), null, CancellationToken.None),
            Run(second.GetDatabase(app.Database), parallelism: 5).RunAsync(app.Clock.GetUtcNow(), null, CancellationToken.None));

        Assert.All(runs, r => Assert.Empty(r.Report.Failures));
        Assert.Equal(24, runs.Sum(r => r.Report.RemindersSent));
        AssertExactlyOnce(await MessagesAsync(app), external, inapp);
        var queued = runs.SelectMany(r => r.Messages).ToList();
        Assert.Equal(external.Count * 2, queued.Count);
        Assert.Equal(queued.Count, queued.Select(m => m.RecordId).Distinct().Count());
        await AssertDeliveredOnceAsync(app, receiver, queued.Select(m => JsonSerializer.SerializeToNode(m, Json.Options)), external);

        // A later run finds nothing more to send.
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        var (later, more) = await RunAsync(app);
        Assert.Equal((0, 0), ((int)later["RemindersSent"]!, more.Count));
    }

    [Fact]
    public async Task Runs_killed_after_each_number_of_Cosmos_requests_then_rerun_send_each_reminder_exactly_once()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var (app, external, inapp) = await RemindableAsync("crash", receiver, 12);
        await using var _ = app;
        app.Clock.Set(ValidTo.AddHours(-24).AddMinutes(2));

        // A killed run returns nothing to the host: whatever it queued is lost with it.
        var queued = new List<JsonNode?>();
        var seen = new List<string>();
        var sawPartial = false;
        var completed = false;
        for (var crashAfter = 1; crashAfter < 200 && !completed; crashAfter++)
        {
            var crash = new Crash();
            crash.Arm(crashAfter);
            using var client = TestCosmos.Client(crash);
            var outcome = await Record.ExceptionAsync(async () =>
            {
                var (report, messages) = await Run(client.GetDatabase(app.Database), parallelism: 2).RunAsync(app.Clock.GetUtcNow(), null, CancellationToken.None);
                if (!report.Failures.IsEmpty) throw new InvalidOperationException("killed part way");
                queued.AddRange(messages.Select(m => JsonSerializer.SerializeToNode(m, Json.Options)));
            });
            completed = outcome is null;
            var messages = await MessagesAsync(app);
            AssertAtMostOnce(messages);
            sawPartial |= !completed && messages.Count > 0 && messages.Count < external.Count + inapp.Count;
            seen.Add($"{crashAfter}:{messages.Count}");
        }
        Assert.True(completed, "no run completed: " + string.Join(", ", seen));
        Assert.True(sawPartial, "no crash landed part way through the customers: " + string.Join(", ", seen));
        AssertExactlyOnce(await MessagesAsync(app), external, inapp);

        // The queue messages of killed runs were lost: a run 10 minutes on puts them on the queue again, once.
        app.Clock.Advance(TimeSpan.FromMinutes(11));
        var (sweep, requeued) = await RunAsync(app);
        Assert.Equal(0, (int)sweep["RemindersSent"]!);
        Assert.True((int)sweep["Requeued"]! > 0);
        queued.AddRange(requeued);
        var (again, none) = await RunAsync(app);
        Assert.Equal((0, 0), ((int)again["Requeued"]!, none.Count));
        // Still not delivered 10 minutes on (a lost send again?): queued once more; at most 5 times in all.
        var requeues = (int)sweep["Requeued"]!;
        for (var round = 2; round <= NotificationRecord.MaxRequeues + 1; round++)
        {
            app.Clock.Advance(TimeSpan.FromMinutes(11));
            var (next, more) = await RunAsync(app);
            Assert.Equal(round <= NotificationRecord.MaxRequeues ? requeues : 0, (int)next["Requeued"]!);
            queued.AddRange(more);
        }
        await AssertDeliveredOnceAsync(app, receiver, queued, external);
    }
}
