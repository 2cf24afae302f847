using Marketing.Functions.Audit;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Promoters;

namespace Marketing.Functions.Payouts;

public sealed record RejectPayoutBatchRequest(string Reason);

/// <summary>
/// POST /api/payouts/{batchId}/reject — finance (or an admin) rejects a batch awaiting approval, with a reason: nothing
/// is paid, every promoter it held is released (a later batch pays them) and its lines are marked rejected. Not by the
/// batch's creator (403 four-eyes). Final. The decision is written first, then the holds are released (each release is
/// filtered on this batch holding the promoter), so a crash between them is finished by repeating the rejection, which
/// releases again whoever still is held before answering (the same decision: 200; another: 409 approval-not-pending).
/// </summary>
public static class RejectPayoutBatch
{
    public static RouteHandlerBuilder MapRejectPayoutBatch(this IEndpointRouteBuilder group) =>
        group.MapPost("/{batchId}/reject", HandleAsync)
            .AsFunction("RejectPayoutBatch")
            .RequireAuthorization(Policies.Finance)
            .Audited("reject", AuditKinds.PayoutBatch, "batchId")
            .WithProblems(403, ProblemTypes.FourEyes)
            .WithProblems(409, ProblemTypes.ApprovalNotPending, ProblemTypes.ConcurrentUpdate)
            .AcceptsJson(new RejectPayoutBatchRequest("Twice last week's total: check the refunds first"))
            .Produces<PayoutBatchView>()
            .WithSummary("Reject a payout batch awaiting approval (not your own), with a reason: nothing is paid and its promoters are released.");

    private static async Task<IResult> HandleAsync(string batchId, HttpContext context, PayoutStore payouts, PromoterStore promoters, TimeProvider time)
    {
        var (body, problem) = await JsonBody.ReadAsync<RejectPayoutBatchRequest>(context.Request, r =>
        {
            var errors = new Dictionary<string, string[]>();
            if (string.IsNullOrWhiteSpace(r.Reason) || r.Reason.Length > PayoutDecisions.MaxReason)
                errors["reason"] = [$"Required, at most {PayoutDecisions.MaxReason} characters."];
            return errors;
        });
        if (problem is not null) return problem.ToResult();
        var reason = body!.Reason;
        context.AuditReason(reason);
        var ct = context.RequestAborted;
        var me = context.User.SubjectId();
        for (var attempt = 0; attempt < 5; attempt++)
        {
            if (await payouts.FindAsync(batchId, ct) is not { } batch) return Problem.NotFound("The payout batch").ToResult();
            if (batch.CreatedBy == me) return PayoutDecisions.FourEyes();
            if (batch.Approval is null) return PayoutDecisions.NotAwaiting(batch);
            switch (batch.State)
            {
                case PayoutBatch.AwaitingApproval:
                    var rejection = new PayoutApproval { Status = PayoutApproval.Rejected, DecidedBy = me, DecidedAt = time.GetUtcNow(), Reason = reason };
                    await payouts.TryDecideAsync(batchId, PayoutBatch.Rejected, rejection, ct);
                    continue; // read it again: ours, or someone else's decision
                case PayoutBatch.Rejected:
                    // Whoever rejected it, finish the release (a crash may have stopped the first one part way).
                    var lines = await payouts.ListLinesAsync(batchId, ct);
                    await Parallel.ForEachAsync(lines.Where(l => l.State == PayoutLine.Paying), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct },
                        async (line, token) =>
                        {
                            await promoters.ReleasePayoutHoldAsync(line.PromoterId, batchId, token);
                            await payouts.MarkLineRejectedAsync(batchId, line.PromoterId, token);
                        });
                    if (batch.Approval.DecidedBy != me || batch.Approval.Reason != reason) return PayoutDecisions.NotAwaiting(batch);
                    return TypedResults.Ok(PayoutBatchView.Of(batch, await payouts.ListLinesAsync(batchId, ct)));
                default:
                    return PayoutDecisions.NotAwaiting(batch);
            }
        }
        return Problem.Of(ProblemTypes.ConcurrentUpdate, 409, "The batch kept changing; try again.").ToResult();
    }
}

/// <summary>What approving and rejecting payout batches share.</summary>
public static class PayoutDecisions
{
    public const int MaxReason = 200;

    public static IResult FourEyes() => Problem.Of(ProblemTypes.FourEyes, 403, "You created this payout batch: someone else must decide it.",
        "Maker-checker: the batch's creator never approves or rejects it (docs/approvals.md).").ToResult();

    public static IResult NotAwaiting(PayoutBatch batch) => Problem.Of(ProblemTypes.ApprovalNotPending, 409,
        batch.Approval is null ? $"This payout batch is not awaiting approval (it is {batch.State})." : $"This payout batch was already decided: {batch.State}.",
        "Only a batch whose total is above the threshold waits for a decision, and a decision is final.").ToResult();
}
