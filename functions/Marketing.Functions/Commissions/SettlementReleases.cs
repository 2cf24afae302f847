using Marketing.Functions.Hosting;
using Marketing.Functions.Telemetry;

namespace Marketing.Functions.Commissions;

/// <summary>
/// The part of ReleaseCommissions that finds pending entries through their settlement records: every record whose
/// release is due (<see cref="SettlementRecord.ReleaseAt"/> ≤ now) is read, a page at a time, and every entry its
/// applied events promise is moved pending → available (a patch filtered on status = pending: overlapping runs and
/// reruns release each entry once; an entry not written yet is simply not there). Then the record's release is
/// closed, unless the record has changed since it was read (a new event, or one just written: its entries may not
/// have been seen) or one of its events is not written yet (its delivery is still under way, or was interrupted:
/// whatever it writes later may be pending, so the record must stay in view until it is written). Either way the
/// next run reads it again, and what was already released is refused, not released twice.
///
/// The promise is in the record before any pending entry exists (the write that decides an event sets it), so a
/// crash anywhere between that write and the entries leaves the record for this release to find. This replaces the
/// per-event entry in the due index's release track that a paid event used to write first (one round trip per paid
/// event); entries filed there before this change are still released by the due-index part until none are left.
/// </summary>
public static class SettlementReleases
{
    public static async Task RunAsync(SettlementStore settlements, LedgerStore ledger, DateTimeOffset now, TimerOptions options,
        RunDeadline deadline, ReleaseReport report, CancellationToken ct)
    {
        string? continuation = null;
        do
        {
            // What is left is found by the next run exactly as by this one: the records stay due until closed.
            if (!deadline.TakeMore()) return;
            List<SettlementRecord> records;
            (records, continuation) = await settlements.ListReleasesDueAsync(now, options.PageSize, continuation, ct);
            lock (report) report.RecordsRead += records.Count;
            await ReleasePageAsync(records, settlements, ledger, now, options, report, ct);
        } while (continuation is not null);
    }

    private static async Task ReleasePageAsync(List<SettlementRecord> records, SettlementStore settlements, LedgerStore ledger,
        DateTimeOffset now, TimerOptions options, ReleaseReport report, CancellationToken ct)
    {
        // Every entry of every applied event, written or not (one not written yet is not there: refused, nothing to
        // do), across the page, so that a record of 500 lines and a page of small ones both keep the run busy. A
        // record is closed by whichever worker finishes its last entry, so closing overlaps releasing. A record is
        // due only once its holding period is over; one that says otherwise is left alone.
        var plans = records.Select(record => record.Paid is { } paid && paid.AvailableAt <= now
            ? Settlement.Plans(record).SelectMany(plan => plan).ToList()
            : null).ToList();
        var left = plans.Select(plan => plan?.Count ?? 0).ToArray();
        var failed = new bool[records.Count];
        var closed = new bool[records.Count];
        var work = plans.SelectMany((plan, i) => plan is null ? [] : plan.Count == 0 ? [(Record: i, Entry: (PlannedEntry?)null)]
            : plan.Select(entry => (Record: i, Entry: (PlannedEntry?)entry))).ToList();
        await Parallel.ForEachAsync(work, new ParallelOptions { MaxDegreeOfParallelism = options.Parallelism, CancellationToken = ct }, async (item, token) =>
        {
            var record = records[item.Record];
            if (item.Entry is { } entry)
            {
                try
                {
                    if (await ledger.TryReleaseAsync(entry.PromoterId, entry.Id, now, token))
                        lock (report) report.EntriesReleased++;
                }
                catch (Exception e) when (!ct.IsCancellationRequested)
                {
                    // The record stays open: the next run tries again.
                    Volatile.Write(ref failed[item.Record], true);
                    report.Failed($"{record.Id}: release of {entry.Id} failed ({Failure.Of(e)})");
                }
                if (Interlocked.Decrement(ref left[item.Record]) > 0) return;
            }
            if (Volatile.Read(ref failed[item.Record]) || record.Events.Any(e => e.State == SettledEvent.Applied && !e.Written)) return;
            try
            {
                if (await settlements.TryCloseReleaseAsync(record, token))
                {
                    Volatile.Write(ref closed[item.Record], true);
                    lock (report) report.RecordsClosed++;
                }
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                report.Failed($"{record.Id}: closing its release failed ({Failure.Of(e)})");
            }
        });
        // Due and not closed (a release failed, an event is not written yet, the record changed): read again by the next run.
        for (var i = 0; i < records.Count; i++)
            if (plans[i] is not null && !closed[i])
                report.Backlog.Left(records[i].ReleaseAt ?? records[i].Paid!.AvailableAt);
    }
}
