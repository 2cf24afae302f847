using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Tests.Support;
using Xunit;

namespace Marketing.Tests;

/// <summary>A campaign's expiry reminder policy (docs/notifications.md): offsets, holdout, and who may change them when.</summary>
public sealed class ReminderPolicyTests(TestApp app) : IClassFixture<TestApp>
{
    private DateTimeOffset Now => app.Clock.GetUtcNow();

    [Fact]
    public async Task Without_a_policy_a_campaign_reminds_24_hours_ahead_and_holds_nobody_out()
    {
        var id = await app.Operator().CreateCampaignAsync(Api.Terms(Now));
        var campaign = await (await app.Operator().GetAsync($"/api/campaigns/{id}")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Null(campaign["terms"]!["reminders"]);
        Assert.Equal([24], ReminderPolicy.Default.OffsetsHours);
        Assert.False(ReminderPolicy.Default.HoldsOut(id, "anyone"));
    }

    [Fact]
    public async Task Every_bad_part_of_a_policy_is_listed_in_one_400()
    {
        var terms = Api.Terms(Now, t => t["reminders"] = new JsonObject { ["offsetsHours"] = new JsonArray(1, 2, 3, 4), ["holdoutPercent"] = 60 });
        var problem = await (await app.Operator().PostAsync("/api/campaigns", Api.JsonContent(terms))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(problem["errors"]!["reminders.offsetsHours"]);
        Assert.NotNull(problem["errors"]!["reminders.holdoutPercent"]);

        foreach (var offsets in new[] { new JsonArray(0), new JsonArray(721), new JsonArray(24, 24) })
        {
            var bad = Api.Terms(Now, t => t["reminders"] = new JsonObject { ["offsetsHours"] = offsets });
            var refused = await (await app.Operator().PostAsync("/api/campaigns", Api.JsonContent(bad))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
            Assert.NotNull(refused["errors"]!["reminders.offsetsHours"]);
        }

        // No offsets at all is allowed: the campaign sends no reminders.
        var none = Api.Terms(Now, t => t["reminders"] = new JsonObject { ["offsetsHours"] = new JsonArray() });
        await (await app.Operator().PostAsync("/api/campaigns", Api.JsonContent(none))).AssertStatusAsync(HttpStatusCode.Created);
    }

    [Fact]
    public async Task A_published_campaigns_reminders_may_change_while_its_other_terms_may_not()
    {
        var op = app.Operator();
        var terms = Api.Terms(Now);
        var id = await op.PublishedCampaignAsync(terms);

        var tuned = terms.DeepClone().AsObject();
        tuned["reminders"] = new JsonObject { ["offsetsHours"] = new JsonArray(48, 2), ["holdoutPercent"] = 10 };
        var updated = await (await op.PutAsync($"/api/campaigns/{id}", Api.JsonContent(tuned))).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal([48, 2], updated["terms"]!["reminders"]!["offsetsHours"]!.AsArray().Select(n => (int)n!).ToArray());
        Assert.Equal(10, (int)updated["terms"]!["reminders"]!["holdoutPercent"]!);

        var renamed = tuned.DeepClone().AsObject();
        renamed["name"] = "Another name";
        var problem = await (await op.PutAsync($"/api/campaigns/{id}", Api.JsonContent(renamed))).AssertProblemAsync(HttpStatusCode.Conflict, "campaign-not-editable");
        Assert.NotNull(problem["errors"]!["name"]);
        Assert.Null(problem["errors"]!["reminders"]);
    }

    [Fact]
    public void The_holdout_is_the_same_customers_every_time_and_about_the_share_asked_for()
    {
        var policy = new ReminderPolicy { HoldoutPercent = 10 };
        var customers = Enumerable.Range(0, 20_000).Select(i => $"customer-{i}").ToArray();
        var held = customers.Where(c => policy.HoldsOut("cmp_a", c)).ToArray();
        Assert.InRange(held.Length, 1_800, 2_200); // 10 % ± 1 point of 20,000
        Assert.Equal(held, customers.Where(c => new ReminderPolicy { HoldoutPercent = 10 }.HoldsOut("cmp_a", c)).ToArray());
        // Another campaign holds out other customers (not the same 10 % everywhere).
        var elsewhere = customers.Where(c => policy.HoldsOut("cmp_b", c)).ToHashSet();
        Assert.InRange(held.Count(elsewhere.Contains), 100, 300); // independent: ~1 % of all in both
        Assert.DoesNotContain(customers, c => ReminderPolicy.Default.HoldsOut("cmp_a", c));
    }
}
