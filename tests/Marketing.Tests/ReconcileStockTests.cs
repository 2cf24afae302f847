using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The reconciliation job restores issued + remaining = total after crashes, invoked as the Functions
/// host does it (payload protocol, realistic timer payload). It scans every campaign, so these tests use
/// their own database: their moved clock must not make other tests' in-flight claims look abandoned.
/// </summary>
public sealed class ReconcileStockTests
{
    private static Task<TestApp> StartAsync() => TestApp.StartAsync(Settings.Get("Cosmos__Database") + "-reconcile");

    [Fact]
    public async Task A_unit_lost_by_a_crash_between_stock_and_wallet_is_returned_after_the_quiet_period()
    {
        await using var app = await StartAsync();
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["totalQuantity"] = 3));
        await (await app.Customer(Api.NewId("a")).ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created);
        await (await app.Customer(Api.NewId("b")).ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created);
        // A claim that died after taking stock and before writing its coupon:
        var stocks = app.Services.GetRequiredService<StockStore>();
        Assert.Equal(TakeOutcome.Taken, await stocks.TryTakeAsync(campaign, app.Clock.GetUtcNow()));
        await (await app.Customer(Api.NewId("c")).ClaimAsync(campaign)).AssertProblemAsync(HttpStatusCode.Conflict, "sold-out");

        // Within the quiet period nothing is touched: a claim could still be writing its coupon.
        app.Clock.Advance(TimeSpan.FromMinutes(2));
        await InvokeTimerAsync(app);
        Assert.Equal((0, 3), await CountersAsync(stocks, campaign));

        app.Clock.Advance(TimeSpan.FromMinutes(4));
        var result = await InvokeTimerAsync(app);
        Assert.Contains(result["Logs"]!.AsArray(), l => ((string?)l)!.Contains($"{campaign}: issued 3 -> 2"));
        Assert.Equal((1, 2), await CountersAsync(stocks, campaign));

        // The unit is claimable again, and a second run finds nothing to do.
        await (await app.Customer(Api.NewId("d")).ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created);
        app.Clock.Advance(TimeSpan.FromMinutes(10));
        var again = await InvokeTimerAsync(app);
        Assert.DoesNotContain(again["Logs"]!.AsArray(), l => ((string?)l)!.Contains(campaign));
        Assert.Equal((0, 3), await CountersAsync(stocks, campaign));
    }

    [Fact]
    public async Task Two_runs_at_once_repair_a_lost_unit_exactly_once()
    {
        await using var app = await StartAsync();
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["totalQuantity"] = 5));
        var stocks = app.Services.GetRequiredService<StockStore>();
        await stocks.TryTakeAsync(campaign, app.Clock.GetUtcNow());
        await stocks.TryTakeAsync(campaign, app.Clock.GetUtcNow());
        app.Clock.Advance(TimeSpan.FromMinutes(6));

        await Task.WhenAll(InvokeTimerAsync(app), InvokeTimerAsync(app), InvokeTimerAsync(app));

        Assert.Equal((5, 0), await CountersAsync(stocks, campaign));
    }

    [Fact]
    public async Task A_crash_mid_transition_is_finished_by_reconciliation()
    {
        await using var app = await StartAsync();
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["totalQuantity"] = 10));
        var stocks = app.Services.GetRequiredService<StockStore>();
        // Published, but the counter was left closed (crash between the two writes of a resume).
        await stocks.SetOpenAsync(campaign, false);
        await (await app.Customer(Api.NewId("a")).ClaimAsync(campaign)).AssertProblemAsync(HttpStatusCode.Conflict, "campaign-not-active");

        app.Clock.Advance(TimeSpan.FromMinutes(6));
        await InvokeTimerAsync(app);

        Assert.True((await stocks.FindAsync(campaign))!.Open);
        await (await app.Customer(Api.NewId("b")).ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created);
    }

    [Fact]
    public async Task A_malformed_invocation_payload_is_a_400_problem()
    {
        await using var app = await StartAsync();
        var response = await app.Anonymous().PostAsync("/ReconcileStock", Api.JsonContent("{not json"));
        await response.AssertProblemAsync(HttpStatusCode.BadRequest, "malformed-json");
    }

    private static async Task<(int Remaining, int Issued)> CountersAsync(StockStore stocks, string campaign)
    {
        var stock = await stocks.FindAsync(campaign);
        Assert.Equal(stock!.Total, stock.Remaining + stock.Issued);
        return (stock.Remaining, stock.Issued);
    }

    public static Task<JsonNode> InvokeTimerAsync(TestApp app) => app.InvokeTimerAsync("ReconcileStock");
}
