using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Stats;

/// <summary>One day of the distribution programme (the platform's time zone).</summary>
public sealed record ProgrammeDay(DateOnly Day, DateTimeOffset Start, long Visits, long Bindings, long PaidOrders, long Commission, long CommissionReversed);

/// <summary>visits → bound buyers → paid orders → commission; each rate the share of the step before (null when it had none).</summary>
public sealed record ProgrammeFunnel(long Visits, long Bindings, long PaidOrders, long Commission, long CommissionReversed,
    double? BindRate, double? PayRate, double? CommissionPerOrder);

public sealed record DistributionStatsView(string TimeZone, DateOnly From, DateOnly To, DateTimeOffset? AsOf, double? LagSeconds,
    IReadOnlyList<ProgrammeDay> Series, ProgrammeFunnel Totals);

/// <summary>
/// GET /api/stats/distribution?from&amp;to — the distribution programme's funnel by day: referral visits, buyers bound,
/// paid orders of bound buyers, commission accrued and reversed, in the platform's time zone, with asOf. Reads the
/// programme's days (point reads, or one query beyond a month) and the feed cursors. docs/stats.md.
/// </summary>
public static class GetDistributionStats
{
    public static RouteHandlerBuilder MapGetDistributionStats(this IEndpointRouteBuilder routes) =>
        routes.MapGet("/api/stats/distribution", async Task<IResult> (HttpContext context, StatsStore stats, TimeProvider time, IOptions<StatsOptions> options,
                string? from, string? to) =>
            {
                var ct = context.RequestAborted;
                var zone = CampaignTerms.FindTimeZone(options.Value.TimeZone) ?? TimeZoneInfo.Utc;
                var now = time.GetUtcNow();
                var today = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(now, zone).DateTime);
                var (first, last, _) = GetCampaignStats.Parse(from, to, null, null, today, out var errors);
                if (errors.Count > 0) return Problem.Validation(errors).ToResult();

                var days = stats.ReadDaysAsync(Programme.Id, first, last, ct);
                var cursors = stats.ListCursorsAsync(ct);
                await Task.WhenAll(days, cursors);
                var byDay = days.Result.ToDictionary(d => d.Date, d => Figures.Sum(d.Cells.Values));
                var series = new List<ProgrammeDay>();
                for (var day = first; day <= last; day = day.AddDays(1))
                {
                    var f = byDay.GetValueOrDefault(day) ?? Figures.Zero;
                    series.Add(new ProgrammeDay(day, StatsOverview.CellStart(day, 0, zone), f.Visits, f.Bindings, f.PaidOrders, f.Commission, f.CommissionReversed));
                }
                var t = Figures.Sum(byDay.Values);
                var asOf = GetCampaignStats.AsOf(cursors.Result);
                return TypedResults.Ok(new DistributionStatsView(options.Value.TimeZone, first, last, asOf,
                    asOf is { } at ? Math.Max(0, (now - at).TotalSeconds) : null, series,
                    new ProgrammeFunnel(t.Visits, t.Bindings, t.PaidOrders, t.Commission, t.CommissionReversed,
                        Rate(t.Bindings, t.Visits), Rate(t.PaidOrders, t.Bindings), Rate(t.Commission - t.CommissionReversed, t.PaidOrders))));
            })
            .AsFunction("GetDistributionStats")
            .RequireAuthorization(Policies.Operator)
            .WithTags("Stats")
            .Produces<DistributionStatsView>()
            .WithSummary("The distribution programme by day: referral visits → bound buyers → paid orders → commission, as of an instant.")
            .WithDescription("from and to are local dates of the platform's time zone (yyyy-MM-dd, inclusive; default: the last 7 days to today), at most "
                + GetCampaignStats.MaxDays + " days.");

    private static double? Rate(long part, long whole) => whole > 0 ? Math.Round(part / (double)whole, 4) : null;
}
