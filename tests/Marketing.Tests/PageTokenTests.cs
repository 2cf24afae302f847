using System.Buffers.Text;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Marketing.Functions.Commissions;
using Marketing.Functions.Hosting;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// Page tokens are opaque and bound to their list: anything else is 400 invalid-page-token on every paged route
/// (raw Cosmos JSON such as {} used to crash the SDK into a 500). Pages are filled across short Cosmos pages,
/// and a round trip through the tokens returns every item exactly once.
/// </summary>
public sealed class PageTokenTests(TestApp app) : IClassFixture<TestApp>
{
    /// <summary>The paged routes, each with a caller allowed to read it.</summary>
    public static TheoryData<string> Routes() => ["campaigns", "commissions"];

    /// <summary>Garbage a client might send: Cosmos continuation shapes, junk, and damaged or foreign tokens of ours.</summary>
    public static TheoryData<string, string> GarbageTokens()
    {
        var data = new TheoryData<string, string>();
        foreach (var route in new[] { "campaigns", "commissions" })
            foreach (var token in new[]
                     {
                         "{}", "[]", "null", "{\"token\":null}", "abc", "\"\"", "0", " ", "",
                         "[{\"token\":\"+RID:gAABAIAAAAEDAAAAAAAAAA==#RT:1#TRC:2\",\"range\":{\"min\":\"\",\"max\":\"FF\"}}]",
                         "v1.", "v1.***", "v1.AAAA", "v2." + Base64Url.EncodeToString(new byte[20]), "V1.AAAAAAAAAAAAAAAA",
                         "v1." + Base64Url.EncodeToString(Encoding.UTF8.GetBytes("12345678{}")), // right shape, not this list's
                         "v1." + new string('A', 5000),
                     })
                data.Add(route, token);
        return data;
    }

    [Theory]
    [MemberData(nameof(GarbageTokens))]
    public async Task Every_garbage_token_is_400_invalid_page_token_naming_the_parameter(string route, string token)
    {
        var (client, path) = await ReaderAsync(route);

        var response = await client.GetAsync($"{path}?limit=1&continuationToken={Uri.EscapeDataString(token)}");

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "invalid-page-token");
        Assert.NotNull(problem["errors"]!["continuationToken"]);
    }

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task A_token_of_this_list_whose_continuation_Cosmos_rejects_is_400_not_500(string route)
    {
        var (client, path) = await ReaderAsync(route, items: 2);
        var real = await NextTokenAsync(client, path + "?limit=1");
        var scope = Base64Url.DecodeFromChars(real.AsSpan(3))[..8];

        // Our envelope around what clients used to send raw: it passes our checks, then the SDK or Cosmos refuses it
        // (the SDK threw ArgumentNullException for some of these on the ledger's query: a 500 before).
        foreach (var continuation in new[] { "{}", "[]", "null", "{\"token\":null}", "abc", "{\"OptimisticDirectExecutionToken\":{}}" })
        {
            var forged = "v1." + Base64Url.EncodeToString([.. scope, .. Encoding.UTF8.GetBytes(continuation)]);
            var response = await client.GetAsync($"{path}?limit=1&continuationToken={Uri.EscapeDataString(forged)}");
            await response.AssertProblemAsync(HttpStatusCode.BadRequest, "invalid-page-token");
        }
    }

    [Fact]
    public async Task A_token_only_fits_the_list_and_filter_it_came_from()
    {
        var op = app.Operator();
        await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var drafts = await NextTokenAsync(op, "/api/campaigns?status=draft&limit=1");

        await (await op.GetAsync("/api/campaigns?status=paused&limit=1&continuationToken=" + Uri.EscapeDataString(drafts)))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "invalid-page-token");
        await (await op.GetAsync("/api/campaigns?limit=1&continuationToken=" + Uri.EscapeDataString(drafts)))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "invalid-page-token");
        var (promoter, commissions) = await ReaderAsync("commissions");
        await (await promoter.GetAsync(commissions + "?limit=1&continuationToken=" + Uri.EscapeDataString(drafts)))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "invalid-page-token");
        // The same filter goes on, with any page size.
        await (await op.GetAsync("/api/campaigns?status=draft&limit=5&continuationToken=" + Uri.EscapeDataString(drafts)))
            .AssertStatusAsync(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Commission_pages_round_trip_every_entry_once_newest_first()
    {
        var promoterId = Api.NewId("p");
        await app.RegisterPromoterAsync(promoterId);
        var written = await WriteEntriesAsync(promoterId, 7);

        var pages = await PagesAsync(app.Customer(promoterId), "/api/promoters/me/commissions", limit: 3);

        Assert.Equal([3, 3, 1], pages.Select(p => p.Count));
        var ids = pages.SelectMany(p => p).Select(e => (string)e["id"]!).ToList();
        Assert.Equal(written.AsEnumerable().Reverse(), ids); // newest first, each once
    }

    [Fact]
    public async Task Campaign_pages_round_trip_every_campaign_once()
    {
        var op = app.Operator();
        var created = new List<string>();
        for (var i = 0; i < 5; i++) created.Add(await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow())));

        var pages = await PagesAsync(op, "/api/campaigns", limit: 3);

        var ids = pages.SelectMany(p => p).Select(c => (string)c["id"]!).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.All(created, id => Assert.Contains(id, ids));
        Assert.All(pages.SkipLast(1), p => Assert.Equal(3, p.Count)); // full pages until the last
    }

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task Short_pages_from_Cosmos_are_followed_until_the_page_is_full(string route)
    {
        // Cosmos DB may answer fewer items than asked while more exist (its time and size budgets per page). Here
        // every query read is made to return at most one item; the API still answers full pages.
        var shortPages = new OneItemPerRead();
        using var factory = app.WithWebHostBuilder(b => b.ConfigureServices(s => s.AddSingleton<RequestHandler>(shortPages)));
        var (reader, path) = await ReaderAsync(route, items: 5);
        var client = factory.CreateClient();
        client.DefaultRequestHeaders.Authorization = reader.DefaultRequestHeaders.Authorization;

        var first = await (await client.GetAsync(path + "?limit=4")).AssertStatusAsync(HttpStatusCode.OK);

        Assert.Equal(4, first["items"]!.AsArray().Count);
        Assert.True(shortPages.Capped >= 3, $"{shortPages.Capped} reads were cut short"); // asked 4, 3, 2: one each
        Assert.NotNull((string?)first["continuationToken"]);
    }

    /// <summary>A client for the paged route and its path; for commissions, a new promoter with <paramref name="items"/> entries.</summary>
    private async Task<(HttpClient Client, string Path)> ReaderAsync(string route, int items = 0)
    {
        if (route == "campaigns")
        {
            var op = app.Operator();
            for (var i = 0; i < items; i++) await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
            return (op, "/api/campaigns");
        }
        var promoterId = Api.NewId("p");
        await app.RegisterPromoterAsync(promoterId);
        await WriteEntriesAsync(promoterId, items);
        return (app.Customer(promoterId), "/api/promoters/me/commissions");
    }

    /// <summary>Writes <paramref name="count"/> ledger entries for the promoter, a minute apart; returns their ids, oldest first.</summary>
    private async Task<List<string>> WriteEntriesAsync(string promoterId, int count)
    {
        var ledger = app.Services.GetRequiredService<LedgerStore>();
        var start = app.Clock.GetUtcNow();
        var ids = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var id = $"{promoterId}-e{i}";
            await ledger.CreateIfAbsentAsync(new LedgerEntry
            {
                Id = id, PromoterId = promoterId, OrderId = "o" + i, EventId = "ev" + i, LineId = "l1", Category = "toys", Level = 1,
                Kind = LedgerEntry.Commission, Amount = 100 + i, Currency = "CNY", Status = LedgerStatus.Pending,
                AvailableAt = start.AddDays(7), CreatedAt = start.AddMinutes(i),
            }, CancellationToken.None);
            ids.Add(id);
        }
        return ids;
    }

    private static async Task<string> NextTokenAsync(HttpClient client, string url)
    {
        var page = await (await client.GetAsync(url)).AssertStatusAsync(HttpStatusCode.OK);
        var token = (string?)page["continuationToken"];
        Assert.NotNull(token);
        Assert.StartsWith("v1.", token);
        Assert.DoesNotContain("{", token);
        return token;
    }

    private static async Task<List<List<JsonNode>>> PagesAsync(HttpClient client, string path, int limit)
    {
        var pages = new List<List<JsonNode>>();
        string? token = null;
        do
        {
            var url = $"{path}?limit={limit}" + (token is null ? "" : "&continuationToken=" + Uri.EscapeDataString(token));
            var page = await (await client.GetAsync(url)).AssertStatusAsync(HttpStatusCode.OK);
            pages.Add([.. page["items"]!.AsArray().Select(i => i!)]);
            token = (string?)page["continuationToken"];
            Assert.True(pages.Count < 1000, "the pages never end");
        } while (token is not null);
        return pages;
    }

    /// <summary>Makes every query read ask Cosmos DB for one item, whatever the SDK asked: short pages on demand.</summary>
    private sealed class OneItemPerRead : RequestHandler
    {
        private int capped;
        public int Capped => capped;

        public override Task<ResponseMessage> SendAsync(RequestMessage request, CancellationToken cancellationToken)
        {
            if (request.Headers["x-ms-max-item-count"] is { } max && int.TryParse(max, out var asked) && asked > 1)
            {
                request.Headers["x-ms-max-item-count"] = "1";
                Interlocked.Increment(ref capped);
            }
            return base.SendAsync(request, cancellationToken);
        }
    }
}
