using Marketing.Functions.Audit;
using System.Collections.Concurrent;
using Marketing.Functions.Commissions;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Promoters;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Payouts;

public sealed record CreatePayoutBatchRequest(string BatchId, long Minimum);

/// <summary>
/// POST /api/payouts — an operator pays every promoter whose available balance is at least <c>minimum</c>
/// (minor units). Answers the batch as CSV (201; the same CSV again, 200, for a repeated request).
/// Exactly once, per promoter:
/// 1. the promoter is held for this batch (a patch filtered on "no other batch holds them"), so a concurrent
///    batch skips them instead of splitting their entries;
/// 2. their available entries are listed, a page at a time, into parts of the batch's line for them (at most
///    PayoutPart.MaxEntries ids each), then the line (amount, count) is created: the set is fixed before anything is paid;
/// 3. each listed entry moves available → paid with a patch filtered on status = available;
/// 4. the hold is released and the line marked paid.
/// The batch id is the idempotency key: repeating the request resumes an interrupted batch with the lines
/// it already wrote (never a recomputed set), then answers the same CSV.
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
            .WithProblems(409, ProblemTypes.ConcurrentUpdate)
            .WithProblems(422, ProblemTypes.IdempotencyKeyReused)
            .AcceptsJson(new CreatePayoutBatchRequest("2026-12-week-49", 1000))
            .Produces<string>(StatusCodes.Status201Created, PayoutCsv.ContentType)
            .Produces<string>(StatusCodes.Status200OK, PayoutCsv.ContentType)
            .WithSummary("Pay every promoter whose available balance is at least minimum; idempotent per batchId; answers CSV.");

    private static async Task<IResult> HandleAsync(HttpContext context, PayoutStore payouts, PromoterStore promoters, LedgerStore ledger,
        IOptions<CommissionOptions> options, TimeProvider time)
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
        if (batch.State != PayoutBatch.Completed)
        {
            var skipped = await PayAsync(batch, resuming: !created, payouts, promoters, ledger, time, ct);
            await payouts.CompleteAsync(batch.BatchId, skipped, time.GetUtcNow(), ct);
        }
        var lines = await payouts.ListLinesAsync(batch.BatchId, ct);
        return PayoutCsv.Result(batch.BatchId, lines, created ? StatusCodes.Status201Created : StatusCodes.Status200OK, context);
    }

    /// <summary>Pays every promoter over the minimum; returns those another batch was paying.</summary>
    private static async Task<List<string>> PayAsync(PayoutBatch batch, bool resuming, PayoutStore payouts, PromoterStore promoters,
        LedgerStore ledger, TimeProvider time, CancellationToken ct)
    {
        var skipped = new ConcurrentBag<string>();
        string? continuation = null;
        do
        {
            var (ids, next) = await promoters.ListIdsAsync(PageSize, continuation, ct);
            await Parallel.ForEachAsync(ids.Distinct(), new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = ct },
                async (promoterId, token) =>
                {
                    if (!await PayPromoterAsync(batch, promoterId, resuming, payouts, promoters, ledger, time, token))
                        skipped.Add(promoterId);
                });
            continuation = next;
        } while (continuation is not null);
        return [.. skipped.Order(StringComparer.Ordinal)];
    }

    /// <summary>False when the promoter is over the minimum but another batch holds them.</summary>
    private static async Task<bool> PayPromoterAsync(PayoutBatch batch, string promoterId, bool resuming, PayoutStore payouts,
        PromoterStore promoters, LedgerStore ledger, TimeProvider time, CancellationToken ct)
    {
        var line = resuming ? await payouts.FindLineAsync(batch.BatchId, promoterId, ct) : null;
        if (line is { State: PayoutLine.Paid }) return true;
        IReadOnlyList<string>? onlyPart = null; // the plan's ids when they fit in one part: no need to read it back
        var fresh = false; // this run made the line's plan: every entry in it is still available
        if (line is null)
        {
            // Cheap test first: most promoters are under the minimum and need no hold.
            if (await ledger.SumAsync(promoterId, LedgerStatus.Available, ct) < batch.Minimum) return true;
            if (!await promoters.TryHoldForPayoutAsync(promoterId, batch.BatchId, ct)) return false;
            // Held: from here on only this batch moves this promoter's entries out of "available".
            var (planned, firstPart) = await PlanAsync(batch, promoterId, payouts, ledger, ct);
            if (planned.Amount < batch.Minimum || planned.Entries == 0)
            {
                await promoters.ReleasePayoutHoldAsync(promoterId, batch.BatchId, ct);
                return true;
            }
            if (await payouts.TryCreateLineAsync(planned, ct))
                (line, onlyPart, fresh) = (planned, planned.Parts == 1 ? firstPart : null, true);
            else
                line = await payouts.FindLineAsync(batch.BatchId, promoterId, ct) ?? planned; // a concurrent run of the same batch wrote it
        }
        var now = time.GetUtcNow();
        // An entry that is no longer available was paid by an earlier run of this batch (only the holder pays): a
        // resumed line pays only what is still available, a part at a time, so each repeat gets further. (A replica
        // behind the latest write can only show an entry as still available, never the reverse: the patch's filter
        // then refuses it.)
        async Task PayEntriesAsync(IReadOnlyList<string> ids)
        {
            var unpaid = fresh ? ids : await ledger.StillAvailableAsync(promoterId, ids, ct);
            await Parallel.ForEachAsync(unpaid, new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = ct },
                async (id, token) => await ledger.TryPayAsync(promoterId, id, batch.BatchId, now, token));
        }
        if (line.EntryIds is { } legacy && line.Parts == 0)
            foreach (var chunk in legacy.Chunk(PayoutPart.MaxEntries))
                await PayEntriesAsync(chunk);
        for (var part = 0; part < line.Parts; part++)
            await PayEntriesAsync(onlyPart ?? (await payouts.ReadPartAsync(batch.BatchId, promoterId, line.PlanId!, part, ct)).EntryIds);
        await promoters.ReleasePayoutHoldAsync(promoterId, batch.BatchId, ct);
        await payouts.MarkLinePaidAsync(batch.BatchId, promoterId, ct);
        return true;
    }

    /// <summary>
    /// Fixes what the line will pay: the promoter's available entries, a page at a time, each page written as a
    /// part of the plan (bounded: memory and documents do not grow with the entries). Returns the line to create,
    /// whose creation commits the plan, and the first part's ids. A plan under the minimum leaves its parts
    /// behind unused (a rare race: the sum just before the hold was over it).
    /// </summary>
    private static async Task<(PayoutLine Line, IReadOnlyList<string> FirstPart)> PlanAsync(PayoutBatch batch, string promoterId,
        PayoutStore payouts, LedgerStore ledger, CancellationToken ct)
    {
        var planId = Guid.NewGuid().ToString("N");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        IReadOnlyList<string> firstPart = [];
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
                if (parts == 0) firstPart = part.EntryIds;
                amount += part.Amount;
                parts++;
            }
            continuation = next;
        } while (continuation is not null);
        return (new PayoutLine
        {
            BatchId = batch.BatchId, PromoterId = promoterId, Amount = amount, Currency = batch.Currency, State = PayoutLine.Paying,
            Entries = seen.Count, Parts = parts, PlanId = planId,
        }, firstPart);
    }
}
