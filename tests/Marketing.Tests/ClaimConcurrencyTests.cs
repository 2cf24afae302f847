using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>Stock and per-customer limits hold exactly under concurrency, across several app instances.</summary>
public sealed class ClaimConcurrencyTests(TestApp app) : IClassFixture<TestApp>
{
    [Fact]
    public async Task Claim_never_oversells_under_200_concurrent_claims_across_two_instances()
    {
        // Two app instances over the same database, as when the platform scales out.
        await using var second = TestApp.Over(app.Database);
        second.Clock.Set(app.Clock.GetUtcNow());
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["totalQuantity"] = 50));

        var customers = Enumerable.Range(0, 200).Select(i => Api.NewId($"c{i}")).ToArray();
        var responses = await Task.WhenAll(customers.Select((c, i) => (i % 2 == 0 ? app : second).Customer(c).ClaimAsync(campaign)));

        var created = responses.Count(r => r.StatusCode == HttpStatusCode.Created);
        Assert.Equal(50, created);
        foreach (var refused in responses.Where(r => r.StatusCode != HttpStatusCode.Created))
            await refused.AssertProblemAsync(HttpStatusCode.Conflict, "sold-out");

        var stock = await app.Services.GetRequiredService<StockStore>().FindAsync(campaign);
        Assert.Equal(0, stock!.Remaining);
        Assert.Equal(50, stock.Issued);

        // Exactly the 50 winners hold one coupon each.
        var holdings = await Task.WhenAll(customers.Select(async c =>
            (await (await app.Customer(c).GetAsync("/api/me/coupons")).ReadJsonAsync())["items"]!.AsArray()
                .Count(x => (string?)x!["campaignId"] == campaign)));
        Assert.Equal(50, holdings.Sum());
        Assert.All(holdings, h => Assert.InRange(h, 0, 1));
    }

    [Fact]
    public async Task One_customer_with_limit_2_gets_exactly_2_coupons_from_30_parallel_claims()
    {
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
        {
            t["totalQuantity"] = 100;
            t["perCustomerLimit"] = 2;
        }));
        var customer = app.Customer(Api.NewId("greedy"));

        var responses = await Task.WhenAll(Enumerable.Range(0, 30).Select(_ => customer.ClaimAsync(campaign)));

        Assert.Equal(2, responses.Count(r => r.StatusCode == HttpStatusCode.Created));
        foreach (var refused in responses.Where(r => r.StatusCode != HttpStatusCode.Created))
            await refused.AssertProblemAsync(HttpStatusCode.Conflict, "limit-reached");
        var wallet = (await (await customer.GetAsync("/api/me/coupons")).ReadJsonAsync())["items"]!.AsArray();
        Assert.Equal(2, wallet.Count(x => (string?)x!["campaignId"] == campaign));
        // Refused claims gave their unit back: only the two coupons left the stock.
        var stock = await app.Services.GetRequiredService<StockStore>().FindAsync(campaign);
        Assert.Equal((98, 2), (stock!.Remaining, stock.Issued));
    }

    [Fact]
    public async Task Concurrent_duplicates_of_one_key_yield_one_coupon_and_never_a_second()
    {
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["perCustomerLimit"] = 5));
        var customer = app.Customer(Api.NewId("dup"));
        var key = Guid.NewGuid().ToString();

        var responses = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => customer.ClaimAsync(campaign, key)));

        // Each duplicate either waits its turn (409 in flight) or replays the first answer byte for byte.
        var created = responses.Where(r => r.StatusCode == HttpStatusCode.Created).ToList();
        Assert.NotEmpty(created);
        var bodies = await Task.WhenAll(created.Select(r => r.Content.ReadAsStringAsync()));
        Assert.Single(bodies.Distinct());
        foreach (var other in responses.Where(r => r.StatusCode != HttpStatusCode.Created))
            await other.AssertProblemAsync(HttpStatusCode.Conflict, "idempotency-in-flight");
        var wallet = (await (await customer.GetAsync("/api/me/coupons")).ReadJsonAsync())["items"]!.AsArray();
        Assert.Single(wallet, x => (string?)x!["campaignId"] == campaign);

        // After the dust settles, the key replays the same answer.
        var replay = await customer.ClaimAsync(campaign, key);
        Assert.Equal(HttpStatusCode.Created, replay.StatusCode);
        Assert.Equal(bodies[0], await replay.Content.ReadAsStringAsync());
        var stock = await app.Services.GetRequiredService<StockStore>().FindAsync(campaign);
        Assert.Equal(1, stock!.Issued);
    }
}
