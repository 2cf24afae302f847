using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Stats;

/// <summary>
/// One point of a series: the figures of a local day (<c>Hour</c> null) or of one local hour of it, in the campaign's time
/// zone; <c>Start</c> is the instant it begins, in local time with its offset.
/// </summary>
public sealed record StatsPoint(DateOnly Day, int? Hour, [property: JsonConverter(typeof(LocalInstantConverter))] DateTimeOffset Start, Figures Figures);

/// <summary>
/// A point's start as the campaign's local time with its offset ("2026-11-21T23:00:00+08:00"): the API writes other
/// instants in UTC (<see cref="UtcInstantConverter"/>), which would turn a local day into "2026-11-20T16:00:00.000Z" and
/// hide which day it is. Read back as any ISO 8601 instant with an offset.
/// </summary>
public sealed class LocalInstantConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        => new UtcInstantConverter().Read(ref reader, typeToConvert, options);

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options)
        => writer.WriteStringValue(value.ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture));
}

/// <summary>claimed → locked → redeemed → refunded, each rate the share of the step before (null when it had none).</summary>
public sealed record Funnel(long Claimed, long Locked, long Redeemed, long Refunded, double? LockRate, double? RedeemRate, double? RefundRate);

/// <summary>
/// The campaign's budget now (live, over its shards), what it burns per day (net discount over the last 7 local days,
/// today included, ÷ 7) and, at that rate, the local date it runs out (null when nothing burns).
/// </summary>
public sealed record BudgetStats(long Total, long Left, long Reserved, long Spent, double BurnPerDay, DateOnly? ExhaustsOn);

/// <summary>One side of the reminders' experiment over the period asked for: its coupons claimed, those redeemed, and redeemed ÷ claimed (null when none was claimed).</summary>
public sealed record ReminderGroupStats(long Claimed, long Redeemed, double? RedemptionRate);

/// <summary>
/// The reminders' uplift, measured (intent to treat, docs/stats.md): the campaign's reminder policy now, the reminder group
/// (every customer the policy does not hold out) against the holdout, and <c>Uplift</c> = the reminder group's redemption
/// rate − the holdout's (null when either is null).
/// </summary>
public sealed record ReminderStats(int[] OffsetsHours, int HoldoutPercent, ReminderGroupStats Reminded, ReminderGroupStats Holdout, double? Uplift)
{
    /// <summary>The experiment read from some figures; null when the campaign sends no reminders (no offsets): there is nothing to compare.</summary>
    public static ReminderStats? Of(ReminderPolicy policy, Figures totals)
    {
        if (policy.OffsetsHours.Length == 0) return null;
        var (remindedClaims, remindedRedemptions) = (totals.Claims - totals.HoldoutClaims, totals.Redemptions - totals.HoldoutRedemptions);
        double? reminded = remindedClaims > 0 ? remindedRedemptions / (double)remindedClaims : null;
        double? holdout = totals.HoldoutClaims > 0 ? totals.HoldoutRedemptions / (double)totals.HoldoutClaims : null;
        return new ReminderStats(policy.OffsetsHours, policy.HoldoutPercent,
            new ReminderGroupStats(remindedClaims, remindedRedemptions, Round(reminded)),
            new ReminderGroupStats(totals.HoldoutClaims, totals.HoldoutRedemptions, Round(holdout)),
            // From the unrounded rates: the difference of two rounded rates could be off by a unit in the last place.
            reminded is { } r && holdout is { } h ? Round(r - h) : null);
    }

    private static double? Round(double? value) => value is { } v ? Math.Round(v, 4) : null;
}

public sealed record CampaignStatsView(
    string CampaignId,
    string TimeZone,
    string Currency,
    string Granularity,
    string? Channel,
    DateOnly From,
    DateOnly To,
    DateTimeOffset? AsOf,
    double? LagSeconds,
    IReadOnlyList<StatsPoint> Series,
    Figures Totals,
    IReadOnlyDictionary<string, Figures> ByChannel,
    double? RedemptionRate,
    Funnel Funnel,
    BudgetStats? Budget,
    double? Roi,
    ReminderStats? Reminders);

/// <summary>
/// GET /api/campaigns/{id}/stats?from&amp;to&amp;granularity=day|hour&amp;channel — a campaign's figures as counted by
/// AggregateStats: a series by local day or hour (the campaign's time zone), totals, per channel, the funnel, the budget
/// and ROI, with <c>asOf</c>: every change written before it is counted. Reads, sent together: the campaign (cached), the
/// days asked for and the last 7 (point reads, or one query beyond StatsStore.PointReadDays), the feed cursors (one query),
/// the budget's figures. docs/stats.md.
/// </summary>
public static class GetCampaignStats
{
    public const int MaxDays = 366, MaxHourDays = 31, BurnDays = 7;

    public static RouteHandlerBuilder MapGetCampaignStats(this IEndpointRouteBuilder group) =>
        group.MapGet("/{id}/stats", HandleAsync)
            .AsFunction("GetCampaignStats")
            .RequireAuthorization(Policies.Operator)
            .WithProblems(404, ProblemTypes.NotFound)
            .Produces<CampaignStatsView>()
            .WithSummary("A campaign's statistics: series by day or hour in its time zone, totals, channels, funnel, budget, ROI, reminders against the holdout, as of an instant.")
            .WithDescription("from and to are local dates (yyyy-MM-dd, inclusive; default: the last 7 days to today); granularity day (default, at most "
                + $"{MaxDays} days) or hour (at most {MaxHourDays} days); channel filters the series and totals (app, mini_program, h5, ota, unknown).");

    /// <summary>
    /// GET /api/campaigns/{id}/stats.csv?from&amp;to&amp;channel — the daily series as CSV (one row per local day, figures in
    /// minor units), for spreadsheets; the same query rules and reads as the JSON answer's day series.
    /// </summary>
    public static RouteHandlerBuilder MapExportCampaignStats(this IEndpointRouteBuilder group) =>
        group.MapGet("/{id}/stats.csv", async (string id, HttpContext context, CampaignCache campaigns, StatsStore stats, TimeProvider time,
                string? from, string? to, string? channel) =>
            {
                var ct = context.RequestAborted;
                var campaign = await campaigns.FindAsync(id, ct);
                if (campaign is null) return Problem.NotFound("This campaign").ToResult();
                var (zone, today) = Today(campaign, time);
                var (first, last, _) = Parse(from, to, null, channel, today, out var errors);
                if (errors.Count > 0) return Problem.Validation(errors).ToResult();
                var cells = Cells(await stats.ReadDaysAsync(id, first, last, ct)).Where(c => channel is null || c.Key.Channel == channel).ToList();
                var rows = new List<(DateOnly, Figures)>();
                for (var day = first; day <= last; day = day.AddDays(1))
                    rows.Add((day, Figures.Sum(cells.Where(c => c.Day == day).Select(c => c.Figures))));
                context.Response.Headers.ContentDisposition = $"attachment; filename=\"stats-{id}-{first:yyyyMMdd}-{last:yyyyMMdd}.csv\"";
                return Results.Text(StatsCsv.Write(rows), StatsCsv.ContentType + "; charset=utf-8", System.Text.Encoding.UTF8);
            })
            .AsFunction("ExportCampaignStats")
            .RequireAuthorization(Policies.Operator)
            .WithProblems(404, ProblemTypes.NotFound)
            .Produces<string>(StatusCodes.Status200OK, StatsCsv.ContentType)
            .WithSummary("A campaign's daily statistics as CSV (one row per local day).")
            .WithDescription("from, to and channel as for GetCampaignStats; at most " + MaxDays + " days.");

    private static (TimeZoneInfo Zone, DateOnly Today) Today(Campaign campaign, TimeProvider time)
    {
        var zone = CampaignTerms.FindTimeZone(campaign.Terms.TimeZone) ?? TimeZoneInfo.Utc;
        return (zone, DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(time.GetUtcNow(), zone).DateTime));
    }

    private static List<(DateOnly Day, (int Hour, string Channel) Key, Figures Figures)> Cells(IEnumerable<CampaignDay> days)
        => [.. days.SelectMany(d => d.Cells.Select(c => (d.Date, Cell.Parse(c.Key), c.Value)))];

    private static async Task<IResult> HandleAsync(string id, HttpContext context, CampaignCache campaigns, StatsStore stats, StockStore stock,
        TimeProvider time, string? from, string? to, string? granularity, string? channel)
    {
        var ct = context.RequestAborted;
        var campaign = await campaigns.FindAsync(id, ct);
        if (campaign is null) return Problem.NotFound("This campaign").ToResult();
        var (zone, today) = Today(campaign, time);
        var now = time.GetUtcNow();

        var query = Parse(from, to, granularity, channel, today, out var errors);
        if (errors.Count > 0) return Problem.Validation(errors).ToResult();
        var (first, last, hourly) = query;

        // The burn rate's days usually lie within the range asked for: read each day once.
        var burnFrom = today.AddDays(1 - BurnDays);
        var dates = new SortedSet<DateOnly>();
        for (var d = first; d <= last; d = d.AddDays(1)) dates.Add(d);
        for (var d = burnFrom; d <= today; d = d.AddDays(1)) dates.Add(d);
        var days = stats.ReadDaysAsync(id, dates, ct);
        var cursors = stats.ListCursorsAsync(ct);
        var budget = campaign.Terms.Budget is null ? Task.FromResult<BudgetFigures?>(null) : stock.SumBudgetAsync(id, campaign.Terms.ShardCount, ct: ct);
        await Task.WhenAll(days, cursors, budget);

        var cells = Cells(days.Result.Where(d => d.Date >= first && d.Date <= last));
        var selected = cells.Where(c => channel is null || c.Key.Channel == channel).ToList();
        var series = new List<StatsPoint>();
        for (var day = first; day <= last; day = day.AddDays(1))
        {
            if (!hourly)
            {
                series.Add(new StatsPoint(day, null, StatsOverview.CellStart(day, 0, zone), Figures.Sum(selected.Where(c => c.Day == day).Select(c => c.Figures))));
                continue;
            }
            for (var hour = 0; hour < 24; hour++)
                series.Add(new StatsPoint(day, hour, StatsOverview.CellStart(day, hour, zone), Figures.Sum(selected.Where(c => c.Day == day && c.Key.Hour == hour).Select(c => c.Figures))));
        }
        var totals = Figures.Sum(selected.Select(c => c.Figures));
        var byChannel = cells.GroupBy(c => c.Key.Channel).OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => Figures.Sum(g.Select(c => c.Figures)));

        var asOf = AsOf(cursors.Result);
        var burn = Figures.Sum(days.Result.Where(d => d.Date >= burnFrom && d.Date <= today).SelectMany(d => d.Cells.Values)).Discount / (double)BurnDays;
        var budgetStats = budget.Result is { } b
            ? new BudgetStats(b.Total, b.Left, b.Reserved, b.Spent, burn,
                burn > 0 ? today.AddDays((int)Math.Min(Math.Ceiling(b.Left / burn), 36_500)) : null)
            : null;
        // What the campaign cost: the discount it gave and the commissions paid on its orders, both net of refunds.
        var cost = totals.Discount + totals.Commission - totals.CommissionReversed;
        return TypedResults.Ok(new CampaignStatsView(id, campaign.Terms.TimeZone, campaign.Terms.Currency, hourly ? "hour" : "day", channel,
            first, last, asOf, asOf is { } at ? Math.Max(0, (now - at).TotalSeconds) : null, series, totals, byChannel,
            Rate(totals.Redemptions, totals.Claims),
            new Funnel(totals.Claims, totals.Locks, totals.Redemptions, totals.Refunds,
                Rate(totals.Locks, totals.Claims), Rate(totals.Redemptions, totals.Locks), Rate(totals.Refunds, totals.Redemptions)),
            budgetStats,
            cost > 0 ? (totals.Gmv - cost) / (double)cost : null,
            ReminderStats.Of(campaign.Terms.ReminderPolicy, totals)));
    }

    /// <summary>The instant every source has been read up to: the earliest "caught up" of all cursors; null before every source has one.</summary>
    public static DateTimeOffset? AsOf(IReadOnlyList<FeedCursor> cursors)
    {
        if (StatsFolder.SourceNames.Any(s => !cursors.Any(c => c.Source == s))) return null;
        var relevant = cursors.Where(c => StatsFolder.SourceNames.Contains(c.Source)).ToList();
        return relevant.Any(c => c.CaughtUpAt is null) ? null : relevant.Min(c => c.CaughtUpAt);
    }

    private static double? Rate(long part, long whole) => whole > 0 ? Math.Round(part / (double)whole, 4) : null;

    internal static (DateOnly From, DateOnly To, bool Hourly) Parse(string? from, string? to, string? granularity, string? channel, DateOnly today,
        out Dictionary<string, string[]> errors)
    {
        var found = new Dictionary<string, string[]>();
        errors = found;
        var hourly = false;
        if (granularity is not (null or "day" or "hour")) errors["granularity"] = ["day or hour."];
        else hourly = granularity == "hour";
        if (channel is not null && !StatsChannels.All.Contains(channel)) errors["channel"] = [$"One of {string.Join(", ", StatsChannels.All)}."];
        DateOnly? Date(string field, string? value)
        {
            if (value is null) return null;
            if (DateOnly.TryParseExact(value, StatsStore.DayFormat, CultureInfo.InvariantCulture, DateTimeStyles.None, out var date)) return date;
            found[field] = ["A local date, yyyy-MM-dd."];
            return null;
        }
        var last = Date("to", to) ?? today;
        var first = Date("from", from) ?? last.AddDays(-6);
        var span = last.DayNumber - first.DayNumber + 1;
        if (errors.ContainsKey("from") || errors.ContainsKey("to")) return (first, last, hourly);
        if (span < 1) errors["from"] = ["Must be on or before to."];
        else if (span > (hourly ? MaxHourDays : MaxDays)) errors["to"] = [$"At most {(hourly ? MaxHourDays : MaxDays)} days from from for granularity {(hourly ? "hour" : "day")}."];
        return (first, last, hourly);
    }
}

/// <summary>
/// The daily series as CSV (RFC 4180, UTF-8): a header row, then one row per local day; money in minor units. The reminder
/// group's claims and redemptions are claims − holdout_claims and redemptions − holdout_redemptions.
/// </summary>
public static class StatsCsv
{
    public const string ContentType = "text/csv";
    public const string Header = "date,claims,new_claimers,locks,redemptions,cancellations,lapsed,refunds,expired,discount,gmv,expiring,commission,commission_reversed,holdout_claims,holdout_redemptions";

    public static string Write(IEnumerable<(DateOnly Day, Figures Figures)> rows)
    {
        var csv = new System.Text.StringBuilder(Header).Append("\r\n");
        foreach (var (day, f) in rows)
        {
            csv.Append(day.ToString(StatsStore.DayFormat, CultureInfo.InvariantCulture));
            foreach (var value in new[] { f.Claims, f.NewClaimers, f.Locks, f.Redemptions, f.Cancellations, f.Lapsed, f.Refunds, f.Expired, f.Discount, f.Gmv, f.Expiring, f.Commission, f.CommissionReversed, f.HoldoutClaims, f.HoldoutRedemptions })
                csv.Append(',').Append(value.ToString(CultureInfo.InvariantCulture));
            csv.Append("\r\n");
        }
        return csv.ToString();
    }
}
