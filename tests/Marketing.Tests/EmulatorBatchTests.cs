using System.Net;
using System.Text.Json.Nodes;
using Marketing.Tests.Support;
using Microsoft.Azure.Cosmos;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// Transactional batches as Azure Cosmos DB runs them: all operations or none, the failed one's status with 424 for
/// the others, patch operations with their filter, If-Match per operation, at most 100 operations, one partition key.
/// The npm emulator could not read the .NET SDK's batch at all (HybridRow, answered 500), and its JSON batch stopped at
/// a failure without undoing what came before it; scripts/cosmos-emulator.js now runs them like Cosmos DB.
/// </summary>
public sealed class EmulatorBatchTests(EmulatorDatabase cosmos) : IClassFixture<EmulatorDatabase>
{
    private sealed record Doc(string id, string pk, int n);

    private static async Task<HttpStatusCode?> ReadStatusAsync(Container container, string id, string pk)
    {
        try
        {
            return (await container.ReadItemAsync<Doc>(id, new PartitionKey(pk))).StatusCode;
        }
        catch (CosmosException e)
        {
            return e.StatusCode;
        }
    }

    private static async Task<List<string>> FeedIdsAsync(Container container)
    {
        using var iterator = container.GetChangeFeedIterator<JsonObject>(ChangeFeedStartFrom.Beginning(), ChangeFeedMode.LatestVersion);
        var ids = new List<string>();
        for (var response = await iterator.ReadNextAsync(); response.StatusCode == HttpStatusCode.OK; response = await iterator.ReadNextAsync())
            ids.AddRange(response.Select(d => (string)d["id"]!));
        return ids;
    }

    [Fact]
    public async Task A_batch_whose_second_create_conflicts_leaves_neither_document_and_no_change()
    {
        var container = await cosmos.ContainerAsync();
        await container.CreateItemAsync(new Doc("taken", "P", 1), new PartitionKey("P"));

        using var response = await container.CreateTransactionalBatch(new PartitionKey("P"))
            .CreateItem(new Doc("fresh", "P", 1))
            .CreateItem(new Doc("taken", "P", 2))
            .ExecuteAsync();

        Assert.False(response.IsSuccessStatusCode);
        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Equal([HttpStatusCode.FailedDependency, HttpStatusCode.Conflict], response.Select(r => r.StatusCode));
        Assert.Equal(HttpStatusCode.NotFound, await ReadStatusAsync(container, "fresh", "P"));
        Assert.Equal(1, (await container.ReadItemAsync<Doc>("taken", new PartitionKey("P"))).Resource.n);
        Assert.Equal(["taken"], await FeedIdsAsync(container));
    }

    [Fact]
    public async Task A_stale_if_match_fails_the_batch_with_412_and_undoes_the_operations_before_it()
    {
        var container = await cosmos.ContainerAsync();
        var read = await container.CreateItemAsync(new Doc("order", "P", 1), new PartitionKey("P"));
        await container.CreateItemAsync(new Doc("counter", "P", 10), new PartitionKey("P"));
        await container.CreateItemAsync(new Doc("old", "P", 0), new PartitionKey("P"));
        await container.ReplaceItemAsync(new Doc("order", "P", 2), "order", new PartitionKey("P")); // someone else wrote it
        var counterBefore = await container.ReadItemAsync<Doc>("counter", new PartitionKey("P"));

        using var response = await container.CreateTransactionalBatch(new PartitionKey("P"))
            .PatchItem("counter", [PatchOperation.Increment("/n", 5)])
            .DeleteItem("old")
            .UpsertItem(new Doc("new", "P", 1))
            .ReplaceItem("order", new Doc("order", "P", 3), new TransactionalBatchItemRequestOptions { IfMatchEtag = read.ETag })
            .ExecuteAsync();

        Assert.Equal(HttpStatusCode.PreconditionFailed, response.StatusCode);
        Assert.Equal([HttpStatusCode.FailedDependency, HttpStatusCode.FailedDependency, HttpStatusCode.FailedDependency, HttpStatusCode.PreconditionFailed],
            response.Select(r => r.StatusCode));
        var counter = await container.ReadItemAsync<Doc>("counter", new PartitionKey("P"));
        Assert.Equal(10, counter.Resource.n);
        Assert.Equal(counterBefore.ETag, counter.ETag); // the very version that was there, not a copy
        Assert.Equal(HttpStatusCode.OK, await ReadStatusAsync(container, "old", "P"));
        Assert.Equal(HttpStatusCode.NotFound, await ReadStatusAsync(container, "new", "P"));
        Assert.Equal(2, (await container.ReadItemAsync<Doc>("order", new PartitionKey("P"))).Resource.n);
    }

    [Fact]
    public async Task A_batch_applies_patches_with_their_filter_and_if_match_and_its_writes_reach_the_change_feed()
    {
        var container = await cosmos.ContainerAsync();
        var stats = await container.CreateItemAsync(new Doc("stats", "P", 1), new PartitionKey("P"));

        using var response = await container.CreateTransactionalBatch(new PartitionKey("P"))
            .PatchItem("stats", [PatchOperation.Increment("/n", 2), PatchOperation.Set("/label", "folded")],
                new TransactionalBatchPatchItemRequestOptions { IfMatchEtag = stats.ETag, FilterPredicate = "FROM c WHERE c.n = 1" })
            .CreateItem(new Doc("checkpoint", "P", 7))
            .ReadItem("stats")
            .ExecuteAsync();

        Assert.True(response.IsSuccessStatusCode, response.ErrorMessage);
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.Created, HttpStatusCode.OK], response.Select(r => r.StatusCode));
        var patched = response.GetOperationResultAtIndex<JsonObject>(2).Resource;
        Assert.Equal(3, (int)patched["n"]!);
        Assert.Equal("folded", (string)patched["label"]!);
        Assert.False(string.IsNullOrEmpty(response[0].ETag));
        Assert.Equal(["checkpoint", "stats"], (await FeedIdsAsync(container)).Order(StringComparer.Ordinal));
        // One transaction, one LSN, as in Cosmos DB: the feed never splits a batch's writes across pages, even at one
        // item per page, so a reader's continuation never falls between them.
        using (var onePerPage = container.GetChangeFeedIterator<JsonObject>(ChangeFeedStartFrom.Beginning(), ChangeFeedMode.LatestVersion,
            new ChangeFeedRequestOptions { PageSizeHint = 1 }))
        {
            var page = await onePerPage.ReadNextAsync();
            Assert.Equal(["checkpoint", "stats"], page.Select(d => (string)d["id"]!).Order(StringComparer.Ordinal));
            Assert.Single(page.Select(d => (long)d["_lsn"]!).Distinct());
        }

        // The filter no longer holds (n is 3): the batch fails with 412 and changes nothing.
        using var refused = await container.CreateTransactionalBatch(new PartitionKey("P"))
            .CreateItem(new Doc("second", "P", 0))
            .PatchItem("stats", [PatchOperation.Increment("/n", 2)], new TransactionalBatchPatchItemRequestOptions { FilterPredicate = "FROM c WHERE c.n = 1" })
            .ExecuteAsync();
        Assert.Equal(HttpStatusCode.PreconditionFailed, refused.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, await ReadStatusAsync(container, "second", "P"));
        Assert.Equal(3, (await container.ReadItemAsync<Doc>("stats", new PartitionKey("P"))).Resource.n);
    }

    [Fact]
    public async Task A_batch_of_101_operations_is_refused_with_400_and_one_of_100_is_applied()
    {
        var container = await cosmos.ContainerAsync();
        TransactionalBatch Batch(int count)
        {
            var batch = container.CreateTransactionalBatch(new PartitionKey("P"));
            for (var i = 0; i < count; i++)
                batch.CreateItem(new Doc($"{count}-{i}", "P", i));
            return batch;
        }

        using var tooMany = await Batch(101).ExecuteAsync();
        Assert.Equal(HttpStatusCode.BadRequest, tooMany.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, await ReadStatusAsync(container, "101-0", "P"));

        using var hundred = await Batch(100).ExecuteAsync();
        Assert.True(hundred.IsSuccessStatusCode, hundred.ErrorMessage);
        Assert.Equal(100, hundred.Count);
        Assert.Equal(HttpStatusCode.OK, await ReadStatusAsync(container, "100-99", "P"));
    }

    [Fact]
    public async Task Every_operation_of_a_batch_must_have_the_batch_partition_key()
    {
        var container = await cosmos.ContainerAsync();

        using var response = await container.CreateTransactionalBatch(new PartitionKey("P"))
            .CreateItem(new Doc("here", "P", 0))
            .CreateItem(new Doc("elsewhere", "Q", 0))
            .ExecuteAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, await ReadStatusAsync(container, "here", "P"));
        Assert.Equal(HttpStatusCode.NotFound, await ReadStatusAsync(container, "elsewhere", "Q"));
    }

    [Fact]
    public async Task A_patch_filter_inside_a_batch_is_held_to_Azure_SQL_like_a_single_patch()
    {
        // The strict rig (AzureStrictness) reads the filters out of the batch body too: c.left is a syntax error in Azure.
        var container = await cosmos.ContainerAsync();
        await container.CreateItemAsync(new { id = "budget", pk = "P", left = 5 }, new PartitionKey("P"));

        using var refused = await container.CreateTransactionalBatch(new PartitionKey("P"))
            .PatchItem("budget", [PatchOperation.Increment("/left", -1)], new TransactionalBatchPatchItemRequestOptions { FilterPredicate = "FROM c WHERE c.left > 0" })
            .ExecuteAsync();
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("SC1001", refused.ErrorMessage);

        using var accepted = await container.CreateTransactionalBatch(new PartitionKey("P"))
            .PatchItem("budget", [PatchOperation.Increment("/left", -1)], new TransactionalBatchPatchItemRequestOptions { FilterPredicate = "FROM c WHERE c[\"left\"] > 0" })
            .ExecuteAsync();
        Assert.True(accepted.IsSuccessStatusCode, accepted.ErrorMessage);
        Assert.Equal(4, (int)(await container.ReadItemAsync<JsonObject>("budget", new PartitionKey("P"))).Resource["left"]!);
    }
}
