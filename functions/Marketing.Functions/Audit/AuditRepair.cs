using Marketing.Functions.Hosting;
using Microsoft.Extensions.Options;
using Marketing.Functions.Telemetry;

namespace Marketing.Functions.Audit;

public sealed record AuditRepairReport(int IntentsRead, int Repaired, int CompletedByOthers, bool Stopped, List<string> Failures) : ITimerReport
{
    /// <summary>Stale intents read and not repaired (failed), due since their call's grace ended.</summary>
    public Backlog Backlog { get; init; } = new();

    bool ITimerReport.Failed => Failures.Count > 0;

    Backlog? ITimerReport.Backlog => Backlog;
}

/// <summary>
/// Timer function AuditRepair (schedule: app setting AuditRepairSchedule, every 5 minutes by default). Completes the
/// entries of calls that died after writing their intent (docs/audit.md): an intent older than Audit:RepairGraceMinutes
/// (longer than any request can run) belongs to a call that will never complete it. Each is completed from the target
/// as the call left it: "repaired", applied when it differs from before, else no_change. Every completion is
/// conditional on the intent's etag, so two runs at once (or a run and a late request) complete each intent once.
/// </summary>
public static class AuditRepair
{
    public const string FunctionName = "AuditRepair";
    public const string ScheduleSetting = "AuditRepairSchedule";

    public static RouteHandlerBuilder MapAuditRepair(this IEndpointRouteBuilder routes) =>
        routes.MapTimerFunction(FunctionName, $"%{ScheduleSetting}%", async (_, context) =>
        {
            var s = context.RequestServices;
            var time = s.GetRequiredService<TimeProvider>();
            var timers = s.GetRequiredService<IOptions<TimerOptions>>().Value;
            var report = await RunAsync(s.GetRequiredService<AuditStore>(), s.GetRequiredService<AuditTrail>(),
                TimeSpan.FromMinutes(s.GetRequiredService<IOptions<AuditOptions>>().Value.RepairGraceMinutes), time, timers,
                RunDeadline.Start(time, timers), context.RequestAborted);
            var result = new InvocationResult { ReturnValue = report };
            result.Log($"Read {report.IntentsRead} stale intents: repaired {report.Repaired}, {report.CompletedByOthers} completed by someone else first.");
            if (report.Stopped) result.Log("Stopped at the run's time limit with intents left; the next run carries on.");
            report.Failures.ForEach(f => result.Log(f));
            LogEvents.LoggerOf(context, typeof(AuditRepair)).AuditRepairRan(LogEvents.RunOutcome(report.Failures.Count, report.Stopped),
                report.IntentsRead, report.Repaired, report.CompletedByOthers);
            return result;
        });

    /// <summary>
    /// Repairs stale intents a page at a time (the query is repeated, never continued: repaired intents leave its answer)
    /// until none is left, the deadline passes, or a page repairs nothing (failures: the next run tries again).
    /// </summary>
    public static async Task<AuditRepairReport> RunAsync(AuditStore store, AuditTrail trail, TimeSpan grace, TimeProvider time, TimerOptions timers,
        RunDeadline deadline, CancellationToken ct)
    {
        var (read, repaired, others) = (0, 0, 0);
        var failures = new List<string>();
        var backlog = new Backlog();
        while (deadline.TakeMore())
        {
            var stale = await store.ListStaleIntentsAsync(time.GetUtcNow() - grace, timers.PageSize, ct);
            if (stale.Count == 0) break;
            read += stale.Count;
            var progress = 0;
            await Parallel.ForEachAsync(stale, new ParallelOptions { MaxDegreeOfParallelism = timers.Parallelism, CancellationToken = ct }, async (intent, token) =>
            {
                try
                {
                    if (await trail.RepairAsync(intent, grace, token)) Interlocked.Increment(ref repaired);
                    else Interlocked.Increment(ref others);
                    Interlocked.Increment(ref progress);
                }
                catch (Exception e) when (!token.IsCancellationRequested)
                {
                    lock (failures) failures.Add($"Audit entry {intent.Id} ({intent.Target}) not repaired: {Failure.Of(e)}");
                    backlog.Left(intent.OccurredAt + grace);
                }
            });
            if (progress == 0) break;
        }
        return new AuditRepairReport(read, repaired, others, deadline.Stopped, failures) { Backlog = backlog };
    }
}
