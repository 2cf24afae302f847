using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// Maker-checker on budget top-ups (docs/approvals.md, "Money"): above Approvals:TopUpThreshold a top-up is a request that
/// an approver other than its requester decides; approved, it is applied exactly once (concurrent approvals, crashes between
/// the approval and the money); rejected, never. Each test runs an app whose threshold is 10,000.
/// </summary>
public sealed class TopUpApprovalTests
{
    private const long Threshold = 10_000;
    private static readonly TimeSpan PastLease = StockStore.Lease + StockStore.LeaseMargin;

    private static Task<TestApp> StartAsync() => TestApp.StartAsync(customize: b => b.UseSetting("Approvals:TopUpThreshold", Threshold.ToString()));

    private static HttpClient Approver(TestApp app, string who = "anna") => app.As(who, "approver");

    [Fact]
    public async Task A_top_up_over_the_threshold_waits_unapplied_until_someone_else_approves_it_and_is_then_applied_once()
    {
        await using var app = await StartAsync();
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["budget"] = 10_000));
        var key = Guid.NewGuid().ToString();

        var requested = await TopUpAsync(app.Operator("olivia"), campaign, key, 25_000, "launch week");
        var pending = await requested.AssertStatusAsync(HttpStatusCode.Accepted);
        Assert.Equal(("pending_approval", "pending", 10_000L), ((string?)pending["topUp"]!["state"], (string?)pending["topUp"]!["approval"]!["status"], (long)pending["total"]!));
        // A replay answers the same 202, and after any lease would have lapsed it still applies nothing (no takeover of a request).
        app.Clock.Advance(PastLease);
        var replay = await TopUpAsync(app.Operator("olivia"), campaign, key, 25_000, "launch week");
        Assert.Equal("pending_approval", (string?)(await replay.AssertStatusAsync(HttpStatusCode.Accepted))["topUp"]!["state"]);
        Assert.Equal("true", replay.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal(10_000L, await TotalAsync(app, campaign));
        var listed = await (await app.Operator().GetAsync($"/api/campaigns/{campaign}/budget")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(("pending_approval", 25_000L), ((string?)listed["topUps"]![0]!["state"], (long)listed["topUps"]![0]!["amount"]!));

        // The requester may not decide it, even holding the approver role; an operator may not decide at all.
        await (await ApproveAsync(app.As("olivia", "approver", "operator"), campaign, key)).AssertProblemAsync(HttpStatusCode.Forbidden, "four-eyes");
        await (await RejectAsync(app.As("olivia", "admin"), campaign, key, "no")).AssertProblemAsync(HttpStatusCode.Forbidden, "four-eyes");
        await (await ApproveAsync(app.Operator("oscar"), campaign, key)).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        Assert.Equal(10_000L, await TotalAsync(app, campaign));

        var approved = await (await ApproveAsync(Approver(app), campaign, key)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal((35_000L, "applied", "approved", "anna"), ((long)approved["total"]!, (string?)approved["topUp"]!["state"],
            (string?)approved["topUp"]!["approval"]!["status"], (string?)approved["topUp"]!["approval"]!["decidedBy"]));
        // Approved again, replayed, by anyone: the same money, once. Rejecting it now is too late.
        Assert.Equal(35_000L, (long)(await (await ApproveAsync(Approver(app, "amir"), campaign, key)).AssertStatusAsync(HttpStatusCode.OK))["total"]!);
        Assert.Equal(35_000L, (long)(await (await TopUpAsync(app.Operator("olivia"), campaign, key, 25_000, "launch week")).AssertStatusAsync(HttpStatusCode.OK))["total"]!);
        await (await RejectAsync(Approver(app, "amir"), campaign, key, "too late")).AssertProblemAsync(HttpStatusCode.Conflict, "approval-not-pending");
        Assert.Equal(35_000L, await TotalAsync(app, campaign));
        var budget = (await app.Services.GetRequiredService<StockStore>().FindBudgetAsync(campaign))!;
        Assert.Equal((35_000L, 35_000L, 0), (budget.Budget, budget.Left, budget.Applying.Count));
    }

    [Fact]
    public async Task Top_ups_at_or_below_the_threshold_apply_at_once_as_before_and_cannot_be_approved()
    {
        await using var app = await StartAsync();
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["budget"] = 1_000));
        var key = Guid.NewGuid().ToString();
        var applied = await (await TopUpAsync(app.Operator(), campaign, key, Threshold, "exactly the threshold")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal((11_000L, "applied"), ((long)applied["total"]!, (string?)applied["topUp"]!["state"]));
        Assert.Null(applied["topUp"]!["approval"]);
        await (await ApproveAsync(Approver(app), campaign, key)).AssertProblemAsync(HttpStatusCode.Conflict, "approval-not-pending");
        await (await ApproveAsync(Approver(app), campaign, Guid.NewGuid().ToString())).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        await (await ApproveAsync(Approver(app), "cmp_unknown", key)).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        Assert.Equal(11_000L, await TotalAsync(app, campaign));
    }

    [Fact]
    public async Task Two_approvals_at_once_and_repeats_add_the_money_once_to_every_shard()
    {
        await using var app = await StartAsync();
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
        {
            t["totalQuantity"] = 30;
            t["stockShards"] = 3;
            t["amountOff"] = 1000;
            t["budget"] = 30_000;
        }));
        for (var round = 0; round < 3; round++)
        {
            var key = Guid.NewGuid().ToString();
            await (await TopUpAsync(app.Operator("olivia"), campaign, key, 20_001, "push")).AssertStatusAsync(HttpStatusCode.Accepted);
            var answers = await Task.WhenAll(ApproveAsync(Approver(app, "anna"), campaign, key), ApproveAsync(app.As("root", "admin"), campaign, key),
                ApproveAsync(Approver(app, "amir"), campaign, key));
            Assert.Contains(answers, a => a.StatusCode == HttpStatusCode.OK);
            foreach (var other in answers.Where(a => a.StatusCode != HttpStatusCode.OK))
                await other.AssertProblemAsync(HttpStatusCode.Conflict, "idempotency-in-flight");
            await (await ApproveAsync(Approver(app), campaign, key)).AssertStatusAsync(HttpStatusCode.OK);
        }
        var shards = await app.Services.GetRequiredService<StockStore>().FindBudgetShardsAsync(campaign);
        Assert.Equal(30_000L + 3 * 20_001, shards.Sum(s => s.Budget));
        Assert.Equal(30_000L + 3 * 20_001, shards.Sum(s => s.Left));
        Assert.Equal(3 * 20_001L, shards.Sum(s => s.ToppedUp));
        Assert.All(shards, s => Assert.Empty(s.Applying));
    }

    [Fact]
    public async Task An_approval_killed_after_any_of_its_cosmos_requests_is_finished_by_a_repeat_or_a_replay_and_adds_the_money_once()
    {
        await using var app = await StartAsync();
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
        {
            t["totalQuantity"] = 10;
            t["stockShards"] = 2;
            t["amountOff"] = 1000;
            t["budget"] = 10_000;
        }));
        var crash = new Crash();
        await using var crashing = app.WithWebHostBuilder(b => b.ConfigureServices(services =>
        {
            services.RemoveAll<CosmosClient>();
            services.AddSingleton(_ => TestCosmos.Client(crash));
        }));
        var crashingApprover = crashing.CreateClient();
        crashingApprover.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", app.Token("anna", ["approver"]));
        await (await crashingApprover.GetAsync("/api/approvals?kind=top_up&limit=1")).AssertStatusAsync(HttpStatusCode.OK); // warm up
        var stocks = app.Services.GetRequiredService<StockStore>();

        var interrupted = 0;
        var unfinished = 0;
        var expected = 10_000L;
        for (var crashAfter = 0; crashAfter < 12; crashAfter++)
        {
            var key = Guid.NewGuid().ToString();
            await (await TopUpAsync(app.Operator("olivia"), campaign, key, 10_101, "killed")).AssertStatusAsync(HttpStatusCode.Accepted);
            crash.Arm(crashAfter);
            var killed = await ApproveAsync(crashingApprover, campaign, key);
            crash.Disarm();
            if (killed.StatusCode != HttpStatusCode.OK) interrupted++;
            var state = (await stocks.FindTopUpAsync(campaign, key))!;
            // Whatever the crash left undone stays in the approvers' queue until it is finished: pending, or approved but unapplied.
            var queued = (await (await Approver(app, "amir").GetAsync("/api/approvals?kind=top_up&limit=200")).AssertStatusAsync(HttpStatusCode.OK))["items"]!
                .AsArray().SingleOrDefault(i => (string?)i!["id"] == $"{campaign}/{key}");
            Assert.Equal(state.AppliedAt is not null ? null : state.Approval!.Status == TopUpApproval.Approved ? "approved_unfinished" : "pending",
                (string?)queued?["state"]);
            if ((string?)queued?["state"] == "approved_unfinished") unfinished++;

            // While the killed approval's lease may still run, a repeat is told to come back; after it, a repeat of the
            // approval (even rounds) or a replay of the top-up's own key (odd rounds) finishes it.
            if (state.Approval!.Status == TopUpApproval.Approved && state.AppliedAt is null)
                await (await ApproveAsync(Approver(app, "amir"), campaign, key)).AssertProblemAsync(HttpStatusCode.Conflict, "idempotency-in-flight");
            app.Clock.Advance(PastLease);
            if (crashAfter % 2 == 0 || state.Approval.Status == TopUpApproval.Pending)
                await (await ApproveAsync(Approver(app, "amir"), campaign, key)).AssertStatusAsync(HttpStatusCode.OK);
            else
                await (await TopUpAsync(app.Operator("olivia"), campaign, key, 10_101, "killed")).AssertStatusAsync(HttpStatusCode.OK);
            expected += 10_101;

            var shards = await stocks.FindBudgetShardsAsync(campaign);
            Assert.True(expected == shards.Sum(s => s.Budget) && expected == shards.Sum(s => s.Left),
                $"crash after {crashAfter}: budget {shards.Sum(s => s.Budget)}, expected {expected}");
            Assert.All(shards, s => Assert.Empty(s.Applying));
            Assert.Equal(TopUpStates.Applied, (await stocks.FindTopUpAsync(campaign, key))!.State);
        }
        Assert.True(interrupted >= 6, $"only {interrupted} approvals were interrupted");
        Assert.True(unfinished >= 1, "no crash left an approved, unapplied request in the queue");
    }

    [Fact]
    public async Task A_rejected_request_is_never_applied_and_cannot_be_approved_later()
    {
        await using var app = await StartAsync();
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["budget"] = 5_000));
        var key = Guid.NewGuid().ToString();
        await (await TopUpAsync(app.Operator("olivia"), campaign, key, 50_000, "one zero too many")).AssertStatusAsync(HttpStatusCode.Accepted);

        var invalid = await (await RejectAsync(Approver(app), campaign, key, " ")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(invalid["errors"]!["reason"]);
        var rejected = await (await RejectAsync(Approver(app), campaign, key, "Did you mean 5,000?")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(("rejected", "anna", "Did you mean 5,000?"), ((string?)rejected["state"], (string?)rejected["approval"]!["decidedBy"],
            (string?)rejected["approval"]!["reason"]));
        // The same rejection again is the same answer; any other decision is refused.
        await (await RejectAsync(Approver(app), campaign, key, "Did you mean 5,000?")).AssertStatusAsync(HttpStatusCode.OK);
        await (await RejectAsync(Approver(app, "amir"), campaign, key, "other")).AssertProblemAsync(HttpStatusCode.Conflict, "approval-not-pending");
        await (await ApproveAsync(Approver(app, "amir"), campaign, key)).AssertProblemAsync(HttpStatusCode.Conflict, "approval-not-pending");
        // The requester's replays, even long after, answer the rejection and add nothing.
        app.Clock.Advance(PastLease);
        var replay = await (await TopUpAsync(app.Operator("olivia"), campaign, key, 50_000, "one zero too many")).AssertStatusAsync(HttpStatusCode.Accepted);
        Assert.Equal(("rejected", 5_000L), ((string?)replay["topUp"]!["state"], (long)replay["total"]!));
        var listed = await (await app.Operator().GetAsync($"/api/campaigns/{campaign}/budget")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(("rejected", "Did you mean 5,000?"), ((string?)listed["topUps"]![0]!["state"], (string?)listed["topUps"]![0]!["approval"]!["reason"]));
        Assert.Equal(5_000L, await TotalAsync(app, campaign));
        await (await RejectAsync(Approver(app), campaign, Guid.NewGuid().ToString(), "x")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
    }

    [Fact]
    public async Task The_approvers_queue_lists_pending_top_ups_with_amount_requester_and_routes_until_they_are_decided()
    {
        await using var app = await StartAsync();
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["budget"] = 5_000));
        var (first, second) = (Guid.NewGuid().ToString(), Guid.NewGuid().ToString());
        await (await TopUpAsync(app.Operator("olivia"), campaign, first, 12_345, "first")).AssertStatusAsync(HttpStatusCode.Accepted);
        await (await TopUpAsync(app.Operator("oscar"), campaign, second, 23_456, "second")).AssertStatusAsync(HttpStatusCode.Accepted);
        await (await TopUpAsync(app.Operator("oscar"), campaign, Guid.NewGuid().ToString(), 100, "small")).AssertStatusAsync(HttpStatusCode.OK);

        var queue = await QueueAsync(app);
        var item = queue.Single(i => (string?)i["id"] == $"{campaign}/{first}");
        Assert.Equal(("top_up", 12_345L, "olivia", "CNY"), ((string?)item["kind"], (long)item["amount"]!, (string?)item["requestedBy"], (string?)item["currency"]));
        Assert.Equal(["olivia"], item["makers"]!.AsArray().Select(m => (string?)m));
        Assert.Equal($"campaigns/{campaign}/budget/top-ups/{first}/approve", (string?)item["routes"]!["approve"]);
        Assert.Equal(("amount", 12_345L), ((string?)item["changes"]![0]!["path"], (long)item["changes"]![0]!["after"]!));
        Assert.Contains(queue, i => (string?)i["id"] == $"{campaign}/{second}");
        Assert.Equal(2, queue.Count(i => ((string?)i["id"])!.StartsWith(campaign + "/", StringComparison.Ordinal)));

        await (await ApproveAsync(Approver(app), campaign, first)).AssertStatusAsync(HttpStatusCode.OK);
        await (await RejectAsync(Approver(app), campaign, second, "not now")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.DoesNotContain(await QueueAsync(app), i => ((string?)i["id"])!.StartsWith(campaign + "/", StringComparison.Ordinal));
    }

    /// <summary>Every pending top-up in the queue, page by page (pages of 2: the paging is exercised too).</summary>
    private static async Task<List<JsonNode>> QueueAsync(TestApp app)
    {
        var items = new List<JsonNode>();
        string? token = null;
        do
        {
            var url = "/api/approvals?status=pending&kind=top_up&limit=2" + (token is null ? "" : "&continuationToken=" + Uri.EscapeDataString(token));
            var page = await (await Approver(app).GetAsync(url)).AssertStatusAsync(HttpStatusCode.OK);
            items.AddRange(page["items"]!.AsArray().Select(i => i!));
            token = (string?)page["continuationToken"];
        } while (token is not null);
        return items;
    }

    private static async Task<long> TotalAsync(TestApp app, string campaign)
        => (long)(await (await app.Operator().GetAsync($"/api/campaigns/{campaign}/budget")).AssertStatusAsync(HttpStatusCode.OK))["total"]!;

    private static Task<HttpResponseMessage> TopUpAsync(HttpClient op, string campaign, string key, long amount, string reason)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{campaign}/budget") { Content = Api.JsonContent(new { amount, reason }) };
        request.Headers.Add("Idempotency-Key", key);
        return op.SendAsync(request);
    }

    private static Task<HttpResponseMessage> ApproveAsync(HttpClient approver, string campaign, string key)
        => approver.PostAsync($"/api/campaigns/{campaign}/budget/top-ups/{key}/approve", null);

    private static Task<HttpResponseMessage> RejectAsync(HttpClient approver, string campaign, string key, string reason)
        => approver.PostAsync($"/api/campaigns/{campaign}/budget/top-ups/{key}/reject", Api.JsonContent(new { reason }));
}
