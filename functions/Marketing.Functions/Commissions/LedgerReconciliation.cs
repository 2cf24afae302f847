using Marketing.Functions.Payouts;
using Marketing.Functions.Promoters;

namespace Marketing.Functions.Commissions;

/// <summary>
/// Checks the ledger's invariants (docs/distribution.md) promoter by promoter, with single-partition reads
/// only, and answers every violation found; an empty answer means the books agree. Run by ops with
/// `Marketing.Functions reconcile-ledger` (exit code 1 on a violation) and by the tests after every scenario.
/// 1. every ledger entry was promised by its order's settlement record (same id, promoter and amount, as the
///    record derives them: <see cref="Settlement.Plans"/>), and
///    every entry a record promised and marked written is in the ledger: one effect per event. (Records are
///    reached through the ledger entries that name them; an order that lost every one of its entries is
///    found by the settlements query in docs/distribution.md.);
/// 2. per order line and level: 0 ≤ reversed ≤ commission and refunded ≤ amount;
/// 3. a commission is positive and a reversal negative;
/// 4. status moves forward only: an entry is paid if and only if it names its batch, and nothing is still
///    pending well after its time (the release timer is behind or its index lost an entry);
/// 5. every paid entry is in its batch's line for the promoter: the line's amount and count are the sum and
///    count of the entries the ledger says were paid in the batch (counted by a query over the promoter's
///    partition), and every entry the line's parts list is one of them;
/// 6. no promoter stays held by a batch that completed, or by one left unfinished (an interrupted request
///    that nobody repeated: its promoters are skipped by every other batch until it is finished).
/// </summary>
public static class LedgerReconciliation
{
    public static async Task<List<string>> CheckAsync(PromoterStore promoters, LedgerStore ledger, SettlementStore settlements,
        PayoutStore payouts, DateTimeOffset now, TimeSpan releaseGrace, CancellationToken ct)
    {
        var violations = new List<string>();
        var records = new Dictionary<string, Settled?>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        string? continuation = null;
        do
        {
            var (ids, next) = await promoters.ListIdsAsync(500, continuation, ct);
            foreach (var promoterId in ids.Distinct())
                violations.AddRange(await CheckPromoterAsync(promoterId, promoters, ledger, settlements, payouts, records, seen, now, releaseGrace, ct));
            continuation = next;
        } while (continuation is not null);
        // From the records' side: every entry a record promised and marked written is in some promoter's ledger.
        foreach (var (orderId, settled) in records)
        {
            if (settled is not { } s) continue;
            for (var i = 0; i < s.Record.Events.Count; i++)
                if (s.Record.Events[i] is { State: SettledEvent.Applied, Written: true })
                    foreach (var p in s.Plans[i].Where(p => !seen.Contains(p.PromoterId + "/" + p.Id)))
                        violations.Add($"promoter {p.PromoterId}: entry {p.Id}: promised and marked written, missing from the ledger");
            foreach (var line in s.Record.Paid?.Lines ?? [])
                if (line.Refunded > line.Amount || line.Reversed1 > line.Commission1 || line.Reversed2 > line.Commission2 || line.Reversed1 < 0 || line.Reversed2 < 0)
                    violations.Add($"order {orderId} line {line.LineId}: refunded/reversed beyond what was paid");
        }
        return violations;
    }

    /// <summary>A settlement record with the entries it promises, per event (derived once per record).</summary>
    private sealed record Settled(SettlementRecord Record, IReadOnlyList<IReadOnlyList<PlannedEntry>> Plans);

    private static async Task<List<string>> CheckPromoterAsync(string promoterId, PromoterStore promoters, LedgerStore ledger,
        SettlementStore settlements, PayoutStore payouts, Dictionary<string, Settled?> records, HashSet<string> seen,
        DateTimeOffset now, TimeSpan releaseGrace, CancellationToken ct)
    {
        var violations = new List<string>();
        void Violation(string what) => violations.Add($"promoter {promoterId}: {what}");
        var entries = await ledger.ListAllAsync(promoterId, null, ct);
        seen.UnionWith(entries.Select(e => promoterId + "/" + e.Id));

        foreach (var e in entries)
        {
            if ((e.Kind == LedgerEntry.Commission) != (e.Amount > 0)) Violation($"entry {e.Id}: {e.Kind} of {e.Amount}");
            if ((e.Status == LedgerStatus.Paid) != (e.PayoutBatchId is not null)) Violation($"entry {e.Id}: status {e.Status} with batch '{e.PayoutBatchId}'");
            if (e.Status == LedgerStatus.Pending && e.AvailableAt + releaseGrace < now) Violation($"entry {e.Id}: still pending since {e.AvailableAt:O}");
        }

        foreach (var order in entries.GroupBy(e => e.OrderId))
        {
            if (!records.TryGetValue(order.Key, out var settled))
                records[order.Key] = settled = await settlements.FindAsync(order.Key, ct) is { } found ? new Settled(found, Settlement.Plans(found)) : null;
            if (settled is null)
            {
                Violation($"order {order.Key}: ledger entries without a settlement record");
                continue;
            }
            var promised = settled.Plans.SelectMany(plan => plan.Where(p => p.PromoterId == promoterId)).ToDictionary(p => p.Id);
            foreach (var e in order)
            {
                if (!promised.TryGetValue(e.Id, out var p)) Violation($"entry {e.Id}: not promised by the order's settlement record");
                else if (p.Amount != e.Amount) Violation($"entry {e.Id}: amount {e.Amount}, record says {p.Amount}");
            }
        }

        var ledgerById = entries.ToDictionary(e => e.Id);
        foreach (var batch in entries.Where(e => e.PayoutBatchId is not null).GroupBy(e => e.PayoutBatchId!))
        {
            var line = await payouts.FindLineAsync(batch.Key, promoterId, ct);
            if (line is null)
            {
                Violation($"batch {batch.Key}: entries paid without a line for the promoter");
                continue;
            }
            // A line still paying belongs to an unfinished batch: the holds below report it.
            if (line.State != PayoutLine.Paid) continue;
            var (amount, count) = await ledger.PaidInBatchAsync(promoterId, batch.Key, ct);
            if (amount != line.Amount || count != line.Entries)
                Violation($"batch {batch.Key}: line pays {line.Entries} entries, {line.Amount} in all; the ledger has {count} paid in it, {amount} in all");
            var listed = new List<string>(line.EntryIds ?? []);
            long partsAmount = 0;
            for (var part = 0; part < line.Parts; part++)
            {
                var read = await payouts.ReadPartAsync(batch.Key, promoterId, line.PlanId!, part, ct);
                listed.AddRange(read.EntryIds);
                partsAmount += read.Amount;
            }
            if (line.Parts > 0 && (partsAmount != line.Amount || listed.Count != line.Entries))
                Violation($"batch {batch.Key}: the line's parts list {listed.Count} entries, {partsAmount} in all, the line says {line.Entries}, {line.Amount}");
            foreach (var id in listed.Where(id => !ledgerById.TryGetValue(id, out var e) || e.Status != LedgerStatus.Paid || e.PayoutBatchId != batch.Key))
                Violation($"batch {batch.Key}: entry {id} is in the line but not paid in it");
        }

        var promoter = await promoters.FindAsync(promoterId, ct);
        if (promoter?.PayingBatch is { } holding && await payouts.FindAsync(holding, ct) is var holder)
        {
            if (holder is null || holder.State is PayoutBatch.Completed or PayoutBatch.Rejected) Violation($"held by batch {holding}, which {(holder is null ? "does not exist" : holder.State)}");
            // A batch awaiting finance's approval holds its promoters on purpose until decided (the approvers' queue shows it).
            else if (holder.State != PayoutBatch.AwaitingApproval && holder.CreatedAt + releaseGrace < now) Violation($"held by batch {holding}, unfinished since {holder.CreatedAt:O}: repeat its request to finish it");
        }
        return violations;
    }
}
