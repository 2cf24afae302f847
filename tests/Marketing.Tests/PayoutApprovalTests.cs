using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Marketing.Functions.Commissions;
using Marketing.Functions.Payouts;
using Marketing.Functions.Promoters;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// Maker-checker on payout batches (docs/approvals.md, "Money"): a batch whose plan totals more than Approvals:PayoutThreshold
/// holds its promoters and pays nothing until finance (not its creator) approves it; rejected, it releases them. Each test has
/// its own database (a batch walks every promoter in it) and a threshold of 1,000.
/// </summary>
public sealed class PayoutApprovalTests
{
    private static readonly TimeSpan Holding = TimeSpan.FromDays(7); // Commissions:HoldingDays in the test settings

    private static Task<TestApp> StartAsync(string name) => TestApp.StartAsync($"{Settings.Get("Cosmos__Database")}-approve-{name}-{Guid.NewGuid():N}"[..60],
        b => b.UseSetting("Approvals:PayoutThreshold", "1000").UseSetting("Approvals:TopUpThreshold", "10000"));

    private static HttpClient Finance(TestApp app, string who = "fiona") => app.As(who, "finance");

    [Fact]
    public async Task A_batch_over_the_threshold_waits_holding_its_promoters_and_pays_nothing_until_finance_approves_it_then_pays_once()
    {
        await using var app = await StartAsync("wait");
        var (a, b) = await TwoEarnersAsync(app, 8000, 5000); // 800 and 500 available

        var waiting = await (await CreateAsync(app, "big-1")).AssertStatusAsync(HttpStatusCode.Accepted);
        Assert.Equal(("awaiting_approval", 1300L, 2), ((string?)waiting["state"], (long)waiting["total"]!, (int)waiting["lines"]!));
        var repeat = await CreateAsync(app, "big-1");
        Assert.Equal(1300L, (long)(await repeat.AssertStatusAsync(HttpStatusCode.Accepted))["total"]!);
        Assert.Equal("true", repeat.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal((800L, 0L), await AvailableAndPaidAsync(app, a));
        // No CSV to pay from while it waits.
        await (await CsvAsync(app, "big-1")).AssertProblemAsync(HttpStatusCode.Conflict, "payout-batch-not-completed");
        await (await Finance(app).GetAsync("/api/payouts/big-1/csv-link")).AssertProblemAsync(HttpStatusCode.Conflict, "payout-batch-not-completed");
        // Its promoters are held: a concurrent batch skips them.
        var other = await CreateAsync(app, "small-1");
        Assert.Equal(HttpStatusCode.Created, other.StatusCode);
        var otherView = await (await app.Operator().GetAsync("/api/payouts/small-1")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(new[] { a, b }.Order(StringComparer.Ordinal), otherView["skipped"]!.AsArray().Select(s => (string)s!).Order(StringComparer.Ordinal));

        // The creator may not decide, even as finance; an approver (not finance) may not approve payouts.
        await (await ApproveAsync(app.As("olivia", "finance", "operator"), "big-1")).AssertProblemAsync(HttpStatusCode.Forbidden, "four-eyes");
        await (await ApproveAsync(app.As("anna", "approver"), "big-1")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        Assert.Equal((800L, 0L), await AvailableAndPaidAsync(app, a));

        // Two approvals at once: one decides, both answer the batch's CSV, each entry is paid once.
        var approvals = await Task.WhenAll(ApproveAsync(Finance(app), "big-1"), ApproveAsync(app.As("root", "admin"), "big-1"));
        foreach (var approval in approvals)
        {
            var csv = await approval.Content.ReadAsStringAsync();
            Assert.True(approval.StatusCode == HttpStatusCode.OK, csv);
            Assert.Equal(new Dictionary<string, long> { [a] = 800, [b] = 500 }, Distribution.ParseCsv(csv));
        }
        Assert.Equal((0L, 800L), await AvailableAndPaidAsync(app, a));
        Assert.Equal((0L, 500L), await AvailableAndPaidAsync(app, b));
        var view = await (await app.Operator().GetAsync("/api/payouts/big-1")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(("completed", "approved"), ((string?)view["state"], (string?)view["approval"]!["status"]));
        Assert.All(view["lines"]!.AsArray(), l => Assert.Equal("paid", (string?)l!["state"]));
        Assert.All(await app.CommissionsAsync(a), e => Assert.Equal("big-1", (string?)e["payoutBatchId"]));

        // Again (a retry): the same CSV, nothing more paid; too late to reject; the CSV is now there.
        Assert.Equal(HttpStatusCode.OK, (await ApproveAsync(Finance(app, "felix"), "big-1")).StatusCode);
        await (await RejectAsync(Finance(app), "big-1", "too late")).AssertProblemAsync(HttpStatusCode.Conflict, "approval-not-pending");
        Assert.Equal(HttpStatusCode.OK, (await CsvAsync(app, "big-1")).StatusCode);
        Assert.Equal((0L, 800L), await AvailableAndPaidAsync(app, a));
        await AssertBooksReconcileAsync(app);
    }

    [Fact]
    public async Task A_rejected_batch_pays_nothing_and_releases_its_promoters_for_a_later_batch()
    {
        await using var app = await StartAsync("reject");
        var (a, b) = await TwoEarnersAsync(app, 9000, 7000); // 900 and 700
        await (await CreateAsync(app, "big-2")).AssertStatusAsync(HttpStatusCode.Accepted);

        var invalid = await (await RejectAsync(Finance(app), "big-2", "")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(invalid["errors"]!["reason"]);
        await (await RejectAsync(app.As("olivia", "admin"), "big-2", "mine")).AssertProblemAsync(HttpStatusCode.Forbidden, "four-eyes");
        var rejected = await (await RejectAsync(Finance(app), "big-2", "Check last week's refunds first")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(("rejected", "fiona", "Check last week's refunds first"), ((string?)rejected["state"], (string?)rejected["approval"]!["decidedBy"],
            (string?)rejected["approval"]!["reason"]));
        Assert.All(rejected["lines"]!.AsArray(), l => Assert.Equal("rejected", (string?)l!["state"]));
        // Final: the same rejection again is the same answer; approving, or re-posting the batch, is refused.
        await (await RejectAsync(Finance(app), "big-2", "Check last week's refunds first")).AssertStatusAsync(HttpStatusCode.OK);
        await (await ApproveAsync(Finance(app, "felix"), "big-2")).AssertProblemAsync(HttpStatusCode.Conflict, "approval-not-pending");
        await (await CreateAsync(app, "big-2")).AssertProblemAsync(HttpStatusCode.Conflict, "approval-not-pending");
        await (await CsvAsync(app, "big-2")).AssertProblemAsync(HttpStatusCode.Conflict, "payout-batch-not-completed");
        Assert.Equal((900L, 0L), await AvailableAndPaidAsync(app, a));
        var promoters = app.Services.GetRequiredService<PromoterStore>();
        Assert.Null((await promoters.FindAsync(a, CancellationToken.None))!.PayingBatch);
        await AssertBooksReconcileAsync(app);

        // Released: the next batch holds and pays them (it waits too, and finance approves it).
        var next = await (await CreateAsync(app, "big-3")).AssertStatusAsync(HttpStatusCode.Accepted);
        Assert.Equal((1600L, 2), ((long)next["total"]!, (int)next["lines"]!));
        var csv = await (await ApproveAsync(Finance(app), "big-3")).Content.ReadAsStringAsync();
        Assert.Equal(new Dictionary<string, long> { [a] = 900, [b] = 700 }, Distribution.ParseCsv(csv));
        Assert.Equal((0L, 900L), await AvailableAndPaidAsync(app, a));
        await AssertBooksReconcileAsync(app);
    }

    [Fact]
    public async Task A_refund_while_the_batch_waits_is_a_new_entry_outside_its_plan_the_line_pays_its_plan_and_the_next_batch_nets_the_debt()
    {
        await using var app = await StartAsync("refund");
        await app.SetRulesAsync(1000, 0);
        var a = await ReferrerAsync(app);
        var b = await ReferrerAsync(app);
        var refunded = Api.NewId("o");
        await PaidAsync(app, a.Buyer, refunded, app.Clock.GetUtcNow(), Distribution.Line("l1", "books", 10000)); // 1000
        await PaidAsync(app, b.Buyer, Api.NewId("o"), app.Clock.GetUtcNow(), Distribution.Line("l1", "books", 3000)); // 300
        app.Clock.Advance(Holding);
        await app.InvokeTimerAsync("ReleaseCommissions");
        await (await CreateAsync(app, "wait-refund")).AssertStatusAsync(HttpStatusCode.Accepted);

        // The order is refunded while the batch waits: the reversal is available at once (the holding period is over).
        Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("refunded", refunded, a.Buyer, app.Clock.GetUtcNow(),
            Distribution.Line("l1", "books", 10000))));
        var csv = await (await ApproveAsync(Finance(app), "wait-refund")).Content.ReadAsStringAsync();
        Assert.Equal(new Dictionary<string, long> { [a.Id] = 1000, [b.Id] = 300 }, Distribution.ParseCsv(csv));
        Assert.Equal((-1000L, 1000L), await AvailableAndPaidAsync(app, a.Id));
        var reversal = (await app.CommissionsAsync(a.Id)).Single(e => (long)e["amount"]! < 0);
        Assert.Equal("available", (string?)reversal["status"]);
        // A debt is never paid out: the next batch has no line for them.
        Assert.DoesNotContain(a.Id, Distribution.ParseCsv(await (await CreateAsync(app, "after-refund")).Content.ReadAsStringAsync()).Keys);
        await AssertBooksReconcileAsync(app);
    }

    [Fact]
    public async Task The_approvers_queue_lists_waiting_payout_batches_and_top_up_requests()
    {
        await using var app = await StartAsync("queue");
        await TwoEarnersAsync(app, 8000, 5000);
        await (await CreateAsync(app, "queued-1")).AssertStatusAsync(HttpStatusCode.Accepted);
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["budget"] = 5_000));
        var topUp = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{campaign}/budget") { Content = Api.JsonContent(new { amount = 20_000, reason = "launch" }) };
        topUp.Headers.Add("Idempotency-Key", "queued-top-up");
        await (await app.Operator("oscar").SendAsync(topUp)).AssertStatusAsync(HttpStatusCode.Accepted);

        // An admin sees every kind; approvers see what they decide (campaigns, top-ups), finance what it decides (payouts).
        var page = await (await app.As("root", "admin").GetAsync("/api/approvals?status=pending")).AssertStatusAsync(HttpStatusCode.OK);
        var items = page["items"]!.AsArray().Select(i => i!).ToList();
        var approvers = await (await app.As("anna", "approver").GetAsync("/api/approvals?status=pending")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.DoesNotContain(approvers["items"]!.AsArray(), i => (string?)i!["kind"] == "payout");
        Assert.Contains(approvers["items"]!.AsArray(), i => (string?)i!["kind"] == "top_up");
        var finance = await (await Finance(app).GetAsync("/api/approvals?status=pending")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(["payout"], finance["items"]!.AsArray().Select(i => (string)i!["kind"]!).Distinct());
        await (await app.As("anna", "approver").GetAsync("/api/approvals?kind=payout")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        var batch = items.Single(i => (string?)i["kind"] == "payout" && (string?)i["id"] == "queued-1");
        Assert.Equal((1300L, "olivia", "CNY", "payouts/queued-1/approve"), ((long)batch["amount"]!, (string?)batch["requestedBy"], (string?)batch["currency"],
            (string?)batch["routes"]!["approve"]));
        Assert.Contains(items, i => (string?)i["kind"] == "top_up" && (string?)i["id"] == $"{campaign}/queued-top-up");
        // Top-ups come before payouts.
        Assert.True(items.FindLastIndex(i => (string?)i["kind"] == "top_up") < items.FindIndex(i => (string?)i["kind"] == "payout"));

        Assert.Equal(HttpStatusCode.OK, (await ApproveAsync(Finance(app), "queued-1")).StatusCode);
        var after = await (await Finance(app).GetAsync("/api/approvals?status=pending&kind=payout")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.DoesNotContain(after["items"]!.AsArray(), i => (string?)i!["id"] == "queued-1");
    }

    [Fact]
    public async Task The_overview_counts_what_waits_in_the_approvers_queues_when_AggregateStats_last_ran()
    {
        await using var app = await StartAsync("overview");
        await TwoEarnersAsync(app, 8000, 5000);
        await (await CreateAsync(app, "waiting-1")).AssertStatusAsync(HttpStatusCode.Accepted);
        // Two campaigns submitted, a draft; a published campaign with two top-up requests over the threshold and one under it.
        var op = app.Operator("olivia");
        var submitted = new List<string>();
        for (var i = 0; i < 2; i++)
        {
            var id = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
            await (await op.PostAsync($"/api/campaigns/{id}/submit", null)).AssertStatusAsync(HttpStatusCode.OK);
            submitted.Add(id);
        }
        await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var campaign = await op.PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["budget"] = 5_000));
        foreach (var (key, amount) in new[] { ("big-1", 20_000), ("big-2", 30_000), ("small", 500) })
        {
            var topUp = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{campaign}/budget") { Content = Api.JsonContent(new { amount, reason = "launch" }) };
            topUp.Headers.Add("Idempotency-Key", key);
            await (await app.Operator("oscar").SendAsync(topUp)).AssertStatusAsync(amount > 10_000 ? HttpStatusCode.Accepted : HttpStatusCode.OK);
        }

        const string Path = "/api/stats/overview";
        var before = await (await app.Operator().GetAsync(Path)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(Waiting(0, 0, 0), before["approvalsWaiting"]!.ToJsonString());
        await app.RunAggregateStatsAsync();
        var overview = await (await app.Operator().GetAsync(Path)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(Waiting(2, 2, 1), overview["approvalsWaiting"]!.ToJsonString());

        // Decided: counted as still waiting until the next run (the overview says when it was computed), then gone.
        Assert.Equal(HttpStatusCode.OK, (await ApproveAsync(Finance(app), "waiting-1")).StatusCode);
        using (var approve = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{submitted[0]}/approve"))
        {
            approve.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Api.CheckerToken(op));
            await (await op.SendAsync(approve)).AssertStatusAsync(HttpStatusCode.OK);
        }
        Assert.Equal(Waiting(2, 2, 1), (await (await app.Operator().GetAsync(Path)).AssertStatusAsync(HttpStatusCode.OK))["approvalsWaiting"]!.ToJsonString());
        await app.RunAggregateStatsAsync();
        Assert.Equal(Waiting(1, 2, 0), (await (await app.Operator().GetAsync(Path)).AssertStatusAsync(HttpStatusCode.OK))["approvalsWaiting"]!.ToJsonString());
    }

    private static string Waiting(long campaigns, long topUps, long payouts)
        => new JsonObject { ["campaigns"] = campaigns, ["topUps"] = topUps, ["payouts"] = payouts }.ToJsonString();

    // ---- helpers ----

    private sealed record Referrer(string Id, string Buyer);

    /// <summary>Two promoters with one released commission each (10% of the order amounts).</summary>
    internal static async Task<(string A, string B)> TwoEarnersAsync(TestApp app, long orderA, long orderB)
    {
        await app.SetRulesAsync(1000, 0);
        var a = await ReferrerAsync(app);
        var b = await ReferrerAsync(app);
        await PaidAsync(app, a.Buyer, Api.NewId("o"), app.Clock.GetUtcNow(), Distribution.Line("l1", "books", orderA));
        await PaidAsync(app, b.Buyer, Api.NewId("o"), app.Clock.GetUtcNow(), Distribution.Line("l1", "books", orderB));
        app.Clock.Advance(Holding);
        await app.InvokeTimerAsync("ReleaseCommissions");
        return (a.Id, b.Id);
    }

    private static async Task<Referrer> ReferrerAsync(TestApp app)
    {
        var id = Api.NewId("p");
        var code = await app.RegisterPromoterAsync(id);
        var buyer = Api.NewId("b");
        await (await app.VisitAsync(buyer, code)).AssertStatusAsync(HttpStatusCode.OK);
        return new(id, buyer);
    }

    private static async Task PaidAsync(TestApp app, string buyer, string orderId, DateTimeOffset at, params JsonObject[] lines)
        => Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("paid", orderId, buyer, at, lines)));

    private static async Task<(long Available, long Paid)> AvailableAndPaidAsync(TestApp app, string promoterId)
    {
        var balance = await app.BalanceAsync(promoterId);
        return ((long)balance["available"]!, (long)balance["paid"]!);
    }

    private static Task<HttpResponseMessage> CreateAsync(TestApp app, string batchId)
        => app.Operator("olivia").PostAsync("/api/payouts", Api.JsonContent(new { batchId, minimum = 1 }));

    private static Task<HttpResponseMessage> ApproveAsync(HttpClient finance, string batchId) => finance.PostAsync($"/api/payouts/{batchId}/approve", null);

    private static Task<HttpResponseMessage> RejectAsync(HttpClient finance, string batchId, string reason)
        => finance.PostAsync($"/api/payouts/{batchId}/reject", Api.JsonContent(new { reason }));

    private static Task<HttpResponseMessage> CsvAsync(TestApp app, string batchId)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, $"/api/payouts/{batchId}");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/csv"));
        return app.Operator().SendAsync(request);
    }

    private static async Task AssertBooksReconcileAsync(TestApp app)
    {
        var s = app.Services;
        Assert.Empty(await LedgerReconciliation.CheckAsync(s.GetRequiredService<PromoterStore>(), s.GetRequiredService<LedgerStore>(),
            s.GetRequiredService<SettlementStore>(), s.GetRequiredService<PayoutStore>(), app.Clock.GetUtcNow(), TimeSpan.FromHours(1),
            CancellationToken.None));
    }
}
