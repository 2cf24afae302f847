using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Tests.Support;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The emulator launcher (scripts/cosmos-emulator.js) fixes gaps of the npm Cosmos emulator that our
/// correctness depends on, and with the test rig (<see cref="AzureStrictness"/>) refuses what Azure Cosmos DB
/// refuses and the npm emulator accepts. These tests pin the behaviour we rely on, as real Cosmos DB shows it.
/// </summary>
public sealed class EmulatorFidelityTests(TestApp app) : IClassFixture<TestApp>
{
    private sealed record Doc(string id, string pk, int n, string label);

    private Container Container => app.Services.GetRequiredService<CosmosClient>().GetContainer(app.Database, "stock");

    [Fact]
    public async Task Reading_a_missing_document_is_404()
    {
        var error = await Assert.ThrowsAsync<CosmosException>(() => Container.ReadItemAsync<Doc>("nope", new PartitionKey(Guid.NewGuid().ToString())));
        Assert.Equal(HttpStatusCode.NotFound, error.StatusCode);
    }

    [Fact]
    public async Task Every_database_of_a_run_answers_queries_as_resource_ids_never_hold_a_slash()
    {
        // The emulator numbers databases in order; in plain base64 every 64th one's resource id held a "/", and the
        // SDK's requests by resource id (a query's partition key ranges) for it answered 404. 64 in a row meet one.
        using var cosmos = TestCosmos.Client();
        for (var i = 0; i < 64; i++)
        {
            var database = (await cosmos.CreateDatabaseAsync($"fidelity-rid-{Guid.NewGuid():N}")).Database;
            try
            {
                var container = (await database.CreateContainerAsync("c", "/pk")).Container;
                var properties = (await container.ReadContainerAsync()).Resource;
                Assert.DoesNotContain('/', properties.SelfLink.Split('/', StringSplitOptions.RemoveEmptyEntries)[1]);
                await container.CreateItemAsync(new Doc("d", "p", i, "x"), new PartitionKey("p"));
                using var iterator = container.GetItemQueryIterator<Doc>(new QueryDefinition("SELECT * FROM c WHERE c.pk = 'p'"),
                    requestOptions: new QueryRequestOptions { PartitionKey = new PartitionKey("p"), EnableOptimisticDirectExecution = true });
                Assert.Equal(i, Assert.Single(await iterator.ReadNextAsync()).n);
            }
            finally
            {
                await database.DeleteAsync();
            }
        }
    }

    [Fact]
    public async Task A_query_with_a_partition_key_reads_that_partition_only()
    {
        // The npm emulator ignored the key and answered every partition's matches: a list scoped by its key alone
        // (no filter on the key) would have shown other campaigns' documents locally and never in Azure.
        var label = Guid.NewGuid().ToString("N");
        var mine = Guid.NewGuid().ToString("N");
        var theirs = Guid.NewGuid().ToString("N");
        await Container.CreateItemAsync(new { id = "a", campaignId = mine, label }, new PartitionKey(mine));
        await Container.CreateItemAsync(new { id = "a", campaignId = theirs, label }, new PartitionKey(theirs));
        await Container.CreateItemAsync(new { id = "b", campaignId = theirs, label }, new PartitionKey(theirs));

        async Task<List<string>> QueryAsync(QueryRequestOptions options)
        {
            using var iterator = Container.GetItemQueryIterator<JsonObject>(
                new QueryDefinition("SELECT * FROM c WHERE c.label = @label").WithParameter("@label", label), requestOptions: options);
            var found = new List<string>();
            while (iterator.HasMoreResults)
                found.AddRange((await iterator.ReadNextAsync()).Select(d => (string)d["campaignId"]! + "/" + (string)d["id"]!));
            return found;
        }

        Assert.Equal([$"{mine}/a"], await QueryAsync(new QueryRequestOptions { PartitionKey = new PartitionKey(mine) }));
        Assert.Equal([$"{theirs}/a", $"{theirs}/b"], (await QueryAsync(new QueryRequestOptions { PartitionKey = new PartitionKey(theirs), MaxItemCount = 1 })).Order());
        // Across partitions (as the app asks for them: optimistic direct execution): every match.
        Assert.Equal(3, (await QueryAsync(new QueryRequestOptions { EnableOptimisticDirectExecution = true })).Count);
    }

    [Fact]
    public async Task A_write_into_a_missing_container_is_404()
    {
        var missing = app.Services.GetRequiredService<CosmosClient>().GetContainer(app.Database, "no-such-container");
        var error = await Assert.ThrowsAsync<CosmosException>(() => missing.CreateItemAsync(new { id = "x", pk = "p" }, new PartitionKey("p")));
        Assert.Equal(HttpStatusCode.NotFound, error.StatusCode);
    }

    [Fact]
    public async Task A_patch_filter_sees_only_the_target_document_and_keeps_string_case()
    {
        // Two documents with the same id in two partitions (like every campaign's "stock" counter).
        var empty = Guid.NewGuid().ToString();
        var full = Guid.NewGuid().ToString();
        await Container.CreateItemAsync(new { id = "same", campaignId = empty, remaining = 0, label = "Upper" }, new PartitionKey(empty));
        await Container.CreateItemAsync(new { id = "same", campaignId = full, remaining = 5, label = "Upper" }, new PartitionKey(full));

        var soldOut = await Assert.ThrowsAsync<CosmosException>(() => Container.PatchItemAsync<object>("same", new PartitionKey(empty),
            [PatchOperation.Increment("/remaining", -1)], new PatchItemRequestOptions { FilterPredicate = "FROM c WHERE c.remaining > 0" }));
        Assert.Equal(HttpStatusCode.PreconditionFailed, soldOut.StatusCode);

        var wrongCase = await Assert.ThrowsAsync<CosmosException>(() => Container.PatchItemAsync<object>("same", new PartitionKey(full),
            [PatchOperation.Increment("/remaining", -1)], new PatchItemRequestOptions { FilterPredicate = "FROM c WHERE c.label = \"upper\"" }));
        Assert.Equal(HttpStatusCode.PreconditionFailed, wrongCase.StatusCode);

        var ok = await Container.PatchItemAsync<object>("same", new PartitionKey(full),
            [PatchOperation.Increment("/remaining", -1)], new PatchItemRequestOptions { FilterPredicate = "FROM c WHERE c.label = \"Upper\" AND c.remaining > 0" });
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task A_write_that_asks_for_no_content_gets_none_but_keeps_its_etag()
    {
        var pk = Guid.NewGuid().ToString();
        var response = await Container.CreateItemAsync(new { id = "minimal", campaignId = pk, remaining = 1 }, new PartitionKey(pk),
            new ItemRequestOptions { EnableContentResponseOnWrite = false });

        Assert.Null(response.Resource);
        Assert.False(string.IsNullOrEmpty(response.ETag));
        var read = await Container.ReadItemAsync<object>("minimal", new PartitionKey(pk));
        Assert.Equal(read.ETag, response.ETag);
    }

    // ---- What Azure Cosmos DB refuses (docs/cosmos-limits.md) ----

    private const int TwoMegabytes = 2 * 1024 * 1024;

    private static async Task<List<T>> QueryAsync<T>(Container container, string sql, string partitionKey)
    {
        var results = new List<T>();
        using var iterator = container.GetItemQueryIterator<T>(new QueryDefinition(sql),
            requestOptions: new QueryRequestOptions { PartitionKey = new PartitionKey(partitionKey) });
        while (iterator.HasMoreResults)
            results.AddRange(await iterator.ReadNextAsync());
        return results;
    }

    private static async Task AssertRefusedAsync(HttpStatusCode status, Func<Task> send)
    {
        var error = await Assert.ThrowsAsync<CosmosException>(send);
        Assert.Equal(status, error.StatusCode);
    }

    private async Task<string> CounterAsync(int left = 5)
    {
        var pk = Guid.NewGuid().ToString();
        await Container.CreateItemAsync(new { id = "budget", campaignId = pk, left, remaining = 1 }, new PartitionKey(pk));
        return pk;
    }

    [Theory]
    [InlineData("left")]
    [InlineData("value")]
    [InlineData("right")]
    [InlineData("order")]
    public async Task A_query_naming_a_reserved_word_property_with_a_dot_is_refused_and_brackets_are_accepted(string word)
    {
        var pk = Guid.NewGuid().ToString();
        await Container.CreateItemAsync(new Dictionary<string, object> { ["id"] = "doc", ["campaignId"] = pk, [word] = 5 }, new PartitionKey(pk));

        await AssertRefusedAsync(HttpStatusCode.BadRequest, () => QueryAsync<object>(Container, $"SELECT * FROM c WHERE c.{word} >= 5 AND c.campaignId = '{pk}'", pk));

        Assert.Single(await QueryAsync<object>(Container, $"SELECT * FROM c WHERE c[\"{word}\"] >= 5 AND c.campaignId = '{pk}'", pk));
    }

    [Fact]
    public async Task A_patch_filter_naming_a_reserved_word_property_with_a_dot_is_refused_and_brackets_are_accepted()
    {
        var pk = await CounterAsync();

        await AssertRefusedAsync(HttpStatusCode.BadRequest, () => Container.PatchItemAsync<object>("budget", new PartitionKey(pk),
            [PatchOperation.Increment("/left", -1)], new PatchItemRequestOptions { FilterPredicate = "FROM c WHERE c.left >= 1" }));

        var ok = await Container.PatchItemAsync<JsonObject>("budget", new PartitionKey(pk),
            [PatchOperation.Increment("/left", -1)], new PatchItemRequestOptions { FilterPredicate = "FROM c WHERE c[\"left\"] >= 1" });
        Assert.Equal(4, (int)ok.Resource["left"]!);
    }

    [Theory]
    [InlineData("c.remaining > 0")]
    [InlineData("WHERE c.remaining > 0")]
    [InlineData("SELECT * FROM c WHERE c.remaining > 0")]
    public async Task A_patch_filter_that_does_not_start_with_FROM_is_refused(string predicate)
    {
        var pk = await CounterAsync();

        await AssertRefusedAsync(HttpStatusCode.BadRequest, () => Container.PatchItemAsync<object>("budget", new PartitionKey(pk),
            [PatchOperation.Increment("/remaining", -1)], new PatchItemRequestOptions { FilterPredicate = predicate }));

        var read = await Container.ReadItemAsync<JsonObject>("budget", new PartitionKey(pk));
        Assert.Equal(1, (int)read.Resource["remaining"]!);
    }

    [Theory]
    [InlineData("SELECT * FROM c WHERE")]
    [InlineData("SELECT * FROM c WHERE c.remaining >")]
    [InlineData("SELECT * FROM c WHERE c.remaining > 0 AND")]
    public async Task An_unparsable_query_is_refused_with_a_syntax_error(string sql)
    {
        var pk = await CounterAsync();

        var error = await Assert.ThrowsAsync<CosmosException>(() => QueryAsync<object>(Container, sql, pk));

        Assert.Equal(HttpStatusCode.BadRequest, error.StatusCode);
        Assert.Contains("SC1001", error.Message);
    }

    [Fact]
    public async Task An_item_over_2_MB_is_refused_with_413_on_create_replace_and_upsert()
    {
        var pk = Guid.NewGuid().ToString();
        var key = new PartitionKey(pk);
        var big = new { id = "big", campaignId = pk, blob = new string('x', TwoMegabytes) };
        var small = new { id = "big", campaignId = pk, blob = new string('x', TwoMegabytes - 1024) };

        await AssertRefusedAsync(HttpStatusCode.RequestEntityTooLarge, () => Container.CreateItemAsync(big, key));
        await AssertRefusedAsync(HttpStatusCode.RequestEntityTooLarge, () => Container.UpsertItemAsync(big, key));
        await Container.CreateItemAsync(small, key, new ItemRequestOptions { EnableContentResponseOnWrite = false });
        await AssertRefusedAsync(HttpStatusCode.RequestEntityTooLarge, () => Container.ReplaceItemAsync(big, "big", key));
    }

    [Fact]
    public async Task A_patch_that_would_grow_an_item_past_2_MB_is_refused_with_413_and_changes_nothing()
    {
        var pk = Guid.NewGuid().ToString();
        var key = new PartitionKey(pk);
        await Container.CreateItemAsync(new { id = "growing", campaignId = pk, n = 1, blob = new string('x', TwoMegabytes / 2) }, key,
            new ItemRequestOptions { EnableContentResponseOnWrite = false });

        await AssertRefusedAsync(HttpStatusCode.RequestEntityTooLarge, () => Container.PatchItemAsync<object>("growing", key,
            [PatchOperation.Increment("/n", 1), PatchOperation.Set("/more", new string('y', TwoMegabytes / 2 + 1024))]));

        var read = await Container.ReadItemAsync<JsonObject>("growing", key);
        Assert.Equal(1, (int)read.Resource["n"]!);
        Assert.False(read.Resource.ContainsKey("more"));
        var small = await Container.PatchItemAsync<JsonObject>("growing", key, [PatchOperation.Set("/more", "y")]);
        Assert.Equal("y", (string)small.Resource["more"]!);
    }

    [Fact]
    public async Task A_patch_of_11_operations_is_refused_and_10_are_accepted()
    {
        var pk = await CounterAsync();
        PatchOperation[] Operations(int count) => Enumerable.Range(0, count).Select(i => PatchOperation.Set($"/p{i}", i)).ToArray();

        await AssertRefusedAsync(HttpStatusCode.BadRequest, () => Container.PatchItemAsync<object>("budget", new PartitionKey(pk), Operations(11)));

        var ok = await Container.PatchItemAsync<JsonObject>("budget", new PartitionKey(pk), Operations(10));
        Assert.Equal(9, (int)ok.Resource["p9"]!);
        Assert.False(ok.Resource.ContainsKey("p10"));
    }

    [Theory]
    [InlineData("a/b")]
    [InlineData("a\\b")]
    [InlineData("a?b")]
    [InlineData("a#b")]
    [InlineData(null)] // 256 characters
    public async Task An_invalid_id_is_refused(string? id)
    {
        var pk = Guid.NewGuid().ToString();
        id ??= new string('i', 256);

        await AssertRefusedAsync(HttpStatusCode.BadRequest, () => Container.CreateItemAsync(new { id, campaignId = pk }, new PartitionKey(pk)));
        await AssertRefusedAsync(HttpStatusCode.BadRequest, () => Container.UpsertItemAsync(new { id, campaignId = pk }, new PartitionKey(pk)));

        var longest = new string('i', 255);
        var ok = await Container.CreateItemAsync(new { id = longest, campaignId = pk }, new PartitionKey(pk));
        Assert.Equal(HttpStatusCode.Created, ok.StatusCode);
    }

    [Fact]
    public async Task A_number_beyond_2_to_the_53_is_refused_on_write_and_in_a_patch()
    {
        var pk = Guid.NewGuid().ToString();
        var key = new PartitionKey(pk);
        const long largestExact = 9007199254740991; // 2^53 - 1
        // The app's own serializer refuses such numbers before they leave (NumberLimitsTests); a client with the
        // SDK's default serializer sends them, to show that the launcher refuses them too.
        using var plain = new CosmosClient(Settings.Get("Cosmos__Endpoint"), Settings.Get("Cosmos__Key"),
            new CosmosClientOptions { ConnectionMode = ConnectionMode.Gateway, LimitToEndpoint = true, CustomHandlers = { new AzureStrictness() } });
        var container = plain.GetContainer(app.Database, "stock");

        await AssertRefusedAsync(HttpStatusCode.BadRequest, () => container.CreateItemAsync(new { id = "n", campaignId = pk, n = largestExact + 2 }, key));
        await AssertRefusedAsync(HttpStatusCode.BadRequest, () => container.CreateItemAsync(new { id = "n", campaignId = pk, n = -(largestExact + 2) }, key));

        await container.CreateItemAsync(new { id = "n", campaignId = pk, n = largestExact, label = "99999999999999999999" }, key);
        await AssertRefusedAsync(HttpStatusCode.BadRequest, () => container.PatchItemAsync<object>("n", key, [PatchOperation.Set("/m", long.MaxValue)]));
        var read = await Container.ReadItemAsync<JsonObject>("n", key);
        Assert.Equal(largestExact, (long)read.Resource["n"]!);
        Assert.False(read.Resource.ContainsKey("m"));
    }

    [Fact]
    public async Task An_item_ttl_Azure_refuses_is_refused_on_write_and_in_a_patch_and_valid_ones_are_kept()
    {
        var pk = Guid.NewGuid().ToString();
        var key = new PartitionKey(pk);
        // The app's serializer never writes a null; the SDK's default one does, as another client could.
        using var plain = new CosmosClient(Settings.Get("Cosmos__Endpoint"), Settings.Get("Cosmos__Key"),
            new CosmosClientOptions { ConnectionMode = ConnectionMode.Gateway, LimitToEndpoint = true, CustomHandlers = { new AzureStrictness() } });
        var container = plain.GetContainer(app.Database, "due");

        // Cosmos DB takes -1 or 1 to 2^31 - 1 seconds; anything else is 400, null included (leave "ttl" out instead).
        object?[] refused = [0, -2, 1.5, "60", null, 2147483648L, true];
        foreach (var ttl in refused)
            await AssertRefusedAsync(HttpStatusCode.BadRequest, () => container.UpsertItemAsync(new { id = "t", bucket = pk, ttl }, key));
        foreach (var ttl in new[] { -1, 1, 2147483647 })
            Assert.Equal(ttl, (int)(await container.UpsertItemAsync(new { id = "t", bucket = pk, ttl }, key)).Resource.ttl);

        await AssertRefusedAsync(HttpStatusCode.BadRequest, () => container.PatchItemAsync<object>("t", key, [PatchOperation.Set("/ttl", 0)]));
        await AssertRefusedAsync(HttpStatusCode.BadRequest, () => container.PatchItemAsync<object>("t", key, [PatchOperation.Set<int?>("/ttl", null)]));
        await container.PatchItemAsync<object>("t", key, [PatchOperation.Set("/done", true), PatchOperation.Set("/ttl", 60)]);
        var read = await Container.Database.GetContainer("due").ReadItemAsync<JsonObject>("t", key);
        Assert.Equal(60, (int)read.Resource["ttl"]!);
        // The emulator has no time to live: the item stays readable after its ttl (docs/local-emulators.md).
    }

    [Fact]
    public async Task A_budgeted_coupon_lock_reserves_its_discount_under_the_strict_rig()
    {
        // The budget patch once filtered on c.left: LEFT is reserved, so Azure answered 400 and every budgeted lock failed.
        var now = app.Clock.GetUtcNow();
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(now, t =>
        {
            t["amountOff"] = 2000;
            t["budget"] = 5000;
        }));
        var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);

        await (await app.OrderSystem().LockAsync(Api.NewId("o"), customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);

        var budget = (await app.Services.GetRequiredService<StockStore>().FindBudgetAsync(campaign))!;
        Assert.Equal((3000, 2000), (budget.Left, budget.Reserved));
    }
}
