using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Notifications;
using Marketing.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// A customer's notification preferences: defaults, round trip, every validation error at once, If-Match, consent
/// instants, and WeChat one-time consents used exactly once under concurrency.
/// </summary>
public sealed class NotificationPreferencesTests
{
    private const string Route = "/api/me/notification-preferences";

    private static HttpRequestMessage Put(object body, string? ifMatch = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Put, Route) { Content = Api.JsonContent(body) };
        if (ifMatch is not null) request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        return request;
    }

    private static JsonNode Channel(JsonNode view, string name) => view["channels"]!.AsArray().Single(c => (string?)c!["channel"] == name)!;

    [Fact]
    public async Task A_customer_who_never_set_preferences_gets_the_defaults()
    {
        await using var app = await TestApp.StartAsync();
        var response = await app.Customer(Api.NewId("c")).GetAsync(Route);
        var view = await response.AssertStatusAsync(HttpStatusCode.OK);

        Assert.Null(response.Headers.ETag); // nothing stored yet
        Assert.Equal(["inapp", "push", "sms", "wechat", "email"], view["channels"]!.AsArray().Select(c => (string)c!["channel"]!).ToArray());
        Assert.True((bool)Channel(view, "inapp")["optedIn"]!);
        foreach (var external in new[] { "push", "sms", "wechat", "email" })
        {
            Assert.False((bool)Channel(view, external)["optedIn"]!);
            Assert.Null(Channel(view, external)["consentedAt"]);
        }
        Assert.Equal("22:00", (string?)view["quietHours"]!["from"]);
        Assert.Equal("08:00", (string?)view["quietHours"]!["to"]);
        Assert.Null(view["timeZone"]);
        Assert.Equal(0, (int)view["wechatConsents"]!);
    }

    [Fact]
    public async Task Put_then_get_round_trips_and_consent_instants_are_set_on_opt_in_kept_while_in_and_cleared_on_opt_out()
    {
        await using var app = await TestApp.StartAsync();
        var id = Api.NewId("c");
        var customer = app.Customer(id);
        var first = app.Clock.GetUtcNow();

        var put = await customer.SendAsync(Put(new { channels = new[] { "push", "sms" }, quietHours = new { from = "23:30", to = "07:00" }, timeZone = "America/Los_Angeles" }));
        var written = await put.AssertStatusAsync(HttpStatusCode.OK);
        Assert.NotNull(put.Headers.ETag);
        var got = await (await customer.GetAsync(Route)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(written.ToJsonString(), got.ToJsonString());
        Assert.Equal("America/Los_Angeles", (string?)got["timeZone"]);
        Assert.Equal("23:30", (string?)got["quietHours"]!["from"]);
        Assert.Equal(Api.Instant(first), (string?)Channel(got, "push")["consentedAt"]);
        Assert.Equal(Api.Instant(first), (string?)Channel(got, "sms")["consentedAt"]);
        Assert.Null(Channel(got, "inapp")["consentedAt"]); // always on: no consent to record

        app.Clock.Advance(TimeSpan.FromHours(3));
        customer = app.Customer(id);
        var second = app.Clock.GetUtcNow();
        var changed = await (await customer.SendAsync(Put(new { channels = new[] { "inapp", "push", "wechat" } }))).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(Api.Instant(first), (string?)Channel(changed, "push")["consentedAt"]); // stayed in: its first consent
        Assert.Equal(Api.Instant(second), (string?)Channel(changed, "wechat")["consentedAt"]); // new: now
        Assert.False((bool)Channel(changed, "sms")["optedIn"]!);
        Assert.Null(Channel(changed, "sms")["consentedAt"]); // out: consent gone
        Assert.Equal("22:00", (string?)changed["quietHours"]!["from"]); // left out: the default
        Assert.Null(changed["timeZone"]); // left out: the campaign's

        var stored = await app.Services.GetRequiredService<NotificationStore>().FindPreferencesAsync(id, CancellationToken.None);
        Assert.True(stored.IsOptedIn(NotificationChannel.Wechat));
        Assert.False(stored.IsOptedIn(NotificationChannel.Sms));
        Assert.True(stored.IsOptedIn(NotificationChannel.Inapp));
    }

    [Fact]
    public async Task Every_field_error_comes_back_in_one_400()
    {
        await using var app = await TestApp.StartAsync();
        var customer = app.Customer(Api.NewId("c"));
        var body = """{"channels":["push","fax"],"quietHours":{"from":"24:00","to":"8:00"},"timeZone":"Mars/Olympus_Mons","colour":"red"}""";
        var problem = await (await customer.PutAsync(Route, Api.JsonContent(body))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        var errors = problem["errors"]!.AsObject().Select(e => e.Key).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["channels[1]", "colour", "quietHours.from", "quietHours.to", "timeZone"], errors);

        var control = """{"channels":["sms","sms"],"quietHours":{"from":"22:00","to":"08:00\n"},"timeZone":"Asia/Shanghai\u0000"}""";
        problem = await (await customer.PutAsync(Route, Api.JsonContent(control))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        errors = problem["errors"]!.AsObject().Select(e => e.Key).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["channels", "quietHours.to", "timeZone"], errors);
        Assert.Contains("Control characters", (string?)problem["errors"]!["timeZone"]![0]);

        // Nothing was stored by either.
        Assert.Null((await customer.GetAsync(Route)).Headers.ETag);
    }

    [Fact]
    public async Task A_stale_If_Match_is_412_and_a_current_one_applies()
    {
        await using var app = await TestApp.StartAsync();
        var customer = app.Customer(Api.NewId("c"));
        // Nothing stored: no entity tag matches.
        await (await customer.SendAsync(Put(new { channels = new[] { "push" } }, "\"anything\""))).AssertProblemAsync(HttpStatusCode.PreconditionFailed, "precondition-failed");

        var first = (await customer.SendAsync(Put(new { channels = new[] { "push" } }))).Headers.ETag!.ToString();
        var second = await customer.SendAsync(Put(new { channels = new[] { "sms" } }, first));
        await second.AssertStatusAsync(HttpStatusCode.OK);
        await (await customer.SendAsync(Put(new { channels = new[] { "email" } }, first))).AssertProblemAsync(HttpStatusCode.PreconditionFailed, "precondition-failed");

        var now = await (await customer.GetAsync(Route)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.True((bool)Channel(now, "sms")["optedIn"]!);
        Assert.False((bool)Channel(now, "email")["optedIn"]!);
    }

    [Fact]
    public async Task Wechat_consents_are_added_one_per_action_and_dropped_when_the_channel_is_opted_out()
    {
        await using var app = await TestApp.StartAsync();
        var id = Api.NewId("c");
        var customer = app.Customer(id);
        await (await customer.SendAsync(Put(new { channels = new[] { "wechat" } }))).AssertStatusAsync(HttpStatusCode.OK);
        await (await customer.PostAsync(Route + "/wechat-consents", null)).AssertStatusAsync(HttpStatusCode.OK);
        var after = await (await customer.PostAsync(Route + "/wechat-consents", null)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(2, (int)after["wechatConsents"]!);
        var stored = await app.Services.GetRequiredService<NotificationStore>().FindPreferencesAsync(id, CancellationToken.None);
        Assert.All(stored.WechatConsents, c => Assert.Equal(app.Clock.GetUtcNow(), c.GrantedAt));

        var optedOut = await (await customer.SendAsync(Put(new { channels = new[] { "push" } }))).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(0, (int)optedOut["wechatConsents"]!); // consent withdrawn with the channel
    }

    [Fact]
    public async Task Unused_wechat_consents_are_capped_so_the_preferences_document_stays_small()
    {
        await using var app = await TestApp.StartAsync();
        var id = Api.NewId("c");
        var customer = app.Customer(id);
        await (await customer.SendAsync(Put(new { channels = new[] { "wechat" } }))).AssertStatusAsync(HttpStatusCode.OK);
        for (var i = 0; i <= NotificationPreferences.MaxWechatConsents; i++)
            await (await customer.PostAsync(Route + "/wechat-consents", null)).AssertStatusAsync(HttpStatusCode.OK);
        var stored = await app.Services.GetRequiredService<NotificationStore>().FindPreferencesAsync(id, CancellationToken.None);
        Assert.Equal(NotificationPreferences.MaxWechatConsents, stored.WechatConsents.Count);
    }

    [Fact]
    public async Task One_wechat_consent_is_used_exactly_once_by_racing_senders()
    {
        await using var app = await TestApp.StartAsync();
        var store = app.Services.GetRequiredService<NotificationStore>();

        // A customer who never stored preferences has none to use.
        Assert.False(await store.TryConsumeWechatConsentAsync(Api.NewId("c"), CancellationToken.None));

        var one = Api.NewId("c");
        await store.AddWechatConsentAsync(one, new WechatConsent(NotificationStore.NewWechatConsentId(), app.Clock.GetUtcNow()), CancellationToken.None);
        var two = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Task.Run(() => store.TryConsumeWechatConsentAsync(one, CancellationToken.None))));
        Assert.Single(two, used => used);
        Assert.False(await store.TryConsumeWechatConsentAsync(one, CancellationToken.None));

        var three = Api.NewId("c");
        var granted = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var consent = new WechatConsent(NotificationStore.NewWechatConsentId(), app.Clock.GetUtcNow());
            granted.Add(consent.Id);
            await store.AddWechatConsentAsync(three, consent, CancellationToken.None);
            await store.AddWechatConsentAsync(three, consent, CancellationToken.None); // the same consent twice: one
        }
        var six = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => Task.Run(() => store.TryConsumeWechatConsentAsync(three, CancellationToken.None))));
        Assert.Equal(3, six.Count(used => used));
        Assert.Empty((await store.FindPreferencesAsync(three, CancellationToken.None)).WechatConsents);
    }

    [Theory]
    [InlineData("22:00", "08:00", "23:15", true)]
    [InlineData("22:00", "08:00", "07:59", true)]
    [InlineData("22:00", "08:00", "08:00", false)] // the end is not quiet
    [InlineData("22:00", "08:00", "12:00", false)]
    [InlineData("01:00", "05:00", "03:00", true)]
    [InlineData("01:00", "05:00", "23:00", false)]
    [InlineData("09:00", "09:00", "09:00", false)] // equal: no quiet hours
    public void Quiet_hours_may_cross_midnight_and_equal_times_mean_none(string from, string to, string at, bool quiet)
        => Assert.Equal(quiet, new QuietHours(from, to).Contains(TimeOnly.ParseExact(at, "HH:mm")));

    [Fact]
    public void The_customers_time_zone_wins_else_the_campaigns()
    {
        var mine = NotificationPreferences.Defaults("c") with { TimeZone = "America/Los_Angeles" };
        Assert.Equal("America/Los_Angeles", mine.ZoneFor("Asia/Shanghai").Id);
        Assert.Equal("Asia/Shanghai", NotificationPreferences.Defaults("c").ZoneFor("Asia/Shanghai").Id);
    }
}
