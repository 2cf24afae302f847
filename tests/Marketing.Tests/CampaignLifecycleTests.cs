using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>Operators create, edit and move campaigns through draft → published → paused ⇄ published → ended.</summary>
public sealed class CampaignLifecycleTests(TestApp app) : IClassFixture<TestApp>
{
    private DateTimeOffset Now => app.Clock.GetUtcNow();

    [Fact]
    public async Task Create_returns_201_draft_with_location_and_etag_and_records_who()
    {
        var response = await app.Operator("olivia").PostAsync("/api/campaigns", Api.JsonContent(Api.Terms(Now)));
        var campaign = await response.AssertStatusAsync(HttpStatusCode.Created);

        Assert.Equal("draft", (string?)campaign["status"]);
        Assert.Equal($"/api/campaigns/{campaign["id"]}", response.Headers.Location!.ToString());
        Assert.NotNull(response.Headers.ETag);
        Assert.Equal("olivia", (string?)campaign["createdBy"]);
        Assert.Equal(2000, (long)campaign["terms"]!["amountOff"]!);
        var read = await (await app.Operator().GetAsync($"/api/campaigns/{campaign["id"]}")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.True(JsonNode.DeepEquals(campaign, read));
    }

    public static TheoryData<string, string> InvalidTerms() => new()
    {
        { """{"kind":"percent_off","percentOff":0}""", "percentOff" },
        { """{"kind":"amount_off","amountOff":-5}""", "amountOff" },
        { """{"percentOff":10}""", "percentOff" },
        { """{"currency":"yuan"}""", "currency" },
        { """{"channels":[]}""", "channels" },
        { """{"timeZone":"Mars/Olympus"}""", "timeZone" },
        { """{"totalQuantity":0}""", "totalQuantity" },
        { """{"perCustomerLimit":0}""", "perCustomerLimit" },
        { """{"validity":{"type":"relative"}}""", "validity.days" },
        { """{"validity":{"type":"absolute","from":"2026-12-01T00:00:00Z","to":"2026-11-01T00:00:00Z"}}""", "validity.to" },
        { """{"claimEndsAt":"2020-01-01T00:00:00Z"}""", "claimEndsAt" },
        { """{"name":""}""", "name" },
    };

    [Theory]
    [MemberData(nameof(InvalidTerms))]
    public async Task Invalid_terms_are_400_with_the_field_named(string patch, string field)
    {
        var terms = Api.Terms(Now);
        foreach (var (key, value) in JsonNode.Parse(patch)!.AsObject())
            terms[key] = value?.DeepClone();

        var response = await app.Operator().PostAsync("/api/campaigns", Api.JsonContent(terms));

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(problem["errors"]![field]);
    }

    [Fact]
    public async Task Unknown_fields_are_rejected_not_ignored()
    {
        var terms = Api.Terms(Now);
        terms["status"] = "published"; // mass assignment attempt
        var response = await app.Operator().PostAsync("/api/campaigns", Api.JsonContent(terms));
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(problem["errors"]!["status"]);
    }

    [Fact]
    public async Task Missing_required_fields_are_named()
    {
        var response = await app.Operator().PostAsync("/api/campaigns", Api.JsonContent("""{"name":"x"}"""));
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(problem["errors"]!["currency"]);
        Assert.NotNull(problem["errors"]!["totalQuantity"]);
    }

    [Theory]
    [InlineData("{\"name\": ")]
    [InlineData("not json at all")]
    public async Task Malformed_json_is_400(string body)
    {
        var response = await app.Operator().PostAsync("/api/campaigns", Api.JsonContent(body));
        await response.AssertProblemAsync(HttpStatusCode.BadRequest, "malformed-json");
    }

    [Fact]
    public async Task Wrong_types_and_bad_enum_values_are_400_validation()
    {
        var terms = Api.Terms(Now, t => { t["totalQuantity"] = "many"; });
        await (await app.Operator().PostAsync("/api/campaigns", Api.JsonContent(terms))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        terms = Api.Terms(Now, t => { t["kind"] = "free_lunch"; });
        await (await app.Operator().PostAsync("/api/campaigns", Api.JsonContent(terms))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        terms = Api.Terms(Now, t => { t["claimStartsAt"] = "2026-11-21T10:00:00"; }); // no offset: ambiguous
        await (await app.Operator().PostAsync("/api/campaigns", Api.JsonContent(terms))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
    }

    [Fact]
    public async Task Oversized_bodies_are_413_and_non_json_is_415()
    {
        var terms = Api.Terms(Now, t => t["name"] = new string('x', 70_000));
        await (await app.Operator().PostAsync("/api/campaigns", Api.JsonContent(terms))).AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge, "payload-too-large");
        var text = new StringContent("name=x", System.Text.Encoding.UTF8, "application/x-www-form-urlencoded");
        await (await app.Operator().PostAsync("/api/campaigns", text)).AssertProblemAsync(HttpStatusCode.UnsupportedMediaType, "unsupported-media-type");
    }

    [Fact]
    public async Task Lifecycle_allows_publish_pause_resume_end_and_refuses_the_rest_with_409()
    {
        var op = app.Operator();
        var id = await op.CreateCampaignAsync(Api.Terms(Now));

        await Step("pause", HttpStatusCode.Conflict);
        await Step("resume", HttpStatusCode.Conflict);
        await Step("end", HttpStatusCode.Conflict);
        await op.ApprovedCampaignAsync(id);
        Assert.Equal("published", (string?)(await Step("publish", HttpStatusCode.OK))["status"]);
        Assert.Equal("published", (string?)(await Step("publish", HttpStatusCode.OK))["status"]); // repeat = no-op
        await Step("resume", HttpStatusCode.OK);
        Assert.Equal("paused", (string?)(await Step("pause", HttpStatusCode.OK))["status"]);
        await Step("publish", HttpStatusCode.Conflict);
        Assert.Equal("published", (string?)(await Step("resume", HttpStatusCode.OK))["status"]);
        Assert.Equal("ended", (string?)(await Step("end", HttpStatusCode.OK))["status"]);
        await Step("resume", HttpStatusCode.Conflict);
        await Step("pause", HttpStatusCode.Conflict);
        await Step("publish", HttpStatusCode.Conflict);
        await (await op.PostAsync("/api/campaigns/cmp_nope/publish", null)).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");

        async Task<JsonNode> Step(string action, HttpStatusCode expected)
        {
            var response = await op.PostAsync($"/api/campaigns/{id}/{action}", null);
            return expected == HttpStatusCode.OK
                ? await response.AssertStatusAsync(HttpStatusCode.OK)
                : await response.AssertProblemAsync(expected, "invalid-transition");
        }
    }

    [Fact]
    public async Task A_campaign_whose_claim_window_is_over_cannot_be_published()
    {
        var id = await app.Operator().CreateCampaignAsync(Api.Terms(Now, t =>
        {
            t["claimStartsAt"] = Api.Instant(Now.AddDays(-3));
            t["claimEndsAt"] = Api.Instant(Now.AddDays(-1));
        }));
        await app.Operator().ApprovedCampaignAsync(id);
        await (await app.Operator().PostAsync($"/api/campaigns/{id}/publish", null)).AssertProblemAsync(HttpStatusCode.Conflict, "invalid-transition");
    }

    [Fact]
    public async Task Drafts_are_fully_editable()
    {
        var op = app.Operator();
        var id = await op.CreateCampaignAsync(Api.Terms(Now));
        var changed = Api.Terms(Now, t => { t["kind"] = "percent_off"; t["amountOff"] = null; t["percentOff"] = 15; t["maxDiscount"] = 5000; t["totalQuantity"] = 10; });
        var updated = await (await op.PutAsync($"/api/campaigns/{id}", Api.JsonContent(changed))).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("percent_off", (string?)updated["terms"]!["kind"]);
        Assert.Equal(10, (int)updated["terms"]!["totalQuantity"]!);
    }

    [Fact]
    public async Task Published_campaigns_may_only_grow_quantity_and_extend_the_end()
    {
        var op = app.Operator();
        var terms = Api.Terms(Now, t => t["totalQuantity"] = 2);
        var id = await op.PublishedCampaignAsync(terms);
        await (await app.Customer(Api.NewId("c")).ClaimAsync(id)).AssertStatusAsync(HttpStatusCode.Created);

        var shrink = Api.Terms(Now, t => { t["totalQuantity"] = 1; t["claimEndsAt"] = terms["claimEndsAt"]!.DeepClone(); });
        var problem = await (await op.PutAsync($"/api/campaigns/{id}", Api.JsonContent(shrink))).AssertProblemAsync(HttpStatusCode.Conflict, "campaign-not-editable");
        Assert.NotNull(problem["errors"]!["totalQuantity"]);

        var cheaper = Api.Terms(Now, t => { t["amountOff"] = 5000; t["totalQuantity"] = 2; t["claimEndsAt"] = terms["claimEndsAt"]!.DeepClone(); });
        problem = await (await op.PutAsync($"/api/campaigns/{id}", Api.JsonContent(cheaper))).AssertProblemAsync(HttpStatusCode.Conflict, "campaign-not-editable");
        Assert.NotNull(problem["errors"]!["amountOff"]);

        var grow = Api.Terms(Now, t => { t["totalQuantity"] = 5; t["claimEndsAt"] = Api.Instant(Now.AddDays(20)); });
        var updated = await (await op.PutAsync($"/api/campaigns/{id}", Api.JsonContent(grow))).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(5, (int)updated["terms"]!["totalQuantity"]!);

        // The stock follows: 1 issued, 4 remain.
        var stock = await app.Services.GetRequiredService<StockStore>().FindAsync(id);
        Assert.Equal((5, 4, 1), (stock!.Total, stock.Remaining, stock.Issued));

        await op.PostAsync($"/api/campaigns/{id}/end", null);
        await (await op.PutAsync($"/api/campaigns/{id}", Api.JsonContent(grow))).AssertProblemAsync(HttpStatusCode.Conflict, "campaign-not-editable");
    }

    [Fact]
    public async Task A_stale_if_match_is_412_and_changes_nothing()
    {
        var op = app.Operator();
        var created = await op.PostAsync("/api/campaigns", Api.JsonContent(Api.Terms(Now)));
        var json = await created.AssertStatusAsync(HttpStatusCode.Created);
        var id = (string)json["id"]!;
        var etag = created.Headers.ETag!.ToString();
        await (await op.PutAsync($"/api/campaigns/{id}", Api.JsonContent(Api.Terms(Now, t => t["name"] = "first")))).AssertStatusAsync(HttpStatusCode.OK);

        var stale = new HttpRequestMessage(HttpMethod.Put, $"/api/campaigns/{id}") { Content = Api.JsonContent(Api.Terms(Now, t => t["name"] = "second")) };
        stale.Headers.TryAddWithoutValidation("If-Match", etag);
        await (await op.SendAsync(stale)).AssertProblemAsync(HttpStatusCode.PreconditionFailed, "precondition-failed");
        var read = await (await op.GetAsync($"/api/campaigns/{id}")).ReadJsonAsync();
        Assert.Equal("first", (string?)read["terms"]!["name"]);
    }

    [Fact]
    public async Task List_filters_by_status_and_pages_with_a_continuation_token()
    {
        var op = app.Operator();
        var ids = new List<string>();
        for (var i = 0; i < 3; i++) ids.Add(await op.PublishedCampaignAsync(Api.Terms(Now)));
        await op.PostAsync($"/api/campaigns/{ids[0]}/pause", null);

        var paused = new List<string>();
        string? token = null;
        do
        {
            var url = "/api/campaigns?status=paused&limit=2" + (token is null ? "" : "&continuationToken=" + Uri.EscapeDataString(token));
            var page = await (await op.GetAsync(url)).AssertStatusAsync(HttpStatusCode.OK);
            Assert.True(page["items"]!.AsArray().Count <= 2);
            Assert.All(page["items"]!.AsArray(), c => Assert.Equal("paused", (string?)c!["status"]));
            paused.AddRange(page["items"]!.AsArray().Select(c => (string)c!["id"]!));
            token = (string?)page["continuationToken"];
        } while (token is not null);
        Assert.Contains(ids[0], paused);
        Assert.DoesNotContain(ids[1], paused);

        await (await op.GetAsync("/api/campaigns?status=archived")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        await (await op.GetAsync("/api/campaigns?limit=0")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        await (await op.GetAsync("/api/campaigns?limit=abc")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
    }

    [Fact]
    public async Task A_counter_left_by_a_failed_publish_takes_the_drafts_new_quantity()
    {
        var op = app.Operator();
        var id = await op.CreateCampaignAsync(Api.Terms(Now, t => t["totalQuantity"] = 10));
        // A publish that wrote the counter and then failed before the status changed:
        var stocks = app.Services.GetRequiredService<StockStore>();
        await stocks.PrepareForPublishAsync(id, 10, null);
        await (await op.PutAsync($"/api/campaigns/{id}", Api.JsonContent(Api.Terms(Now, t => t["totalQuantity"] = 3)))).AssertStatusAsync(HttpStatusCode.OK);

        await op.ApprovedCampaignAsync(id);
        await (await op.PostAsync($"/api/campaigns/{id}/publish", null)).AssertStatusAsync(HttpStatusCode.OK);

        var stock = await stocks.FindAsync(id);
        Assert.Equal((3, 3, true), (stock!.Total, stock.Remaining, stock.Open));
    }

    [Fact]
    public async Task A_late_or_repeated_publish_never_resets_counters_in_use()
    {
        // A second publish that read the draft before the first one published it (or a retry of the first)
        // reaches the counter step after claims and a budget reservation started: it must change nothing.
        var id = await app.Operator().PublishedCampaignAsync(Api.Terms(Now, t =>
        {
            t["totalQuantity"] = 10;
            t["amountOff"] = 1000;
            t["budget"] = 50000;
        }));
        var (customer, coupon) = await app.CustomerWithCouponAsync(id);
        await app.CustomerWithCouponAsync(id);
        await (await app.OrderSystem().LockAsync(Api.NewId("o"), customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
        var stocks = app.Services.GetRequiredService<StockStore>();

        await stocks.PrepareForPublishAsync(id, 10, 50000);
        await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => app.Operator().PostAsync($"/api/campaigns/{id}/publish", null)));

        var stock = await stocks.FindAsync(id);
        Assert.Equal((10, 8, 2, true), (stock!.Total, stock.Remaining, stock.Issued, stock.Open));
        var budget = await stocks.FindBudgetAsync(id);
        Assert.Equal((50000, 49000, 1000, 1), (budget!.Budget, budget.Left, budget.Reserved, budget.Orders.Count));
    }

    [Theory]
    [InlineData("CMP_UPPER")]
    [InlineData("a%5Cb")]
    [InlineData("a%20b")]
    public async Task Ids_that_cannot_be_ours_are_404_not_500(string id)
    {
        await (await app.Operator().GetAsync($"/api/campaigns/{id}")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        await (await app.Customer(Api.NewId("c")).ClaimAsync(id)).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
    }
}
