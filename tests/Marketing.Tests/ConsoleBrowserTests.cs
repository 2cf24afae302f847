using System.Net;
using System.Text.Json.Nodes;
using Marketing.Tests.Support;
using SkiaSharp;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The operator console in a real browser (docs/console.md, "Tests"): the platform runs as its own process on a loopback
/// port in Development, over a database of its own holding one published campaign, a claim and one AggregateStats run;
/// console/e2e/home.mjs drives Debian's chromium (scripts/test.sh installs it) through playwright-core: local sign-in as an
/// operator, the home page's figures, axe-core on each page, screenshots under artifacts/test-artifacts/console/, and
/// the budgets (gzipped JavaScript of the first page, time to the home page's figures), which scripts/test.sh prints.
/// </summary>
public sealed class ConsoleBrowserTests
{
    [Fact]
    public async Task An_operator_signs_in_locally_and_sees_the_figures_of_the_home_page_accessibly_at_375_px_and_on_a_desktop()
    {
        await using var app = await StatsRig.StartAsync("console");
        var operatorClient = app.Operator();
        var campaign = await operatorClient.PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        await (await app.Customer(Api.NewId("c")).ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created);
        // For the campaigns list and the approval queue: a draft, and a campaign submitted for approval (both by the
        // operator "olivia", its maker), before AggregateStats runs, so the home page counts one approval waiting.
        var draftName = "草稿活动 " + Api.NewId("d");
        var submittedName = "待审批活动 " + Api.NewId("s");
        var draft = await operatorClient.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["name"] = draftName));
        var submitted = await operatorClient.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["name"] = submittedName));
        await (await operatorClient.PostAsync($"/api/campaigns/{submitted}/submit", null)).AssertStatusAsync(HttpStatusCode.OK);
        await app.RunAggregateStatsAsync();
        var overview = await (await operatorClient.GetAsync("/api/stats/overview")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(1, (int)overview["campaignsRunning"]!);
        Assert.Equal(1, (long)overview["today"]!["claims"]!);
        Assert.Equal(1, (long)overview["approvalsWaiting"]!["campaigns"]!);

        await using var site = await ConsoleSite.StartAsync(app);
        var result = await site.RunAsync("home.mjs", "ops-browser");

        // The figures on the page are the overview's, in Chinese (the browser's language), then in English.
        var figures = result["figures"]!.AsArray().ToDictionary(f => (string)f![0]!, f => (string)f![1]!);
        Assert.Equal("1", figures["进行中的活动"]);
        Assert.Equal(overview["endingWithin7Days"]!.ToString(), figures["7 天内结束"]);
        Assert.Equal(overview["budgetBelow5Percent"]!.ToString(), figures["预算剩余不足 5%"]);
        var claims = result["todayRows"]!.AsArray().Single(r => (string)r![0]! == "领取")!;
        Assert.Equal(("1", "0"), ((string)claims[1]!, (string)claims[2]!));
        Assert.StartsWith("数据截至", (string)result["asOf"]!);
        // Approvals waiting, as the overview counted them; an operator gets no link to a queue it may not read.
        Assert.Equal([["待审批活动", "1"], ["待审批预算追加", "0"], ["待审批佣金结算批次", "0"]],
            result["todo"]!.AsArray().Select(r => new[] { (string)r![0]!, (string)r[1]! }).ToArray());
        Assert.Equal(0, (int)result["todoLinks"]!);
        Assert.Equal(["Campaigns running", "Ending within 7 days", "Budget below 5 % left", "Coupons expiring within 24 h"],
            result["englishCards"]!.AsArray().Select(c => (string)c!).ToArray());

        // Accessible: landmarks and one h1, no horizontal scrolling at 375 px, no serious or critical axe violation
        // on any page, and no error in the browser's console.
        Assert.Equal(1, (int)result["landmarks"]!["main"]!);
        Assert.Equal(1, (int)result["landmarks"]!["navigation"]!);
        Assert.Equal(1, (int)result["landmarks"]!["banner"]!);
        Assert.Single(result["headings"]!.AsArray());
        ConsoleSite.AssertAccessible(result, screenshots: 3);

        // The campaigns list and the approval queue (console/e2e/pages.mjs).
        var pages = await site.RunAsync("pages.mjs", draftName, submittedName, "olivia", "avery-browser");
        Assert.Equal("/console/campaigns", (string)pages["campaignsUrl"]!);
        Assert.Contains(draftName, Strings(pages["allNames"]));
        Assert.Contains(submittedName, Strings(pages["allNames"]));
        // Filtered to drafts: the draft, not the submitted one; every status shown is 草稿.
        Assert.Contains(draftName, Strings(pages["draftNames"]));
        Assert.DoesNotContain(submittedName, Strings(pages["draftNames"]));
        Assert.All(Strings(pages["draftStatuses"]), s => Assert.Equal("草稿", s));
        // Four eyes: the maker signed in as an approver cannot decide their own campaign, and is told why.
        Assert.True((bool)pages["ownApproveDisabled"]!);
        Assert.Contains("olivia", (string)pages["ownNote"]!);
        // Another approver sees it with its diff (the name among the changed fields), approves it, and it leaves the queue.
        Assert.Contains(submittedName, Strings(pages["queueTitles"]));
        Assert.Contains(pages["diff"]!.AsArray(), row => (string)row![2]! == submittedName);
        Assert.Contains(pages["facts"]!.AsArray(), f => (string)f![0]! == "申请人" && (string)f[1]! == "olivia");
        Assert.Contains(submittedName, (string)pages["decided"]!);
        Assert.DoesNotContain(submittedName, Strings(pages["queueTitlesAfter"]));
        Assert.DoesNotContain(submittedName, Strings(pages["queueTitlesReloaded"]));
        var approved = await (await operatorClient.GetAsync($"/api/campaigns/{submitted}")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("approved", (string)approved["status"]!);
        Assert.Equal("avery-browser", (string)approved["approval"]!["by"]!);
        var stillDraft = await (await operatorClient.GetAsync($"/api/campaigns/{draft}")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("draft", (string)stillDraft["status"]!);
        Assert.Contains("Draft", Strings(pages["englishStatuses"]));
        ConsoleSite.AssertAccessible(pages, screenshots: 5);

        // The budgets (docs/benchmarks.md): printed by scripts/test.sh from this file.
        var jsGzip = (long)result["jsGzipBytes"]!;
        var toFigures = (long)result["timeToFiguresMs"]!;
        Assert.InRange(jsGzip, 1, 150 * 1024);
        await File.WriteAllTextAsync(Path.Combine(ConsoleSite.ArtifactsFolder, "budgets.txt"),
            $"Console budgets: first page JavaScript {jsGzip / 1024.0:F1} kB gzipped in {(int)result["jsFiles"]!} file(s); "
            + $"home page figures {toFigures} ms after navigation (local run, {result["browser"]})\n");
    }

    [Fact]
    public async Task The_full_walk_an_operator_creates_a_campaign_in_the_form_past_its_inline_errors_an_approver_approves_it_it_is_published_and_its_figures_media_and_audit_show()
    {
        await using var app = await StatsRig.StartAsync("console-walk");
        // The handler runs as its own process on the real clock (links, tokens, "today", the form's default dates): the
        // app's clock, which the claims over the API use, follows it.
        app.Clock.Set(DateTimeOffset.UtcNow);
        var operatorClient = app.Operator();
        // For the list's burn bars: a published campaign with a budget of 100.00, one redemption confirmed (20.00 spent)
        // and one lock open (20.00 reserved).
        var burnName = "预算活动 " + Api.NewId("b");
        var budgeted = await operatorClient.PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => { t["name"] = burnName; t["budget"] = 10000; }));
        var orders = app.OrderSystem();
        var (customer, coupon) = await app.CustomerWithCouponAsync(budgeted);
        var order = Api.NewId("o");
        await (await orders.LockAsync(order, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
        await (await orders.StepAsync(order, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
        (customer, coupon) = await app.CustomerWithCouponAsync(budgeted);
        await (await orders.LockAsync(Api.NewId("o"), customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
        var budget = (await (await operatorClient.GetAsync($"/api/campaigns/{budgeted}")).AssertStatusAsync(HttpStatusCode.OK))["budget"]!;
        // Another campaign, for the name search to leave out.
        var otherName = "其他草稿 " + Api.NewId("o");
        await operatorClient.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["name"] = otherName));
        var catalogBefore = await CatalogAsync(operatorClient);

        await using var site = await ConsoleSite.StartAsync(app);
        var name = "新活动 " + Api.NewId("n");
        var walk = await site.RunAsync("create.mjs", "olga-browser", name);

        // The burn bar shows the API's figures: spent of total, and what is left.
        var burn = walk["burns"]!.AsArray().Single(b => (string)b!["name"]! == burnName)!;
        Assert.Equal(((double)(long)budget["spent"]!, (double)(long)budget["total"]!), ((double)burn["value"]!, (double)burn["max"]!));
        Assert.Equal("预算使用", (string)burn["label"]!);
        Assert.Equal("已用 ¥20.00 / 共 ¥100.00（20%）", (string)burn["text"]!);
        Assert.Equal(burn["text"]!.ToString(), (string)burn["valueText"]!);
        Assert.Equal("¥60.00", (string)burn["left"]!);
        Assert.StartsWith("预算数据截至", (string)burn["asOf"]!);
        Assert.Contains("Asia/Shanghai", (string)burn["asOf"]!);
        // Searched by a piece of its name in upper case: that campaign alone, the other left out.
        Assert.Contains(otherName, Strings(walk["namesBeforeSearch"]));
        Assert.Equal([burnName], Strings(walk["searched"]!["names"]));

        // "New campaign" opens the form; the refused save shows the API's own words next to each field, the inputs marked
        // invalid and described by their error, a summary linking to them, focus on the first; nothing was created.
        Assert.Equal("/console/campaigns/new", (string)walk["newUrl"]!);
        var inline = walk["inline"]!.AsArray().ToDictionary(e => (string)e![0]!, e => (string)e![1]!);
        Assert.Equal("Required, at most 100 characters.", inline["f-name-error"]);
        Assert.Equal("Must be after claimStartsAt.", inline["f-claimEndsAt-error"]);
        Assert.Equal(2, inline.Count);
        var invalid = walk["invalid"]!.AsArray().ToDictionary(e => (string)e![0]!, e => (string)e![1]!);
        Assert.Equal(["f-name", "f-claimEndsAt"], invalid.Keys.ToArray());
        Assert.Contains("f-name-error", invalid["f-name"].Split(' '));
        Assert.Contains("f-claimEndsAt-error", invalid["f-claimEndsAt"].Split(' '));
        Assert.Equal("f-name", (string)walk["focused"]!);
        Assert.Equal(["#f-name", "#f-claimEndsAt"], Strings(walk["summaryLinks"]));
        Assert.Equal("/console/campaigns/new", (string)walk["urlAfterRefusal"]!);

        // Fixed and saved: one campaign more, the one whose page opened; renamed in the edit form, then submitted.
        var id = (string)walk["campaignId"]!;
        Assert.Equal($"/console/campaigns/{id}", (string)walk["campaignUrl"]!);
        var berlin = (string)walk["berlinCampaignId"]!;
        Assert.Equal(["POST /api/campaigns 400", "POST /api/campaigns 201", $"PUT /api/campaigns/{id} 200",
                $"PUT /api/campaigns/{id} 412 (second tab)", $"POST /api/campaigns/{id}/submit 200", "POST /api/campaigns 201"],
            Strings(walk["saves"]));
        // The second tab, loaded before the rename, was refused (If-Match), told so, and reloaded the rename; its change
        // (quantity 200) was not written.
        Assert.Contains("他人修改了此活动", (string)walk["conflict"]!);
        Assert.Equal("100", (string)walk["reloadedQuantity"]!);
        var catalogAfter = await CatalogAsync(operatorClient);
        Assert.Equal(catalogBefore.Append(id).Append(berlin).Order(), catalogAfter.Order());
        Assert.Equal(name, (string)walk["loadedName"]!);
        var created = await (await operatorClient.GetAsync($"/api/campaigns/{id}")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal((string)walk["editedName"]!, (string)created["terms"]!["name"]!);
        Assert.Equal("submitted", (string)created["status"]!);
        Assert.Equal("olga-browser", (string)created["submittedBy"]!);
        Assert.Equal(2, (int)created["revision"]!);
        Assert.Equal("olga-browser", (string)created["createdBy"]!);
        // Money sent in minor units; the claim window entered as local midnight in Asia/Shanghai (UTC+8) is 16:00 UTC.
        Assert.Equal((2000L, 10000L, 100000L, 100), ((long)created["terms"]!["amountOff"]!, (long)created["terms"]!["minimumSpend"]!,
            (long)created["terms"]!["budget"]!, (int)created["terms"]!["totalQuantity"]!));
        Assert.EndsWith("T16:00:00.000Z", (string)created["terms"]!["claimStartsAt"]!);
        Assert.EndsWith("T00:00", (string)walk["loadedStart"]!);
        Assert.Contains("已提交审批", (string)walk["submitted"]!);
        Assert.True((bool)walk["saveDisabledAfterSubmit"]!);
        Assert.Equal(["Basics", "Discount kind", "Channels", "When", "Validity of a claimed coupon", "Quantity and budget", "Expiry reminders", "Reminders to send"],
            Strings(walk["englishLegends"]));
        // Local times in Europe/Berlin across daylight saving: a time the clocks skip is refused by the form (nothing sent);
        // 02:30 on 31 October, which happens twice, is the earlier instant (CEST, 00:30Z); 30 November 00:00 is CET (23:00Z).
        Assert.Equal("This time does not exist in Europe/Berlin (the clocks skip it).", (string)walk["skippedTime"]!);
        Assert.True((bool)walk["skippedSentNothing"]!);
        var inBerlin = (await (await operatorClient.GetAsync($"/api/campaigns/{berlin}")).AssertStatusAsync(HttpStatusCode.OK))["terms"]!;
        Assert.Equal(("Europe/Berlin", "2027-10-31T00:30:00.000Z", "2027-11-29T23:00:00.000Z", 500L),
            ((string)inBerlin["timeZone"]!, (string)inBerlin["claimStartsAt"]!, (string)inBerlin["claimEndsAt"]!, (long)inBerlin["amountOff"]!));
        ConsoleSite.AssertAccessible(walk, screenshots: 6);

        // Then the rest of the walk, on the campaign the form made and submitted.
        await ApproveAndPublishAndSeeFiguresMediaAndAuditAsync(app, site, id, (string)walk["editedName"]!, "olga-browser");
    }

    private static async Task<string[]> CatalogAsync(HttpClient operatorClient)
    {
        var page = await (await operatorClient.GetAsync("/api/campaigns?limit=200")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Null(page["continuationToken"]);
        return [.. page["items"]!.AsArray().Select(i => (string)i!["id"]!)];
    }

    /// <summary>
    /// The issue's walk, from the campaign operator <paramref name="maker"/> made and submitted in the form: approver B
    /// approves it in the queue, the maker publishes it on its page; customers claim and one coupon is redeemed,
    /// AggregateStats runs; then the maker sees the figures on the charts (checked against the stats API), uploads a banner
    /// (a PNG made here) and sees it ready; an admin sees the audit trail (docs/console.md, "The full walk").
    /// </summary>
    private static async Task ApproveAndPublishAndSeeFiguresMediaAndAuditAsync(TestApp app, ConsoleSite site, string campaign, string name, string maker)
    {
        const string approver = "bruno-walk", admin = "ada-walk";
        var operatorA = app.As(maker, "operator");
        // And one approved whose claim window is already over: publishing it is refused (409), on its page.
        var late = await operatorA.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
        {
            t["name"] = "已过期活动 " + Api.NewId("l");
            t["claimStartsAt"] = Api.Instant(app.Clock.GetUtcNow().AddDays(-3));
            t["claimEndsAt"] = Api.Instant(app.Clock.GetUtcNow().AddDays(-1));
        }));
        await operatorA.ApprovedCampaignAsync(late);
        // And one in review that an admin returns for changes on its page.
        var toReturn = await operatorA.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["name"] = "待退回活动 " + Api.NewId("r")));
        app.Clock.Advance(TimeSpan.FromSeconds(1));
        await (await operatorA.PostAsync($"/api/campaigns/{toReturn}/submit", null)).AssertStatusAsync(HttpStatusCode.OK);

        var walk = await site.RunAsync("walk.mjs", "approve-publish", campaign, name, maker, approver, late);
        Assert.Contains(name, (string)walk["decided"]!);
        Assert.Equal("已通过", (string)walk["statusBefore"]!);
        Assert.Contains("发布", Strings(walk["actionsBefore"]));
        Assert.Equal("已发布", (string)walk["statusAfter"]!);
        Assert.Equal(["编辑", "暂停", "结束"], Strings(walk["actionsAfter"]));
        Assert.Contains(walk["terms"]!.AsArray(), r => (string)r![0]! == "预算" && (string)r[1]! == "¥1,000.00");
        var published = await (await operatorA.GetAsync($"/api/campaigns/{campaign}")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("published", (string)published["status"]!);
        Assert.Equal(approver, (string)published["approval"]!["by"]!);
        Assert.Contains("claim window is already over", (string)walk["lateRefusal"]!);
        Assert.Equal("已通过", (string)walk["lateStatus"]!);
        Assert.True(walk["overflowing"] is null, walk["overflowing"]?.ToJsonString()); // what would scroll sideways, named
        ConsoleSite.AssertAccessible(walk, screenshots: 4);

        // Customers claim; one pays an order with the coupon (400.00, 20.00 off); the figures are folded.
        var orders = app.OrderSystem();
        var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
        for (var i = 0; i < 2; i++) await app.CustomerWithCouponAsync(campaign);
        var order = Api.NewId("o");
        await (await orders.LockAsync(order, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
        await (await orders.StepAsync(order, "confirm")).AssertStatusAsync(HttpStatusCode.OK);
        await app.RunAggregateStatsAsync();

        var png = Path.Combine(ConsoleSite.ArtifactsFolder, "walk-banner.png");
        await File.WriteAllBytesAsync(png, Banner(1600, 500));
        var figures = await site.RunAsync("walk.mjs", "figures", campaign, name, maker, admin, png, toReturn);

        // The numbers on the charts are the stats API's (asked of the same handler the browser used).
        using var api = new HttpClient { BaseAddress = new Uri(site.BaseUrl) };
        api.DefaultRequestHeaders.Authorization = operatorA.DefaultRequestHeaders.Authorization;
        var stats = await (await api.GetAsync($"/api/campaigns/{campaign}/stats")).AssertStatusAsync(HttpStatusCode.OK);
        var series = stats["series"]!.AsArray();
        Assert.Equal(3, (long)stats["totals"]!["claims"]!);
        Assert.Equal(2000, (long)stats["totals"]!["discount"]!);
        Assert.Equal(40000, (long)stats["totals"]!["gmv"]!);
        string[][] Rows(string chart) => [.. figures[chart]!.AsArray().Select(r => r!.AsArray().Select(c => (string)c!).ToArray())];
        Assert.Equal(series.Select(p => new[] { (string)p!["day"]!, p["figures"]!["claims"]!.ToString(), p["figures"]!["redemptions"]!.ToString() }), Rows("daily-counts"));
        Assert.Equal(series.Select(p => new[] { (string)p!["day"]!, p["figures"]!["gmv"]!.ToString(), p["figures"]!["discount"]!.ToString() }), Rows("daily-money"));
        // Budget left by day: today's is the live figure, each day before adds back the discount given after it; the
        // projection runs from today's to 0 on the day the API says it runs out.
        var budget = stats["budget"]!;
        Assert.Equal(98_000, (long)budget["left"]!);
        var burn = Rows("burn");
        var today = (string)series[^1]!["day"]!;
        var exhaustsOn = (string)budget["exhaustsOn"]!;
        Assert.Equal([today, "98000", "98000"], burn[^2]);
        Assert.Equal([exhaustsOn, "", "0"], burn[^1]);
        Assert.Equal(["100000", ""], burn[0][1..]); // a week ago, before the redemption: all of it
        Assert.Equal(budget["burnPerDay"]!.ToString(), Value(figures["budget"], "日均消耗（近 7 天）"));
        Assert.Equal(exhaustsOn, Value(figures["budget"], "预计耗尽日期（Asia/Shanghai）"));
        Assert.Equal(3, (int)figures["chartCanvases"]!); // budget burn, daily counts, daily money
        Assert.Equal(new[] { "claimed:3", "locked:1", "redeemed:1", "refunded:0" },
            figures["funnel"]!.AsArray().Select(r => $"{(string)r![0]!}:{(string)r[1]!}"));
        Assert.Equal(stats["roi"]!.ToString(), Value(figures["outcome"], "投资回报率（ROI）"));
        Assert.Equal("¥400.00", (string)figures["gmvText"]!);
        Assert.StartsWith("数据截至", (string)figures["statsAsOf"]!);

        // The banner: uploaded from the browser straight to storage, completed, ready with a thumbnail that loads.
        var media = figures["media"]!.AsArray().Single()!;
        Assert.Equal("ready", (string)media["state"]!);
        Assert.Equal(750, (int)media["imageWidth"]!); // the smallest rendition
        var listed = await (await operatorA.GetAsync($"/api/campaigns/{campaign}/media")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal((string)media["id"]!, (string)listed["items"]![0]!["mediaId"]!);

        // The audit trail lists the create, submit, approve, publish and the upload (start and complete), newest first.
        var audit = figures["audit"]!.AsArray().Select(e => $"{(string)e![0]!}/{(string)e[1]!}/{(string)e[2]!}").ToArray();
        foreach (var entry in new[] { "campaign/create/applied", "campaign/submit/applied", "campaign/approve/applied", "campaign/publish/applied",
                     "media/start-upload/applied", "media/complete-upload/applied" })
            Assert.Contains(entry, audit);
        Assert.Equal("media/complete-upload/applied", audit[0]);
        Assert.Equal("campaign/create/applied", audit[^1]);
        Assert.Equal(["Actions", "Terms", "Figures", "Media", "Audit trail"], Strings(figures["englishSections"]));
        Assert.Equal([name], Strings(figures["headings"]));
        // An admin who made none of it decides a campaign on its page: returned with comments, a draft again.
        Assert.True((bool)figures["returnApproveEnabled"]!);
        Assert.Contains("Draft", (string)figures["returned"]!);
        Assert.Contains("Name the categories, please.", (string)figures["returnedReview"]!);
        var returned = await (await operatorA.GetAsync($"/api/campaigns/{toReturn}")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(("draft", "returned", admin), ((string)returned["status"]!, (string)returned["review"]!["outcome"]!, (string)returned["review"]!["by"]!));
        Assert.True(figures["overflowing"] is null, figures["overflowing"]?.ToJsonString());
        ConsoleSite.AssertAccessible(figures, screenshots: 5);

        // The budgets (docs/benchmarks.md): the detail page's own script, loaded only when it is opened.
        var detailJs = (long)figures["detailJsGzipBytes"]!;
        Assert.InRange(detailJs, 1, 100 * 1024);
        await File.WriteAllTextAsync(Path.Combine(ConsoleSite.ArtifactsFolder, "budgets-detail.txt"),
            $"Console budgets: campaign detail page JavaScript {detailJs / 1024.0:F1} kB gzipped (Chart.js included, its own chunk); "
            + $"first page {(long)figures["firstPageJsGzipBytes"]! / 1024.0:F1} kB gzipped\n");
    }

    private static string Value(JsonNode? facts, string label) => (string)facts!.AsArray().Single(f => (string)f![0]! == label)![1]!;

    /// <summary>A banner-sized PNG with something on it.</summary>
    private static byte[] Banner(int width, int height)
    {
        using var bitmap = new SKBitmap(width, height);
        using (var canvas = new SKCanvas(bitmap))
        {
            using var paint = new SKPaint
            {
                Shader = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(width, height), [SKColors.Crimson, SKColors.Gold], SKShaderTileMode.Clamp),
            };
            canvas.DrawRect(0, 0, width, height, paint);
        }
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    private static string[] Strings(JsonNode? array) => ConsoleSite.Strings(array);
}
