using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Tests.Support;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// Maker-checker on campaigns (docs/approvals.md, "Campaigns"): draft → submitted → approved → published, reject and return
/// back to draft, four eyes (nobody decides a revision they submitted or edited, admins included), an edit after approval
/// voids it, publishing needs an approval, one decision per revision, and the approvers' queue with its diff.
/// </summary>
public sealed class CampaignApprovalTests(TestApp app) : IClassFixture<TestApp>
{
    private DateTimeOffset Now => app.Clock.GetUtcNow();

    private HttpClient Approver(string sub = "avery") => app.As(sub, "approver");

    private static string[] Names(JsonNode? array) => [.. array!.AsArray().Select(m => (string)m!)];

    private static Task<HttpResponseMessage> Post(HttpClient client, string id, string step, object? body = null)
        => client.PostAsync($"/api/campaigns/{id}/{step}", body is null ? null : Api.JsonContent(body));

    private async Task<JsonNode> GetAsync(string id)
        => await (await app.Operator().GetAsync($"/api/campaigns/{id}")).AssertStatusAsync(HttpStatusCode.OK);

    private async Task<string> SubmittedAsync(HttpClient maker, JsonObject? terms = null)
    {
        var id = await maker.CreateCampaignAsync(terms ?? Api.Terms(Now));
        await (await Post(maker, id, "submit")).AssertStatusAsync(HttpStatusCode.OK);
        return id;
    }

    [Fact]
    public async Task A_campaign_goes_draft_submitted_approved_published_and_records_who_did_what()
    {
        var op = app.Operator("olivia");
        var id = await op.CreateCampaignAsync(Api.Terms(Now));
        var draft = await GetAsync(id);
        Assert.Equal((1, "olivia"), ((int)draft["revision"]!, (string?)draft["makers"]![0]));
        Assert.Null(draft["approval"]);

        var submitted = await (await Post(op, id, "submit")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(("submitted", "olivia"), ((string?)submitted["status"], (string?)submitted["submittedBy"]));
        // Submitting again converges (a retry): the same answer, nothing changes.
        Assert.Equal("submitted", (string?)(await (await Post(op, id, "submit", new { })).AssertStatusAsync(HttpStatusCode.OK))["status"]);

        var approved = await (await Post(Approver(), id, "approve", new { revision = 1 })).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("approved", (string?)approved["status"]);
        Assert.Equal((1, "avery"), ((int)approved["approval"]!["revision"]!, (string?)approved["approval"]!["by"]));
        Assert.Equal(Api.Instant(Now), Api.Instant(DateTimeOffset.Parse((string)approved["approval"]!["at"]!)));
        // Approving again: 200 with the one approval there is.
        var again = await (await Post(Approver("bea"), id, "approve")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("avery", (string?)again["approval"]!["by"]);

        var published = await (await Post(op, id, "publish")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("published", (string?)published["status"]);
        Assert.Equal("avery", (string?)published["approval"]!["by"]);
        await (await app.Customer(Api.NewId("c")).ClaimAsync(id)).AssertStatusAsync(HttpStatusCode.Created);
    }

    [Fact]
    public async Task Publishing_without_an_approval_of_the_current_revision_is_409_approval_required()
    {
        var op = app.Operator();
        var id = await op.CreateCampaignAsync(Api.Terms(Now));
        var fromDraft = await (await Post(op, id, "publish")).AssertProblemAsync(HttpStatusCode.Conflict, "approval-required");
        Assert.Contains("submit", (string?)fromDraft["detail"]);
        await (await Post(op, id, "submit")).AssertStatusAsync(HttpStatusCode.OK);
        await (await Post(op, id, "publish")).AssertProblemAsync(HttpStatusCode.Conflict, "approval-required");
        Assert.Equal("submitted", (string?)(await GetAsync(id))["status"]);
        // Nothing was prepared for claims either.
        Assert.Null(await app.Services.GetRequiredService<StockStore>().FindAsync(id));
        await (await app.Customer(Api.NewId("c")).ClaimAsync(id)).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
    }

    [Fact]
    public async Task Reject_and_return_send_the_revision_back_to_draft_with_the_approvers_words()
    {
        var op = app.Operator();
        var id = await SubmittedAsync(op);

        var rejected = await (await Post(Approver(), id, "reject", new { reason = "Over this quarter's discount policy." })).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("draft", (string?)rejected["status"]);
        var review = rejected["review"]!;
        Assert.Equal(("rejected", 1, "avery", "Over this quarter's discount policy."),
            ((string?)review["outcome"], (int)review["revision"]!, (string?)review["by"], (string?)review["reason"]));
        // The same decision again converges; another decision of the decided revision is refused.
        await (await Post(Approver("bea"), id, "reject", new { reason = "Agreed." })).AssertStatusAsync(HttpStatusCode.OK);
        await (await Post(Approver(), id, "return", new { comments = "Change it." })).AssertProblemAsync(HttpStatusCode.Conflict, "approval-not-pending");
        await (await Post(Approver(), id, "approve")).AssertProblemAsync(HttpStatusCode.Conflict, "approval-not-pending");
        await (await Post(op, id, "publish")).AssertProblemAsync(HttpStatusCode.Conflict, "approval-required");

        var resubmitted = await (await Post(op, id, "submit")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Null(resubmitted["review"]);
        var returned = await (await Post(Approver(), id, "return", new { comments = "Name the categories." })).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(("draft", "returned", "Name the categories."),
            ((string?)returned["status"], (string?)returned["review"]!["outcome"], (string?)returned["review"]!["reason"]));
    }

    [Fact]
    public async Task Impossible_decisions_and_submissions_are_409_invalid_transition()
    {
        var op = app.Operator();
        var draft = await op.CreateCampaignAsync(Api.Terms(Now));
        foreach (var (step, body) in new (string, object?)[] { ("approve", null), ("reject", new { reason = "No." }), ("return", new { comments = "Why?" }) })
            await (await Post(Approver(), draft, step, body)).AssertProblemAsync(HttpStatusCode.Conflict, "invalid-transition");

        var published = await op.PublishedCampaignAsync(Api.Terms(Now));
        await (await Post(op, published, "submit")).AssertProblemAsync(HttpStatusCode.Conflict, "invalid-transition");
        await (await Post(Approver("bea"), published, "approve")).AssertProblemAsync(HttpStatusCode.Conflict, "invalid-transition");
        await (await Post(Approver("bea"), published, "reject", new { reason = "Too late." })).AssertProblemAsync(HttpStatusCode.Conflict, "invalid-transition");

        var approved = await op.CreateCampaignAsync(Api.Terms(Now));
        await op.ApprovedCampaignAsync(approved);
        await (await Post(op, approved, "submit")).AssertProblemAsync(HttpStatusCode.Conflict, "invalid-transition");

        await (await Post(op, "cmp_nope", "submit")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        await (await Post(Approver(), "cmp_nope", "approve")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
    }

    [Fact]
    public async Task Nobody_decides_a_revision_they_submitted_or_edited_not_even_an_admin()
    {
        // The submitter, holding both roles.
        var sam = app.As("sam", "operator", "approver");
        var id = await app.Operator("olivia").CreateCampaignAsync(Api.Terms(Now));
        await (await Post(sam, id, "submit")).AssertStatusAsync(HttpStatusCode.OK);
        var problem = await (await Post(sam, id, "approve")).AssertProblemAsync(HttpStatusCode.Forbidden, "four-eyes");
        Assert.Contains("sam", (string?)problem["detail"]);
        await (await Post(sam, id, "reject", new { reason = "Mine." })).AssertProblemAsync(HttpStatusCode.Forbidden, "four-eyes");
        await (await Post(sam, id, "return", new { comments = "Mine." })).AssertProblemAsync(HttpStatusCode.Forbidden, "four-eyes");
        // The creator, who got the approver role since.
        await (await Post(app.As("olivia", "approver"), id, "approve")).AssertProblemAsync(HttpStatusCode.Forbidden, "four-eyes");

        // An editor of the submitted revision (not its creator nor its submitter).
        var edited = await app.Operator("olivia").CreateCampaignAsync(Api.Terms(Now));
        var eddie = app.As("eddie", "operator", "approver");
        await (await eddie.PutAsync($"/api/campaigns/{edited}", Api.JsonContent(Api.Terms(Now, t => t["amountOff"] = 2500)))).AssertStatusAsync(HttpStatusCode.OK);
        await (await Post(app.Operator("olivia"), edited, "submit")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(new[] { "olivia", "eddie" }, Names((await GetAsync(edited))["makers"]!));
        await (await Post(eddie, edited, "approve")).AssertProblemAsync(HttpStatusCode.Forbidden, "four-eyes");
        Assert.Equal("submitted", (string?)(await GetAsync(edited))["status"]);

        // An admin may approve, never their own work; another admin may.
        var root = app.As("root", "admin");
        var own = await SubmittedAsync(root);
        await (await Post(root, own, "approve")).AssertProblemAsync(HttpStatusCode.Forbidden, "four-eyes");
        var approved = await (await Post(app.As("root-2", "admin"), own, "approve")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("root-2", (string?)approved["approval"]!["by"]);
        // Operators are not approvers at all: that is the role check (403 forbidden), not four eyes.
        await (await Post(app.Operator("otto"), edited, "approve")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await Post(Approver(), await app.Operator().CreateCampaignAsync(Api.Terms(Now)), "submit")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
    }

    [Fact]
    public async Task Makers_count_since_the_last_approval_and_a_rejection_keeps_them()
    {
        var id = await app.Operator("olivia").CreateCampaignAsync(Api.Terms(Now));
        await app.Operator("olivia").ApprovedCampaignAsync(id);
        // The approved revision was olivia's; the edit after it is peter's alone.
        var peter = app.As("peter", "operator", "approver");
        var edited = await (await peter.PutAsync($"/api/campaigns/{id}", Api.JsonContent(Api.Terms(Now, t => t["name"] = "Renamed")))).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(new[] { "peter" }, Names(edited["makers"]!));
        await (await Post(app.Operator("olivia"), id, "submit")).AssertStatusAsync(HttpStatusCode.OK);
        await (await Post(Approver(), id, "reject", new { reason = "No." })).AssertStatusAsync(HttpStatusCode.OK);
        // Rejected and resubmitted by someone else: peter still made this revision.
        await (await Post(app.Operator("quinn"), id, "submit")).AssertStatusAsync(HttpStatusCode.OK);
        await (await Post(peter, id, "approve")).AssertProblemAsync(HttpStatusCode.Forbidden, "four-eyes");
        // olivia made the approved revision and submitted an earlier submission of this one, but neither made nor submits it now.
        await (await Post(app.As("olivia", "approver"), id, "approve")).AssertStatusAsync(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_revision_has_at_most_fifty_makers_and_a_fifty_first_is_refused_rather_than_forgotten()
    {
        var id = await app.Operator("maker-0").CreateCampaignAsync(Api.Terms(Now));
        for (var i = 1; i < Campaign.MaxMakers; i++)
            await (await app.Operator($"maker-{i}").PutAsync($"/api/campaigns/{id}", Api.JsonContent(Api.Terms(Now, t => t["totalQuantity"] = 100 + i))))
                .AssertStatusAsync(HttpStatusCode.OK);
        var full = await GetAsync(id);
        Assert.Equal((Campaign.MaxMakers, Campaign.MaxMakers), (full["makers"]!.AsArray().Count, (int)full["revision"]!));
        // One of them may still edit; a new person may not.
        await (await app.Operator("maker-7").PutAsync($"/api/campaigns/{id}", Api.JsonContent(Api.Terms(Now, t => t["totalQuantity"] = 7)))).AssertStatusAsync(HttpStatusCode.OK);
        var refused = await (await app.Operator("maker-50").PutAsync($"/api/campaigns/{id}", Api.JsonContent(Api.Terms(Now, t => t["totalQuantity"] = 8))))
            .AssertProblemAsync(HttpStatusCode.Conflict, "campaign-not-editable");
        Assert.Contains("50", (string?)refused["detail"]);
        Assert.Equal(7, (int)(await GetAsync(id))["terms"]!["totalQuantity"]!);
    }

    [Fact]
    public async Task An_edit_after_approval_voids_it_and_a_submitted_campaign_cannot_be_edited()
    {
        var op = app.Operator("olivia");
        var id = await SubmittedAsync(op);
        var inReview = await (await op.PutAsync($"/api/campaigns/{id}", Api.JsonContent(Api.Terms(Now, t => t["amountOff"] = 3000))))
            .AssertProblemAsync(HttpStatusCode.Conflict, "campaign-not-editable");
        Assert.Contains("return", (string?)inReview["detail"]);
        await (await Post(Approver(), id, "approve")).AssertStatusAsync(HttpStatusCode.OK);

        // The same terms again change nothing: still approved.
        var same = await (await op.PutAsync($"/api/campaigns/{id}", Api.JsonContent(Api.Terms(Now)))).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(("approved", 1), ((string?)same["status"], (int)same["revision"]!));

        var edited = await (await app.Operator("oscar").PutAsync($"/api/campaigns/{id}", Api.JsonContent(Api.Terms(Now, t => t["amountOff"] = 3000))))
            .AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(("draft", 2), ((string?)edited["status"], (int)edited["revision"]!));
        Assert.Null(edited["approval"]);
        Assert.Equal(new[] { "oscar" }, Names(edited["makers"]!));
        await (await Post(op, id, "publish")).AssertProblemAsync(HttpStatusCode.Conflict, "approval-required");
    }

    [Fact]
    public async Task Published_edits_need_no_new_approval_and_count_as_revisions()
    {
        var op = app.Operator();
        var id = await op.PublishedCampaignAsync(Api.Terms(Now));
        var grown = await (await op.PutAsync($"/api/campaigns/{id}", Api.JsonContent(Api.Terms(Now, t => t["totalQuantity"] = 500)))).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(("published", 2, 1), ((string?)grown["status"], (int)grown["revision"]!, (int)grown["approval"]!["revision"]!));
        Assert.Equal(500, (await app.Services.GetRequiredService<StockStore>().FindAsync(id))!.Total);
    }

    [Theory]
    [InlineData("reject", "{}", "reason")]
    [InlineData("reject", """{"reason":"   "}""", "reason")]
    [InlineData("return", """{"comments":""}""", "comments")]
    [InlineData("return", "{}", "comments")]
    public async Task Reject_needs_a_reason_and_return_needs_comments(string step, string body, string field)
    {
        var id = await SubmittedAsync(app.Operator());
        var response = await Approver().PostAsync($"/api/campaigns/{id}/{step}", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(problem["errors"]![field]);
        await (await Approver().PostAsync($"/api/campaigns/{id}/{step}", null)).AssertProblemAsync(HttpStatusCode.UnsupportedMediaType, "unsupported-media-type");
        Assert.Equal("submitted", (string?)(await GetAsync(id))["status"]);
    }

    [Fact]
    public async Task Decision_bodies_get_every_field_error_at_once()
    {
        var id = await SubmittedAsync(app.Operator());
        var problem = await (await Post(Approver(), id, "reject", new { reasn = "typo", comments = "x" })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        var errors = problem["errors"]!.AsObject();
        Assert.Equal(new[] { "comments", "reasn", "reason" }, errors.Select(e => e.Key).Order(StringComparer.Ordinal));
        var tooLong = await (await Post(Approver(), id, "return", new { comments = new string('x', DecideCampaign.MaxComments + 1) }))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(tooLong["errors"]!["comments"]);
        var revision = await (await Post(Approver(), id, "approve", new { revision = 0, extra = true })).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.Equal(new[] { "extra", "revision" }, revision["errors"]!.AsObject().Select(e => e.Key).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task An_approval_pinned_to_the_revision_reviewed_refuses_another()
    {
        var op = app.Operator("olivia");
        var id = await SubmittedAsync(op);
        await (await Post(Approver(), id, "return", new { comments = "Raise the threshold." })).AssertStatusAsync(HttpStatusCode.OK);
        await (await op.PutAsync($"/api/campaigns/{id}", Api.JsonContent(Api.Terms(Now, t => t["minimumSpend"] = 20000)))).AssertStatusAsync(HttpStatusCode.OK);
        await (await Post(op, id, "submit")).AssertStatusAsync(HttpStatusCode.OK);
        await (await Post(Approver(), id, "approve", new { revision = 1 })).AssertProblemAsync(HttpStatusCode.Conflict, "approval-not-pending");
        Assert.Equal("submitted", (string?)(await GetAsync(id))["status"]);
        await (await Post(Approver(), id, "approve", new { revision = 2 })).AssertStatusAsync(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Concurrent_decisions_make_one_decision()
    {
        for (var round = 0; round < 3; round++)
        {
            // Five approvers approve at once: one approval, every answer names it.
            var id = await SubmittedAsync(app.Operator());
            var answers = await Task.WhenAll(Enumerable.Range(0, 5).Select(i => Post(Approver($"approver-{i}"), id, "approve")));
            var bodies = await Task.WhenAll(answers.Select(a => a.AssertStatusAsync(HttpStatusCode.OK)));
            var stored = await GetAsync(id);
            Assert.All(bodies, b => Assert.Equal((string?)stored["approval"]!["by"], (string?)b["approval"]!["by"]));

            // An approval and a rejection at once: exactly one wins, the other is told it was decided.
            var raced = await SubmittedAsync(app.Operator());
            var approve = Post(Approver("ann"), raced, "approve");
            var reject = Post(Approver("rob"), raced, "reject", new { reason = "No." });
            var (approval, rejection) = (await approve, await reject);
            Assert.Equal(1, new[] { approval, rejection }.Count(r => r.StatusCode == HttpStatusCode.OK));
            var loser = approval.StatusCode == HttpStatusCode.OK ? rejection : approval;
            await loser.AssertProblemAsync(HttpStatusCode.Conflict, "approval-not-pending");
            Assert.Equal(approval.StatusCode == HttpStatusCode.OK ? "approved" : "draft", (string?)(await GetAsync(raced))["status"]);
        }
    }

    [Fact]
    public async Task An_edit_racing_a_publish_of_the_approved_revision_never_publishes_unapproved_terms()
    {
        for (var round = 0; round < 3; round++)
        {
            var op = app.Operator();
            var id = await op.CreateCampaignAsync(Api.Terms(Now));
            await op.ApprovedCampaignAsync(id);
            var edit = app.Operator("oscar").PutAsync($"/api/campaigns/{id}", Api.JsonContent(Api.Terms(Now, t => t["amountOff"] = 9000)));
            var publish = Post(op, id, "publish");
            await Task.WhenAll(edit, publish);
            var stored = await GetAsync(id);
            // Either the edit came first (back to draft, publish refused) or the publish (then the edit is a published edit, refused for amountOff).
            if ((await edit).StatusCode == HttpStatusCode.OK)
            {
                Assert.Equal(("draft", 9000L), ((string?)stored["status"], (long)stored["terms"]!["amountOff"]!));
                await (await publish).AssertProblemAsync(HttpStatusCode.Conflict, "approval-required");
            }
            else
            {
                await (await edit).AssertProblemAsync(HttpStatusCode.Conflict, "campaign-not-editable");
                Assert.Equal(("published", 2000L), ((string?)stored["status"], (long)stored["terms"]!["amountOff"]!));
            }
        }
    }

    [Fact]
    public async Task The_queue_lists_submitted_campaigns_with_the_diff_against_the_last_approved_revision()
    {
        var op = app.Operator("olivia");
        var first = await SubmittedAsync(op, Api.Terms(Now, t => { t["name"] = "First time " + Api.NewId("n"); t["budget"] = 500_000; }));
        var item = (await QueueItemAsync(first))!;
        Assert.Equal(("campaign", "olivia", 500_000L, "CNY"), ((string?)item["kind"], (string?)item["requestedBy"], (long)item["amount"]!, (string?)item["currency"]));
        Assert.Equal(new[] { "olivia" }, Names(item["makers"]!));
        Assert.Equal($"campaigns/{first}/approve", (string?)item["routes"]!["approve"]);
        Assert.Equal((int)(await (await app.Operator().GetAsync($"/api/campaigns/{first}")).AssertStatusAsync(HttpStatusCode.OK))["revision"]!, (int)item["revision"]!);
        // A first approval: every field against nothing.
        var changes = item["changes"]!.AsArray();
        Assert.Contains(changes, c => (string?)c!["path"] == "amountOff" && c["before"] is null && (long)c["after"]! == 2000);
        Assert.Contains(changes, c => (string?)c!["path"] == "name");

        // Approved, edited (voided), submitted, returned, edited again, submitted: the diff is against the approved revision.
        var name = "Approved " + Api.NewId("n");
        var id = await op.CreateCampaignAsync(Api.Terms(Now, t => t["name"] = name));
        await op.ApprovedCampaignAsync(id);
        await (await app.Operator("oscar").PutAsync($"/api/campaigns/{id}", Api.JsonContent(Api.Terms(Now, t => { t["name"] = name; t["amountOff"] = 2500; }))))
            .AssertStatusAsync(HttpStatusCode.OK);
        await (await Post(op, id, "submit")).AssertStatusAsync(HttpStatusCode.OK);
        await (await Post(Approver(), id, "return", new { comments = "Less." })).AssertStatusAsync(HttpStatusCode.OK);
        await (await op.PutAsync($"/api/campaigns/{id}", Api.JsonContent(Api.Terms(Now, t => { t["name"] = name; t["amountOff"] = 2200; t["perCustomerLimit"] = 2; }))))
            .AssertStatusAsync(HttpStatusCode.OK);
        await (await Post(op, id, "submit")).AssertStatusAsync(HttpStatusCode.OK);

        var resubmitted = (await QueueItemAsync(id))!;
        var diff = resubmitted["changes"]!.AsArray().Select(c => ((string?)c!["path"], c["before"]?.ToJsonString(), c["after"]?.ToJsonString())).Order().ToArray();
        Assert.Equal(new (string?, string?, string?)[] { ("amountOff", "2000", "2200"), ("perCustomerLimit", "1", "2") }, diff);
        Assert.Equal(new[] { "oscar", "olivia" }, Names(resubmitted["makers"]!));

        // Decided campaigns leave the queue.
        await (await Post(Approver(), id, "approve")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Null(await QueueItemAsync(id, mustBeThere: false));
    }

    private async Task<JsonNode?> QueueItemAsync(string id, bool mustBeThere = true)
    {
        string? token = null;
        do
        {
            var url = "/api/approvals?status=pending&kind=campaign&limit=200" + (token is null ? "" : "&continuationToken=" + Uri.EscapeDataString(token));
            var page = await (await Approver().GetAsync(url)).AssertStatusAsync(HttpStatusCode.OK);
            if (page["items"]!.AsArray().FirstOrDefault(i => (string?)i!["id"] == id) is { } found) return found;
            token = (string?)page["continuationToken"];
        } while (token is not null);
        Assert.False(mustBeThere, $"{id} is in the approvers' queue");
        return null;
    }

    [Fact]
    public async Task The_queue_names_every_bad_filter_at_once_a_limit_that_is_not_a_number_too()
    {
        var problem = await (await Approver().GetAsync("/api/approvals?status=done&kind=nope&limit=ten"))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.Equal(["kind", "limit", "status"], problem["errors"]!.AsObject().Select(e => e.Key).Order().ToArray());
        foreach (var limit in new[] { "0", "201", "1.5", "99999999999" })
            Assert.NotNull((await (await Approver().GetAsync("/api/approvals?limit=" + limit))
                .AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed"))["errors"]!["limit"]);
    }

    [Fact]
    public async Task The_status_filter_knows_the_review_statuses()
    {
        var id = await SubmittedAsync(app.Operator());
        var page = await (await app.Operator().GetAsync("/api/campaigns?status=submitted&limit=200")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.All(page["items"]!.AsArray(), c => Assert.Equal("submitted", (string?)c!["status"]));
        var problem = await (await app.Operator().GetAsync("/api/campaigns?status=in_review")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.Contains("submitted", (string?)problem["errors"]!["status"]![0]);
        Assert.Contains("approved", (string?)problem["errors"]!["status"]![0]);
        Assert.NotNull(id);
    }

    [Fact]
    public async Task Campaigns_in_review_or_approved_are_neither_claimable_nor_looked_after_by_the_jobs()
    {
        var op = app.Operator();
        var submitted = await SubmittedAsync(op);
        var approved = await op.CreateCampaignAsync(Api.Terms(Now));
        await op.ApprovedCampaignAsync(approved);
        // A publish that wrote the counters and stopped before the status: the counters stay closed.
        var stocks = app.Services.GetRequiredService<StockStore>();
        await stocks.PrepareForPublishAsync(approved, 100, null);

        foreach (var id in new[] { submitted, approved })
            await (await app.Customer(Api.NewId("c")).ClaimAsync(id)).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        var store = app.Services.GetRequiredService<CampaignStore>();
        var launched = await store.ListLaunchedIdsAsync();
        Assert.DoesNotContain(submitted, launched);
        Assert.DoesNotContain(approved, launched);
        Assert.DoesNotContain((await store.ListLaunchedAsync(default)).Select(c => c.Id), c => c == approved || c == submitted);
        // Its budget is the approved terms' until publishing: nothing to top up yet.
        using var topUp = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{approved}/budget") { Content = Api.JsonContent(new { amount = 1, reason = "More" }) };
        topUp.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
        await (await op.SendAsync(topUp)).AssertProblemAsync(HttpStatusCode.Conflict, "campaign-not-editable");
        Assert.False((await stocks.FindAsync(approved))!.Open);
    }

    [Fact]
    public async Task A_campaign_stored_before_approvals_reads_and_its_creator_and_editor_may_not_approve_it()
    {
        var id = "cmp_" + Guid.NewGuid().ToString("N")[..12];
        var container = app.Services.GetRequiredService<Database>().GetContainer(CampaignStore.Spec.Name);
        var terms = Api.Terms(Now);
        await container.CreateItemAsync(new JsonObject
        {
            ["id"] = id, ["catalog"] = CampaignStore.DefaultCatalog, ["terms"] = terms, ["status"] = "draft",
            ["createdAt"] = Api.Instant(Now), ["createdBy"] = "old-creator", ["updatedAt"] = Api.Instant(Now), ["updatedBy"] = "old-editor",
        }, new PartitionKey(CampaignStore.DefaultCatalog));

        var read = await GetAsync(id);
        Assert.Equal((1, "draft"), ((int)read["revision"]!, (string?)read["status"]));
        Assert.Equal(new[] { "old-creator", "old-editor" }, Names(read["makers"]!));
        await (await Post(app.Operator("olivia"), id, "submit")).AssertStatusAsync(HttpStatusCode.OK);
        await (await Post(app.As("old-editor", "approver"), id, "approve")).AssertProblemAsync(HttpStatusCode.Forbidden, "four-eyes");
        await (await Post(app.As("old-creator", "approver"), id, "approve")).AssertProblemAsync(HttpStatusCode.Forbidden, "four-eyes");
        await (await Post(Approver(), id, "approve")).AssertStatusAsync(HttpStatusCode.OK);
    }
}
