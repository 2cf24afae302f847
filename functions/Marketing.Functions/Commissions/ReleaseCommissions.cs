using Marketing.Functions.Expiry;
using Marketing.Functions.Hosting;
using Microsoft.Extensions.Options;
using Marketing.Functions.Telemetry;

namespace Marketing.Functions.Commissions;

public sealed record ReleaseReport : DueRun
{
    public int EntriesReleased { get; set; }
    /// <summary>Settlement records read with their release due (<see cref="SettlementReleases"/>).</summary>
    public int RecordsRead { get; set; }
    /// <summary>Of those, records whose release is finished and closed (the others are read again by the next run).</summary>
    public int RecordsClosed { get; set; }
}

/// <summary>
/// Timer function ReleaseCommissions (schedule: app setting ReleaseCommissionsSchedule, every 5 minutes by
/// default): pending ledger entries whose holding period is over become available. They are found through
/// their settlement records (<see cref="SettlementReleases"/>: records whose release is due), and, for events
/// settled before issue 11, through the release track of the due index, so a run reads only what is due. Each
/// move is a patch filtered on status = pending: two runs at once, or a rerun after a crash, release each
/// entry once. An entry that is not there (its settlement was interrupted before writing it) needs nothing:
/// when it is written after its time it is written available.
/// </summary>
public static class ReleaseCommissions
{
    public const string FunctionName = "ReleaseCommissions";
    public const string ScheduleSetting = "ReleaseCommissionsSchedule";

    public static RouteHandlerBuilder MapReleaseCommissions(this IEndpointRouteBuilder routes) =>
        routes.MapTimerFunction(FunctionName, $"%{ScheduleSetting}%", async (_, context) =>
        {
            var s = context.RequestServices;
            var time = s.GetRequiredService<TimeProvider>();
            var options = s.GetRequiredService<IOptions<TimerOptions>>().Value;
            var deadline = RunDeadline.Start(time, options);
            var report = await RunAsync(s.GetRequiredService<DueIndex>(), s.GetRequiredService<LedgerStore>(),
                s.GetRequiredService<SettlementStore>(), time.GetUtcNow(), options, deadline, context.RequestAborted);
            var result = new InvocationResult { ReturnValue = report };
            result.Log($"Released {report.EntriesReleased} ledger entries; read {report.RecordsRead} settlement records ({report.RecordsClosed} closed), " +
                $"{report.BucketsRead} buckets, {report.EntriesRead} due entries in {report.PagesRead} pages.");
            if (report.Stopped)
                result.Log($"Stopped at the run's time limit ({deadline.StopAt:O}) with work left; the next run carries on from what is still due.");
            report.Failures.ForEach(f => result.Log(f));
            LogEvents.LoggerOf(context, typeof(ReleaseCommissions)).ReleaseCommissionsRan(LogEvents.RunOutcome(report.Failures.Count, report.Stopped),
                report.EntriesReleased, report.RecordsRead, report.Failures.Count);
            return result;
        });

    /// <summary>
    /// One run at <paramref name="now"/>, taking new work only until <paramref name="deadline"/>: settlement records
    /// first, then the due-index releases of the shape before. The ledger entries of every due entry in work share
    /// the run's parallelism (<see cref="DueWork"/>).
    /// </summary>
    public static async Task<ReleaseReport> RunAsync(DueIndex due, LedgerStore ledger, SettlementStore settlements, DateTimeOffset now,
        TimerOptions options, RunDeadline deadline, CancellationToken ct)
    {
        var report = new ReleaseReport();
        await SettlementReleases.RunAsync(settlements, ledger, now, options, deadline, report, ct);
        // Releases filed in the due index by paid events settled before issue 11, until none are left.
        await due.RunAsync(DueIndex.Release, now, report, async (entry, work) =>
        {
            await work.ForEachAsync(entry.Items ?? [], async (item, token) =>
            {
                if (await ledger.TryReleaseAsync(item.PartitionKey, item.Id, now, token))
                    lock (report) report.EntriesReleased++;
            });
            return true;
        }, deadline, ct);
        if (deadline.Stopped) report.Stopped = true;
        return report;
    }
}
