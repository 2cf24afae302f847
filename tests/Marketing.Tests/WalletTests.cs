using System.Net;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Wallet;
using Marketing.Tests.Support;
using Xunit;

namespace Marketing.Tests;

/// <summary>The wallet: statuses computed from the clock, soonest expiry first, and validity in the campaign's time zone.</summary>
public sealed class WalletTests
{
    [Fact]
    public async Task Coupons_expire_by_the_clock_and_list_soonest_expiry_first_with_a_status_filter()
    {
        await using var app = await TestApp.StartAsync();
        var now = app.Clock.GetUtcNow();
        var op = app.Operator();
        var week = await op.PublishedCampaignAsync(Api.Terms(now, t => t["validity"] = new System.Text.Json.Nodes.JsonObject { ["type"] = "relative", ["days"] = 7 }));
        var day = await op.PublishedCampaignAsync(Api.Terms(now, t => t["validity"] = new System.Text.Json.Nodes.JsonObject { ["type"] = "relative", ["days"] = 1 }));
        var month = await op.PublishedCampaignAsync(Api.Terms(now, t => t["validity"] = new System.Text.Json.Nodes.JsonObject
        {
            ["type"] = "absolute", ["from"] = Api.Instant(now), ["to"] = Api.Instant(now.AddDays(30)),
        }));
        var customerId = Api.NewId("c");
        var customer = app.Customer(customerId);
        foreach (var campaign in new[] { week, month, day })
            await (await customer.ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created);

        var all = (await (await customer.GetAsync("/api/me/coupons")).ReadJsonAsync())["items"]!.AsArray();
        Assert.Equal([day, week, month], all.Select(c => (string)c!["campaignId"]!).ToArray());
        Assert.All(all, c => Assert.Equal("available", (string?)c!["status"]));

        app.Clock.Advance(TimeSpan.FromDays(2)); // past the 1-day coupon, nothing stored changes
        customer = app.Customer(customerId); // a fresh token for the new "now"
        var expired = (await (await customer.GetAsync("/api/me/coupons?status=expired")).ReadJsonAsync())["items"]!.AsArray();
        Assert.Equal(day, (string?)Assert.Single(expired)!["campaignId"]);
        var available = (await (await customer.GetAsync("/api/me/coupons?status=available")).ReadJsonAsync())["items"]!.AsArray();
        Assert.Equal([week, month], available.Select(c => (string)c!["campaignId"]!).ToArray());
        var one = await (await customer.GetAsync($"/api/me/coupons/{expired[0]!["id"]}")).ReadJsonAsync();
        Assert.Equal("expired", (string?)one["status"]);
        await (await customer.GetAsync("/api/me/coupons?status=lost")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
    }

    public static TheoryData<string, string, int, string> RelativeValidity() => new()
    {
        // zone, claim instant (UTC), days, expected end (UTC) = local midnight after the last valid day
        { "Asia/Shanghai", "2026-11-21T15:30:00Z", 7, "2026-11-27T16:00:00Z" },   // 23:30 local on the 21st: day 1 is the 21st
        { "Asia/Shanghai", "2026-11-21T16:30:00Z", 7, "2026-11-28T16:00:00Z" },   // 00:30 local on the 22nd: day 1 is the 22nd
        { "Asia/Shanghai", "2026-11-21T02:00:00Z", 1, "2026-11-21T16:00:00Z" },   // 1 day = until the end of the claim day
        { "America/New_York", "2026-03-06T15:00:00Z", 3, "2026-03-09T04:00:00Z" }, // spans the DST change (EST -> EDT)
        { "America/New_York", "2026-10-30T15:00:00Z", 3, "2026-11-02T05:00:00Z" }, // spans the fall-back (EDT -> EST)
        { "UTC", "2026-11-21T23:59:59Z", 2, "2026-11-23T00:00:00Z" },
    };

    [Theory]
    [MemberData(nameof(RelativeValidity))]
    public void Relative_validity_counts_calendar_days_in_the_campaign_time_zone(string zone, string claimedAt, int days, string expectedEnd)
    {
        var terms = new CampaignTerms
        {
            Name = "x", Kind = DiscountKind.AmountOff, AmountOff = 1, Currency = "CNY", Channels = [Channel.App],
            ClaimStartsAt = DateTimeOffset.Parse("2026-01-01T00:00:00Z"), ClaimEndsAt = DateTimeOffset.Parse("2027-01-01T00:00:00Z"),
            Validity = new Validity { Type = ValidityType.Relative, Days = days }, TotalQuantity = 1, TimeZone = zone,
        };
        var claimed = DateTimeOffset.Parse(claimedAt);

        var (from, to) = CouponValidity.For(terms, claimed);

        Assert.Equal(claimed, from);
        Assert.Equal(DateTimeOffset.Parse(expectedEnd), to);
    }

    [Fact]
    public async Task A_claim_through_the_api_gets_validity_in_the_campaign_time_zone()
    {
        await using var app = await TestApp.StartAsync();
        app.Clock.Set(DateTimeOffset.Parse("2026-11-21T16:30:00Z")); // 00:30 on the 22nd in Shanghai
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["timeZone"] = "Asia/Shanghai"));

        var coupon = await (await app.Customer(Api.NewId("c")).ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created);

        Assert.Equal("2026-11-21T16:30:00.000Z", (string?)coupon["validFrom"]);
        Assert.Equal("2026-11-28T16:00:00.000Z", (string?)coupon["validTo"]);
    }
}
