using System.Net;
using System.Text.Json.Nodes;
using Marketing.Tests.Support;
using Xunit;

namespace Marketing.Tests;

/// <summary>GET /api/payouts: the batches, newest first, a page at a time, for operators, finance and admins only.</summary>
public sealed partial class PayoutTests
{
    [Fact]
    public async Task The_batch_list_is_newest_first_paged_and_for_operators_finance_and_admins_only()
    {
        await using var app = await StartAsync("list");
        await app.SetRulesAsync(1000, 0);
        var promoter = await ReferrerAsync(app);
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        var paidAt = app.Clock.GetUtcNow();
        await PaidAsync(app, promoter.Buyer, Api.NewId("o"), paidAt, Distribution.Line("l1", "books", 12000));
        app.Clock.Set(paidAt + Holding);
        await ReleaseAsync(app);
        // Three batches a minute apart; the first pays the promoter (1 line, 1200), the others find nothing left.
        string[] ids = [Api.NewId("first"), Api.NewId("second"), Api.NewId("third")];
        foreach (var id in ids)
        {
            await RunBatchAsync(app, id, 100);
            app.Clock.Advance(TimeSpan.FromMinutes(1));
        }

        // Pages of two: the newest two, then the first batch and the end of the list.
        var first = await (await app.Operator().GetAsync("/api/payouts?limit=2")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal([ids[2], ids[1]], BatchIds(first));
        var token = (string)first["continuationToken"]!;
        var second = await (await app.As("fiona", "finance").GetAsync("/api/payouts?limit=2&continuationToken=" + Uri.EscapeDataString(token)))
            .AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal([ids[0]], BatchIds(second));
        Assert.Null((string?)second["continuationToken"]);
        var paid = second["items"]![0]!;
        Assert.Equal(("completed", 100L, "CNY", 1200L, 1, "olivia"),
            ((string)paid["state"]!, (long)paid["minimum"]!, (string)paid["currency"]!, (long)paid["total"]!, (int)paid["lines"]!, (string)paid["createdBy"]!));
        var empty = first["items"]![0]!;
        Assert.Equal(("completed", 0L, 0), ((string)empty["state"]!, (long)empty["total"]!, (int)empty["lines"]!));
        // Admins too, in one default page; finance reads a batch's lines as well.
        var all = await (await app.As("ada", "admin").GetAsync("/api/payouts")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal([ids[2], ids[1], ids[0]], BatchIds(all));
        var view = await (await app.As("fiona", "finance").GetAsync($"/api/payouts/{ids[0]}")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal([(promoter.Id, 1200L, 1, "paid")], Lines(view));

        // Nobody else: not approvers, customers, promoters or the order system; and no token at all is 401.
        foreach (var role in new[] { "approver", "customer", "promoter", "order_system" })
            await (await app.As("someone", role).GetAsync("/api/payouts")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await app.As("someone", "approver").GetAsync($"/api/payouts/{ids[0]}")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await app.Anonymous().GetAsync("/api/payouts")).AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");

        // Bad input: a limit out of range; a token of another list, not a token, or a damaged one.
        foreach (var limit in new[] { "0", "101", "-1", "ten", "1.5", "99999999999" })
        {
            var problem = await (await app.Operator().GetAsync("/api/payouts?limit=" + limit)).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
            Assert.NotNull(problem["errors"]!["limit"]);
        }
        foreach (var bad in new[] { "v1.AAAAAAAAAAAAAAAA", "{}", "v1.!!!" })
            await (await app.Operator().GetAsync("/api/payouts?continuationToken=" + Uri.EscapeDataString(bad)))
                .AssertProblemAsync(HttpStatusCode.BadRequest, "invalid-page-token");
    }

    private static string[] BatchIds(JsonNode page) => [.. page["items"]!.AsArray().Select(i => (string)i!["batchId"]!)];
}
