using System.Net;
using Marketing.Tests.Support;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The emulator launcher (scripts/cosmos-emulator.js) fixes gaps of the npm Cosmos emulator that our
/// correctness depends on. These tests pin the behaviour we rely on, as real Cosmos DB shows it.
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
}
