using System.Collections.Concurrent;
using Marketing.Functions.Approvals;
using Marketing.Functions.Audit;
using Marketing.Functions.Commissions;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Promoters;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Payouts;

public sealed record CreatePayoutBatchRequest(string BatchId, long Minimum);

/// <summary>A batch whose plan waits for finance (202): its total and how many promoters it would pay.</summary>
public sealed record PayoutBatchPending(string BatchId, string State, long Total, int Lines, string Currency);

/// <summary>
/// POST /api/payouts — an operator pays every promoter whose available balance is at least <c>minimum</c>
/// (minor units). Answers the batch as CSV (201; the same CSV again, 200, for a repeated request), or, when the plan's
/// total is above Approvals:PayoutThreshold, 202 with the plan (state awaiting_approval) until finance approves it
/// (ApprovePayoutBatch, which then pays it) or rejects it (RejectPayoutBatch).
/// Exactly once, per promoter, in two phases:
/// plan — 1. the promoter is held for this batch (a patch filtered on "no other batch holds them"), so a concurrent
///    batch skips them instead of splitting their entries; 2. their available entries are listed, a page at a time,
///    into parts of the batch's line for them (at most PayoutPart.MaxEntries ids each), then the line (amount, count)
///    is created: the set is fixed before anything is paid. When every promoter is planned, the header records the
///    total and moves to paying, or to awaiting_approval (one filtered patch: of two runs, one decides);
/// pay — 3. each listed entry still available moves available → paid with a patch filtered on status = available;
///    4. the hold is released and the line marked paid; then the batch is completed.
/// The batch id is the idempotency key: repeating the request resumes an interrupted batch with the lines
/// it already wrote (never a recomputed set), then answers the same CSV (or the same 202 while it waits).
/// </summary>
public static class CreatePayoutBatch
{
    private const int PageSize = 500;
    private const int Parallelism = 8;

    public static RouteHandlerBuilder MapCreatePayoutBatch(this IEndpointRouteBuilder group) =>
        group.MapPost("", HandleAsync)
            .AsFunction("CreatePayoutBatch")
            .RequireAuthorization(Policies.Operator)
            .Audited("create", AuditKinds.PayoutBatch)
            .WithProblems(409, ProblemTypes.ConcurrentUpdate, ProblemTypes.ApprovalNotPending)
            .WithProblems(422, ProblemTypes.IdempotencyKeyReused)
            .AcceptsJson(new CreatePayoutBatchRequest("2026-12-week-49", 1000))
            .Produces<string>(StatusCodes.Status201Created, PayoutCsv.ContentType)
            .Produces<string>(StatusCodes.Status200OK, PayoutCsv.ContentType)
            .Produces<PayoutBatchPending>(StatusCodes.Status202Accepted)
            .WithSummary("Pay every promoter whose available balance is at least minimum; idempotent per batchId; answers CSV, "
                + "or 202 while a batch above the approval threshold waits for finance.");

    private static async Task<IResult> HandleAsync(HttpContext context, PayoutStore payouts, PromoterStore promoters, LedgerStore ledger,
        IOptions<CommissionOptions> options, IOptions<ApprovalOptions> approvals, TimeProvider time)
    {
        var (request, problem) = await JsonBody.ReadAsync<CreatePayoutBatchRequest>(context.Request, r =>
        {
            var errors = new Dictionary<string, string[]>();
            if (!Ids.IsWellFormed(r.BatchId)) errors["batchId"] = ["1 to 64 of a-z, 0-9, _ and -."];
            if (!Limits.IsMoney(r.Minimum, least: 1)) errors["minimum"] = [$"1 to {Limits.MaxMoney} minor units."];
            return errors;
        });
        if (problem is not null) return problem.ToResult();

        var ct = context.RequestAborted;
        await context.BeginAuditAsync(request!.BatchId);
        var batch = new PayoutBatch
        {
            BatchId = request!.BatchId, Minimum = request.Minimum, Currency = options.Value.Currency, State = PayoutBatch.Building,
            CreatedBy = context.User.SubjectId(), CreatedAt = time.GetUtcNow(),
        };
        var created = await payouts.TryCreateAsync(batch, ct);
        if (!created)
        {
            var earlier = await payouts.FindAsync(request.BatchId, ct);
            if (earlier is null) return Problem.Of(ProblemTypes.ConcurrentUpdate, 409, "The batch is being created; retry.").ToResult();
            if (earlier.Minimum != request.Minimum)
                return Problem.Of(ProblemTypes.IdempotencyKeyReused, 422, "This batch id was used with a different minimum.",
                    "Use a new batch id for a new batch.").ToResult();
            context.Response.Headers["Idempotent-Replayed"] = "true";
            batch = earlier;
        }
        if (batch.State == PayoutBatch.Building)
            batch = await PlanAsync(batch, resuming: !created, approvals.Value.PayoutThreshold, payouts, promoters, ledger, ct);
        return await ContinueAsync(batch, created ? StatusCodes.Status201Created : StatusCodes.Status200OK, context, payouts, promoters, ledger, time, ct);
    }

    /// <summary>
    /// Takes a planned batch as far as its state allows: pays (and completes) a paying one and answers its CSV with
    /// <paramref name="csvStatus"/>; answers a completed one's CSV; a waiting one's plan (202); a rejected one 409.
    /// </summary>
    public static async Task<IResult> ContinueAsync(PayoutBatch batch, int csvStatus, HttpContext context, PayoutStore payouts,
        PromoterStore promoters, LedgerStore ledger, TimeProvider time, CancellationToken ct)
    {
        switch (batch.State)
        {
            case PayoutBatch.AwaitingApproval:
                return TypedResults.Accepted($"/api/payouts/{batch.BatchId}",
                    new PayoutBatchPending(batch.BatchId, batch.State, batch.Total ?? 0, batch.Lines ?? 0, batch.Currency));
            case PayoutBatch.Rejected:
                return Problem.Of(ProblemTypes.ApprovalNotPending, 409, "This payout batch was rejected: nothing was paid.",
                    "Use a new batch id for a new batch.").ToResult();
            case PayoutBatch.Paying:
                await PayAsync(batch, payouts, promoters, ledger, time, ct);
                await payouts.CompleteAsync(batch.BatchId, batch.Skipped, time.GetUtcNow(), ct);
                break;
            case PayoutBatch.Completed:
                break;
            default:
                return Problem.Of(ProblemTypes.ConcurrentUpdate, 409, "The batch is being planned by another request; retry.").ToResult();
        }
        var lines = await payouts.ListLinesAsync(batch.BatchId, ct);
        return PayoutCsv.Result(batch.BatchId, lines, csvStatus, context);
    }

    /// <summary>
    /// Plans every promoter over the minimum (holds them and writes their lines; pays nothing), then ends the plan: the
    /// header gets the total and moves to paying, or to awaiting_approval when the total is above
    /// <paramref name="threshold"/>. Returns the header as it then is (another run of the batch may have ended it first).
    /// </summary>
    private static async Task<PayoutBatch> PlanAsync(PayoutBatch batch, bool resuming, long threshold, PayoutStore payouts, PromoterStore promoters,
        LedgerStore ledger, CancellationToken ct)
    {
        var skipped = new ConcurrentBag<string>();
        string? continuation = null;
        do
        {
            var (ids, next) = await promoters.ListIdsAsync(PageSize, continuation, ct);
            await Parallel.ForEachAsync(ids.Distinct(), new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = ct },
                async (promoterId, token) =>
                {
                    if (!await PlanPromoterAsync(batch, promoterId, resuming, payouts, promoters, ledger, token))
                        skipped.Add(promoterId);
                });
            continuation = next;
        } while (continuation is not null);

        var lines = await payouts.ListLinesAsync(batch.BatchId, ct);
        var total = lines.Sum(l => l.Amount);
        // A batch interrupted while paying under the code before approvals (it paid as it planned) goes on paying: its
        // money already moved, so there is nothing left for finance to decide.
        var paidBeforeApprovals = lines.Any(l => l.State == PayoutLine.Paid);
        var waits = total > threshold && !paidBeforeApprovals;
        await payouts.TryEndPlanAsync(batch.BatchId, waits ? PayoutBatch.AwaitingApproval : PayoutBatch.Paying, total, lines.Count,
            [.. skipped.Order(StringComparer.Ordinal)], waits ? new PayoutApproval { Status = PayoutApproval.Pending } : null, ct);
        return await payouts.FindAsync(batch.BatchId, ct) ?? batch;
    }

    /// <summary>False when the promoter is over the minimum but another batch holds them.</summary>
    private static async Task<bool> PlanPromoterAsync(PayoutBatch batch, string promoterId, bool resuming, PayoutStore payouts,
        PromoterStore promoters, LedgerStore ledger, CancellationToken ct)
    {
        if (resuming && await payouts.FindLineAsync(batch.BatchId, promoterId, ct) is not null) return true;
        // Cheap test first: most promoters are under the minimum and need no hold.
        if (await ledger.SumAsync(promoterId, LedgerStatus.Available, ct) < batch.Minimum) return true;
        if (!await promoters.TryHoldForPayoutAsync(promoterId, batch.BatchId, ct)) return false;
        // Held: from here on only this batch moves this promoter's entries out of "available".
        var planned = await PlanLineAsync(batch, promoterId, payouts, ledger, ct);
        if (planned.Amount < batch.Minimum || planned.Entries == 0)
        {
            await promoters.ReleasePayoutHoldAsync(promoterId, batch.BatchId, ct);
            return true;
        }
        await payouts.TryCreateLineAsync(planned, ct); // false: a concurrent run of the same batch wrote it first (its plan counts)
        return true;
    }

    /// <summary>Pays every unpaid line of a batch whose header says paying (a repeat gets further each time).</summary>
    private static async Task PayAsync(PayoutBatch batch, PayoutStore payouts, PromoterStore promoters, LedgerStore ledger, TimeProvider time,
        CancellationToken ct)
    {
        var lines = await payouts.ListLinesAsync(batch.BatchId, ct);
        await Parallel.ForEachAsync(lines.Where(l => l.State == PayoutLine.Paying),
            new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = ct },
            async (line, token) => await PayLineAsync(batch, line, payouts, promoters, ledger, time, token));
    }

    private static async Task PayLineAsync(PayoutBatch batch, PayoutLine line, PayoutStore payouts, PromoterStore promoters, LedgerStore ledger,
        TimeProvider time, CancellationToken ct)
    {
        var promoterId = line.PromoterId;
        var now = time.GetUtcNow();
        // Only entries still available are paid: one paid by an earlier run of this batch is not (only the holder pays), so
        // each repeat gets further. (A replica behind the latest write can only show an entry as still available, never
        // the reverse: the patch's filter then refuses it.)
        async Task PayEntriesAsync(IReadOnlyList<string> ids)
        {
            var unpaid = await ledger.StillAvailableAsync(promoterId, ids, ct);
            await Parallel.ForEachAsync(unpaid, new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = ct },
                async (id, token) => await ledger.TryPayAsync(promoterId, id, batch.BatchId, now, token));
        }
        if (line.EntryIds is { } legacy && line.Parts == 0)
            foreach (var chunk in legacy.Chunk(PayoutPart.MaxEntries))
                await PayEntriesAsync(chunk);
        for (var part = 0; part < line.Parts; part++)
            await PayEntriesAsync((await payouts.ReadPartAsync(batch.BatchId, promoterId, line.PlanId!, part, ct)).EntryIds);
        await promoters.ReleasePayoutHoldAsync(promoterId, batch.BatchId, ct);
        // The line pays its plan, also after waiting for finance: while the batch waits the promoter stays held, entries
        // only move forward and only the holder pays, so every planned entry is paid by this batch; a refund meanwhile is
        // a new (negative) entry outside the plan, netted by the next batch (docs/approvals.md, "Money"). (Not a sum read
        // back from the ledger: two payers of one batch at once could read a replica missing the other's payments.)
        await payouts.MarkLinePaidAsync(batch.BatchId, promoterId, ct);
    }

    /// <summary>
    /// Fixes what the line will pay: the promoter's available entries, a page at a time, each page written as a
    /// part of the plan (bounded: memory and documents do not grow with the entries). Returns the line to create,
    /// whose creation commits the plan. A plan under the minimum leaves its parts behind unused (a rare race: the sum
    /// just before the hold was over it).
    /// </summary>
    private static async Task<PayoutLine> PlanLineAsync(PayoutBatch batch, string promoterId, PayoutStore payouts, LedgerStore ledger, CancellationToken ct)
    {
        var planId = Guid.NewGuid().ToString("N");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        long amount = 0;
        var parts = 0;
        string? continuation = null;
        do
        {
            var (page, next) = await ledger.ListAvailableAsync(promoterId, PayoutPart.MaxEntries, continuation, ct);
            // An entry is listed once however the pages fall (a page never holds more than MaxEntries).
            var fresh = page.Where(e => seen.Add(e.Id)).ToList();
            if (fresh.Count > 0)
            {
                var part = new PayoutPart
                {
                    BatchId = batch.BatchId, PromoterId = promoterId, PlanId = planId, Index = parts, Amount = fresh.Sum(e => e.Amount),
                    EntryIds = [.. fresh.Select(e => e.Id)],
                };
                await payouts.WritePartAsync(part, ct);
                amount += part.Amount;
                parts++;
            }
            continuation = next;
        } while (continuation is not null);
        return new PayoutLine
        {
            BatchId = batch.BatchId, PromoterId = promoterId, Amount = amount, Currency = batch.Currency, State = PayoutLine.Paying,
            Entries = seen.Count, Parts = parts, PlanId = planId,
        };
    }
}
