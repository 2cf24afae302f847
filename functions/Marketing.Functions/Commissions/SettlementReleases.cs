using Marketing.Functions.Hosting;

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
        var failed = new bool[records.Count];
        // Every entry of every applied event, written or not (one not written yet is not there: refused, nothing
        // to do), across the page, so a record of 500 lines and a page of small ones both keep the run busy.
        // A record is due only once its holding period is over; one that says otherwise is left alone.
        var entries = records
            .SelectMany((record, i) => record.Paid is { } paid && paid.AvailableAt <= now
                ? Settlement.Plans(record).SelectMany(plan => plan).Select(entry => (Record: i, Entry: entry))
                : [])
            .ToList();
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = options.Parallelism, CancellationToken = ct };
        await Parallel.ForEachAsync(entries, parallel, async (work, token) =>
        {
            try
            {
                if (await ledger.TryReleaseAsync(work.Entry.PromoterId, work.Entry.Id, now, token))
                    lock (report) report.EntriesReleased++;
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                // The record stays open: the next run tries again.
                failed[work.Record] = true;
                report.Failed($"{records[work.Record].Id}: release of {work.Entry.Id} failed ({e.GetType().Name}: {e.Message.Split('\n')[0]})");
            }
        });
        var finished = records.Where((record, i) => !failed[i] && record.Paid is { } paid && paid.AvailableAt <= now
            && record.Events.All(e => e.State != SettledEvent.Applied || e.Written));
        await Parallel.ForEachAsync(finished, parallel, async (record, token) =>
        {
            try
            {
                if (await settlements.TryCloseReleaseAsync(record, token))
                    lock (report) report.RecordsClosed++;
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                report.Failed($"{record.Id}: closing its release failed ({e.GetType().Name}: {e.Message.Split('\n')[0]})");
            }
        });
    }
}
