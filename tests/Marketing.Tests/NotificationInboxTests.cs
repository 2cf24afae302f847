using System.Net;
using Marketing.Functions.Notifications;
using Marketing.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>The in-app inbox: the customer's own messages newest first, paged; mark read idempotent; nobody else's (BOLA).</summary>
public sealed class NotificationInboxTests
{
    private static NotificationRecord Record(string customerId, DateTimeOffset at, NotificationKind kind = NotificationKind.ExpiryReminder) => new()
    {
        Id = Api.NewId("n"),
        CustomerId = customerId,
        Kind = kind,
        Channel = NotificationChannel.Inapp,
        Title = "Your coupon expires soon",
        Body = "Spend 100 save 20 expires tomorrow.",
        CouponIds = ["cpn_1"],
        CampaignId = "cmp_1",
        CreatedAt = at,
    };

    private static async Task<List<NotificationRecord>> SeedAsync(TestApp app, string customerId, int count)
    {
        var store = app.Services.GetRequiredService<NotificationStore>();
        var records = new List<NotificationRecord>();
        for (var i = 0; i < count; i++)
        {
            var record = Record(customerId, app.Clock.GetUtcNow().AddMinutes(-10 * (count - i)));
            Assert.True(await store.TryCreateAsync(record, CancellationToken.None));
            records.Add(record);
        }
        return records;
    }

    [Fact]
    public async Task The_inbox_lists_my_messages_newest_first_in_pages_and_never_anyone_elses_or_operator_alerts()
    {
        await using var app = await TestApp.StartAsync();
        var alice = Api.NewId("alice");
        var mine = await SeedAsync(app, alice, 5);
        await SeedAsync(app, Api.NewId("bob"), 2);
        var store = app.Services.GetRequiredService<NotificationStore>();
        await store.TryCreateAsync(Record(NotificationRecord.OperatorsPartition, app.Clock.GetUtcNow(), NotificationKind.OperatorAlert), CancellationToken.None);

        var client = app.Customer(alice);
        var seen = new List<string>();
        string? token = null;
        var pages = 0;
        do
        {
            var url = "/api/me/notifications?limit=2" + (token is null ? "" : "&continuationToken=" + Uri.EscapeDataString(token));
            var page = await (await client.GetAsync(url)).AssertStatusAsync(HttpStatusCode.OK);
            var items = page["items"]!.AsArray();
            Assert.True(items.Count <= 2);
            Assert.All(items, i => Assert.False((bool)i!["read"]!));
            seen.AddRange(items.Select(i => (string)i!["id"]!));
            token = (string?)page["continuationToken"];
            pages++;
        } while (token is not null && pages < 10);

        Assert.Equal(mine.Select(r => r.Id).Reverse().ToArray(), seen.ToArray()); // all five, newest first, no one else's
        Assert.Equal(3, pages);

        // A caller whose subject is the alerts' partition still sees no operator alert.
        var operators = await (await app.Customer(NotificationRecord.OperatorsPartition).GetAsync("/api/me/notifications")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Empty(operators["items"]!.AsArray());

        await (await client.GetAsync("/api/me/notifications?limit=0")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        await (await client.GetAsync("/api/me/notifications?continuationToken=forged")).AssertProblemAsync(HttpStatusCode.BadRequest, "invalid-page-token");
    }

    [Fact]
    public async Task Marking_read_is_idempotent_and_keeps_the_first_instant()
    {
        await using var app = await TestApp.StartAsync();
        var alice = Api.NewId("alice");
        var record = (await SeedAsync(app, alice, 1))[0];
        var readAt = app.Clock.GetUtcNow();

        var first = await (await app.Customer(alice).PostAsync($"/api/me/notifications/{record.Id}/read", null)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.True((bool)first["read"]!);
        Assert.Equal(Api.Instant(readAt), (string?)first["readAt"]);

        app.Clock.Advance(TimeSpan.FromMinutes(5));
        var again = await (await app.Customer(alice).PostAsync($"/api/me/notifications/{record.Id}/read", null)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(Api.Instant(readAt), (string?)again["readAt"]);

        var listed = await (await app.Customer(alice).GetAsync("/api/me/notifications")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.True((bool)listed["items"]![0]!["read"]!);
        // The store-level write applied twice: refused the second time, the record unchanged.
        var store = app.Services.GetRequiredService<NotificationStore>();
        Assert.False(await store.TryMarkReadAsync(alice, record.Id, app.Clock.GetUtcNow(), CancellationToken.None));
        Assert.Equal(readAt, (await store.FindAsync(alice, record.Id, CancellationToken.None))!.ReadAt);
    }

    [Fact]
    public async Task Another_customers_message_or_an_operator_alert_is_not_found()
    {
        await using var app = await TestApp.StartAsync();
        var alice = Api.NewId("alice");
        var record = (await SeedAsync(app, alice, 1))[0];
        var mallory = app.Customer(Api.NewId("mallory"));

        await (await mallory.PostAsync($"/api/me/notifications/{record.Id}/read", null)).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        var store = app.Services.GetRequiredService<NotificationStore>();
        Assert.Null((await store.FindAsync(alice, record.Id, CancellationToken.None))!.ReadAt); // untouched

        var alert = Record(NotificationRecord.OperatorsPartition, app.Clock.GetUtcNow(), NotificationKind.OperatorAlert);
        await store.TryCreateAsync(alert, CancellationToken.None);
        await (await app.Customer(NotificationRecord.OperatorsPartition).PostAsync($"/api/me/notifications/{alert.Id}/read", null))
            .AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        Assert.Null((await store.FindAsync(NotificationRecord.OperatorsPartition, alert.Id, CancellationToken.None))!.ReadAt);

        // Without a token: 401; an operator is not a customer: 403.
        await (await app.Anonymous().GetAsync("/api/me/notifications")).AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
        await (await app.Operator().PostAsync($"/api/me/notifications/{record.Id}/read", null)).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
    }
}
