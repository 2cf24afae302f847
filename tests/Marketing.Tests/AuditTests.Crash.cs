using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Marketing.Functions.Audit;
using Marketing.Functions.Hosting;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// No change escapes its entry (docs/audit.md, docs/decisions/0008): a call killed after any of its Cosmos requests leaves
/// either nothing changed and no entry claiming a change, or its change with an entry showing it once AuditRepair has run.
/// Each test has its own database and moves its clock: the repair scans every partition.
/// </summary>
public sealed class AuditCrashTests
{
    private static readonly TimeSpan PastGrace = TimeSpan.FromMinutes(new AuditOptions().RepairGraceMinutes + 1);

    private sealed class Crashing : IAsyncDisposable
    {
        public required Crash Crash { get; init; }
        public required TestApp App { get; init; }
        public required Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactory<Program> Factory { get; init; }

        public HttpClient As(string sub, string role)
        {
            var client = Factory.CreateClient();
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", App.Token(sub, [role]));
            return client;
        }

        public ValueTask DisposeAsync() => Factory.DisposeAsync();
    }

    /// <summary>An instance of <paramref name="app"/> whose Cosmos requests die once the crash is armed.</summary>
    private static async Task<Crashing> CrashingAsync(TestApp app)
    {
        var crash = new Crash();
        var factory = app.WithWebHostBuilder(b => b.ConfigureServices(services =>
        {
            services.RemoveAll<CosmosClient>();
            services.AddSingleton(_ => TestCosmos.Client(crash));
        }));
        var crashing = new Crashing { Crash = crash, App = app, Factory = factory };
        // Warm up: the client's metadata reads happen now, so that the crash counts the call's own requests.
        await (await crashing.As("olivia", "operator").GetAsync("/api/campaigns/cmp_none")).AssertStatusAsync(HttpStatusCode.NotFound);
        await (await crashing.As("olivia", "operator").PutAsync("/api/campaigns/cmp_none", Api.JsonContent(Api.Terms(app.Clock.GetUtcNow()))))
            .AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        return crashing;
    }

    private static async Task<JsonNode> RepairAsync(TestApp app)
    {
        var run = await app.InvokeTimerAsync(AuditRepair.FunctionName);
        Assert.Empty(run["ReturnValue"]!["Failures"]!.AsArray());
        return run["ReturnValue"]!;
    }

    [Fact]
    public async Task An_update_killed_after_any_of_its_cosmos_requests_leaves_its_change_with_an_entry_or_no_change_and_no_claim()
    {
        await using var app = await TestApp.StartAsync("audit-crash-update");
        var campaign = await app.Operator().CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var target = "campaign/" + campaign;
        await using var crashing = await CrashingAsync(app);

        var (changed, unchanged, withoutEntry) = (0, 0, 0);
        for (var crashAfter = 0; crashAfter < 10; crashAfter++)
        {
            app.Clock.Advance(TimeSpan.FromMinutes(1)); // each call at its own instant: the trail is ordered by it
            var name = $"v{crashAfter}";
            var entriesBefore = (await app.AuditEntriesAsync(target)).Count;
            crashing.Crash.Arm(crashAfter);
            var response = await crashing.As("olivia", "operator")
                .PutAsync($"/api/campaigns/{campaign}", Api.JsonContent(Api.Terms(app.Clock.GetUtcNow(), t => t["name"] = name)));
            crashing.Crash.Disarm();
            if (crashAfter < 2)
                // Killed reading the target or writing the intent: the call never ran, and says so.
                await response.AssertProblemAsync(HttpStatusCode.ServiceUnavailable, "busy");

            app.Clock.Advance(PastGrace);
            await RepairAsync(app);

            var now = await (await app.Operator().GetAsync($"/api/campaigns/{campaign}")).AssertStatusAsync(HttpStatusCode.OK);
            var tookEffect = (string?)now["terms"]!["name"] == name;
            var entries = await app.AuditEntriesAsync(target);
            AuditTrailReader.AssertNoIntentLeft(entries);
            var fresh = entries.Take(entries.Count - entriesBefore).ToList(); // newest first
            Assert.True(fresh.Count <= 1, $"crash after {crashAfter}: {fresh.Count} entries for one call");
            if (tookEffect)
            {
                changed++;
                var entry = Assert.Single(fresh);
                Assert.Equal("applied", (string?)entry["outcome"]);
                Assert.Equal("update", (string?)entry["action"]);
                Assert.Equal(name, (string?)entry["after"]!["terms"]!["name"]);
                Assert.Equal(name, JsonNode.Parse(AuditTrailReader.Changes(entry)["terms.name"].After!)!.GetValue<string>());
            }
            else
            {
                unchanged++;
                if (fresh.Count == 0) withoutEntry++;
                // No entry claims a change that did not happen.
                Assert.All(fresh, e =>
                {
                    Assert.True("no_change" == (string?)e["outcome"], $"crash after {crashAfter}: {e.ToJsonString()}");
                    Assert.Empty(AuditTrailReader.Changes(e));
                });
            }
        }
        Assert.True(changed >= 3 && unchanged >= 3 && withoutEntry == 2, $"changed {changed}, unchanged {unchanged} ({withoutEntry} without an entry)");

        // Every change the campaign went through is in the trail, in order: each applied entry starts where the previous ended.
        var applied = (await app.AuditEntriesAsync(target)).Where(e => (string?)e["outcome"] == "applied").Reverse().ToList();
        for (var i = 1; i < applied.Count; i++)
            Assert.Equal(applied[i - 1]["after"]!.ToJsonString(), applied[i]["before"]!.ToJsonString());
    }

    [Fact]
    public async Task A_top_up_killed_after_any_of_its_cosmos_requests_is_in_the_trail_as_far_as_it_got_and_its_replay_finishes_it()
    {
        await using var app = await TestApp.StartAsync("audit-crash-top-up");
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
        {
            t["totalQuantity"] = 10;
            t["stockShards"] = 2;
            t["budget"] = 10_000;
        }));
        var target = "budget/" + campaign;
        await using var crashing = await CrashingAsync(app);

        async Task<long> TotalAsync() => (long)(await (await app.Operator().GetAsync($"/api/campaigns/{campaign}/budget")).AssertStatusAsync(HttpStatusCode.OK))["total"]!;

        for (var crashAfter = 0; crashAfter < 14; crashAfter++)
        {
            app.Clock.Advance(TimeSpan.FromMinutes(1)); // each call at its own instant: the trail is ordered by it
            var key = Guid.NewGuid().ToString();
            var total0 = await TotalAsync();
            var count0 = (await app.AuditEntriesAsync(target)).Count;
            crashing.Crash.Arm(crashAfter);
            await AuditTests.TopUpAsync(crashing.As("olivia", "operator"), campaign, key, 101, "killed");
            crashing.Crash.Disarm();
            app.Clock.Advance(PastGrace);
            await RepairAsync(app);

            var total1 = await TotalAsync();
            var entries = await app.AuditEntriesAsync(target);
            AuditTrailReader.AssertNoIntentLeft(entries);
            var fresh = entries.Take(entries.Count - count0).ToList();
            Assert.True(fresh.Count <= 1, $"crash after {crashAfter}: {fresh.Count} entries for one call");
            if (total1 != total0)
            {
                var entry = Assert.Single(fresh);
                Assert.Equal("applied", (string?)entry["outcome"]);
                // Exactly what happened, also when only one shard of two got the money.
                Assert.Equal((total0.ToString(), total1.ToString()), AuditTrailReader.Changes(entry)["total"]);
            }
            else
                Assert.All(fresh, e => Assert.Equal("no_change", (string?)e["outcome"]));

            // The replay finishes it; its own entry shows what it added (nothing when the killed call had finished).
            app.Clock.Advance(TimeSpan.FromMinutes(1));
            await (await AuditTests.TopUpAsync(app.Operator(), campaign, key, 101, "killed")).AssertStatusAsync(HttpStatusCode.OK);
            var total2 = await TotalAsync();
            Assert.Equal(total0 + 101, total2);
            var replay = (await app.AuditEntriesAsync(target))[0];
            Assert.Equal("done", (string?)replay["state"]);
            Assert.Equal(total2 != total1 ? "applied" : "no_change", (string?)replay["outcome"]);
        }
    }

    [Fact]
    public async Task Two_repairs_at_once_complete_each_intent_once_and_a_second_run_finds_nothing()
    {
        await using var app = await TestApp.StartAsync("audit-crash-repairs");
        var campaigns = new List<string>();
        for (var i = 0; i < 6; i++) campaigns.Add(await app.Operator().CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow())));
        await using var crashing = await CrashingAsync(app);
        foreach (var (campaign, i) in campaigns.Select((c, i) => (c, i)))
        {
            // Past the intent (read, intent: 2 requests), and for half of them past the campaign's write too.
            crashing.Crash.Arm(i % 2 == 0 ? 2 : 4);
            await crashing.As("olivia", "operator")
                .PutAsync($"/api/campaigns/{campaign}", Api.JsonContent(Api.Terms(app.Clock.GetUtcNow(), t => t["name"] = "killed")));
            crashing.Crash.Disarm();
        }
        var intents = (await app.AuditPagesAsync("actor=olivia")).Where(e => (string?)e["state"] == "intent").ToList();
        Assert.Equal(6, intents.Count);

        // Not before the grace: the calls might still be running.
        Assert.Equal(0, (int)(await RepairAsync(app))["Repaired"]!);
        app.Clock.Advance(PastGrace);
        var runs = await Task.WhenAll(RepairAsync(app), RepairAsync(app));
        Assert.Equal(6, runs.Sum(r => (int)r["Repaired"]!));
        Assert.Equal(0, (int)(await RepairAsync(app))["IntentsRead"]!);

        foreach (var campaign in campaigns)
        {
            var entry = Assert.Single(await app.AuditEntriesAsync("campaign/" + campaign), e => (string?)e["action"] == "update");
            Assert.Equal("repaired", (string?)entry["state"]);
            Assert.Null(entry["status"]);
            var name = (string?)(await (await app.Operator().GetAsync($"/api/campaigns/{campaign}")).AssertStatusAsync(HttpStatusCode.OK))["terms"]!["name"];
            Assert.Equal(name == "killed" ? "applied" : "no_change", (string?)entry["outcome"]);
        }
    }

    [Fact]
    public async Task An_intent_that_cannot_be_written_fails_the_call_with_503_before_anything_changes()
    {
        await using var app = await TestApp.StartAsync("audit-crash-intent");
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        await using var crashing = await CrashingAsync(app);
        crashing.Crash.Arm(1); // the target is read; the intent's write dies
        var response = await crashing.As("olivia", "operator").PostAsync($"/api/campaigns/{campaign}/pause", null);
        crashing.Crash.Disarm();
        await response.AssertProblemAsync(HttpStatusCode.ServiceUnavailable, "busy");
        var now = await (await app.Operator().GetAsync($"/api/campaigns/{campaign}")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("published", (string?)now["status"]);
        Assert.DoesNotContain(await app.AuditEntriesAsync("campaign/" + campaign), e => (string?)e["action"] == "pause");
    }
}
