using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The campaigns list carries each launched campaign's live budget (the console's burn bars), read for the whole page in
/// one query (docs/decisions/0010-budget-burn-in-the-campaigns-list.md).
/// </summary>
public sealed class CampaignListBudgetTests
{
    [Fact]
    public async Task The_list_carries_the_live_budget_of_each_launched_campaign_read_for_the_whole_page_in_one_query()
    {
        var (campaigns, stock) = (new ContainerTraffic("campaigns"), new ContainerTraffic(StockStore.Spec.Name));
        // A database of its own: the list is the whole catalog.
        await using var app = await StatsRig.StartAsync("list-budgets", b => b.ConfigureServices(s =>
        {
            s.AddSingleton<Microsoft.Azure.Cosmos.RequestHandler>(campaigns);
            s.AddSingleton<Microsoft.Azure.Cosmos.RequestHandler>(stock);
        }));
        var op = app.Operator();
        var now = app.Clock.GetUtcNow();

        // Before anything is published: a draft with a planned budget. The page costs its one query and nothing in stock.
        var draft = await op.CreateCampaignAsync(Api.Terms(now, t => t["budget"] = 50000));
        campaigns.Reset();
        stock.Reset();
        var draftsOnly = await (await op.GetAsync("/api/campaigns?limit=20")).AssertStatusAsync(HttpStatusCode.OK);
        var (catalogOnly, stockOnly) = (campaigns.Requests, stock.Requests);
        Assert.Equal(0, stockOnly);
        Assert.Null(draftsOnly["budgetsAsOf"]);
        Assert.Null(Item(draftsOnly, draft)["budget"]);

        // Published: one budget in one shard, one split across 3 shards, one without a budget. Money moves on the first
        // two: a confirmed redemption (spent) and an open lock (reserved), 20.00 each.
        var plain = await op.PublishedCampaignAsync(Api.Terms(now, t => t["budget"] = 10000));
        var sharded = await op.PublishedCampaignAsync(Api.Terms(now, t => { t["budget"] = 30000; t["stockShards"] = 3; }));
        var unbudgeted = await op.PublishedCampaignAsync(Api.Terms(now));
        var orders = app.OrderSystem();
        var (customer, coupon) = await app.CustomerWithCouponAsync(plain);
        var order = Api.NewId("o");
        await (await orders.LockAsync(order, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
        await (await orders.StepAsync(order, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
        (customer, coupon) = await app.CustomerWithCouponAsync(sharded);
        await (await orders.LockAsync(Api.NewId("o"), customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);

        campaigns.Reset();
        stock.Reset();
        var page = await (await op.GetAsync("/api/campaigns?limit=20")).AssertStatusAsync(HttpStatusCode.OK);
        // The catalog's query as before, and one query for the budgets of both budgeted campaigns (four shards).
        Assert.Equal((catalogOnly, 1L), (campaigns.Requests, stock.Requests));
        Assert.Equal(Api.Instant(app.Clock.GetUtcNow()), (string)page["budgetsAsOf"]!);

        Assert.Equal(Budget(10000, 8000, 0, 2000), Item(page, plain)["budget"]!.ToJsonString());
        Assert.Equal(Budget(30000, 28000, 2000, 0), Item(page, sharded)["budget"]!.ToJsonString());
        Assert.Null(Item(page, unbudgeted)["budget"]);
        Assert.Null(Item(page, draft)["budget"]);
        // The same figures as the campaign's own GET.
        foreach (var id in new[] { plain, sharded })
        {
            var one = await (await op.GetAsync($"/api/campaigns/{id}")).AssertStatusAsync(HttpStatusCode.OK);
            Assert.Equal(one["budget"]!.ToJsonString(), Item(page, id)["budget"]!.ToJsonString());
        }
    }

    private static JsonNode Item(JsonNode page, string id) => page["items"]!.AsArray().Single(i => (string)i!["id"]! == id)!;

    private static string Budget(long total, long left, long reserved, long spent)
        => new JsonObject { ["total"] = total, ["left"] = left, ["reserved"] = reserved, ["spent"] = spent }.ToJsonString();
}
