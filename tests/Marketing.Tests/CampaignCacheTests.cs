using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Tests.Support;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The per-instance copy of the catalog (issue 11): what keeping it fresh costs does not grow with the number
/// of campaigns (one read of the change marker per refresh; the campaigns written since, when something
/// changed), changes made on another instance show after one look, and the claim path's guarantees stay
/// (a pause at once through the stock switch, a campaign published elsewhere claimable at once).
/// Each test has its own database: the catalog is one partition per database.
/// </summary>
public sealed class CampaignCacheTests
{
    private static readonly TimeSpan PastCache = TimeSpan.FromSeconds(6); // Campaigns:CacheSeconds is 5

    private static string NewDatabase(string name)
    {
        var database = $"{Settings.Get("Cosmos__Database")}-cache-{name}-{Guid.NewGuid():N}";
        return database[..Math.Min(60, database.Length)];
    }

    private static Task<TestApp> StartAsync(string database, RequestHandler? handler = null)
        => TestApp.StartAsync(database, handler is null ? null : b => b.ConfigureServices(s => s.AddSingleton(handler)));

    [Fact]
    public async Task The_emulator_keeps_ts_like_Cosmos_DB_so_queries_can_filter_and_sort_on_it()
    {
        await using var app = await StartAsync(NewDatabase("ts"));
        var container = app.Services.GetRequiredService<Database>().GetContainer(CampaignStore.Spec.Name);
        var catalog = "scratch-" + Guid.NewGuid().ToString("N");
        var before = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        await container.CreateItemAsync(new JsonObject { ["id"] = "a", ["catalog"] = catalog, ["n"] = 1 }, new PartitionKey(catalog));
        await container.CreateItemAsync(new JsonObject { ["id"] = "b", ["catalog"] = catalog, ["n"] = 1 }, new PartitionKey(catalog));

        // Set by the database on every write, in whole seconds since 1970.
        var a = (await container.ReadItemAsync<JsonObject>("a", new PartitionKey(catalog))).Resource;
        var ts = (long)a["_ts"]!;
        Assert.InRange(ts, before - 1, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);
        await container.ReplaceItemAsync(new JsonObject { ["id"] = "a", ["catalog"] = catalog, ["n"] = 2 }, "a", new PartitionKey(catalog));
        var replaced = (long)(await container.ReadItemAsync<JsonObject>("a", new PartitionKey(catalog))).Resource["_ts"]!;
        Assert.True(replaced >= ts);

        async Task<List<T>> QueryAsync<T>(string sql, long since)
        {
            using var iterator = container.GetItemQueryIterator<T>(new QueryDefinition(sql).WithParameter("@catalog", catalog).WithParameter("@since", since),
                requestOptions: new QueryRequestOptions { PartitionKey = new PartitionKey(catalog), EnableOptimisticDirectExecution = true });
            var results = new List<T>();
            while (iterator.HasMoreResults) results.AddRange(await iterator.ReadNextAsync());
            return results;
        }
        // Filters (the refresh: written at or after a second) and sorts (the newest write) on it.
        var newest = (long)(await container.ReadItemAsync<JsonObject>("b", new PartitionKey(catalog))).Resource["_ts"]!;
        newest = Math.Max(newest, replaced);
        Assert.Equal(2, (await QueryAsync<JsonObject>("SELECT * FROM c WHERE c.catalog = @catalog AND c._ts >= @since", ts)).Count);
        Assert.Empty(await QueryAsync<JsonObject>("SELECT * FROM c WHERE c.catalog = @catalog AND c._ts >= @since", newest + 1));
        Assert.Equal(new[] { newest }, await QueryAsync<long>("SELECT TOP 1 VALUE c._ts FROM c WHERE c.catalog = @catalog AND c._ts >= @since ORDER BY c._ts DESC", 0));
    }

    [Fact]
    public async Task Keeping_the_catalog_fresh_costs_one_small_read_per_refresh_whether_it_holds_two_campaigns_or_forty_two()
    {
        var traffic = new ContainerTraffic(CampaignStore.Spec.Name);
        await using var app = await StartAsync(NewDatabase("cost"), traffic);
        var op = app.Operator();
        var customer = app.Customer(Api.NewId("c"));
        var now = app.Clock.GetUtcNow();
        var campaigns = new List<string>();
        for (var i = 0; i < 2; i++) campaigns.Add(await op.PublishedCampaignAsync(Api.Terms(now)));

        Assert.Equal(2, (await ClaimableAsync(customer)).Count);
        var small = await RefreshCostAsync(app, traffic, customer);

        for (var i = 0; i < 40; i++) campaigns.Add(await op.PublishedCampaignAsync(Api.Terms(now)));
        Assert.Equal(campaigns.Order(), (await ClaimableAsync(customer)).Order());
        var large = await RefreshCostAsync(app, traffic, customer);

        // One read of the change marker, no campaign document, in both.
        Assert.Equal((1L, 0L), small);
        Assert.Equal(small, large);

        // Claims on held campaigns read nothing from the catalog between refreshes.
        traffic.Reset();
        foreach (var id in campaigns.Take(10))
            await (await app.Customer(Api.NewId("c")).ClaimAsync(id)).AssertStatusAsync(HttpStatusCode.Created);
        Assert.Equal(0, traffic.Requests);
    }

    [Fact]
    public async Task Changes_made_on_another_instance_show_after_one_look_while_a_pause_and_a_publish_take_effect_at_once()
    {
        var traffic = new ContainerTraffic(CampaignStore.Spec.Name);
        await using var a = await StartAsync(NewDatabase("instances"), traffic);
        await using var b = await TestApp.StartAsync(a.Database); // a second function instance over the same database
        var now = a.Clock.GetUtcNow();
        var op = b.Operator();
        var customer = a.Customer(Api.NewId("c"));
        var ids = new List<string>();
        for (var i = 0; i < 3; i++) ids.Add(await op.PublishedCampaignAsync(Api.Terms(now)));
        Assert.Equal(3, (await ClaimableAsync(customer)).Count);

        // On b: pause the first, extend the second's claim window, publish a fourth.
        await (await op.PostAsync($"/api/campaigns/{ids[0]}/pause", null)).AssertStatusAsync(HttpStatusCode.OK);
        var later = Api.Instant(now.AddDays(20));
        await (await op.PutAsync($"/api/campaigns/{ids[1]}", Api.JsonContent(Api.Terms(now, t => t["claimEndsAt"] = later)))).AssertStatusAsync(HttpStatusCode.OK);
        var fourth = await op.PublishedCampaignAsync(Api.Terms(now));

        // Before a looks again: the pause holds at once (the stock switch), the new campaign is claimable at once.
        await (await a.Customer(Api.NewId("c")).ClaimAsync(ids[0])).AssertProblemAsync(HttpStatusCode.Conflict, "campaign-not-active");
        traffic.Reset();
        await (await a.Customer(Api.NewId("c")).ClaimAsync(fourth)).AssertStatusAsync(HttpStatusCode.Created);
        Assert.Equal(1, traffic.Requests); // the point read of a campaign a does not hold yet
        // That read made a look again: the marker and what changed; from then on the campaign is held.
        traffic.Reset();
        await (await a.Customer(Api.NewId("c")).ClaimAsync(fourth)).AssertStatusAsync(HttpStatusCode.Created);
        Assert.Equal(2, traffic.Requests);
        traffic.Reset();
        await (await a.Customer(Api.NewId("c")).ClaimAsync(fourth)).AssertStatusAsync(HttpStatusCode.Created);
        Assert.Equal(0, traffic.Requests);

        // The list on a shows every change of b.
        var claimable = await ClaimableItemsAsync(customer);
        Assert.Equal(new[] { ids[1], ids[2], fourth }.Order(), claimable.Select(c => (string)c["id"]!).Order());
        Assert.Equal(later, (string?)claimable.Single(c => (string)c["id"]! == ids[1])["claimEndsAt"]);

        // Nothing changed since: the next refresh reads the marker only.
        a.Clock.Advance(PastCache);
        traffic.Reset();
        Assert.Equal(3, (await ClaimableAsync(customer)).Count);
        Assert.Equal((1L, 0L), (traffic.Requests, traffic.DocumentsReturned));

        // Resumed on b: claimable on a at once (a paused campaign is never held, so it is read), listed after a's next look.
        await (await op.PostAsync($"/api/campaigns/{ids[0]}/resume", null)).AssertStatusAsync(HttpStatusCode.OK);
        await (await a.Customer(Api.NewId("c")).ClaimAsync(ids[0])).AssertStatusAsync(HttpStatusCode.Created);
        a.Clock.Advance(PastCache);
        Assert.Equal(4, (await ClaimableAsync(customer)).Count);
    }

    // ---- helpers

    /// <summary>Ids of the campaigns the customer's claimable list shows.</summary>
    private static async Task<List<string>> ClaimableAsync(HttpClient customer)
        => (await ClaimableItemsAsync(customer)).Select(c => (string)c["id"]!).ToList();

    private static async Task<List<JsonNode>> ClaimableItemsAsync(HttpClient customer)
    {
        var body = await (await customer.GetAsync("/api/campaigns/claimable")).AssertStatusAsync(HttpStatusCode.OK);
        return body["items"]!.AsArray().Select(i => i!).ToList();
    }

    /// <summary>What one refresh of the instance's catalog costs: campaign container requests, and documents its queries returned.</summary>
    private static async Task<(long Requests, long Documents)> RefreshCostAsync(TestApp app, ContainerTraffic traffic, HttpClient customer)
    {
        app.Clock.Advance(PastCache);
        traffic.Reset();
        await ClaimableAsync(customer);
        return (traffic.Requests, traffic.DocumentsReturned);
    }
}
