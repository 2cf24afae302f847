using System.Net;
using Marketing.Functions.Hosting;
using Marketing.Tests.Support;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// Cosmos DB index paths follow Azure's grammar (the emulator is laxer): the validator knows it, every path
/// the code declares follows it, and provisioning refuses a path that does not.
/// </summary>
public sealed class IndexPathTests(TestApp app) : IClassFixture<TestApp>
{
    [Theory]
    [InlineData("/*")]
    [InlineData("/status/?")]
    [InlineData("/terms/categories/*")]
    [InlineData("/coupons/[]/response/?")]
    [InlineData("/coupons/[]/categories/*")]
    [InlineData("/tags/[]/?")]
    [InlineData("/a/[]/b/[]/*")]
    [InlineData("/\"_etag\"/?")]
    [InlineData("/_etag/?")]
    [InlineData("/\"order-id\"/?")]
    public void Valid_paths_pass(string path)
    {
        Assert.Null(IndexPath.Problem(path));
    }

    [Theory]
    [InlineData("/coupons/*/response/?", "* may only end a path")]
    [InlineData("/coupons/*/categories/*", "* may only end a path")]
    [InlineData("/coupons/response", "must end with /? (a scalar) or /* (everything below)")]
    [InlineData("/coupons/response/", "must end with")]
    [InlineData("/coupons/0/state", "must end with")]
    [InlineData("coupons/?", "must start with /")]
    [InlineData("", "must start with /")]
    [InlineData("/?", "the root is an object, not a scalar")]
    [InlineData("/[]/id/?", "the root is an object, not an array")]
    [InlineData("//id/?", "empty segment")]
    [InlineData("/order-id/?", "must be a plain name")]
    [InlineData("/\"open/?", "must be a plain name")]
    [InlineData("/a b/?", "must be a plain name")]
    public void Invalid_paths_are_refused_with_the_reason(string path, string reason)
    {
        Assert.Contains(reason, IndexPath.Problem(path));
    }

    [Fact]
    public void Every_index_path_the_code_declares_is_valid()
    {
        var invalid = Platform.Containers.SelectMany(c => c.ExcludedPaths.Select(p => (c.Name, Path: p, Problem: IndexPath.Problem(p))))
            .Where(x => x.Problem is not null).Select(x => $"{x.Name}: {x.Path} {x.Problem}");
        Assert.Empty(invalid);
    }

    [Fact]
    public async Task Provisioning_refuses_an_invalid_index_path_before_creating_anything()
    {
        var client = app.Services.GetRequiredService<CosmosClient>();
        var database = "never-" + Guid.NewGuid().ToString("N");
        ContainerSpec[] containers = [new("fine", "/id", ["/\"_etag\"/?"]), new("bad", "/id", ["/coupons/*/response/?", "/x"])];

        var error = await Assert.ThrowsAsync<ArgumentException>(() => CosmosExtensions.ProvisionAsync(client, database, containers));

        Assert.Contains("bad: /coupons/*/response/? * may only end a path", error.Message);
        Assert.Contains("bad: /x must end with", error.Message); // every bad path at once
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var read = await Assert.ThrowsAsync<CosmosException>(() => client.GetDatabase(database).ReadAsync(cancellationToken: cts.Token));
        Assert.Equal(HttpStatusCode.NotFound, read.StatusCode);
    }
}
