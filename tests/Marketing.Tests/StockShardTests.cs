using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Wallet;
using Marketing.Tests.Support;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// Hot campaigns: stock split across shards in separate logical partitions (docs/claiming.md, "Hot campaigns").
/// Exact under concurrency, sold out only when every shard is empty, every lifecycle step on every shard, give-backs
/// to the shard the unit came from, recounts and quantity increases per shard.
/// </summary>
public sealed class StockShardTests(TestApp app) : IClassFixture<TestApp>
{
    private DateTimeOffset Now => app.Clock.GetUtcNow();
    private StockStore Stocks => app.Services.GetRequiredService<StockStore>();

    private Task<string> ShardedCampaignAsync(int shards, int quantity, Action<JsonObject>? change = null)
        => app.Operator().PublishedCampaignAsync(Api.Terms(Now, t =>
        {
            t["stockShards"] = shards;
            t["totalQuantity"] = quantity;
            change?.Invoke(t);
        }));

    [Fact]
    public async Task A_sharded_campaign_never_oversells_200_concurrent_claims_across_two_instances()
    {
        await using var second = TestApp.Over(app.Database);
        second.Clock.Set(Now);
        var campaign = await ShardedCampaignAsync(8, 50);

        var customers = Enumerable.Range(0, 200).Select(i => Api.NewId($"s{i}")).ToArray();
        var responses = await Task.WhenAll(customers.Select((c, i) => (i % 2 == 0 ? app : second).Customer(c).ClaimAsync(campaign)));

        Assert.Equal(50, responses.Count(r => r.StatusCode == HttpStatusCode.Created));
        foreach (var refused in responses.Where(r => r.StatusCode != HttpStatusCode.Created))
            await refused.AssertProblemAsync(HttpStatusCode.Conflict, "sold-out");
        var shards = await AssertShardsExactAsync(campaign, 8);
        // Every shard gave exactly its part of the 50 (7 or 6), nothing more, and has nothing left.
        Assert.All(shards, s => Assert.Equal((StockSharding.Share(50, 8, s.ShardNumber), 0), (s.Issued, s.Remaining)));
        var holdings = await Task.WhenAll(customers.Select(async c =>
            (await (await app.Customer(c).GetAsync("/api/me/coupons")).ReadJsonAsync())["items"]!.AsArray()
                .Count(x => (string?)x!["campaignId"] == campaign)));
        Assert.Equal(50, holdings.Sum());
        Assert.All(holdings, h => Assert.InRange(h, 0, 1));
    }

    [Fact]
    public async Task Claims_succeed_while_any_shard_has_stock_and_are_sold_out_only_when_every_shard_is_empty()
    {
        // 8 shards of 2; all but shard 5 drained: a claim picking any of the 7 empty shards must find shard 5.
        var campaign = await ShardedCampaignAsync(8, 16);
        for (var k = 0; k < 8; k++)
            if (k != 5) await DrainShardAsync(campaign, k);

        var first = await app.Customer(Api.NewId("u1")).ClaimAsync(campaign);
        var second = await app.Customer(Api.NewId("u2")).ClaimAsync(campaign);
        var coupons = new[] { await first.AssertStatusAsync(HttpStatusCode.Created), await second.AssertStatusAsync(HttpStatusCode.Created) };
        await (await app.Customer(Api.NewId("u3")).ClaimAsync(campaign)).AssertProblemAsync(HttpStatusCode.Conflict, "sold-out");

        var shard5 = (await Stocks.FindShardAsync(campaign, 5))!;
        Assert.Equal((0, 2), (shard5.Remaining, shard5.Issued));
        var byShard = await app.Services.GetRequiredService<WalletStore>().CountIssuedByShardAsync(campaign, 8);
        Assert.Equal(new[] { 0, 0, 0, 0, 0, 2, 0, 0 }, byShard);
        Assert.All(coupons, c => Assert.NotNull((string?)c["id"]));
    }

    [Fact]
    public async Task Pause_resume_and_end_close_and_open_every_shard()
    {
        var campaign = await ShardedCampaignAsync(4, 40);
        var op = app.Operator();
        Assert.All(await Stocks.FindShardsAsync(campaign, 4), s => Assert.True(s.Open));

        await (await op.PostAsync($"/api/campaigns/{campaign}/pause", null)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.All(await Stocks.FindShardsAsync(campaign, 4), s => Assert.False(s.Open));
        // Even an instance still caching the campaign as published is refused by every shard.
        Assert.Equal(TakeOutcome.Closed, (await Stocks.TryTakeAsync(campaign, 4, Now)).Outcome);

        await (await op.PostAsync($"/api/campaigns/{campaign}/resume", null)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.All(await Stocks.FindShardsAsync(campaign, 4), s => Assert.True(s.Open));
        await (await app.Customer(Api.NewId("r")).ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created);

        await (await op.PostAsync($"/api/campaigns/{campaign}/end", null)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.All(await Stocks.FindShardsAsync(campaign, 4), s => Assert.False(s.Open));
        await AssertShardsExactAsync(campaign, 4, issued: 1);
    }

    [Fact]
    public async Task Refused_claims_give_their_unit_back_to_the_shard_it_came_from()
    {
        var campaign = await ShardedCampaignAsync(4, 40, t => t["perCustomerLimit"] = 2);
        var customer = app.Customer(Api.NewId("greedy"));

        var responses = await Task.WhenAll(Enumerable.Range(0, 30).Select(_ => customer.ClaimAsync(campaign)));

        Assert.Equal(2, responses.Count(r => r.StatusCode == HttpStatusCode.Created));
        var shards = await AssertShardsExactAsync(campaign, 4, issued: 2);
        // Each shard issued exactly the coupons that name it: every refused claim's unit went back where it came from.
        var byShard = await app.Services.GetRequiredService<WalletStore>().CountIssuedByShardAsync(campaign, 4);
        Assert.Equal(byShard, shards.Select(s => s.Issued).ToArray());

        // A give-back the SDK sends twice returns one unit, per shard.
        var shard = shards.First(s => s.Issued > 0).ShardNumber;
        Assert.True(await Stocks.GiveBackAsync(campaign, shard, "cpn_twice1", Now));
        Assert.False(await Stocks.GiveBackAsync(campaign, shard, "cpn_twice1", Now));
        Assert.Equal(byShard[shard] - 1, (await Stocks.FindShardAsync(campaign, shard))!.Issued);
    }

    [Fact]
    public async Task A_quantity_increase_is_spread_over_the_shards_exactly_once()
    {
        var campaign = await ShardedCampaignAsync(4, 10); // 3, 3, 2, 2
        await app.Customer(Api.NewId("q")).ClaimAsync(campaign);
        var op = app.Operator();

        await (await op.PutAsync($"/api/campaigns/{campaign}", Api.JsonContent(Api.Terms(Now, t =>
        {
            t["stockShards"] = 4;
            t["totalQuantity"] = 17;
        })))).AssertStatusAsync(HttpStatusCode.OK);
        // The same change applied again (a retry, or the SDK re-sending each patch) finds every shard moved already.
        Assert.False(await Stocks.TryChangeTotalAsync(campaign, 4, 10, 17));

        var shards = await AssertShardsExactAsync(campaign, 4, issued: 1);
        Assert.Equal(new[] { 5, 4, 4, 4 }, shards.Select(s => s.Total).ToArray());
    }

    [Fact]
    public async Task Shard_count_is_validated_and_fixed_once_published()
    {
        foreach (var (shards, quantity) in new[] { (0, 10), (65, 1000), (5, 4) })
        {
            var response = await app.Operator().PostAsync("/api/campaigns", Api.JsonContent(Api.Terms(Now, t =>
            {
                t["stockShards"] = shards;
                t["totalQuantity"] = quantity;
            })));
            var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
            Assert.NotNull(problem["errors"]!["stockShards"]);
        }

        var campaign = await ShardedCampaignAsync(4, 10);
        var change = await app.Operator().PutAsync($"/api/campaigns/{campaign}", Api.JsonContent(Api.Terms(Now, t =>
        {
            t["stockShards"] = 8;
            t["totalQuantity"] = 10;
        })));
        var refusal = await change.AssertProblemAsync(HttpStatusCode.Conflict, "campaign-not-editable");
        Assert.NotNull(refusal["errors"]!["stockShards"]);

        // An unsharded campaign may say stockShards: 1 or leave it out: the same thing.
        var plain = await app.Operator().PublishedCampaignAsync(Api.Terms(Now));
        await (await app.Operator().PutAsync($"/api/campaigns/{plain}", Api.JsonContent(Api.Terms(Now, t => t["stockShards"] = 1))))
            .AssertStatusAsync(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Reconciliation_recounts_each_shard_from_the_coupons_it_issued()
    {
        await using var own = await TestApp.StartAsync(Settings.Get("Cosmos__Database") + "-shards-reconcile");
        var campaign = await own.Operator().PublishedCampaignAsync(Api.Terms(own.Clock.GetUtcNow(), t =>
        {
            t["stockShards"] = 4;
            t["totalQuantity"] = 8;
        }));
        foreach (var i in Enumerable.Range(0, 3))
            await (await own.Customer(Api.NewId($"k{i}")).ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created);
        // Two claims that died after taking a unit (random shards) and before writing their coupon.
        var stocks = own.Services.GetRequiredService<StockStore>();
        Assert.Equal(TakeOutcome.Taken, (await stocks.TryTakeAsync(campaign, 4, own.Clock.GetUtcNow())).Outcome);
        Assert.Equal(TakeOutcome.Taken, (await stocks.TryTakeAsync(campaign, 4, own.Clock.GetUtcNow())).Outcome);
        // And a quantity increase whose stock step crashed: campaign 8 -> 12, shards still at 8.
        var store = own.Services.GetRequiredService<CampaignStore>();
        var read = (await store.FindAsync(campaign))!;
        Assert.NotNull(await store.ReplaceAsync(read with { Terms = read.Terms with { TotalQuantity = 12 } }, read.ETag!));
        Assert.Equal(5, (await stocks.FindShardsAsync(campaign, 4)).Sum(s => s.Issued));

        own.Clock.Advance(TimeSpan.FromMinutes(6));
        await ReconcileStockTests.InvokeTimerAsync(own);

        var shards = await stocks.FindShardsAsync(campaign, 4);
        var byShard = await own.Services.GetRequiredService<WalletStore>().CountIssuedByShardAsync(campaign, 4);
        Assert.Equal(byShard, shards.Select(s => s.Issued).ToArray());
        Assert.Equal(3, byShard.Sum());
        Assert.All(shards, s => Assert.Equal((StockSharding.Share(12, 4, s.ShardNumber), true), (s.Issued + s.Remaining, s.Open)));
    }

    [Fact]
    public async Task The_expiry_timer_ends_a_sharded_campaign_as_sold_out_only_once_every_shard_is_empty()
    {
        await using var own = await TestApp.StartAsync($"{Settings.Get("Cosmos__Database")}-shards-expiry-{Guid.NewGuid():N}"[..60]);
        var campaign = await own.Operator().PublishedCampaignAsync(Api.Terms(own.Clock.GetUtcNow(), t =>
        {
            t["stockShards"] = 4;
            t["totalQuantity"] = 4;
        }));
        foreach (var i in Enumerable.Range(0, 3))
            await (await own.Customer(Api.NewId($"e{i}")).ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created);

        own.Clock.Advance(TimeSpan.FromMinutes(10)); // three shards empty and quiet, one with a unit
        var open = await own.InvokeTimerAsync("ExpireCoupons");
        Assert.Equal(0, (int)open["ReturnValue"]!["CampaignsClosed"]!);
        await (await own.Customer(Api.NewId("last")).ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created);

        own.Clock.Advance(TimeSpan.FromMinutes(10));
        var closed = await own.InvokeTimerAsync("ExpireCoupons");
        Assert.Equal(1, (int)closed["ReturnValue"]!["CampaignsClosed"]!);
        var view = await (await own.Operator().GetAsync($"/api/campaigns/{campaign}")).ReadJsonAsync();
        Assert.Equal(("ended", "sold_out"), ((string?)view["status"], (string?)view["endReason"]));
        Assert.All(await own.Services.GetRequiredService<StockStore>().FindShardsAsync(campaign, 4), s => Assert.False(s.Open));
    }

    /// <summary>Every shard exists, holds its own issued + remaining = total and never goes negative; returns them.</summary>
    private async Task<List<Stock>> AssertShardsExactAsync(string campaign, int count, int? issued = null)
    {
        var shards = await Stocks.FindShardsAsync(campaign, count);
        Assert.Equal(Enumerable.Range(0, count), shards.Select(s => s.ShardNumber));
        Assert.All(shards, s =>
        {
            Assert.Equal(s.Total, s.Issued + s.Remaining);
            Assert.True(s.Remaining >= 0 && s.Issued >= 0, $"{s.CampaignId}: remaining {s.Remaining}, issued {s.Issued}");
            Assert.Equal((campaign, count), (s.ForCampaign, s.Shards));
        });
        if (issued is { } expected) Assert.Equal(expected, shards.Sum(s => s.Issued));
        return shards;
    }

    /// <summary>Empties one shard as if its units had all been claimed (issued = total, remaining = 0).</summary>
    private async Task DrainShardAsync(string campaign, int shard)
    {
        var stock = (await Stocks.FindShardAsync(campaign, shard))!;
        await app.Services.GetRequiredService<Database>().GetContainer("stock").PatchItemAsync<Stock>(Stock.DocumentId,
            new PartitionKey(StockSharding.Key(campaign, shard)),
            [PatchOperation.Set("/remaining", 0), PatchOperation.Set("/issued", stock.Total), PatchOperation.Set("/lastClaimAt", Now)]);
    }
}
