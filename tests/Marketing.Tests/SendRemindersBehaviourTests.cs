using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Notifications;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The rules of expiry reminders (docs/notifications.md, "Expiry reminders: the rules") through the SendReminders
/// timer, invoked as the Functions host does it, against the Cosmos emulator: quiet hours in the customer's zone,
/// bundling and the daily cap, consent, holdout, availability, the short-validity rule and the campaign's offsets.
/// Each test has its own database (the timer reads the whole expiry index) and moves the injected clock.
/// </summary>
public sealed class SendRemindersBehaviourTests
{
    private const string Preferences = "/api/me/notification-preferences";
    private static readonly DateTimeOffset Start = new(2026, 11, 21, 2, 0, 0, TimeSpan.Zero); // the test clock's start: 10:00 in Shanghai

    private static Task<TestApp> StartAsync(string name)
    {
        var database = $"{Settings.Get("Cosmos__Database")}-rb-{name}-{Guid.NewGuid():N}";
        // The clock jumps hours between runs here and nothing delivers: keep the outbox sweep (SendRemindersTests,
        // OperatorAlertsTests) from putting these messages on the queue again, so each run's output is its own.
        return TestApp.StartAsync(database[..Math.Min(60, database.Length)], b => b.UseSetting("Reminders:RequeueAfterMinutes", "1440"));
    }

    private static DateTimeOffset Utc(int day, int hour, int minute = 0) => new(2026, 11, day, hour, minute, 0, TimeSpan.Zero);

    /// <summary>A run at <paramref name="at"/>: its report, and the messages it put on the queue through its output binding.</summary>
    private static async Task<(JsonNode Report, JsonArray Queued)> RunAtAsync(TestApp app, DateTimeOffset at)
    {
        app.Clock.Set(at);
        var body = await app.InvokeTimerAsync("SendReminders");
        var report = body["ReturnValue"]!;
        Assert.True(report["Failures"]!.AsArray().Count == 0, report.ToJsonString());
        return (report, body["Outputs"]!["notifications"]!.AsArray());
    }

    private static int Count(JsonNode report, string name) => (int)report[name]!;

    /// <summary>A published campaign (Asia/Shanghai) whose coupons are valid until <paramref name="validTo"/>; no policy = the default (24 h).</summary>
    private static Task<string> CampaignAsync(TestApp app, DateTimeOffset validTo, int[]? offsetsHours = null, int holdoutPercent = 0)
    {
        var now = app.Clock.GetUtcNow();
        return app.Operator().PublishedCampaignAsync(Api.Terms(now, t =>
        {
            t["validity"] = new JsonObject { ["type"] = "absolute", ["from"] = Api.Instant(now.AddHours(-1)), ["to"] = Api.Instant(validTo) };
            if (offsetsHours is not null || holdoutPercent > 0)
                t["reminders"] = new JsonObject
                {
                    ["offsetsHours"] = new JsonArray([.. (offsetsHours ?? [24]).Select(o => JsonValue.Create(o))]),
                    ["holdoutPercent"] = holdoutPercent,
                };
        }));
    }

    private static async Task<string> ClaimAsync(TestApp app, string customer, string campaign)
        => (string)(await (await app.Customer(customer).ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created))["id"]!;

    private static async Task PreferAsync(TestApp app, string customer, string[] channels, string? timeZone = null)
    {
        var body = new JsonObject { ["channels"] = new JsonArray([.. channels.Select(c => JsonValue.Create(c))]), ["timeZone"] = timeZone };
        await (await app.Customer(customer).PutAsync(Preferences, Api.JsonContent(body))).AssertStatusAsync(HttpStatusCode.OK);
    }

    private static async Task<JsonNode> PreferencesOfAsync(TestApp app, string customer)
        => await (await app.Customer(customer).GetAsync(Preferences)).AssertStatusAsync(HttpStatusCode.OK);

    private static async Task<List<JsonNode>> InboxAsync(TestApp app, string customer)
        => [.. (await (await app.Customer(customer).GetAsync("/api/me/notifications?limit=100")).AssertStatusAsync(HttpStatusCode.OK))["items"]!.AsArray().Select(n => n!)];

    private static string[] CouponsOf(JsonNode message) => [.. message["couponIds"]!.AsArray().Select(c => (string)c!).Order(StringComparer.Ordinal)];

    /// <summary>A queued message as DeliverNotifications reads it (the consumer's parser, not this test's guess at the wire form).</summary>
    private static NotificationMessage Parsed(JsonNode queued)
        => DeliverNotifications.Parse(queued.ToJsonString(), out var problem) ?? throw new InvalidOperationException($"unreadable queue message ({problem}): {queued.ToJsonString()}");

    // ---- Quiet hours: the customer's zone ----

    [Fact]
    public async Task A_push_reminder_due_in_the_customers_quiet_hours_waits_for_their_end_whatever_the_campaigns_zone_says()
    {
        await using var app = await StartAsync("quiet");
        // Due 07:30Z on 24 November: 23:30 on the 23rd in Los Angeles (quiet), 15:30 in Shanghai (the campaign's zone: day).
        var due = Utc(24, 7, 30);
        var campaign = await CampaignAsync(app, due.AddHours(24));
        var inLosAngeles = Api.NewId("la");
        var inAppOnly = Api.NewId("inapp");
        var campaignsZone = Api.NewId("sh");
        await PreferAsync(app, inLosAngeles, ["push"], "America/Los_Angeles");
        await PreferAsync(app, inAppOnly, [], "America/Los_Angeles");
        await PreferAsync(app, campaignsZone, ["push"]);
        var coupon = await ClaimAsync(app, inLosAngeles, campaign);
        await ClaimAsync(app, inAppOnly, campaign);
        await ClaimAsync(app, campaignsZone, campaign);
        await RunAtAsync(app, Start);

        var (before, _) = await RunAtAsync(app, due.AddMinutes(-1));
        Assert.Equal(0, Count(before, "RemindersSent"));

        var (atNight, queued) = await RunAtAsync(app, due.AddMinutes(2));
        // Held for Los Angeles; the in-app-only customer in the same zone is never held; Shanghai's daytime sends at once.
        Assert.Equal((1, 2, 2), (Count(atNight, "RemindersHeld"), Count(atNight, "RemindersSent"), Count(atNight, "Messages")));
        Assert.Empty(await InboxAsync(app, inLosAngeles));
        Assert.Equal("inapp", (string?)Assert.Single(await InboxAsync(app, inAppOnly))["channel"]);
        var sent = Parsed(Assert.Single(queued)!);
        Assert.Equal((campaignsZone, NotificationChannel.Push), (sent.CustomerId, sent.Channel));

        // 07:59 in Los Angeles: still quiet.
        var (stillQuiet, stillQueued) = await RunAtAsync(app, Utc(24, 15, 59));
        Assert.Equal((0, 0, 0), (Count(stillQuiet, "RemindersSent"), Count(stillQuiet, "HeldEntriesWorked"), stillQueued.Count));

        // 08:00 in Los Angeles: the quiet hours end and the held reminder leaves, by push, on that local day.
        var (morning, morningQueued) = await RunAtAsync(app, Utc(24, 16));
        Assert.Equal((1, 1, 1), (Count(morning, "HeldEntriesWorked"), Count(morning, "RemindersSent"), Count(morning, "Queued")));
        var held = Parsed(Assert.Single(morningQueued)!);
        Assert.Equal((inLosAngeles, NotificationChannel.Push, ReminderRun.DayRecordId(inLosAngeles, NotificationChannel.Push, new DateOnly(2026, 11, 24))), (held.CustomerId, held.Channel, held.RecordId));
        Assert.Equal([coupon], held.CouponIds);

        // Exactly once: later runs send nothing more.
        var (after, afterQueued) = await RunAtAsync(app, Utc(24, 16, 5));
        Assert.Equal((0, 0), (Count(after, "RemindersSent"), afterQueued.Count));
        Assert.Single(await InboxAsync(app, inLosAngeles));
    }

    [Fact]
    public async Task A_reminder_in_quiet_hours_goes_at_once_when_its_coupon_would_have_less_than_an_hour_left_at_their_end()
    {
        await using var app = await StartAsync("quietlate");
        // Quiet hours in Los Angeles end at 08:00 PST on the 24th = 16:00Z.
        var expiresInTheNight = await CampaignAsync(app, Utc(24, 9, 30), [2]);      // due 07:30Z (23:30 local), expires 01:30 local
        var expiresAnHourAfter = await CampaignAsync(app, Utc(24, 17), [9]);       // due 08:00Z, expires 09:00 local: exactly an hour left
        var expiresJustBefore = await CampaignAsync(app, Utc(24, 16, 30), [8]);    // due 08:30Z, expires 08:30 local: 30 minutes left
        var (a, b, c) = (Api.NewId("a"), Api.NewId("b"), Api.NewId("c"));
        foreach (var customer in new[] { a, b, c }) await PreferAsync(app, customer, ["push"], "America/Los_Angeles");
        await ClaimAsync(app, a, expiresInTheNight);
        await ClaimAsync(app, b, expiresAnHourAfter);
        await ClaimAsync(app, c, expiresJustBefore);
        await RunAtAsync(app, Start);

        var (night, queued) = await RunAtAsync(app, Utc(24, 8, 35));
        Assert.Equal((2, 1), (Count(night, "RemindersSent"), Count(night, "RemindersHeld")));
        Assert.Equal(new[] { a, c }.Order(StringComparer.Ordinal), queued.Select(m => Parsed(m!).CustomerId).Order(StringComparer.Ordinal));
        Assert.All(queued, m => Assert.Equal(NotificationChannel.Push, Parsed(m!).Channel));

        var (morning, morningQueued) = await RunAtAsync(app, Utc(24, 16));
        Assert.Equal(1, Count(morning, "RemindersSent"));
        Assert.Equal(b, Parsed(Assert.Single(morningQueued)!).CustomerId);
    }

    // ---- Bundling and the daily cap ----

    [Fact]
    public async Task Coupons_falling_due_together_are_one_push_and_a_later_one_the_same_day_waits_for_the_next_day_or_goes_in_app()
    {
        await using var app = await StartAsync("cap");
        var customer = Api.NewId("c");
        await PreferAsync(app, customer, ["push"], "Asia/Shanghai");
        // Two campaigns expiring together at 10:00 on the 25th in Shanghai: due 10:00 on the 24th.
        var first = await ClaimAsync(app, customer, await CampaignAsync(app, Utc(25, 2)));
        var second = await ClaimAsync(app, customer, await CampaignAsync(app, Utc(25, 2)));
        // Due 15:00 on the 24th, expires 15:00 on the 25th: can wait for the 25th's 08:00.
        var later = await ClaimAsync(app, customer, await CampaignAsync(app, Utc(25, 7)));
        // Due 16:00 on the 24th, expires 18:00 that evening: cannot wait.
        var tonight = await ClaimAsync(app, customer, await CampaignAsync(app, Utc(24, 10), [2]));
        await RunAtAsync(app, Start);

        var (together, queued) = await RunAtAsync(app, Utc(24, 2, 5));
        Assert.Equal((2, 1, 1), (Count(together, "RemindersSent"), Count(together, "Messages"), Count(together, "Queued")));
        var bundle = Parsed(Assert.Single(queued)!);
        Assert.Equal(ReminderRun.DayRecordId(customer, NotificationChannel.Push, new DateOnly(2026, 11, 24)), bundle.RecordId);
        Assert.Equal(new[] { first, second }.Order(StringComparer.Ordinal), bundle.CouponIds.Order(StringComparer.Ordinal));

        // The day's push went out: the third coupon is held to the next local day, no second push.
        var (capped, cappedQueued) = await RunAtAsync(app, Utc(24, 7, 5));
        Assert.Equal((0, 1, 0), (Count(capped, "RemindersSent"), Count(capped, "RemindersHeld"), cappedQueued.Count));

        // The fourth would expire before the next day: in the inbox only, now.
        var (late, lateQueued) = await RunAtAsync(app, Utc(24, 8, 5));
        Assert.Equal((1, 1, 0, 0), (Count(late, "RemindersSent"), Count(late, "Messages"), Count(late, "RemindersHeld"), lateQueued.Count));
        var inApp = Assert.Single(await InboxAsync(app, customer), m => (string?)m["channel"] == "inapp");
        Assert.Equal([tonight], CouponsOf(inApp));

        var (night, nightQueued) = await RunAtAsync(app, Utc(24, 23, 59)); // 07:59 on the 25th
        Assert.Equal((0, 0), (Count(night, "RemindersSent"), nightQueued.Count));

        // 08:00 on the 25th: the next day's push carries the held coupon.
        var (nextDay, nextQueued) = await RunAtAsync(app, Utc(25, 0));
        Assert.Equal((1, 1), (Count(nextDay, "RemindersSent"), Count(nextDay, "HeldEntriesWorked")));
        var held = Parsed(Assert.Single(nextQueued)!);
        Assert.Equal((ReminderRun.DayRecordId(customer, NotificationChannel.Push, new DateOnly(2026, 11, 25)), NotificationChannel.Push), (held.RecordId, held.Channel));
        Assert.Equal([later], held.CouponIds);

        var inbox = await InboxAsync(app, customer);
        Assert.Equal(3, inbox.Count); // two pushes (one a day) and one in-app message
        Assert.Equal(2, inbox.Count(m => (string?)m["channel"] == "push"));
    }

    // ---- Opt-out and consent ----

    [Fact]
    public async Task Push_needs_the_opt_in_and_wechat_an_unused_consent_which_the_message_uses()
    {
        await using var app = await StartAsync("consent");
        var campaign = await CampaignAsync(app, Utc(25, 4)); // due 04:00Z on the 24th: noon in Shanghai
        var optedOut = Api.NewId("out");
        var noConsent = Api.NewId("w0");
        var oneConsent = Api.NewId("w1");
        var twoConsents = Api.NewId("w2");
        await PreferAsync(app, optedOut, ["push"]);
        await PreferAsync(app, optedOut, []);
        Assert.False((bool)(await PreferencesOfAsync(app, optedOut))["channels"]!.AsArray().Single(c => (string?)c!["channel"] == "push")!["optedIn"]!);
        foreach (var customer in new[] { noConsent, oneConsent, twoConsents }) await PreferAsync(app, customer, ["wechat"]);
        await (await app.Customer(oneConsent).PostAsync(Preferences + "/wechat-consents", null)).AssertStatusAsync(HttpStatusCode.OK);
        for (var i = 0; i < 2; i++) await (await app.Customer(twoConsents).PostAsync(Preferences + "/wechat-consents", null)).AssertStatusAsync(HttpStatusCode.OK);
        var coupons = new Dictionary<string, string>();
        foreach (var customer in new[] { optedOut, noConsent, oneConsent, twoConsents }) coupons[customer] = await ClaimAsync(app, customer, campaign);
        await RunAtAsync(app, Start);

        var (run, queued) = await RunAtAsync(app, Utc(24, 4, 5));
        Assert.Equal((4, 4, 2), (Count(run, "RemindersSent"), Count(run, "Messages"), Count(run, "Queued")));

        // Opted out of push, and WeChat without a consent: the inbox only, nothing on the queue.
        Assert.Equal("inapp", (string?)Assert.Single(await InboxAsync(app, optedOut))["channel"]);
        Assert.Equal("inapp", (string?)Assert.Single(await InboxAsync(app, noConsent))["channel"]);
        Assert.Equal(0, (int)(await PreferencesOfAsync(app, noConsent))["wechatConsents"]!);

        // One WeChat message each, on the output binding with its record id; each used one consent.
        var messages = queued.Select(m => Parsed(m!)).ToDictionary(m => m.CustomerId);
        Assert.Equal(new[] { oneConsent, twoConsents }.Order(StringComparer.Ordinal), messages.Keys.Order(StringComparer.Ordinal));
        foreach (var (customer, left) in new[] { (oneConsent, 0), (twoConsents, 1) })
        {
            var message = messages[customer];
            Assert.Equal((NotificationChannel.Wechat, ReminderRun.DayRecordId(customer, NotificationChannel.Wechat, new DateOnly(2026, 11, 24))), (message.Channel, message.RecordId));
            Assert.Equal([coupons[customer]], message.CouponIds);
            var record = Assert.Single(await InboxAsync(app, customer));
            Assert.Equal((message.RecordId, "wechat"), ((string?)record["id"], (string?)record["channel"]));
            Assert.Equal(left, (int)(await PreferencesOfAsync(app, customer))["wechatConsents"]!);
        }
        // The queue message's own fields are the documented ones (camelCase, like every other body).
        Assert.Equal(messages[oneConsent].RecordId, (string?)queued.Single(m => Parsed(m!).CustomerId == oneConsent)!["recordId"]);
        Assert.Equal("wechat", (string?)queued.Single(m => Parsed(m!).CustomerId == oneConsent)!["channel"]);
    }

    // ---- Holdout ----

    [Fact]
    public async Task The_holdout_is_exactly_the_customers_the_policy_names_on_every_run_of_every_campaign()
    {
        await using var app = await StartAsync("holdout");
        var customers = Enumerable.Range(0, 20).Select(i => $"holdout-customer-{i:00}").ToArray();
        var once = await CampaignAsync(app, Utc(25, 4), holdoutPercent: 50);              // due 04:00Z on the 24th
        var twice = await CampaignAsync(app, Utc(27, 4), [48, 24], holdoutPercent: 50);   // due 04:00Z on the 25th and the 26th
        foreach (var customer in customers)
        {
            await ClaimAsync(app, customer, once);
            await ClaimAsync(app, customer, twice);
        }
        var policy = new ReminderPolicy { HoldoutPercent = 50 };
        var outOfOnce = customers.Where(c => policy.HoldsOut(once, c)).ToHashSet();
        var outOfTwice = customers.Where(c => policy.HoldsOut(twice, c)).ToHashSet();
        Assert.InRange(outOfOnce.Count, 1, customers.Length - 1); // both sides exist, so the test can tell them apart
        await RunAtAsync(app, Start);

        var (first, _) = await RunAtAsync(app, Utc(24, 4, 5));
        Assert.Equal((outOfOnce.Count, customers.Length - outOfOnce.Count), (Count(first, "HeldOut"), Count(first, "RemindersSent")));
        foreach (var offsetRun in new[] { Utc(25, 4, 5), Utc(26, 4, 5) })
        {
            var (run, _) = await RunAtAsync(app, offsetRun);
            Assert.Equal((outOfTwice.Count, customers.Length - outOfTwice.Count), (Count(run, "HeldOut"), Count(run, "RemindersSent")));
        }

        foreach (var customer in customers)
        {
            var inbox = await InboxAsync(app, customer);
            Assert.Equal(outOfOnce.Contains(customer) ? 0 : 1, inbox.Count(m => (string?)m["campaignId"] == once));
            Assert.Equal(outOfTwice.Contains(customer) ? 0 : 2, inbox.Count(m => (string?)m["campaignId"] == twice));
        }
    }

    // ---- Availability ----

    [Fact]
    public async Task No_reminder_for_a_coupon_used_locked_or_expired_when_it_falls_due()
    {
        await using var app = await StartAsync("avail");
        var campaign = await CampaignAsync(app, Utc(25, 4)); // due 04:00Z on the 24th
        var expiring = await CampaignAsync(app, Utc(23, 4)); // due 04:00Z on the 22nd: no run until after it expired
        var (available, used, locked, cancelled, expired) = (Api.NewId("av"), Api.NewId("us"), Api.NewId("lo"), Api.NewId("ca"), Api.NewId("ex"));
        var coupons = new Dictionary<string, string>();
        foreach (var customer in new[] { available, used, locked, cancelled }) coupons[customer] = await ClaimAsync(app, customer, campaign);
        await ClaimAsync(app, expired, expiring);
        var orders = app.OrderSystem();
        var usedOrder = Api.NewId("o");
        await (await orders.LockAsync(usedOrder, used, coupons[used])).AssertStatusAsync(HttpStatusCode.Created);
        await (await orders.StepAsync(usedOrder, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
        var cancelledOrder = Api.NewId("o");
        await (await orders.LockAsync(cancelledOrder, cancelled, coupons[cancelled])).AssertStatusAsync(HttpStatusCode.Created);
        await (await orders.StepAsync(cancelledOrder, "cancel")).AssertStatusAsync(HttpStatusCode.OK);
        await RunAtAsync(app, Start);

        // The timer was down until after the coupon expired: a late run does not remind an expired coupon.
        var (late, _) = await RunAtAsync(app, Utc(23, 4, 5));
        Assert.Equal(0, Count(late, "RemindersSent"));
        Assert.Empty(await InboxAsync(app, expired));

        // Locked by an order five minutes before the reminder falls due (the lock lasts 30 minutes).
        app.Clock.Set(Utc(24, 3, 55));
        await (await app.OrderSystem().LockAsync(Api.NewId("o"), locked, coupons[locked])).AssertStatusAsync(HttpStatusCode.Created); // a token of this hour

        var (run, _) = await RunAtAsync(app, Utc(24, 4, 5));
        Assert.Equal(2, Count(run, "RemindersSent"));
        Assert.Equal([coupons[available]], CouponsOf(Assert.Single(await InboxAsync(app, available))));
        Assert.Equal([coupons[cancelled]], CouponsOf(Assert.Single(await InboxAsync(app, cancelled)))); // the cancelled order gave it back
        Assert.Empty(await InboxAsync(app, used));
        Assert.Empty(await InboxAsync(app, locked));
    }

    [Fact]
    public async Task A_held_reminder_whose_coupon_was_used_while_it_waited_is_not_sent()
    {
        await using var app = await StartAsync("heldused");
        var campaign = await CampaignAsync(app, Utc(25, 7, 30)); // due 07:30Z on the 24th: 23:30 in Los Angeles
        var customer = Api.NewId("c");
        await PreferAsync(app, customer, ["push"], "America/Los_Angeles");
        var coupon = await ClaimAsync(app, customer, campaign);
        await RunAtAsync(app, Start);

        var (night, _) = await RunAtAsync(app, Utc(24, 7, 35));
        Assert.Equal((1, 0), (Count(night, "RemindersHeld"), Count(night, "RemindersSent")));

        app.Clock.Set(Utc(24, 10));
        var order = Api.NewId("o");
        await (await app.OrderSystem().LockAsync(order, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
        await (await app.OrderSystem().StepAsync(order, "confirm")).AssertStatusAsync(HttpStatusCode.OK);

        var (morning, queued) = await RunAtAsync(app, Utc(24, 16)); // 08:00 in Los Angeles
        Assert.Equal((1, 1, 0), (Count(morning, "HeldEntriesWorked"), Count(morning, "NoLongerAvailable"), Count(morning, "RemindersSent")));
        Assert.Empty(queued);
        Assert.Empty(await InboxAsync(app, customer));
    }

    // ---- The short-validity rule ----

    [Fact]
    public async Task Short_validity_an_hour_after_the_claim_once_for_collapsed_offsets_and_none_under_two_hours()
    {
        await using var app = await StartAsync("short");
        var (fiveHours, tenHours, underTwo) = (Api.NewId("five"), Api.NewId("ten"), Api.NewId("under"));
        // Claimed at Start: 5 hours of validity for a 24 h offset; 10 hours for 48 h and 24 h; 1 h 50 min.
        await ClaimAsync(app, fiveHours, await CampaignAsync(app, Start.AddHours(5)));
        await ClaimAsync(app, tenHours, await CampaignAsync(app, Start.AddHours(10), [48, 24]));
        await ClaimAsync(app, underTwo, await CampaignAsync(app, Start.AddMinutes(110)));
        await RunAtAsync(app, Start);

        var (early, _) = await RunAtAsync(app, Start.AddMinutes(59));
        Assert.Equal(0, Count(early, "RemindersSent"));
        var (hour, _) = await RunAtAsync(app, Start.AddHours(1));
        Assert.Equal((2, 2), (Count(hour, "RemindersSent"), Count(hour, "Messages")));

        // Every 15 minutes until every coupon expired: nothing more.
        for (var at = Start.AddHours(1).AddMinutes(15); at <= Start.AddHours(10).AddMinutes(15); at = at.AddMinutes(15))
        {
            var (run, _) = await RunAtAsync(app, at);
            Assert.True(Count(run, "RemindersSent") == 0, $"a reminder at {at:O}: {run.ToJsonString()}");
        }
        Assert.Single(await InboxAsync(app, fiveHours));
        Assert.Single(await InboxAsync(app, tenHours));
        Assert.Empty(await InboxAsync(app, underTwo));
    }

    // ---- The campaign's policy ----

    [Fact]
    public async Task No_offsets_send_nothing_and_two_offsets_send_two_reminders_at_their_two_instants()
    {
        await using var app = await StartAsync("policy");
        var validTo = Utc(25, 4);
        var silent = await CampaignAsync(app, validTo, []);
        var twice = await CampaignAsync(app, validTo, [48, 2]);
        var (quiet, reminded) = (Api.NewId("q"), Api.NewId("r"));
        await ClaimAsync(app, quiet, silent);
        var coupon = await ClaimAsync(app, reminded, twice);
        await RunAtAsync(app, Start);

        // Instants: 48 h before (04:00Z on the 23rd), the default 24 h (which [] must not fall back to), 2 h before.
        var expected = new (DateTimeOffset At, int Sent)[]
        {
            (Utc(23, 3, 55), 0), (Utc(23, 4, 5), 1), (Utc(24, 3, 55), 0), (Utc(24, 4, 5), 0),
            (Utc(25, 1, 55), 0), (Utc(25, 2, 5), 1), (Utc(25, 3, 5), 0), (Utc(25, 4, 5), 0),
        };
        foreach (var (at, sent) in expected)
        {
            var (run, _) = await RunAtAsync(app, at);
            Assert.True(Count(run, "RemindersSent") == sent, $"at {at:O} expected {sent}: {run.ToJsonString()}");
        }
        Assert.Empty(await InboxAsync(app, quiet));
        var inbox = await InboxAsync(app, reminded);
        Assert.Equal(2, inbox.Count);
        Assert.All(inbox, m => Assert.Equal([coupon], CouponsOf(m)));
        Assert.Equal([Api.Instant(Utc(23, 4, 5)), Api.Instant(Utc(25, 2, 5))], inbox.Select(m => (string)m["createdAt"]!).Order(StringComparer.Ordinal).ToArray());
    }

    // ---- Review fixes: held reminders bundled, no coupon dropped beyond one message ----

    [Fact]
    public async Task Reminders_held_by_two_runs_for_the_same_end_of_quiet_hours_leave_as_one_message()
    {
        await using var app = await StartAsync("heldtogether");
        var customer = Api.NewId("la");
        await PreferAsync(app, customer, ["push"], "America/Los_Angeles");
        // Due 07:30Z (23:30 in Los Angeles) and 11:00Z (03:00 there): both wait for 08:00 there, 16:00Z.
        var first = await ClaimAsync(app, customer, await CampaignAsync(app, Utc(25, 7, 30)));
        var second = await ClaimAsync(app, customer, await CampaignAsync(app, Utc(25, 11)));
        await RunAtAsync(app, Start);

        var (night, nightQueued) = await RunAtAsync(app, Utc(24, 7, 35));
        var (later, laterQueued) = await RunAtAsync(app, Utc(24, 11, 5));
        Assert.Equal((1, 1, 0, 0), (Count(night, "RemindersHeld"), Count(later, "RemindersHeld"), nightQueued.Count, laterQueued.Count));

        var (morning, queued) = await RunAtAsync(app, Utc(24, 16));
        Assert.Equal((1, 2, 1), (Count(morning, "HeldEntriesWorked"), Count(morning, "RemindersSent"), Count(morning, "Messages")));
        var message = Parsed(Assert.Single(queued)!);
        Assert.Equal(new[] { first, second }.Order(StringComparer.Ordinal), message.CouponIds.Order(StringComparer.Ordinal));
        var (after, afterQueued) = await RunAtAsync(app, Utc(24, 16, 5));
        Assert.Equal((0, 0), (Count(after, "RemindersSent"), afterQueued.Count));
    }

    [Fact]
    public async Task More_coupons_than_one_message_lists_are_all_reminded_in_further_in_app_messages()
    {
        await using var app = await StartAsync("many");
        var customer = Api.NewId("many");
        var now = app.Clock.GetUtcNow();
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(now, t =>
        {
            t["validity"] = new JsonObject { ["type"] = "absolute", ["from"] = Api.Instant(now.AddHours(-1)), ["to"] = Api.Instant(Utc(25, 4)) };
            t["perCustomerLimit"] = 95;
        }));
        var coupons = new List<string>();
        for (var i = 0; i < 95; i++) coupons.Add(await ClaimAsync(app, customer, campaign));
        await RunAtAsync(app, Start);

        var (run, _) = await RunAtAsync(app, Utc(24, 4, 5));

        Assert.Equal((95, 2), (Count(run, "RemindersSent"), Count(run, "Messages")));
        var inbox = await InboxAsync(app, customer);
        Assert.Equal([5, 90], inbox.Select(m => m["couponIds"]!.AsArray().Count).Order());
        Assert.Equal(coupons.Order(StringComparer.Ordinal), inbox.SelectMany(m => m["couponIds"]!.AsArray().Select(c => (string)c!)).Order(StringComparer.Ordinal));
    }
}
