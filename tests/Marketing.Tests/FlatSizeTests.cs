using System.Net;
using System.Text.Json;
using Marketing.Functions.Hosting;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Xunit;
using Xunit.Abstractions;

namespace Marketing.Tests;

/// <summary>
/// Issue 11: no document grows with the business. A proportional run of the distribution programme (5,000 paid orders,
/// a fifth of them refunded, 100 versions of the commission rules, one promoter with thousands of entries paid out in
/// two batches) and the largest settlement record, payout line, payout part and rules version measured after the first
/// 10 % and at the end: the same, give or take the digits of a count. (The campaign budget document is measured with
/// the budget's own shape.) Own database: the release and the payout read everything in it.
/// </summary>
public sealed class FlatSizeTests(ITestOutputHelper output)
{
    private const int Orders = 5000;
    private const int PerRound = 50; // orders between two versions of the rules: 100 versions
    private static readonly TimeSpan Holding = TimeSpan.FromDays(7); // Commissions:HoldingDays in the test settings

    private sealed record Sizes(int Records, int LargestRecord, int LargestLine, int LargestPart, int Versions, int LargestVersion, long PaidEntries);

    [Fact]
    public async Task The_largest_settlement_record_payout_line_payout_part_and_rules_version_are_as_large_after_5000_orders_as_after_500()
    {
        // Its batches pay thousands of orders' commissions at once: above the default payout approval threshold, so raised
        // to the maximum here (what is measured is the documents' size, not the approval).
        await using var app = await TestApp.StartAsync($"{Settings.Get("Cosmos__Database")}-flat-{Guid.NewGuid():N}",
            b => b.UseSetting("Approvals:PayoutThreshold", Limits.MaxMoney.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        var promoter = Api.NewId("p");
        var code = await app.RegisterPromoterAsync(promoter);
        var buyers = Enumerable.Range(0, 20).Select(i => Api.NewId("b")).ToArray();
        foreach (var buyer in buyers)
            await (await app.VisitAsync(buyer, code)).AssertStatusAsync(HttpStatusCode.OK);
        string[] categories = ["books", "toys", "electronics", "food", "giftcards"];

        // Order i: 1 line, or 3 every tenth order; a fifth are partly refunded before the holding period ends, every
        // tenth twice. The pattern repeats every 10 orders, so any record is as large as its like in the first 10 %.
        async Task SettleOrderAsync(int i)
        {
            var at = app.Clock.GetUtcNow();
            var orderId = $"o-{i:D5}";
            var lines = Enumerable.Range(1, i % 10 == 0 ? 3 : 1)
                .Select(l => Distribution.Line($"l{l}", categories[(i + l) % categories.Length], 10_000 + 1_000 * l)).ToArray();
            var buyer = buyers[i % buyers.Length];
            Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("paid", orderId, buyer, at, lines)));
            if (i % 5 == 0)
                Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("refunded", orderId, buyer, at, Distribution.Line("l1", "books", 2_500))));
            if (i % 10 == 0)
                Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("refunded", orderId, buyer, at,
                    Distribution.Line("l1", "books", 2_500), Distribution.Line("l2", "toys", 4_000))));
        }

        var batches = 0;
        async Task<Sizes> ReleasePayAndMeasureAsync()
        {
            app.Clock.Advance(Holding + TimeSpan.FromMinutes(1));
            var report = (await app.InvokeTimerAsync("ReleaseCommissions"))["ReturnValue"]!;
            Assert.Empty(report["Failures"]!.AsArray());
            var batch = $"flat-{++batches}";
            var paid = await app.PayoutAsync(batch, 1);
            Assert.Equal(HttpStatusCode.Created, paid.StatusCode);
            Assert.Equal(0, (await app.BalanceAsync(promoter))["available"]!.GetValue<long>());

            var database = app.Services.GetRequiredService<Database>();
            var records = await SizesAsync(database.GetContainer("settlements"));
            var payouts = await SizesAsync(database.GetContainer("payouts"));
            var versions = await SizesAsync(database.GetContainer("commission-rule-versions"));
            var sizes = new Sizes(records.Count, records.Values.Max(), payouts.Where(p => p.Key.StartsWith("line:", StringComparison.Ordinal)).Max(p => p.Value),
                payouts.Where(p => p.Key.StartsWith("part:", StringComparison.Ordinal)).Max(p => p.Value), versions.Count, versions.Values.Max(),
                (await app.CommissionsAsync(promoter, "paid")).Count);
            output.WriteLine($"after batch {batch}: {sizes}");
            return sizes;
        }

        Sizes? tenth = null;
        for (var round = 0; round < Orders / PerRound; round++)
        {
            app.Clock.Advance(TimeSpan.FromMinutes(1));
            await app.SetRulesAsync(1000 + round, 0, new Dictionary<string, int> { ["books"] = 1500 + round, ["toys"] = 800 + round });
            await Parallel.ForEachAsync(Enumerable.Range(round * PerRound, PerRound), new ParallelOptions { MaxDegreeOfParallelism = 8 },
                async (i, _) => await SettleOrderAsync(i));
            if ((round + 1) * PerRound == Orders / 10) tenth = await ReleasePayAndMeasureAsync();
        }
        var end = await ReleasePayAndMeasureAsync();

        Assert.Equal((Orders / 10, Orders), (tenth!.Records, end.Records));
        Assert.Equal((Orders / 10 / PerRound, Orders / PerRound), (tenth.Versions, end.Versions));
        Assert.True(end.PaidEntries > 5000, $"{end.PaidEntries} entries paid"); // a promoter with thousands of entries
        // Flat: the largest of each is the same size at the end as after the first 10 %, but for the digits of a count or a sum.
        Assert.InRange(end.LargestRecord, tenth.LargestRecord - 16, tenth.LargestRecord + 16);
        Assert.InRange(end.LargestLine, tenth.LargestLine - 16, tenth.LargestLine + 16);
        Assert.InRange(end.LargestPart, tenth.LargestPart - 16, tenth.LargestPart + 16);
        Assert.InRange(end.LargestVersion, tenth.LargestVersion - 16, tenth.LargestVersion + 16);
        // And small: a record of this shape a few KB, a line under 1 KB, a part at most its 500 ids.
        Assert.InRange(end.LargestRecord, 1, 8 * 1024);
        Assert.InRange(end.LargestLine, 1, 1024);
        Assert.InRange(end.LargestPart, 1, 500 * 64);
        Assert.InRange(end.LargestVersion, 1, 2 * 1024);
    }

    /// <summary>Every document of the container as "id|_rid" → its JSON's size in bytes (as stored, system properties included).</summary>
    private static async Task<Dictionary<string, int>> SizesAsync(Container container)
    {
        var sizes = new Dictionary<string, int>();
        using var iterator = container.GetItemQueryStreamIterator(new QueryDefinition("SELECT * FROM c"),
            requestOptions: new QueryRequestOptions { EnableOptimisticDirectExecution = true });
        while (iterator.HasMoreResults)
        {
            using var page = await iterator.ReadNextAsync();
            page.EnsureSuccessStatusCode();
            using var json = await JsonDocument.ParseAsync(page.Content);
            foreach (var document in json.RootElement.GetProperty("Documents").EnumerateArray())
                sizes[document.GetProperty("id").GetString() + "|" + document.GetProperty("_rid").GetString()] // ids repeat across partitions
                    = System.Text.Encoding.UTF8.GetByteCount(document.GetRawText());
        }
        return sizes;
    }
}
