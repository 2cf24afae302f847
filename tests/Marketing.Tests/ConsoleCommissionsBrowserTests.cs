using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Marketing.Tests.Support;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The commissions pages in a real browser (docs/console.md, "Commissions"; console/e2e/commissions.mjs): over a database
/// of its own, set up over the API (rules, a promoter and a bound buyer, a paid order settled through SettleCommission's
/// payload, its commission released, a malformed order event quarantined), an operator sees the rules, has a bad version
/// refused with its field errors inline, saves a good one, runs a payout batch and reads the quarantine; finance sees the
/// batch and downloads its CSV from Blob storage (Azurite) by following the page's link.
/// </summary>
public sealed class ConsoleCommissionsBrowserTests
{
    private static readonly TimeSpan Holding = TimeSpan.FromDays(7); // Commissions__HoldingDays in the test settings

    [Fact]
    public async Task Operators_see_rules_run_a_batch_and_read_the_quarantine_and_finance_downloads_the_batch_csv()
    {
        await using var app = await StatsRig.StartAsync("commissions");
        await app.SetRulesAsync(1000, 300);
        var promoter = Api.NewId("p");
        var buyer = Api.NewId("b");
        var code = await app.RegisterPromoterAsync(promoter);
        await (await app.VisitAsync(buyer, code)).AssertStatusAsync(HttpStatusCode.OK);
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        var paidAt = app.Clock.GetUtcNow();
        // 10 % of 120.00: 12.00 for the promoter, available once released.
        Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("paid", Api.NewId("o"), buyer, paidAt, Distribution.Line("l1", "books", 12000))));
        var quarantineDay = paidAt.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var messageId = Api.NewId("m-bad");
        const string malformed = "{\"eventId\": \"ev-1\", \"type\": \"paid\", <script>alert(1)</script>";
        var quarantined = await (await app.DeliverAsync(malformed, messageId)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("quarantined", (string?)quarantined["ReturnValue"]!["Outcome"]);
        app.Clock.Set(paidAt + Holding);
        var release = (await app.InvokeTimerAsync("ReleaseCommissions"))["ReturnValue"]!;
        Assert.Equal(1, (int)release["EntriesReleased"]!);

        await using var site = await ConsoleSite.StartAsync(app);
        var batchId = Api.NewId("week");
        var walk = await site.RunAsync("commissions.mjs", batchId, quarantineDay, "ops-browser", "fiona-browser");

        // Rules: the version in force, as percentages and basis points; the operator sees the three sections.
        Assert.Equal(["佣金规则", "结算批次", "隔离的订单事件"], Strings(walk["tabs"]));
        var inForce = Facts(walk["inForce"]);
        Assert.Equal("10% (1,000 bp)", inForce["一级"]);
        Assert.Equal("3% (300 bp)", inForce["二级"]);
        Assert.Equal(1, (int)walk["versionsBefore"]!);
        // The refused version: both field errors at once, each under its field, the field marked invalid.
        Assert.Contains(Strings(walk["level1Errors"]), e => e.Contains("10000"));
        Assert.Contains(Strings(walk["categoryErrors"]), e => e.StartsWith("books:", StringComparison.Ordinal));
        Assert.Equal("true", (string?)walk["level1Invalid"]);
        Assert.Equal(1, (int)walk["expectedRefusals"]!);
        // The corrected one saved: two versions, the new one in force over the API too.
        Assert.Equal(0, (int)walk["level1ErrorsAfter"]!);
        Assert.Equal(2, (int)walk["versionsAfter"]!);
        var rules = await (await app.Operator().GetAsync("/api/commission-rules")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(2, rules["versions"]!.AsArray().Count);
        var newest = rules["versions"]!.AsArray()[^1]!;
        Assert.Equal((1200, 500, "ops-browser"), ((int)newest["level1"]!["defaultBps"]!, (int)newest["level1"]!["categoryBps"]!["books"]!, (string)newest["setBy"]!));

        // The batch the operator ran (minimum 1.00 = 100 minor units): completed, one line of 12.00 for the promoter.
        Assert.Equal($"/console/commissions/payouts/{batchId}", (string)walk["batchUrl"]!);
        var batch = await (await app.Operator().GetAsync($"/api/payouts/{batchId}")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(("completed", 100L, 1200L, "ops-browser"), ((string)batch["state"]!, (long)batch["minimum"]!, (long)batch["total"]!, (string)batch["createdBy"]!));
        var facts = Facts(walk["batchFacts"]);
        Assert.Equal("已完成", facts["状态"]);
        Assert.Equal("¥12.00", facts["合计"]);
        Assert.Equal("¥1.00", facts["最低余额"]);
        Assert.Equal([[promoter, "¥12.00", "1", "已支付"]], walk["lineRows"]!.AsArray().Select(r => Strings(r)).ToArray());
        Assert.Equal(0, (int)walk["operatorCsvButtons"]!); // the CSV link is finance's (and admins')

        // The quarantine: today's (UTC) by default, then the day of the malformed event, shown as text (no markup).
        Assert.Equal(DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), (string)walk["defaultDay"]!);
        var entry = Assert.Single(walk["quarantined"]!.AsArray())!;
        Assert.Contains("not a valid order event", (string)entry["reason"]!);
        Assert.Equal(messageId, Facts(entry["facts"])["消息 ID"]);
        Assert.Equal(malformed, (string)entry["body"]!);
        Assert.Equal(0, (int)entry["markup"]!);

        // Finance: the payout batches only, the batch listed, its CSV downloaded through the link to Blob storage.
        Assert.Equal(0, (int)walk["financeTabs"]!);
        Assert.Equal(0, (int)walk["financeRunForms"]!);
        var listed = walk["financeBatches"]!.AsArray().Single(b => (string)b!["id"]! == batchId)!;
        Assert.Equal("¥12.00", Facts(listed["facts"])["合计"]);
        Assert.Equal("1", Facts(listed["facts"])["结算推广员数"]);
        Assert.StartsWith($"下载 payout-{batchId}.csv", (string)walk["csvLinkText"]!);
        Assert.DoesNotContain(site.BaseUrl, (string)walk["csvHref"]!); // Blob storage's own address, not the app's
        Assert.Equal($"payout-{batchId}.csv", (string)walk["csvFileName"]!);
        var csv = (string)walk["csv"]!;
        Assert.Equal(new Dictionary<string, long> { [promoter] = 1200 }, Distribution.ParseCsv(csv));
        Assert.Equal(await ApiCsvAsync(app, batchId), csv);
        Assert.Equal("Completed", Facts(walk["englishFacts"])["Status"]);

        ConsoleSite.AssertAccessible(walk, screenshots: 7);
    }

    private static async Task<string> ApiCsvAsync(TestApp app, string batchId)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, $"/api/payouts/{batchId}");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/csv"));
        var response = await app.Operator().SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    private static Dictionary<string, string> Facts(JsonNode? pairs)
        => pairs!.AsArray().ToDictionary(p => (string)p![0]!, p => (string)p![1]!);

    private static string[] Strings(JsonNode? array) => ConsoleSite.Strings(array);
}
