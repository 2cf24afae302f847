using System.ComponentModel.DataAnnotations;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Redemption;
using Marketing.Functions.Telemetry;
using Marketing.Functions.Wallet;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Stats;

public sealed class StatsOptions : IValidatableObject
{
    public const string Section = "Stats";

    /// <summary>The platform's time zone (IANA): where the overview's "today" and "yesterday" begin.</summary>
    [Required] public string TimeZone { get; set; } = "Asia/Shanghai";

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (CampaignTerms.FindTimeZone(TimeZone) is null)
            yield return new ValidationResult("Stats:TimeZone must be an IANA time zone id such as Asia/Shanghai.", [nameof(TimeZone)]);
    }

    /// <summary>
    /// How long a fact's mark is kept, and so how late a change may be read and still be recognised as already counted:
    /// a fact older than this is taken as counted and never added again. Must exceed the longest the fold can fall behind
    /// (a stopped AggregateStats); behind longer, run recount-stats (docs/stats.md).
    /// </summary>
    [Range(2, 365)]
    public int FactDays { get; set; } = 14;
}

/// <summary>
/// A run's report; <c>CosmosRequests</c> counts the run's own requests (the overview's included), nothing else's;
/// <c>Failures</c> names each cursor that failed (the others went on); <c>AsOf</c> is the statistics' asOf after the run
/// (every change written before it is counted; null until every cursor has caught up once).
/// </summary>
public sealed record AggregateReport(int Pages, int Changes, int Facts, int Counted, int CursorsCaughtUp, int CursorsLost, bool Stopped,
    long CosmosRequests = 0, IReadOnlyList<string>? Failures = null, DateTimeOffset? AsOf = null) : ITimerReport
{
    bool ITimerReport.Failed => Failures is { Count: > 0 };
    Backlog? ITimerReport.Backlog => null; // its backlog is its lag (marketing.stats.lag)
}

/// <summary>
/// Timer function AggregateStats (schedule: app setting AggregateStatsSchedule, every minute by default). Reads the
/// change feeds of the wallets, the redemptions and the commission ledger with the pull model, one stored continuation per feed range
/// (<see cref="FeedCursor"/>), and counts the facts of each changed document into its campaign's days
/// (<see cref="StatsStore.CountAsync"/>), each fact exactly once whatever the feed repeats. Never on the hot path:
/// claims and locks write nothing for it. docs/stats.md has the argument.
/// </summary>
public static class AggregateStats
{
    public const string FunctionName = "AggregateStats";
    public const string ScheduleSetting = "AggregateStatsSchedule";

    public static RouteHandlerBuilder MapAggregateStats(this IEndpointRouteBuilder routes) =>
        routes.MapTimerFunction(FunctionName, $"%{ScheduleSetting}%", async (_, context) =>
        {
            var services = context.RequestServices;
            var folder = services.GetRequiredService<StatsFolder>();
            var deadline = RunDeadline.Start(services.GetRequiredService<TimeProvider>(), services.GetRequiredService<IOptions<TimerOptions>>().Value);
            var own = CosmosRequestCounter.CountOwn();
            var report = await folder.RunAsync(deadline, context.RequestAborted);
            report = report with { CosmosRequests = Interlocked.Read(ref own.Value) };
            var result = new InvocationResult { ReturnValue = report };
            result.Log($"Folded {report.Changes} changes in {report.Pages} pages: {report.Counted} of {report.Facts} facts new; "
                + $"{report.CursorsCaughtUp} feed ranges caught up{(report.Stopped ? ", stopped with work left" : "")}; {report.CosmosRequests} Cosmos requests.");
            foreach (var failure in report.Failures ?? []) result.Log("Failed: " + failure);
            // How far behind the statistics are as the run ends; none until every cursor has caught up once.
            if (report.AsOf is { } asOf)
                Metrics.StatsLagAfterRun(Math.Max(0, (services.GetRequiredService<TimeProvider>().GetUtcNow() - asOf).TotalSeconds));
            LogEvents.LoggerOf(context, typeof(AggregateStats)).AggregateStatsRan(LogEvents.RunOutcome(report.Failures?.Count ?? 0, report.Stopped),
                report.Changes, report.Pages, report.Counted, report.Facts, report.Failures?.Count ?? 0);
            return result;
        });
}

/// <summary>A source container whose changes are folded, and what a page of its documents means.</summary>
public sealed record StatsSource(string Name, string Container, Func<IReadOnlyList<JsonElement>, CancellationToken, Task<List<StatsFact>>> Facts);

/// <summary>The fold itself (see <see cref="AggregateStats"/>).</summary>
public sealed class StatsFolder(Database database, StatsStore stats, CampaignStore campaigns, CampaignCache catalogue, StockStore stock,
    Payouts.PayoutStore payouts, RedemptionStore redemptions, TimeProvider time, IOptions<StatsOptions> options, IOptions<TimerOptions> timers, ILogger<StatsFolder> logger)
{
    /// <summary>The containers whose change feeds are folded (each has its cursors; asOf needs all of them caught up).</summary>
    public static readonly string[] SourceNames = ["wallets", "redemptions", "ledger", "referrals", "settlements"];

    private readonly StatsSource[] sources =
    [
        new("wallets", WalletStore.Spec.Name, (page, _) => Task.FromResult(page.SelectMany(StatsFacts.OfWallet).ToList())),
        new("redemptions", RedemptionStore.Spec.Name, (page, _) => Task.FromResult(page.SelectMany(StatsFacts.OfRedemption).ToList())),
        new("ledger", Commissions.LedgerStore.Spec.Name, (page, ct) => StatsFacts.OfLedgerAsync(page, redemptions.FindAsync, ct)),
        new("referrals", Promoters.ReferralStore.Spec.Name, (page, _) => Task.FromResult(page.SelectMany(StatsFacts.OfReferrals).ToList())),
        new("settlements", Commissions.SettlementStore.Spec.Name, (page, _) => Task.FromResult(page.SelectMany(StatsFacts.OfSettlement).ToList())),
    ];

    public async Task<AggregateReport> RunAsync(RunDeadline deadline, CancellationToken ct)
    {
        var cursors = await CursorsAsync(ct);
        var tally = new Tally();
        var lookup = new CampaignLookup(campaigns, options.Value.TimeZone);
        await Parallel.ForEachAsync(cursors, new ParallelOptions { MaxDegreeOfParallelism = timers.Value.Parallelism, CancellationToken = ct },
            async (cursor, token) =>
            {
                // One cursor's failure (throttling past the SDK's retries, a day too contended, a continuation Cosmos no
                // longer takes) is reported and leaves the others, and the overview, to go on: its page is read again next run.
                try
                {
                    await FoldAsync(cursor, lookup, deadline, tally, token);
                }
                catch (Exception e) when (!token.IsCancellationRequested)
                {
                    logger.StatsFoldFailed(cursor.Id, e);
                    lock (tally.Failures) tally.Failures.Add($"{cursor.Id}: {Failure.Of(e)}");
                }
            });
        // The console's home, from what is counted now (cheap to read: one document).
        var asOf = GetCampaignStats.AsOf(await stats.ListCursorsAsync(ct));
        await StatsOverview.RefreshAsync(stats, catalogue, stock, lookup, campaigns, payouts, options.Value.TimeZone, time.GetUtcNow(), asOf, ct);
        return new AggregateReport(tally.Pages, tally.Changes, tally.Facts, tally.Counted, tally.CaughtUp, tally.Lost, deadline.Stopped,
            Failures: [.. tally.Failures], AsOf: asOf);
    }

    /// <summary>The cursors of every source, created (from the beginning of the feed) for the feed ranges of a source that has none.</summary>
    private async Task<List<FeedCursor>> CursorsAsync(CancellationToken ct)
    {
        var cursors = await stats.ListCursorsAsync(ct);
        var missing = sources.Where(s => !cursors.Any(c => c.Source == s.Name)).ToList();
        if (missing.Count == 0) return cursors;
        // Only for a source with no cursor at all: the ranges a source started with keep their cursors for good (after a
        // split the SDK follows a range's continuation into its children), so no change is read by two cursors. All of a
        // source's cursors are created at once (one batch): a run that died after creating some would otherwise leave
        // the source "started" with ranges no cursor reads, whose changes would never be counted.
        foreach (var source in missing)
        {
            var ranges = await database.GetContainer(source.Container).GetFeedRangesAsync(ct);
            await stats.TryCreateCursorsAsync([.. ranges.Select(r => r.ToJsonString())
                .Select(json => new FeedCursor { Id = CursorId(source.Name, json), Source = source.Name, Range = json })], ct);
        }
        return await stats.ListCursorsAsync(ct);
    }

    public static string CursorId(string source, string range)
        => source + ":" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(range)))[..16];

    private async Task FoldAsync(FeedCursor cursor, CampaignLookup lookup, RunDeadline deadline, Tally tally, CancellationToken ct)
    {
        var source = sources.FirstOrDefault(s => s.Name == cursor.Source);
        if (source is null) return; // a cursor of a source no longer folded
        var container = database.GetContainer(source.Container);
        var start = cursor.Continuation is null
            ? ChangeFeedStartFrom.Beginning(FeedRange.FromJsonString(cursor.Range))
            : ChangeFeedStartFrom.ContinuationToken(cursor.Continuation);
        using var feed = container.GetChangeFeedStreamIterator(start, ChangeFeedMode.LatestVersion,
            new ChangeFeedRequestOptions { PageSizeHint = timers.Value.PageSize });
        // The next page is read while this one is counted (its continuation is saved only once this one is counted).
        (DateTimeOffset SentAt, Task<ResponseMessage> Page) Read() => (time.GetUtcNow(), feed.ReadNextAsync(ct));
        var next = Read();
        try
        {
            while (deadline.TakeMore())
            {
                var sentAt = next.SentAt;
                using var page = await next.Page;
                next = default;
                if (page.StatusCode == HttpStatusCode.NotModified)
                {
                    // Nothing newer than the continuation as of sentAt: every change written before then is counted.
                    var caughtUp = await stats.TryMoveCursorAsync(cursor with { Continuation = page.ContinuationToken, CaughtUpAt = sentAt, UpdatedAt = sentAt }, ct);
                    Interlocked.Increment(ref caughtUp is null ? ref tally.Lost : ref tally.CaughtUp);
                    return;
                }
                page.EnsureSuccessStatusCode();
                next = Read();
                if (!await CountPageAsync(page)) return;
            }
        }
        finally
        {
            // A read still in flight when the run stops (or fails) is finished and dropped: its page is read again next time.
            if (next.Page is { } pending)
                try { (await pending).Dispose(); }
                catch (Exception e) when (e is CosmosException or OperationCanceledException or HttpRequestException) { }
        }

        async Task<bool> CountPageAsync(ResponseMessage page)
        {
            var documents = await ReadDocumentsAsync(page.Content, ct);
            Interlocked.Increment(ref tally.Pages);
            Interlocked.Add(ref tally.Changes, documents.Count);
            await CountAsync(await source.Facts(documents, ct), lookup, tally, ct);

            // Saved only once the page is counted: a run that dies before this reads the page again, and its facts are
            // recognised by their marks. Conditional on the cursor as read: a run that finds another moved it stops.
            var moved = await stats.TryMoveCursorAsync(cursor with { Continuation = page.ContinuationToken, UpdatedAt = time.GetUtcNow() }, ct);
            if (moved is null)
            {
                Interlocked.Increment(ref tally.Lost);
                return false;
            }
            cursor = moved;
            return true;
        }
    }

    /// <summary>Counts facts into their days, day by day (each day's facts in one or a few batches), a few days at once.</summary>
    public async Task CountAsync(IEnumerable<StatsFact> facts, CampaignLookup lookup, Tally tally, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var oldest = now.AddDays(-options.Value.FactDays);
        var placed = new List<PlacedFact>();
        foreach (var fact in facts)
        {
            Interlocked.Increment(ref tally.Facts);
            // Older than the marks are kept: it was counted when it was new (docs/stats.md, "How late a change may come").
            if (fact.At < oldest) continue;
            var campaign = await lookup.FindAsync(fact.CampaignId, ct);
            if (campaign is null)
            {
                logger.StatsFactOfUnknownCampaign(fact.Id, fact.CampaignId);
                continue;
            }
            // The fact may come again until FactDays after it happened (or after now, if it happens later: the end of a
            // coupon's validity), so its mark is kept a day longer than that.
            var markTtl = (Max(fact.At, now) - now).TotalSeconds + (options.Value.FactDays + 1) * 86_400d;
            // Its reminder group is fixed here, with its mark: a fact is counted once, in the group it was counted in.
            placed.Add(new PlacedFact(fact.Classified(campaign.Reminders), Cell.Of(fact, campaign.Zone), (int)Math.Min(Math.Ceiling(markTtl), int.MaxValue)));
        }
        await Parallel.ForEachAsync(placed.GroupBy(p => (p.Cell.CampaignId, p.Cell.Day)), new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = ct },
            async (day, token) =>
            {
                var counted = await stats.CountAsync(new Cell(day.Key.CampaignId, day.Key.Day, 0, ""), [.. day], tally.Days, token);
                Interlocked.Add(ref tally.Counted, counted);
            });
    }

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

    private static async Task<List<JsonElement>> ReadDocumentsAsync(Stream content, CancellationToken ct)
    {
        using var json = await JsonDocument.ParseAsync(content, cancellationToken: ct);
        return json.RootElement.TryGetProperty("Documents", out var documents)
            ? [.. documents.EnumerateArray().Select(d => d.Clone())]
            : [];
    }

    public sealed class Tally
    {
        public int Pages, Changes, Facts, Counted, CaughtUp, Lost;
        /// <summary>The days this run wrote (see <see cref="DayCache"/>).</summary>
        public DayCache Days { get; } = new();
        public List<string> Failures { get; } = [];
    }
}

/// <summary>
/// What counting a fact needs of its campaign, read once per run (one point read per campaign, whatever the number of
/// facts): its time zone (a published campaign's never changes) and its reminder policy (which may: a run classifies
/// by the policy it read). The programme's days are the platform's (<see cref="StatsOptions.TimeZone"/>); it has no
/// reminders.
/// </summary>
public sealed class CampaignLookup(CampaignStore campaigns, string platformTimeZone)
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Task<FoldedCampaign?>> found = new(StringComparer.Ordinal);

    /// <summary>The campaign's time zone and reminder policy; null for a campaign that does not exist.</summary>
    public Task<FoldedCampaign?> FindAsync(string campaignId, CancellationToken ct)
        => campaignId == Programme.Id
            ? Task.FromResult(CampaignTerms.FindTimeZone(platformTimeZone) is { } zone ? new FoldedCampaign(zone, null) : null)
            : found.GetOrAdd(campaignId, async id => await campaigns.FindAsync(id, ct) is { } c && CampaignTerms.FindTimeZone(c.Terms.TimeZone) is { } zone
                ? new FoldedCampaign(zone, c.Terms.ReminderPolicy)
                : null);
}

/// <summary>A campaign as the fold places its facts: the zone of its days, and the reminder policy that sorts its customers (null: none).</summary>
public sealed record FoldedCampaign(TimeZoneInfo Zone, ReminderPolicy? Reminders);
