using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Stats;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Xunit;

namespace Marketing.Tests.Support;

/// <summary>What the statistics tests share: a database of their own, the fold run as the host runs it or over any
/// Cosmos client, the recount (the oracle) and the stats route.</summary>
public static class StatsRig
{
    /// <summary>An app over a database of its own: the fold and the recount read every wallet and redemption in it.</summary>
    public static Task<TestApp> StartAsync(string name, Action<Microsoft.AspNetCore.Hosting.IWebHostBuilder>? customize = null)
    {
        var database = $"{Settings.Get("Cosmos__Database")}-stats-{name}-{Guid.NewGuid():N}";
        return TestApp.StartAsync(database[..Math.Min(60, database.Length)], customize);
    }

    /// <summary>AggregateStats invoked as the Functions host invokes it; its report.</summary>
    public static async Task<JsonNode> RunAggregateStatsAsync(this TestApp app) => (await app.InvokeTimerAsync(AggregateStats.FunctionName))["ReturnValue"]!;

    /// <summary>A fold of its own over <paramref name="database"/> (another Cosmos client: crashing, re-sending, a second instance).</summary>
    public static StatsFolder Folder(TestApp app, Database database, int pageSize = 100, int parallelism = 8)
        => new(database, new StatsStore(database), new CampaignStore(database), app.Services.GetRequiredService<CampaignCache>(),
            new StockStore(database, app.Services.GetRequiredService<CampaignCache>(), Options.Create(new StockOptions())),
            new Marketing.Functions.Payouts.PayoutStore(database), new Marketing.Functions.Redemption.RedemptionStore(database), app.Clock, Options.Create(new StatsOptions()),
            Options.Create(new TimerOptions { PageSize = pageSize, Parallelism = parallelism }), NullLogger<StatsFolder>.Instance);

    public static Task<List<DayDifference>> CompareAsync(this TestApp app, string? campaign = null)
        => app.Services.GetRequiredService<RecountStats>().CompareAsync(campaign, CancellationToken.None);

    /// <summary>The recount's figures of one campaign summed over its whole life.</summary>
    public static async Task<Figures> RecountedTotalsAsync(this TestApp app, string campaign)
    {
        var all = await app.Services.GetRequiredService<RecountStats>().RecountAsync(campaign, CancellationToken.None);
        return Figures.Sum(all.GetValueOrDefault(campaign)?.Values.SelectMany(d => d.Values) ?? []);
    }

    /// <summary>The stored figures of one campaign summed over every day counted so far.</summary>
    public static async Task<Figures> StoredTotalsAsync(this TestApp app, string campaign)
        => Figures.Sum((await app.Services.GetRequiredService<StatsStore>().ReadAllDaysAsync(campaign, CancellationToken.None)).SelectMany(d => d.Cells.Values));

    public static async Task<JsonNode> GetStatsAsync(this TestApp app, string campaign, string query = "")
        => await (await app.Operator().GetAsync($"/api/campaigns/{campaign}/stats{query}")).AssertStatusAsync(HttpStatusCode.OK);

    public static Figures FiguresOf(JsonNode? node) => node.Deserialize<Figures>(Json.Storage)!;

    /// <summary>How many facts some figures hold (money aside): a measure of how far a fold got.</summary>
    public static long Facts(Figures f) => f.Claims + f.NewClaimers + f.Locks + f.Redemptions + f.Cancellations + f.Lapsed + f.Refunds + f.Expired;

    public static void AssertMatchesRecount(List<DayDifference> differences)
        => Assert.True(differences.Count == 0, "stored days differ from the recount: " + string.Join("; ", differences.Select(d =>
            $"{d.CampaignId} {d.Day:yyyy-MM-dd} " + string.Join(", ", d.Cells.Select(c =>
                $"{c.Key}: stored {JsonSerializer.Serialize(c.Value.Stored)} recounted {JsonSerializer.Serialize(c.Value.Recounted)}")))));
}
