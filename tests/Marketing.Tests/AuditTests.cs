using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Marketing.Functions.Audit;
using Marketing.Functions.Hosting;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The audit trail (docs/audit.md): every state-changing route is audited or says why not; every audited route leaves
/// exactly one completed entry per successful call, with the field-level diff; refusals are recorded as refused and change
/// nothing; the trail is read by approvers and admins only, newest first, paged and filtered.
/// </summary>
public sealed class AuditTests(TestApp app) : IClassFixture<TestApp>
{
    /// <summary>Roles whose state-changing calls may go unaudited: self-service and the order system's per-order transactions.</summary>
    private static readonly HashSet<string> UnauditedRoles = ["customer", "promoter", "order_system"];

    private static readonly string[] ChangingMethods = ["post", "put", "patch", "delete"];

    [Fact]
    public async Task Every_state_changing_route_in_the_OpenAPI_document_is_audited_or_deliberately_not()
    {
        var document = await (await app.Anonymous().GetAsync(Platform.OpenApiPath)).AssertStatusAsync(HttpStatusCode.OK);
        var endpoints = app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<HttpFunction>() is not null)
            .GroupBy(e => e.Metadata.GetMetadata<HttpFunction>()!.Name).ToDictionary(g => g.Key, g => g.First());
        var walked = 0;
        foreach (var (path, item) in document["paths"]!.AsObject())
        foreach (var (method, operation) in item!.AsObject())
        {
            if (!ChangingMethods.Contains(method)) continue;
            walked++;
            var name = (string)operation!["operationId"]!;
            var endpoint = endpoints[name];
            var audited = endpoint.Metadata.GetMetadata<AuditedRoute>();
            var notAudited = endpoint.Metadata.GetMetadata<NotAuditedRoute>();
            Assert.True(audited is not null ^ notAudited is not null, $"{name} ({method} {path}) is either .Audited(...) or .NotAudited(why)");
            var roles = operation["x-roles"]?.AsArray().Select(r => (string)r!).ToList() ?? [];
            if (notAudited is not null)
            {
                Assert.False(string.IsNullOrWhiteSpace(notAudited.Why), $"{name} says why it is not audited");
                Assert.True(roles.Count > 0 && roles.All(UnauditedRoles.Contains),
                    $"{name} is called by {string.Join(", ", roles)}: only customers', promoters' and the order system's calls may go unaudited");
            }
            else
            {
                Assert.False(string.IsNullOrWhiteSpace(audited!.Action));
                Assert.Contains(audited.Kind, Readers);
            }
        }
        Assert.True(walked >= 20, $"walked {walked} state-changing operations");
    }

    /// <summary>Every kind a route may name has its reader registered.</summary>
    private string[] Readers => [.. app.Services.GetServices<IAuditTarget>().Select(r => r.Kind)];

    // ---- one successful call per audited route ----------------------------------------------------------------------

/// <summary>What a scenario changed and who did it: the actor's sub and the one role their token carried.</summary>
    private sealed record Scenario(string Target, string Action, string Actor, string Role = "operator", string? Reason = null);

    private static readonly HttpClient Storage = new();
    private static readonly byte[] Pdf = Encoding.ASCII.GetBytes("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n");

    /// <summary>
    /// One successful call per audited route, keyed by function name; a new audited route must add its scenario here
    /// (the completeness assert below fails otherwise). Each answers the target it changed and the action expected.
    /// </summary>
    private static readonly Dictionary<string, Func<TestApp, HttpClient, string, Task<Scenario>>> Scenarios = new()
    {
        ["CreateCampaign"] = async (app, op, who) =>
        {
            var id = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
            return new("campaign/" + id, "create", who);
        },
        ["UpdateCampaign"] = async (app, op, who) =>
        {
            var id = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
            await (await op.PutAsync($"/api/campaigns/{id}", Api.JsonContent(Api.Terms(app.Clock.GetUtcNow(), t => t["name"] = "Renamed"))))
                .AssertStatusAsync(HttpStatusCode.OK);
            return new("campaign/" + id, "update", who);
        },
        ["PublishCampaign"] = async (app, op, who) =>
        {
            var id = await op.PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
            return new("campaign/" + id, "publish", who);
        },
        ["PauseCampaign"] = async (app, op, who) =>
        {
            var id = await op.PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
            await (await op.PostAsync($"/api/campaigns/{id}/pause", null)).AssertStatusAsync(HttpStatusCode.OK);
            return new("campaign/" + id, "pause", who);
        },
        ["ResumeCampaign"] = async (app, op, who) =>
        {
            var id = await op.PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
            await (await op.PostAsync($"/api/campaigns/{id}/pause", null)).AssertStatusAsync(HttpStatusCode.OK);
            await (await op.PostAsync($"/api/campaigns/{id}/resume", null)).AssertStatusAsync(HttpStatusCode.OK);
            return new("campaign/" + id, "resume", who);
        },
        ["EndCampaign"] = async (app, op, who) =>
        {
            var id = await op.PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
            await (await op.PostAsync($"/api/campaigns/{id}/end", null)).AssertStatusAsync(HttpStatusCode.OK);
            return new("campaign/" + id, "end", who);
        },
        ["TopUpBudget"] = async (app, op, who) =>
        {
            var id = await op.PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["budget"] = 100_000));
            await (await TopUpAsync(op, id, Guid.NewGuid().ToString(), 101, "Weekend traffic")).AssertStatusAsync(HttpStatusCode.OK);
            return new("budget/" + id, "top-up", who);
        },
        ["SetCommissionRules"] = async (app, op, who) =>
        {
            // Far in the test clock's future: no other test's payments fall under it.
            var from = new DateTimeOffset(2031, 1, 1, 0, 0, 0, TimeSpan.Zero).AddMinutes(Random.Shared.Next(1, 500_000));
            await (await op.PutAsync("/api/commission-rules", Api.JsonContent(new JsonObject
            {
                ["effectiveFrom"] = Api.Instant(from),
                ["level1"] = new JsonObject { ["defaultBps"] = 1000 },
                ["level2"] = new JsonObject { ["defaultBps"] = 300 },
            }))).AssertStatusAsync(HttpStatusCode.OK);
            return new("commission-rules/" + Api.Instant(from), "set", who);
        },
        ["CreatePayoutBatch"] = async (app, op, who) =>
        {
            var batch = Api.NewId("b");
            var response = await op.PostAsync("/api/payouts", Api.JsonContent(new { batchId = batch, minimum = 1_000_000_000 }));
            Assert.Equal(HttpStatusCode.Created, response.StatusCode); // the batch's CSV
            return new("payout-batch/" + batch, "create", who);
        },
        ["StartMediaUpload"] = async (app, op, who) =>
        {
            var id = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
            var media = await StartUploadAsync(op, id, Pdf.Length);
            return new($"media/{id}/{(string)media["mediaId"]!}", "start-upload", who);
        },
        ["CompleteMediaUpload"] = async (app, op, who) =>
        {
            var id = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
            var media = await StartUploadAsync(op, id, Pdf.Length);
            var put = new HttpRequestMessage(HttpMethod.Put, (string)media["uploadUrl"]!) { Content = new ByteArrayContent(Pdf) };
            put.Content.Headers.ContentType = new("application/pdf");
            put.Headers.Add("x-ms-blob-type", "BlockBlob");
            Assert.Equal(HttpStatusCode.Created, (await Storage.SendAsync(put)).StatusCode);
            await (await op.PostAsync($"/api/campaigns/{id}/media/{(string)media["mediaId"]!}/complete", null)).AssertStatusAsync(HttpStatusCode.OK);
            return new($"media/{id}/{(string)media["mediaId"]!}", "complete-upload", who);
        },
        ["SubmitCampaign"] = async (app, op, who) =>
        {
            var id = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
            await (await op.PostAsync($"/api/campaigns/{id}/submit", null)).AssertStatusAsync(HttpStatusCode.OK);
            return new("campaign/" + id, "submit", who);
        },
        ["ApproveCampaign"] = async (app, op, who) =>
        {
            var (id, checker) = await SubmittedAsync(app, op);
            await (await app.As(checker, "approver").PostAsync($"/api/campaigns/{id}/approve", null)).AssertStatusAsync(HttpStatusCode.OK);
            return new("campaign/" + id, "approve", checker, "approver");
        },
        ["RejectCampaign"] = async (app, op, who) =>
        {
            var (id, checker) = await SubmittedAsync(app, op);
            await (await app.As(checker, "approver").PostAsync($"/api/campaigns/{id}/reject", Api.JsonContent(new { reason = "Over policy" })))
                .AssertStatusAsync(HttpStatusCode.OK);
            return new("campaign/" + id, "reject", checker, "approver", "Over policy");
        },
        ["ReturnCampaign"] = async (app, op, who) =>
        {
            var (id, checker) = await SubmittedAsync(app, op);
            await (await app.As(checker, "approver").PostAsync($"/api/campaigns/{id}/return", Api.JsonContent(new { comments = "Name the categories" })))
                .AssertStatusAsync(HttpStatusCode.OK);
            return new("campaign/" + id, "return", checker, "approver", "Name the categories");
        },
        ["ApproveTopUp"] = async (app, op, who) =>
        {
            var (id, key) = await RequestedTopUpAsync(app, op);
            var checker = Api.NewId("ap");
            await (await app.As(checker, "approver").PostAsync($"/api/campaigns/{id}/budget/top-ups/{key}/approve", null)).AssertStatusAsync(HttpStatusCode.OK);
            return new($"top-up/{id}/{key}", "approve", checker, "approver");
        },
        ["RejectTopUp"] = async (app, op, who) =>
        {
            var (id, key) = await RequestedTopUpAsync(app, op);
            var checker = Api.NewId("ap");
            await (await app.As(checker, "approver").PostAsync($"/api/campaigns/{id}/budget/top-ups/{key}/reject", Api.JsonContent(new { reason = "Not this week" })))
                .AssertStatusAsync(HttpStatusCode.OK);
            return new($"top-up/{id}/{key}", "reject", checker, "approver", "Not this week");
        },
        ["ApprovePayoutBatch"] = async (app, op, who) =>
        {
            var batch = await WaitingBatchAsync(app, who);
            var checker = Api.NewId("fi");
            var paid = await app.As(checker, "finance").PostAsync($"/api/payouts/{batch}/approve", null);
            Assert.Equal(HttpStatusCode.OK, paid.StatusCode); // the batch's CSV
            return new("payout-batch/" + batch, "approve", checker, "finance");
        },
        ["RejectPayoutBatch"] = async (app, op, who) =>
        {
            var batch = await WaitingBatchAsync(app, who);
            var checker = Api.NewId("fi");
            await (await app.As(checker, "finance").PostAsync($"/api/payouts/{batch}/reject", Api.JsonContent(new { reason = "Check refunds" })))
                .AssertStatusAsync(HttpStatusCode.OK);
            return new("payout-batch/" + batch, "reject", checker, "finance", "Check refunds");
        },
        ["DeleteMedia"] = async (app, op, who) =>
        {
            var id = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
            var media = await StartUploadAsync(op, id, Pdf.Length);
            await (await op.DeleteAsync($"/api/campaigns/{id}/media/{(string)media["mediaId"]!}")).AssertStatusAsync(HttpStatusCode.NoContent);
            return new($"media/{id}/{(string)media["mediaId"]!}", "delete", who);
        },
    };

    /// <summary>A submitted draft, and an approver who had no hand in it.</summary>
    private static async Task<(string Id, string Checker)> SubmittedAsync(TestApp app, HttpClient op)
    {
        var id = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        await (await op.PostAsync($"/api/campaigns/{id}/submit", null)).AssertStatusAsync(HttpStatusCode.OK);
        return (id, Api.NewId("ap"));
    }

    /// <summary>A top-up over the scenario app's threshold (<see cref="TopUpThreshold"/>): a request waiting for an approver.</summary>
    private static async Task<(string Id, string Key)> RequestedTopUpAsync(TestApp app, HttpClient op)
    {
        var id = await op.PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["budget"] = 100_000));
        // A key with capitals, a dot and a colon, as Idempotency-Keys may have (our ids may not): still audited.
        var key = "Week49.TopUp:" + Guid.NewGuid().ToString("N").ToUpperInvariant()[..12];
        await (await TopUpAsync(op, id, key, TopUpThreshold + 1, "Weekend traffic")).AssertStatusAsync(HttpStatusCode.Accepted);
        return (id, key);
    }

    /// <summary>A payout batch over the scenario app's threshold (<see cref="PayoutThreshold"/>), waiting for finance.</summary>
    private static async Task<string> WaitingBatchAsync(TestApp app, string who)
    {
        await PayoutApprovalTests.TwoEarnersAsync(app, 8000, 5000); // 800 + 500 available, over 1,000
        var op = app.As(who, "operator"); // a token minted on the clock as it is after the holding period
        var batch = Api.NewId("b");
        await (await op.PostAsync("/api/payouts", Api.JsonContent(new { batchId = batch, minimum = 1 }))).AssertStatusAsync(HttpStatusCode.Accepted);
        return batch;
    }

    private const long TopUpThreshold = 10_000;
    private const long PayoutThreshold = 1_000;

    private static async Task<JsonNode> StartUploadAsync(HttpClient op, string campaign, long length)
        => await (await op.PostAsync($"/api/campaigns/{campaign}/media", Api.JsonContent(new { kind = "rules", contentType = "application/pdf", length })))
            .AssertStatusAsync(HttpStatusCode.Created);

    public static Task<HttpResponseMessage> TopUpAsync(HttpClient op, string campaign, string key, long amount, string reason)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{campaign}/budget") { Content = Api.JsonContent(new { amount, reason }) };
        request.Headers.Add("Idempotency-Key", key);
        return op.SendAsync(request);
    }

    [Fact]
    public void Every_audited_route_has_a_scenario_below()
    {
        var audited = app.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .Where(e => e.Metadata.GetMetadata<AuditedRoute>() is not null)
            .Select(e => e.Metadata.GetMetadata<HttpFunction>()!.Name).Distinct().Order().ToArray();
        Assert.Equal(audited, Scenarios.Keys.Order().ToArray());
    }

    public static TheoryData<string> AuditedFunctions() => new(Scenarios.Keys);

    [Theory]
    [MemberData(nameof(AuditedFunctions))]
    public async Task A_successful_call_of_each_audited_route_leaves_exactly_one_completed_entry(string function)
    {
        // Azurite judges upload links by the real clock: media scenarios sign with the app's, so it must be now.
        await using var own = await TestApp.StartAsync("audit-routes", b => b
            .UseSetting("Approvals:TopUpThreshold", TopUpThreshold.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .UseSetting("Approvals:PayoutThreshold", PayoutThreshold.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        own.Clock.Set(DateTimeOffset.UtcNow);
        var who = Api.NewId("op");
        var scenario = await Scenarios[function](own, own.As(who, "operator"), who);

        var entries = await own.AuditEntriesAsync(scenario.Target);
        var mine = entries.Where(e => (string?)e["action"] == scenario.Action).ToList();
        var entry = Assert.Single(mine);
        Assert.Equal(scenario.Target, (string?)entry["target"]);
        Assert.Equal(scenario.Target, $"{entry["kind"]}/{entry["targetId"]}");
        Assert.Equal(scenario.Actor, (string?)entry["actor"]!["sub"]);
        Assert.Equal([scenario.Role], entry["actor"]!["roles"]!.AsArray().Select(r => (string)r!));
        if (scenario.Reason is not null) Assert.Equal(scenario.Reason, (string?)entry["reason"]);
        Assert.Equal("done", (string?)entry["state"]);
        Assert.Equal("applied", (string?)entry["outcome"]);
        Assert.InRange((int)entry["status"]!, 200, 299);
        Assert.False(string.IsNullOrEmpty((string?)entry["requestId"]));
        Assert.NotNull(entry["completedAt"]);
        Assert.NotEmpty(AuditTrailReader.Changes(entry));
        AuditTrailReader.AssertNoIntentLeft(entries);
    }

    // ---- what an entry says ------------------------------------------------------------------------------------------

    [Fact]
    public async Task An_update_records_exactly_the_changed_fields_with_their_values_before_and_after()
    {
        var who = Api.NewId("op");
        var op = app.As(who, "operator");
        var now = app.Clock.GetUtcNow();
        var id = await op.CreateCampaignAsync(Api.Terms(now));
        var update = new HttpRequestMessage(HttpMethod.Put, $"/api/campaigns/{id}")
        {
            Content = Api.JsonContent(Api.Terms(now, t =>
            {
                t["name"] = "Spend 200 save 50";
                t["amountOff"] = 5000;
                t["categories"] = new JsonArray("shoes");
            })),
        };
        await (await op.SendAsync(update)).AssertStatusAsync(HttpStatusCode.OK);

        var entry = Assert.Single(await app.AuditEntriesAsync("campaign/" + id), e => (string?)e["action"] == "update");
        var changes = AuditTrailReader.Changes(entry);
        Assert.Equal(("\"Spend 100 save 20\"", "\"Spend 200 save 50\""), changes["terms.name"]);
        Assert.Equal(("2000", "5000"), changes["terms.amountOff"]);
        Assert.Equal(("[]", "[\"shoes\"]"), changes["terms.categories"]);
        // Nothing else moved but the campaign's own bookkeeping of the write (its updatedAt stands still on the test clock).
        Assert.Equal(("1", "2"), changes["revision"]);
        Assert.Empty(changes.Keys.Except(["terms.name", "terms.amountOff", "terms.categories", "revision", "updatedAt", "updatedBy"]));
        Assert.Equal("Spend 100 save 20", (string?)entry["before"]!["terms"]!["name"]);
        Assert.Equal("Spend 200 save 50", (string?)entry["after"]!["terms"]!["name"]);
        Assert.Null(entry["before"]!["_etag"]);
        Assert.Null(entry["after"]!["writeStamp"]);

        // A create's entry has nothing before it.
        var created = Assert.Single(await app.AuditEntriesAsync("campaign/" + id), e => (string?)e["action"] == "create");
        Assert.Null(created["before"]);
        Assert.Equal("draft", (string?)created["after"]!["status"]);
    }

    [Fact]
    public async Task A_top_up_records_its_reason_and_the_budget_total_before_and_after()
    {
        var op = app.Operator(Api.NewId("op"));
        var id = await op.PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["budget"] = 50_000));
        await (await TopUpAsync(op, id, Guid.NewGuid().ToString(), 700, "Weekend traffic is above plan")).AssertStatusAsync(HttpStatusCode.OK);

        var entry = Assert.Single(await app.AuditEntriesAsync("budget/" + id));
        Assert.Equal("Weekend traffic is above plan", (string?)entry["reason"]);
        Assert.Equal(("50000", "50700"), AuditTrailReader.Changes(entry)["total"]);

        // Over the approval threshold (1,000,000 by default) the top-up is a request: its entry shows the money requested.
        await (await TopUpAsync(op, id, Guid.NewGuid().ToString(), 2_000_000, "Launch week")).AssertStatusAsync(HttpStatusCode.Accepted);
        var request = Assert.Single(await app.AuditEntriesAsync("budget/" + id), e => (string?)e["reason"] == "Launch week");
        Assert.Equal("applied", (string?)request["outcome"]);
        var changes = AuditTrailReader.Changes(request);
        Assert.Equal(("0", "2000000"), changes["pendingTopUps"]);
        Assert.False(changes.ContainsKey("total"));
    }

    [Fact]
    public async Task A_refused_call_leaves_a_refused_entry_with_its_problem_type_and_no_change()
    {
        var who = Api.NewId("op");
        var op = app.As(who, "operator");
        var id = await op.PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        await (await op.PostAsync($"/api/campaigns/{id}/end", null)).AssertStatusAsync(HttpStatusCode.OK);
        var ended = await (await op.GetAsync($"/api/campaigns/{id}")).AssertStatusAsync(HttpStatusCode.OK);

        await (await op.PostAsync($"/api/campaigns/{id}/pause", null)).AssertProblemAsync(HttpStatusCode.Conflict, "invalid-transition");
        await (await op.PutAsync($"/api/campaigns/{id}", Api.JsonContent(Api.Terms(app.Clock.GetUtcNow(), t => t["name"] = "Too late"))))
            .AssertProblemAsync(HttpStatusCode.Conflict, "campaign-not-editable");

        var entries = await app.AuditEntriesAsync("campaign/" + id);
        foreach (var action in new[] { "pause", "update" })
        {
            var refused = Assert.Single(entries, e => (string?)e["action"] == action);
            Assert.Equal("refused", (string?)refused["outcome"]);
            Assert.Equal("done", (string?)refused["state"]);
            Assert.Equal(409, (int)refused["status"]!);
            Assert.Equal(action == "pause" ? "urn:marketing:problem:invalid-transition" : "urn:marketing:problem:campaign-not-editable",
                (string?)refused["problemType"]);
            Assert.Empty(AuditTrailReader.Changes(refused));
        }
        var after = await (await op.GetAsync($"/api/campaigns/{id}")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(ended.ToJsonString(), after.ToJsonString());

        // Refused before it named its target (a create with a bad body): one refused entry, under its kind and the day.
        await (await op.PostAsync("/api/campaigns", Api.JsonContent(new { name = "" }))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        var bad = Assert.Single(await app.AuditEntriesAsync("campaign/" + Marketing.Functions.Audit.AuditTrail.UnnamedTarget(app.Clock.GetUtcNow()), actor: who));
        Assert.Equal(("create", "refused", 400), ((string?)bad["action"], (string?)bad["outcome"], (int)bad["status"]!));
    }

    [Fact]
    public async Task A_repeated_step_that_changes_nothing_is_recorded_as_no_change()
    {
        var op = app.Operator(Api.NewId("op"));
        var id = await op.PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        await (await op.PostAsync($"/api/campaigns/{id}/end", null)).AssertStatusAsync(HttpStatusCode.OK);
        await (await op.PostAsync($"/api/campaigns/{id}/end", null)).AssertStatusAsync(HttpStatusCode.OK);

        var ends = (await app.AuditEntriesAsync("campaign/" + id)).Where(e => (string?)e["action"] == "end").ToList();
        Assert.Equal(["applied", "no_change"], ends.Select(e => (string)e["outcome"]!).Order());
        Assert.Empty(AuditTrailReader.Changes(ends.Single(e => (string?)e["outcome"] == "no_change")));
    }

    [Fact]
    public async Task An_audited_update_costs_two_reads_of_the_campaign_and_two_writes_of_its_entry_beyond_its_own_three_requests()
    {
        var (campaigns, audit) = (new ContainerTraffic("campaigns"), new ContainerTraffic(AuditStore.Spec.Name));
        await using var own = await TestApp.StartAsync(customize: b => b.ConfigureServices(s =>
        {
            s.AddSingleton<Microsoft.Azure.Cosmos.RequestHandler>(campaigns);
            s.AddSingleton<Microsoft.Azure.Cosmos.RequestHandler>(audit);
        }));
        var op = own.Operator(Api.NewId("op"));
        var id = await op.CreateCampaignAsync(Api.Terms(own.Clock.GetUtcNow()));
        campaigns.Reset();
        audit.Reset();
        await (await op.PutAsync($"/api/campaigns/{id}", Api.JsonContent(Api.Terms(own.Clock.GetUtcNow(), t => t["name"] = "Renamed"))))
            .AssertStatusAsync(HttpStatusCode.OK);
        // Its own: read, replace, the catalog's change marker. The audit's: the campaign before and after, the intent and its completion.
        Assert.Equal((3L + 2L, 2L), (campaigns.Requests, audit.Requests));
    }

    // ---- reading the trail -------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("approver", HttpStatusCode.OK)]
    [InlineData("admin", HttpStatusCode.OK)]
    [InlineData("operator", HttpStatusCode.Forbidden)]
    [InlineData("finance", HttpStatusCode.Forbidden)]
    [InlineData("customer", HttpStatusCode.Forbidden)]
    [InlineData(null, HttpStatusCode.Unauthorized)]
    public async Task Only_approvers_and_admins_read_the_trail(string? role, HttpStatusCode expected)
    {
        var client = role is null ? app.Anonymous() : app.As(Api.NewId("u"), role);
        var response = await client.GetAsync("/api/audit?limit=1");
        if (expected == HttpStatusCode.OK) await response.AssertStatusAsync(HttpStatusCode.OK);
        else await response.AssertProblemAsync(expected, expected == HttpStatusCode.Forbidden ? "forbidden" : "unauthorized");
    }

    [Fact]
    public async Task No_route_changes_or_deletes_an_entry()
    {
        foreach (var method in new[] { HttpMethod.Post, HttpMethod.Put, HttpMethod.Patch, HttpMethod.Delete })
        {
            var response = await app.As("root", "admin").SendAsync(new HttpRequestMessage(method, "/api/audit"));
            await response.AssertProblemAsync(HttpStatusCode.MethodNotAllowed, "method-not-allowed");
            var one = await app.As("root", "admin").SendAsync(new HttpRequestMessage(method, "/api/audit/aud_x"));
            await one.AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        }
    }

    [Fact]
    public async Task Every_bad_filter_is_reported_at_once()
    {
        var response = await app.Auditor().GetAsync("/api/audit?target=coupon/x&from=yesterday&to=2026-11-21T08:00:00&limit=0");
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.Equal(["from", "limit", "target", "to"], problem["errors"]!.AsObject().Select(p => p.Key).Order());

        var reversed = await app.Auditor().GetAsync("/api/audit?from=2026-11-22T00:00:00Z&to=2026-11-21T00:00:00Z");
        Assert.Equal(["to"], (await reversed.AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed"))["errors"]!.AsObject().Select(p => p.Key));

        var foreign = await app.Auditor().GetAsync("/api/audit?continuationToken=v1.AAAA");
        await foreign.AssertProblemAsync(HttpStatusCode.BadRequest, "invalid-page-token");
    }

    [Fact]
    public async Task The_trail_pages_newest_first_and_filters_by_target_actor_and_time_within_and_across_partitions()
    {
        await using var own = await TestApp.StartAsync("audit-paging");
        var (olivia, oscar) = (Api.NewId("olivia"), Api.NewId("oscar"));
        var t0 = own.Clock.GetUtcNow();
        var campaign = await own.As(olivia, "operator").CreateCampaignAsync(Api.Terms(t0));
        var other = await own.As(oscar, "operator").CreateCampaignAsync(Api.Terms(t0));
        for (var i = 1; i <= 5; i++)
        {
            own.Clock.Advance(TimeSpan.FromMinutes(1));
            var who = i % 2 == 1 ? olivia : oscar;
            await (await own.As(who, "operator").PutAsync($"/api/campaigns/{campaign}", Api.JsonContent(Api.Terms(t0, t => t["name"] = $"v{i}"))))
                .AssertStatusAsync(HttpStatusCode.OK);
        }

        // One target: its partition, newest first, two at a time.
        var target = "campaign/" + campaign;
        var paged = await own.AuditPagesAsync("target=" + Uri.EscapeDataString(target), limit: 2);
        Assert.Equal(6, paged.Count);
        Assert.Equal(["v5", "v4", "v3", "v2", "v1", "Spend 100 save 20"], paged.Select(e => (string)e["after"]!["terms"]!["name"]!));
        Assert.Equal(paged.Select(e => (string)e["occurredAt"]!).OrderDescending(StringComparer.Ordinal), paged.Select(e => (string)e["occurredAt"]!));

        // An actor across targets (across partitions), newest first, paged.
        var byOscar = await own.AuditPagesAsync("actor=" + oscar, limit: 1);
        Assert.Equal([("update", "v4"), ("update", "v2"), ("create", "Spend 100 save 20")],
            byOscar.Select(e => ((string)e["action"]!, (string)e["after"]!["terms"]!["name"]!)));
        Assert.Equal(["campaign/" + campaign, "campaign/" + campaign, "campaign/" + other], byOscar.Select(e => (string)e["target"]!));

        // A time window: from inclusive, to exclusive.
        var window = $"from={Uri.EscapeDataString(Api.Instant(t0.AddMinutes(2)))}&to={Uri.EscapeDataString(Api.Instant(t0.AddMinutes(4)))}";
        Assert.Equal(["v3", "v2"], (await own.AuditPagesAsync("target=" + Uri.EscapeDataString(target) + "&" + window)).Select(e => (string)e["after"]!["terms"]!["name"]!));
        Assert.Equal(["v3", "v2"], (await own.AuditPagesAsync(window, limit: 1)).Select(e => (string)e["after"]!["terms"]!["name"]!));
        Assert.Equal(["v3"], (await own.AuditPagesAsync($"actor={olivia}&{window}")).Select(e => (string)e["after"]!["terms"]!["name"]!));
    }
}
