using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Notifications;
using Marketing.Tests.Support;
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
}
