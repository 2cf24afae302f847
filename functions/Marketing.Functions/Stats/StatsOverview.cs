using System.Globalization;
using System.Text.Json.Serialization;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Payouts;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Stats;

/// <summary>What the platform did in one of its days (all campaigns).</summary>
public sealed record DayTotals(long Claims, long Redemptions, long Gmv, long Discount)
{
    public static DayTotals Of(IEnumerable<Figures> figures)
    {
        var sum = Figures.Sum(figures);
        return new(sum.Claims, sum.Redemptions, sum.Gmv, sum.Discount);
    }
}

/// <summary>
/// What waits in the approvers' queues (GET /api/approvals): campaigns submitted for approval, budget top-up requests and
/// payout batches (each with the approved-but-unfinished ones the queue keeps). Counted when the overview is computed
/// (<see cref="Overview.ComputedAt"/>), not as of the change feed's asOf.
/// </summary>
public sealed record ApprovalsWaiting(long Campaigns, long TopUps, long Payouts);

/// <summary>A campaign named on the overview, with what put it there.</summary>
public sealed record CampaignBrief(string Id, string Name, DateTimeOffset ClaimEndsAt, long? BudgetTotal = null, long? BudgetLeft = null);

/// <summary>
/// The console's home at a glance, kept by AggregateStats at the end of every run (one document, read with one point
/// read). Days are the platform's (<see cref="StatsOptions.TimeZone"/>); lists hold at most <see cref="StatsOverview.MaxListed"/>
/// campaigns, soonest first, with the full count beside them.
/// </summary>
public sealed record Overview
{
    public const string DocumentId = "overview";

    public string Id { get; init; } = DocumentId;
    public string Pk { get; init; } = DocumentId;
    public required string TimeZone { get; init; }
    /// <summary>When this overview was computed; null before AggregateStats first ran.</summary>
    public DateTimeOffset? ComputedAt { get; init; }
    /// <summary>The figures count every change written before this instant (as GetCampaignStats' asOf).</summary>
    public DateTimeOffset? AsOf { get; init; }
    public int CampaignsRunning { get; init; }
    public int EndingWithin7Days { get; init; }
    public IReadOnlyList<CampaignBrief> Ending { get; init; } = [];
    public int BudgetBelow5Percent { get; init; }
    public IReadOnlyList<CampaignBrief> LowBudget { get; init; } = [];
    /// <summary>Coupons not used whose validity ends from the start of this hour to 24 hours later (the <c>expiring</c> figure).</summary>
    public long CouponsExpiringWithin24Hours { get; init; }
    public DayTotals Today { get; init; } = new(0, 0, 0, 0);
    public DayTotals Yesterday { get; init; } = new(0, 0, 0, 0);
    /// <summary>The approvers' queues at <see cref="ComputedAt"/>; null in overviews stored before they were counted.</summary>
    public ApprovalsWaiting? ApprovalsWaiting { get; init; }

    [JsonPropertyName("_etag")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ETag { get; init; }
}

/// <summary>The overview as operators read it (the stored document without its storage names).</summary>
public sealed record OverviewView(string TimeZone, DateTimeOffset? ComputedAt, DateTimeOffset? AsOf, double? LagSeconds, int CampaignsRunning,
    int EndingWithin7Days, IReadOnlyList<CampaignBrief> Ending, int BudgetBelow5Percent, IReadOnlyList<CampaignBrief> LowBudget,
    long CouponsExpiringWithin24Hours, DayTotals Today, DayTotals Yesterday, ApprovalsWaiting ApprovalsWaiting);

/// <summary>
/// GET /api/stats/overview (operator, admin) and its computation at the end of each AggregateStats run: campaigns running
/// and ending within 7 days (the cached catalogue), budgets below 5 % left (each running budgeted campaign's shards, one
/// query each), and from the campaigns' days around now (one query across their partitions): coupons expiring within
/// 24 hours and today against yesterday; and the approvers' queues (three counts). docs/stats.md, "Overview".
/// </summary>
public static class StatsOverview
{
    public const int MaxListed = 20;
    public const double LowBudgetShare = 0.05;

    public static RouteHandlerBuilder MapGetStatsOverview(this IEndpointRouteBuilder routes) =>
        routes.MapGet("/api/stats/overview", async (HttpContext context, StatsStore stats, TimeProvider time, IOptions<StatsOptions> options) =>
            {
                var overview = await stats.FindOverviewAsync(context.RequestAborted) ?? new Overview { TimeZone = options.Value.TimeZone };
                var now = time.GetUtcNow();
                return TypedResults.Ok(new OverviewView(overview.TimeZone, overview.ComputedAt, overview.AsOf,
                    overview.AsOf is { } at ? Math.Max(0, (now - at).TotalSeconds) : null, overview.CampaignsRunning, overview.EndingWithin7Days,
                    overview.Ending, overview.BudgetBelow5Percent, overview.LowBudget, overview.CouponsExpiringWithin24Hours, overview.Today, overview.Yesterday,
                    overview.ApprovalsWaiting ?? new ApprovalsWaiting(0, 0, 0)));
            })
            .AsFunction("GetStatsOverview")
            .RequireAuthorization(Policies.Operator)
            .WithTags("Stats")
            .Produces<OverviewView>()
            .WithSummary("The platform at a glance: campaigns running, ending soon, low on budget, coupons expiring within 24 h, today against yesterday, approvals waiting.");

    /// <summary>Computes the overview as of now (its figures as of <paramref name="asOf"/>) and stores it.</summary>
    public static async Task<Overview> RefreshAsync(StatsStore stats, CampaignCache catalogue, StockStore stock, CampaignLookup lookup,
        CampaignStore campaigns, PayoutStore payouts, string timeZone, DateTimeOffset now, DateTimeOffset? asOf, CancellationToken ct)
    {
        // The approvers' queues: three counts (one in the catalog's partition, two across partitions, each served by the
        // index on the filter the queue pages with), once a run, so the home page never counts.
        var waiting = await Task.WhenAll(campaigns.CountAsync(CampaignStatus.Submitted, ct), stock.CountPendingTopUpsAsync(ct),
            payouts.CountAwaitingApprovalAsync(ct));

        var platform = CampaignTerms.FindTimeZone(timeZone) ?? TimeZoneInfo.Utc;
        var published = await catalogue.ListPublishedAsync(ct);
        var running = published.Where(c => c.Terms.ClaimStartsAt <= now && now < c.Terms.ClaimEndsAt).ToList();
        var ending = running.Where(c => c.Terms.ClaimEndsAt <= now.AddDays(7)).OrderBy(c => c.Terms.ClaimEndsAt).ToList();

        var lowBudget = new System.Collections.Concurrent.ConcurrentBag<CampaignBrief>();
        await Parallel.ForEachAsync(running.Where(c => c.Terms.Budget is not null), new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = ct },
            async (campaign, token) =>
            {
                if (await stock.SumBudgetAsync(campaign.Id, campaign.Terms.ShardCount, ct: token) is { Total: > 0 } budget
                    && budget.Left < budget.Total * LowBudgetShare)
                    lowBudget.Add(new CampaignBrief(campaign.Id, campaign.Terms.Name, campaign.Terms.ClaimEndsAt, budget.Total, budget.Left));
            });

        // Every campaign's days that can hold an hour of the platform's yesterday, today or the next 24 hours.
        var todayStart = LocalMidnight(now, platform);
        var yesterdayStart = todayStart.AddDays(-1);
        var hourStart = new DateTimeOffset(now.UtcDateTime.Date.AddHours(now.UtcDateTime.Hour), TimeSpan.Zero);
        var firstDay = DateOnly.FromDateTime(yesterdayStart.UtcDateTime).AddDays(-1);
        var days = await stats.ReadDaysBetweenAsync(firstDay, firstDay.AddDays(5), ct);
        var today = new List<Figures>();
        var yesterday = new List<Figures>();
        long expiring = 0;
        foreach (var day in days)
        {
            if (day.CampaignId == Programme.Id || (await lookup.FindAsync(day.CampaignId, ct))?.Zone is not { } zone) continue;
            foreach (var (key, figures) in day.Cells)
            {
                var start = CellStart(day.Date, Cell.Parse(key).Hour, zone);
                if (start >= todayStart && start <= now) today.Add(figures);
                else if (start >= yesterdayStart && start < todayStart) yesterday.Add(figures);
                if (start >= hourStart && start < hourStart.AddHours(24)) expiring += figures.Expiring;
            }
        }

        var overview = new Overview
        {
            TimeZone = timeZone,
            ComputedAt = now,
            AsOf = asOf,
            CampaignsRunning = running.Count,
            EndingWithin7Days = ending.Count,
            Ending = [.. ending.Take(MaxListed).Select(c => new CampaignBrief(c.Id, c.Terms.Name, c.Terms.ClaimEndsAt))],
            BudgetBelow5Percent = lowBudget.Count,
            LowBudget = [.. lowBudget.OrderBy(b => b.BudgetLeft / (double)b.BudgetTotal!).ThenBy(b => b.Id, StringComparer.Ordinal).Take(MaxListed)],
            CouponsExpiringWithin24Hours = expiring,
            Today = DayTotals.Of(today),
            Yesterday = DayTotals.Of(yesterday),
            ApprovalsWaiting = new ApprovalsWaiting(waiting[0], waiting[1], waiting[2]),
        };
        await stats.SaveOverviewAsync(overview, ct);
        return overview;
    }

    private static DateTimeOffset LocalMidnight(DateTimeOffset now, TimeZoneInfo zone)
    {
        var local = TimeZoneInfo.ConvertTime(now, zone);
        return CellStart(DateOnly.FromDateTime(local.DateTime), 0, zone);
    }

    /// <summary>
    /// The instant a local hour of a day starts, as local time with its offset (an hour the clocks skip: at the offset
    /// before the change).
    /// </summary>
    public static DateTimeOffset CellStart(DateOnly day, int hour, TimeZoneInfo zone)
    {
        var local = day.ToDateTime(new TimeOnly(hour, 0));
        var offset = zone.IsInvalidTime(local) ? zone.GetUtcOffset(local.AddHours(-1)) : zone.GetUtcOffset(local);
        return new DateTimeOffset(local, offset);
    }
}
