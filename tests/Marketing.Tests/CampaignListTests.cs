using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The campaigns list: each launched campaign's live budget (the console's burn bars), read for the whole page in one query
/// (docs/decisions/0010-budget-burn-in-the-campaigns-list.md), and its filters (status, part of the name, claim end).
/// </summary>
public sealed class CampaignListTests
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

    [Fact]
    public async Task The_list_filters_by_part_of_the_name_in_any_case_and_by_a_range_of_the_claim_end_and_pages_with_its_filters()
    {
        await using var app = await StatsRig.StartAsync("list-filters");
        var op = app.Operator();
        var now = app.Clock.GetUtcNow();
        var tag = Api.NewId("x");
        async Task<string> CreateAsync(string name, int endsInDays) => await op.CreateCampaignAsync(Api.Terms(now, t =>
        {
            t["name"] = name;
            t["claimEndsAt"] = Api.Instant(now.AddDays(endsInDays));
        }));
        var soonA = await CreateAsync($"Double 11 {tag} A", 2);
        var soonB = await CreateAsync($"double 11 {tag.ToUpperInvariant()} B", 6);
        var later = await CreateAsync($"Double 11 {tag} later", 8);
        var other = await CreateAsync("Spring sale", 3);
        var published = await op.PublishedCampaignAsync(Api.Terms(now, t => { t["name"] = $"Published {tag}"; t["claimEndsAt"] = Api.Instant(now.AddDays(1)); }));

        async Task<string[]> IdsAsync(string query)
        {
            var ids = new List<string>();
            string? token = null;
            do
            {
                var page = await (await op.GetAsync($"/api/campaigns?limit=1&{query}{(token is null ? "" : "&continuationToken=" + Uri.EscapeDataString(token))}"))
                    .AssertStatusAsync(HttpStatusCode.OK);
                ids.AddRange(page["items"]!.AsArray().Select(i => (string)i!["id"]!));
                token = (string?)page["continuationToken"];
            } while (token is not null);
            return [.. ids.Order()];
        }

        // Part of the name, any case (pages of one, so the filter holds across continuation tokens).
        Assert.Equal(new[] { soonA, soonB, later, published }.Order(), await IdsAsync("name=" + Uri.EscapeDataString(tag.ToUpperInvariant())));
        Assert.Equal(new[] { soonA, soonB, later }.Order(), await IdsAsync($"name={Uri.EscapeDataString($"DOUBLE 11 {tag}")}"));
        // Ending within 7 days: from now (inclusive) to now + 7 days (exclusive); with a status and a name too.
        var week = $"claimEndsFrom={Uri.EscapeDataString(Api.Instant(now))}&claimEndsBefore={Uri.EscapeDataString(Api.Instant(now.AddDays(7)))}";
        Assert.Equal(new[] { soonA, soonB, other, published }.Order(), await IdsAsync(week));
        Assert.Equal([published], await IdsAsync(week + "&status=published"));
        Assert.Equal(new[] { soonA, soonB }.Order(), await IdsAsync(week + "&status=draft&name=" + Uri.EscapeDataString(tag)));

        // Every bad filter at once.
        var refused = await (await op.GetAsync("/api/campaigns?status=live&name=&claimEndsFrom=2026-11-21T08:00:00&claimEndsBefore=soon&limit=0"))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.Equal(["claimEndsBefore", "claimEndsFrom", "limit", "name", "status"],
            refused["errors"]!.AsObject().Select(e => e.Key).Order().ToArray());
        // A limit that is not a number is one more field error beside the others, not a binding failure of its own.
        var notANumber = await (await op.GetAsync("/api/campaigns?status=live&limit=ten"))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.Equal(["limit", "status"], notANumber["errors"]!.AsObject().Select(e => e.Key).Order().ToArray());
        var backwards = await (await op.GetAsync($"/api/campaigns?claimEndsFrom={Uri.EscapeDataString(Api.Instant(now))}&claimEndsBefore={Uri.EscapeDataString(Api.Instant(now))}"))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.Equal(["claimEndsBefore"], backwards["errors"]!.AsObject().Select(e => e.Key).ToArray());
    }

    private static JsonNode Item(JsonNode page, string id) => page["items"]!.AsArray().Single(i => (string)i!["id"]! == id)!;

    private static string Budget(long total, long left, long reserved, long spent)
        => new JsonObject { ["total"] = total, ["left"] = left, ["reserved"] = reserved, ["spent"] = spent }.ToJsonString();
}
