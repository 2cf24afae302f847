using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Redemption;
using Marketing.Functions.Wallet;
using Microsoft.Extensions.Options;
using Marketing.Functions.Telemetry;

namespace Marketing.Functions.Expiry;

/// <summary>What one run did, and how much it read (the tests hold it to reading only what is due).</summary>
public sealed record ExpiryReport : DueRun
{
    public int WalletsRead { get; set; }
    public int CouponsExpired { get; set; }
    public int LocksReleased { get; set; }
    /// <summary>Coupons found still locked past their lockedUntil (the lapsed-lock phase, <see cref="LapsedLocks"/>).</summary>
    public int LapsedLocksRead { get; set; }
    /// <summary>Confirms and cancels interrupted after their record, whose effects the lapsed-lock phase completed.</summary>
    public int LocksFinished { get; set; }
    public int CampaignsEnded { get; set; }
    public int CampaignsClosed { get; set; }
    /// <summary>Sold-out campaigns left open because a recount found units lost to claims that died (they came back).</summary>
    public int CampaignsRecounted { get; set; }
}

/// <summary>
/// Timer function ExpireCoupons (schedule: app setting ExpireCouponsSchedule, every 5 minutes by default).
/// - Coupons past their validity are marked expired, locks past their time are cancelled ("expire"): both
///   found through the due index (<see cref="DueIndex"/>), which is read bucket by bucket (an hour's shard), only
///   for hours that have come, so the run reads what is due and nothing else.
/// - Campaigns whose claim window is over are ended; sold-out campaigns (nothing left, no claim for the
///   stock quiet period) are ended as sold out.
/// Every effect is a conditional write, so two runs at once, or a rerun after a crash halfway, change each
/// thing once; an entry is marked done only after its work is, so an interrupted run is simply finished
/// by the next one.
/// </summary>
public static class ExpireCoupons
{
    public const string FunctionName = "ExpireCoupons";
    public const string ScheduleSetting = "ExpireCouponsSchedule";
    public const string By = "system:" + FunctionName;

    /// <summary>
    /// Wallets asked for at once: one query page (the query is repeated, never continued). What a coupons entry in
    /// work holds; a run holds at most Timers:Parallelism of them.
    /// </summary>
    public const int WalletBatch = 1000;

    public static RouteHandlerBuilder MapExpireCoupons(this IEndpointRouteBuilder routes) =>
        routes.MapTimerFunction(FunctionName, $"%{ScheduleSetting}%", async (_, context) =>
        {
            var s = context.RequestServices;
            var time = s.GetRequiredService<TimeProvider>();
            // Taken before the run's instant: the run stops taking work Timers:RunSeconds after it began.
            var deadline = RunDeadline.Start(time, s.GetRequiredService<IOptions<TimerOptions>>().Value);
            var report = await RunAsync(s.GetRequiredService<DueIndex>(), s.GetRequiredService<WalletStore>(), s.GetRequiredService<RedemptionStore>(),
                s.GetRequiredService<CampaignStore>(), s.GetRequiredService<StockStore>(), s.GetRequiredService<CampaignCache>(),
                TimeSpan.FromMinutes(s.GetRequiredService<IOptions<StockOptions>>().Value.QuietMinutes),
                time.GetUtcNow(), context.RequestAborted, timers: s.GetRequiredService<IOptions<TimerOptions>>().Value, deadline: deadline);
            var result = new InvocationResult { ReturnValue = report };
            result.Log($"Expired {report.CouponsExpired} coupons, released {report.LocksReleased} locks (read {report.LapsedLocksRead} lapsed, finished {report.LocksFinished} steps), ended {report.CampaignsEnded} and closed {report.CampaignsClosed} campaigns; read {report.BucketsRead} buckets, {report.EntriesRead} entries in {report.PagesRead} pages, {report.WalletsRead} wallets.");
            if (report.Stopped)
                result.Log($"Stopped at the run's time limit ({deadline.StopAt:O}) with work left; the next run carries on from what is still due.");
            report.Failures.ForEach(f => result.Log(f));
            LogEvents.LoggerOf(context, typeof(ExpireCoupons)).ExpireCouponsRan(LogEvents.RunOutcome(report.Failures.Count, report.Stopped),
                report.CouponsExpired, report.LocksReleased, report.CampaignsEnded, report.CampaignsClosed, report.EntriesRead);
            return result;
        });

    /// <summary>
    /// One run at <paramref name="now"/>. It takes new work (a page, an entry, a wallet batch, a campaign) only until
    /// <paramref name="deadline"/> (none: until done); what it leaves is found by the next run, every step being a
    /// conditional write on what is still due.
    /// </summary>
    public static async Task<ExpiryReport> RunAsync(DueIndex due, WalletStore wallets, RedemptionStore redemptions, CampaignStore campaigns,
        StockStore stock, CampaignCache cache, TimeSpan quiet, DateTimeOffset now, CancellationToken ct,
        int walletBatch = WalletBatch, TimerOptions? timers = null, RunDeadline? deadline = null)
    {
        deadline ??= RunDeadline.None;
        var report = new ExpiryReport();
        await due.RunAsync(DueIndex.Expiry, now, report, (entry, work) => entry.Type switch
        {
            DueEntry.Coupons => ExpireCouponsAsync(entry, work, wallets, report, now, walletBatch),
            DueEntry.Lock => ExpireLockAsync(entry, work, redemptions, wallets, stock, report, now),
            _ => Task.FromResult(true),
        }, deadline, ct);
        await LapsedLocks.RunAsync(wallets, redemptions, stock, timers ?? new TimerOptions(), deadline, now, report, ct);
        if (deadline.Stopped) report.Stopped = true;

        foreach (var id in deadline.TakeMore() ? await campaigns.ListClaimWindowOverAsync(now, ct) : [])
        {
            if (!deadline.TakeMore()) break;
            if (await EndAsync(id, "claim_window_over", c => c.Status is CampaignStatus.Published or CampaignStatus.Paused && c.Terms.ClaimEndsAt <= now,
                    campaigns, stock, cache, report, now, ct))
                report.CampaignsEnded++;
        }
        // A sharded campaign is listed only when every one of its shards is sold out and quiet.
        foreach (var (id, shards) in deadline.TakeMore() ? await stock.ListSoldOutAsync(now - quiet, ct) : [])
        {
            if (!deadline.TakeMore()) break;
            // Sold out and quiet: a claim that was refused after taking a unit has given it back by now, but units
            // lost to claims that died after taking one come back only from a recount. Recount first: a campaign
            // whose units were only lost is not sold out.
            if (await StaysOpenAfterRecountAsync(id, shards, stock, wallets, quiet, now, report, ct))
                continue; // not sold out after all (or the recount failed: try again next run)
            if (await EndAsync(id, "sold_out", c => c.Status == CampaignStatus.Published, campaigns, stock, cache, report, now, ct))
                report.CampaignsClosed++;
        }
        report.Stopped = deadline.Stopped;
        return report;
    }

    /// <summary>
    /// The coupons of one campaign that expire at the entry's instant, a batch of wallets at a time (memory: one
    /// batch), each batch's wallets in parallel on the run's work slots. True when none is left; false when the run's
    /// time ran out between batches (the entry stays open and the next run carries on: expired coupons drop out of
    /// the query).
    /// </summary>
    private static async Task<bool> ExpireCouponsAsync(DueEntry entry, DueWork work, WalletStore wallets, ExpiryReport report, DateTimeOffset now,
        int batch)
    {
        var stalled = 0;
        while (true)
        {
            if (!work.TakeMore()) return false;
            var due = await wallets.NextWithCouponsDueAsync(entry.CampaignId!, entry.DueAt, batch, work.Token);
            if (due.Count == 0) return true;
            lock (report) report.WalletsRead += due.Count; // entries are worked in parallel (DueRun)
            var expired = 0;
            await work.ForEachAsync(due, async (wallet, token) =>
            {
                var count = await wallets.ExpireAsync(wallet, now, token);
                Interlocked.Add(ref expired, count);
            });
            lock (report) report.CouponsExpired += expired;
            // No progress twice in a row (an overlapping run got there first, or a wallet keeps changing): leave the
            // entry open for the next run rather than loop.
            if (expired == 0 && ++stalled >= 2)
                throw new InvalidOperationException($"No progress expiring coupons of {entry.CampaignId}; left for the next run.");
        }
    }

    private static async Task<bool> ExpireLockAsync(DueEntry entry, DueWork work, RedemptionStore redemptions, WalletStore wallets, StockStore stock,
        ExpiryReport report, DateTimeOffset now)
    {
        await work.DoAsync(async ct =>
        {
            var outcome = await CancelRedemption.CancelAsync(entry.OrderId!, "expire", By, "lock lapsed", redemptions, wallets, stock, now, ct);
            if (outcome.Refusal?.Type == ProblemTypes.Prefix + ProblemTypes.ConcurrentUpdate)
                throw new InvalidOperationException($"Order {entry.OrderId} kept changing; its lock is retried on the next run.");
            // Otherwise: not found (a lock refused before its record), already settled, or done by an overlapping run.
            if (outcome is { Refusal: null, Replayed: false })
                lock (report) report.LocksReleased++;
        });
        return true;
    }

    private static async Task<bool> StaysOpenAfterRecountAsync(string id, int shards, StockStore stock, WalletStore wallets, TimeSpan quiet,
        DateTimeOffset now, ExpiryReport report, CancellationToken ct)
    {
        try
        {
            var counters = await stock.FindShardsAsync(id, shards, ct);
            if (counters.Count == 0) return false;
            if (await ReconcileStock.ReturnLostUnitsAsync(counters, stock, wallets, now, quiet, [], ct))
            {
                report.CampaignsRecounted++;
                return true;
            }
            // No units came back here, but a repair may still have landed (a concurrent ReconcileStock, or ours
            // refused on a changed etag): close only a campaign still sold out in every shard.
            return (await stock.FindShardsAsync(id, shards, ct)).Any(s => s.Remaining > 0);
        }
        catch (Exception e) when (!ct.IsCancellationRequested) // our call deadline is an OperationCanceledException too: one failure, not the run's end
        {
            // Not closed on a failed recount: the next run tries again.
            report.Failures.Add($"{id}: could not recount stock ({Failure.Of(e)})");
            return true;
        }
    }

    private static async Task<bool> EndAsync(string id, string reason, Func<Campaign, bool> stillDue, CampaignStore campaigns, StockStore stock,
        CampaignCache cache, ExpiryReport report, DateTimeOffset now, CancellationToken ct)
    {
        try
        {
            return await ChangeCampaignStatus.EndAsync(id, By, reason, stillDue, campaigns, stock, cache, now, ct) is not null;
        }
        catch (Exception e) when (!ct.IsCancellationRequested) // our call deadline is an OperationCanceledException too: one failure, not the run's end
        {
            report.Failures.Add($"{id}: could not end ({Failure.Of(e)})");
            return false;
        }
    }
}
