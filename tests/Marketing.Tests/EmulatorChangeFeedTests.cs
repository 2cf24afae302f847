using System.Net;
using System.Text.Json.Nodes;
using Marketing.Tests.Support;
using Microsoft.Azure.Cosmos;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// A database of its own for tests that read whole containers (the change feed), dropped at the end.
/// Each test makes its own container in it, so parallel tests never see each other's writes.
/// </summary>
public sealed class EmulatorDatabase : IAsyncLifetime
{
    public CosmosClient Client { get; } = TestCosmos.Client();
    public Database Database { get; private set; } = null!;

    public async Task InitializeAsync()
        => Database = (await Client.CreateDatabaseAsync($"fidelity-feed-{Guid.NewGuid():N}")).Database;

    public async Task DisposeAsync()
    {
        await Database.DeleteAsync();
        Client.Dispose();
    }

    /// <summary>A new empty container partitioned on /pk.</summary>
    public async Task<Container> ContainerAsync()
        => (await Database.CreateContainerAsync($"c-{Guid.NewGuid():N}", "/pk")).Container;
}

/// <summary>
/// The change feed as Azure Cosmos DB serves it to the SDK's pull model in latest-version mode, which the stats
/// timer relies on: each changed document once, at its latest version, in the order of the writes (LSN), pages of at
/// most the page size hint, 304 when nothing is newer, and a continuation that resumes exactly after the last change
/// returned, also in a new iterator. The npm emulator answered the whole container with ETag "1" and then 304 forever,
/// so none of this held before scripts/cosmos-emulator.js served the feed from its own per-write sequence.
/// </summary>
public sealed class EmulatorChangeFeedTests(EmulatorDatabase cosmos) : IClassFixture<EmulatorDatabase>
{
    private sealed record Doc(string id, string pk, int n);

    private static ChangeFeedRequestOptions PageOf(int size) => new() { PageSizeHint = size };

    /// <summary>Reads pages until the feed answers 304 Not Modified; returns the pages and that last response.</summary>
    private static async Task<(List<List<JsonObject>> Pages, FeedResponse<JsonObject> NotModified)> ReadToEndAsync(
        FeedIterator<JsonObject> iterator)
    {
        var pages = new List<List<JsonObject>>();
        for (var i = 0; i < 50; i++)
        {
            Assert.True(iterator.HasMoreResults); // a change feed never ends: it waits for new changes
            var response = await iterator.ReadNextAsync();
            if (response.StatusCode == HttpStatusCode.NotModified)
                return (pages, response);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            pages.Add(response.ToList());
        }
        throw new InvalidOperationException("The change feed never answered 304 Not Modified.");
    }

    private static string Key(JsonObject doc) => (string)doc["pk"]! + "/" + (string)doc["id"]!;

    [Fact]
    public async Task From_the_beginning_every_document_appears_once_at_its_latest_version_in_write_order_without_deletes()
    {
        var container = await cosmos.ContainerAsync();
        await container.CreateItemAsync(new Doc("a1", "A", 0), new PartitionKey("A"));
        await container.CreateItemAsync(new Doc("a2", "A", 0), new PartitionKey("A"));
        await container.CreateItemAsync(new Doc("b1", "B", 0), new PartitionKey("B"));
        await container.CreateItemAsync(new Doc("c1", "C", 0), new PartitionKey("C"));
        await container.CreateItemAsync(new Doc("gone", "C", 0), new PartitionKey("C"));
        for (var n = 1; n <= 3; n++)
            await container.ReplaceItemAsync(new Doc("a1", "A", n), "a1", new PartitionKey("A"));
        await container.PatchItemAsync<Doc>("b1", new PartitionKey("B"), [PatchOperation.Increment("/n", 7)]);
        await container.DeleteItemAsync<Doc>("gone", new PartitionKey("C"));

        // The emulator reports one feed range (one physical partition) covering every key.
        var range = Assert.Single(await container.GetFeedRangesAsync());
        using var iterator = container.GetChangeFeedIterator<JsonObject>(ChangeFeedStartFrom.Beginning(range), ChangeFeedMode.LatestVersion);
        var (pages, _) = await ReadToEndAsync(iterator);
        var changes = pages.SelectMany(p => p).ToList();

        // Last write first-to-last: a2 and c1 were not written again, a1 was replaced, then b1 patched; "gone" was deleted.
        Assert.Equal(["A/a2", "C/c1", "A/a1", "B/b1"], changes.Select(Key));
        Assert.Equal(3, (int)changes.Single(d => (string)d["id"]! == "a1")["n"]!);
        Assert.Equal(7, (int)changes.Single(d => (string)d["id"]! == "b1")["n"]!);
        var lsns = changes.Select(d => (long)d["_lsn"]!).ToList();
        Assert.Equal(lsns.Order(), lsns);
        Assert.Equal(lsns.Count, lsns.Distinct().Count());
    }

    [Fact]
    public async Task Pages_hold_at_most_the_page_size_hint_and_the_feed_then_answers_not_modified()
    {
        var container = await cosmos.ContainerAsync();
        for (var i = 0; i < 5; i++)
            await container.CreateItemAsync(new Doc($"d{i}", $"p{i % 2}", i), new PartitionKey($"p{i % 2}"));

        using var iterator = container.GetChangeFeedIterator<JsonObject>(ChangeFeedStartFrom.Beginning(), ChangeFeedMode.LatestVersion, PageOf(2));
        var (pages, notModified) = await ReadToEndAsync(iterator);

        Assert.Equal([2, 2, 1], pages.Select(p => p.Count));
        Assert.Equal(["d0", "d1", "d2", "d3", "d4"], pages.SelectMany(p => p).Select(d => (string)d["id"]!));
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
        Assert.Empty(notModified);
        Assert.True(iterator.HasMoreResults);
    }

    [Fact]
    public async Task A_saved_continuation_resumes_in_a_new_iterator_with_exactly_the_later_changes()
    {
        var container = await cosmos.ContainerAsync();
        for (var i = 0; i < 3; i++)
            await container.CreateItemAsync(new Doc($"d{i}", "P", i), new PartitionKey("P"));

        // A token saved after the first page resumes with the rest.
        string afterFirstPage;
        using (var first = container.GetChangeFeedIterator<JsonObject>(ChangeFeedStartFrom.Beginning(), ChangeFeedMode.LatestVersion, PageOf(2)))
        {
            var page = await first.ReadNextAsync();
            Assert.Equal(["d0", "d1"], page.Select(d => (string)d["id"]!));
            afterFirstPage = page.ContinuationToken;
        }
        using (var resumed = container.GetChangeFeedIterator<JsonObject>(ChangeFeedStartFrom.ContinuationToken(afterFirstPage), ChangeFeedMode.LatestVersion))
        {
            var (pages, _) = await ReadToEndAsync(resumed);
            Assert.Equal(["d2"], pages.SelectMany(p => p).Select(d => (string)d["id"]!));
        }

        // A token saved at the end (the 304's) sees nothing old; a document changed twice since comes once, at its
        // last version, with the new one after it.
        string atEnd;
        using (var reader = container.GetChangeFeedIterator<JsonObject>(ChangeFeedStartFrom.Beginning(), ChangeFeedMode.LatestVersion))
            atEnd = (await ReadToEndAsync(reader)).NotModified.ContinuationToken;
        await container.ReplaceItemAsync(new Doc("d0", "P", 10), "d0", new PartitionKey("P"));
        await container.ReplaceItemAsync(new Doc("d0", "P", 11), "d0", new PartitionKey("P"));
        await container.CreateItemAsync(new Doc("d3", "P", 3), new PartitionKey("P"));

        using var later = container.GetChangeFeedIterator<JsonObject>(ChangeFeedStartFrom.ContinuationToken(atEnd), ChangeFeedMode.LatestVersion);
        var (laterPages, end) = await ReadToEndAsync(later);
        var changes = laterPages.SelectMany(p => p).ToList();
        Assert.Equal(["d0", "d3"], changes.Select(d => (string)d["id"]!));
        Assert.Equal(11, (int)changes[0]["n"]!);

        // And the token of that read, once more in a new iterator: nothing.
        using var again = container.GetChangeFeedIterator<JsonObject>(ChangeFeedStartFrom.ContinuationToken(end.ContinuationToken), ChangeFeedMode.LatestVersion);
        Assert.Equal(HttpStatusCode.NotModified, (await again.ReadNextAsync()).StatusCode);
    }

    [Fact]
    public async Task Now_reads_only_the_changes_made_after_it()
    {
        var container = await cosmos.ContainerAsync();
        await container.CreateItemAsync(new Doc("before", "P", 0), new PartitionKey("P"));

        using var iterator = container.GetChangeFeedIterator<JsonObject>(ChangeFeedStartFrom.Now(), ChangeFeedMode.LatestVersion);
        Assert.Equal(HttpStatusCode.NotModified, (await iterator.ReadNextAsync()).StatusCode);
        await container.CreateItemAsync(new Doc("after", "P", 0), new PartitionKey("P"));

        var (pages, _) = await ReadToEndAsync(iterator);
        Assert.Equal(["after"], pages.SelectMany(p => p).Select(d => (string)d["id"]!));
    }

    [Fact]
    public async Task A_feed_range_of_one_partition_key_reads_that_partition_only()
    {
        var container = await cosmos.ContainerAsync();
        await container.CreateItemAsync(new Doc("x", "mine", 0), new PartitionKey("mine"));
        await container.CreateItemAsync(new Doc("x", "theirs", 0), new PartitionKey("theirs"));
        await container.CreateItemAsync(new Doc("y", "mine", 0), new PartitionKey("mine"));
        await container.CreateItemAsync(new Doc("y", "theirs", 0), new PartitionKey("theirs"));

        using var iterator = container.GetChangeFeedIterator<JsonObject>(
            ChangeFeedStartFrom.Beginning(FeedRange.FromPartitionKey(new PartitionKey("mine"))), ChangeFeedMode.LatestVersion, PageOf(1));
        var (pages, notModified) = await ReadToEndAsync(iterator);
        Assert.Equal(["mine/x", "mine/y"], pages.SelectMany(p => p).Select(Key));

        // Its continuation stays on that partition: a change elsewhere is not news to it.
        await container.CreateItemAsync(new Doc("z", "theirs", 0), new PartitionKey("theirs"));
        using var resumed = container.GetChangeFeedIterator<JsonObject>(ChangeFeedStartFrom.ContinuationToken(notModified.ContinuationToken), ChangeFeedMode.LatestVersion);
        Assert.Equal(HttpStatusCode.NotModified, (await resumed.ReadNextAsync()).StatusCode);
    }

    [Fact]
    public async Task The_all_versions_and_deletes_mode_is_refused_rather_than_answered_as_latest_version()
    {
        // The emulator keeps no past versions and no deletes: it says so (400) instead of quietly serving latest versions.
        var container = await cosmos.ContainerAsync();
        await container.CreateItemAsync(new Doc("d", "P", 0), new PartitionKey("P"));

        using var iterator = container.GetChangeFeedIterator<JsonObject>(ChangeFeedStartFrom.Now(), ChangeFeedMode.AllVersionsAndDeletes);
        var error = await Assert.ThrowsAsync<CosmosException>(() => iterator.ReadNextAsync());
        Assert.Equal(HttpStatusCode.BadRequest, error.StatusCode);
    }
}
