using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Expiry;
using Marketing.Functions.Hosting;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// Finished data expires (Cosmos per-item "ttl" on containers with time to live on): done due entries and closed
/// hours, cancelled and refunded redemptions, quarantined events, each after its retention setting, and nothing
/// before it is finished. The emulator never deletes an expired item, so these tests check the "ttl" written, and
/// when: with the right value, at the step that finishes the item and not before, and that an item past its ttl,
/// which Azure would no longer return, is not worked again here either.
/// </summary>
public sealed class RetentionTests
{
    private const int Day = 86_400;

    private static Task<TestApp> StartAsync(string name, params (string Setting, string Value)[] settings)
    {
        var database = $"{Settings.Get("Cosmos__Database")}-ttl-{name}-{Guid.NewGuid():N}";
        return TestApp.StartAsync(database[..Math.Min(60, database.Length)], builder =>
        {
            foreach (var (setting, value) in settings) builder.UseSetting(setting, value);
        });
    }

    private static Container Container(TestApp app, string name) => app.Services.GetRequiredService<Database>().GetContainer(name);

    private static async Task<JsonObject> ReadAsync(TestApp app, string container, string id, string partitionKey)
    {
        using var response = await Container(app, container).ReadItemStreamAsync(id, new PartitionKey(partitionKey));
        response.EnsureSuccessStatusCode();
        return (await JsonNode.ParseAsync(response.Content))!.AsObject();
    }

    [Fact]
    public async Task Containers_holding_finished_data_are_provisioned_with_time_to_live_on_and_no_default_and_the_others_off()
    {
        await using var app = await StartAsync("containers");
        // stats: a counted fact's mark (Stats/StatsStore.cs) carries a ttl; the days and the feed cursors do not.
        // media: a pending or refused item carries a ttl (Media/MediaItem.cs); a ready one does not.
        string[] expiring = ["due", "notifications", "redemptions", "quarantine", "referrals", "stats", "media"];
        Assert.Equal(expiring.Order(), Platform.Containers.Where(c => c.DefaultTtl is not null).Select(c => c.Name).Order());
        foreach (var spec in Platform.Containers)
        {
            var properties = (await Container(app, spec.Name).ReadContainerAsync()).Resource;
            // -1: on, but only items with their own "ttl" expire; null: off (an item's "ttl" would be ignored).
            Assert.Equal(expiring.Contains(spec.Name) ? -1 : null, properties.DefaultTimeToLive);
        }
    }

    [Fact]
    public async Task A_due_entry_gets_its_ttl_when_done_and_its_hour_when_closed_and_once_past_it_is_never_worked_again()
    {
        await using var app = await StartAsync("due", ("DueIndex:DoneRetentionDays", "5"));
        // Coupons valid for 30 days: their own expiry is not due in this test, only the lock's.
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
            t["validity"] = new JsonObject { ["type"] = "relative", ["days"] = 30 }));
        var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
        var orderId = Api.NewId("o");
        var locked = await (await app.OrderSystem().LockAsync(orderId, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
        var until = DateTimeOffset.Parse((string)locked["lockedUntil"]!, CultureInfo.InvariantCulture); // 02:30, in the 02:00 hour
        // The lock's entry as the previous release filed it (locks file none any more; filed entries are still worked).
        await app.Services.GetRequiredService<DueIndex>().AddLockExpiryAsync(orderId, until);
        var bucket = DueIndex.BucketOf(DueIndex.Expiry, until, "lock:" + orderId);
        Task<JsonObject> Entry() => ReadAsync(app, "due", "lock:" + orderId, bucket);
        Task<JsonObject> Hour() => ReadAsync(app, "due", bucket, "expiry:buckets");

        // Open: no ttl, before and after a run that finds it not yet due.
        Assert.False((await Entry()).ContainsKey("ttl"));
        Assert.False((await Hour()).ContainsKey("ttl"));
        app.Clock.Set(until.AddMilliseconds(-1));
        Assert.Equal(0, (int)(await app.InvokeTimerAsync("ExpireCoupons"))["ReturnValue"]!["LocksReleased"]!);
        Assert.False((await Entry()).ContainsKey("ttl"));

        // Done: the ttl comes with "done", in the same write. The hour is not over, so it stays open, without one.
        app.Clock.Set(until);
        Assert.Equal(1, (int)(await app.InvokeTimerAsync("ExpireCoupons"))["ReturnValue"]!["LocksReleased"]!);
        var entry = await Entry();
        Assert.Equal((true, 5 * Day), ((bool)entry["done"]!, (int)entry["ttl"]!));
        Assert.False((await Hour()).ContainsKey("ttl"));

        // The hour is over: closed, with its ttl.
        app.Clock.Set(new DateTimeOffset(2026, 11, 21, 3, 0, 0, TimeSpan.Zero));
        await app.InvokeTimerAsync("ExpireCoupons");
        var hour = await Hour();
        Assert.Equal((true, 5 * Day), ((bool)hour["done"]!, (int)hour["ttl"]!));

        // Past the ttl Azure deletes both (and no query returns them before it does); the emulator keeps them. Either
        // way no run reads them as due: the index asks for open entries only.
        app.Clock.Advance(TimeSpan.FromDays(6));
        Assert.Equal(bucket, (string?)(await Entry())["bucket"]);
        var late = (await app.InvokeTimerAsync("ExpireCoupons"))["ReturnValue"]!;
        Assert.Equal((0, 0, 0), ((int)late["BucketsRead"]!, (int)late["EntriesRead"]!, (int)late["LocksReleased"]!));
        var record = await (await app.OrderSystem().GetAsync($"/api/redemptions/{orderId}")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Single(record["history"]!.AsArray(), h => (string?)h!["step"] == "expire");
    }

    [Fact]
    public async Task A_redemption_gets_its_ttl_with_the_step_that_finishes_it_and_a_paid_one_never()
    {
        await using var app = await StartAsync("redemptions", ("Redemption:FinishedRetentionDays", "40"));
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["budget"] = 100000));
        var orders = app.OrderSystem();
        async Task<string> LockAsync()
        {
            var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
            var orderId = Api.NewId("o");
            await (await orders.LockAsync(orderId, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
            return orderId;
        }
        async Task<int?> TtlAsync(string orderId) => (int?)(await ReadAsync(app, "redemptions", orderId, orderId))["ttl"];

        var paid = await LockAsync();
        var cancelled = await LockAsync();
        var lapsed = await LockAsync();
        Assert.Null(await TtlAsync(paid)); // locked

        await (await orders.StepAsync(paid, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Null(await TtlAsync(paid)); // used: a refund may still come, however late
        await (await orders.StepAsync(cancelled, "cancel")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(40 * Day, await TtlAsync(cancelled));

        app.Clock.Advance(TimeSpan.FromDays(300)); // the lock lapsed long ago, and the payment is old
        orders = app.OrderSystem(); // tokens are minted on the test clock
        Assert.Equal(1, (int)(await app.InvokeTimerAsync("ExpireCoupons"))["ReturnValue"]!["LocksReleased"]!);
        Assert.Equal(40 * Day, await TtlAsync(lapsed));
        Assert.Null(await TtlAsync(paid));
        var refunded = await (await orders.StepAsync(paid, "refund")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("refunded", (string?)refunded["state"]);
        Assert.Equal(40 * Day, await TtlAsync(paid));

        // Storage only: what the order system reads has no ttl; a replay of a finished step answers as before.
        Assert.False(refunded.AsObject().ContainsKey("ttl"));
        var replay = await orders.StepAsync(cancelled, "cancel");
        Assert.Equal("cancelled", (string?)(await replay.AssertStatusAsync(HttpStatusCode.OK))["state"]);
        Assert.Equal("true", replay.Headers.GetValues("Idempotent-Replayed").Single());
    }

    [Fact]
    public async Task A_quarantined_event_carries_the_retention_as_ttl_from_the_start_and_operators_do_not_see_it()
    {
        await using var app = await StartAsync("quarantine", ("Quarantine:RetentionDays", "7"));
        var answer = await (await app.DeliverAsync("{\"eventId\": \"ev-1\", ", "m-broken")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("quarantined", (string?)answer["ReturnValue"]!["Outcome"]);

        var day = app.Clock.GetUtcNow().UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var stored = await ReadAsync(app, "quarantine", "m-broken", day);
        Assert.Equal(7 * Day, (int)stored["ttl"]!);
        var listed = await (await app.Operator().GetAsync("/api/order-events/quarantine?day=" + day)).AssertStatusAsync(HttpStatusCode.OK);
        var item = Assert.Single(listed["items"]!.AsArray())!.AsObject();
        Assert.Equal("m-broken", (string?)item["messageId"]);
        Assert.False(item.ContainsKey("ttl"));
    }
}
