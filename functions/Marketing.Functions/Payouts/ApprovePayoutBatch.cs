using Marketing.Functions.Audit;
using Marketing.Functions.Commissions;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Promoters;

namespace Marketing.Functions.Payouts;

/// <summary>
/// POST /api/payouts/{batchId}/approve — finance (or an admin) approves a batch whose total was above
/// Approvals:PayoutThreshold, and it is paid (the same pay phase as a batch under the threshold) and answered as its CSV.
/// Not by the batch's creator (403 four-eyes). The decision is one patch filtered on awaiting_approval, so two approvals
/// at once decide once; repeating it (by anyone allowed) resumes an interrupted payment and answers the same CSV.
/// </summary>
public static class ApprovePayoutBatch
{
    public static RouteHandlerBuilder MapApprovePayoutBatch(this IEndpointRouteBuilder group) =>
        group.MapPost("/{batchId}/approve", HandleAsync)
            .AsFunction("ApprovePayoutBatch")
            .RequireAuthorization(Policies.Finance)
            .Audited("approve", AuditKinds.PayoutBatch, "batchId")
            .WithProblems(403, ProblemTypes.FourEyes)
            .WithProblems(409, ProblemTypes.ApprovalNotPending, ProblemTypes.ConcurrentUpdate)
            .Produces<string>(StatusCodes.Status200OK, PayoutCsv.ContentType)
            .WithSummary("Approve a payout batch over the threshold (not your own): it is paid, once; answers its CSV.");

    private static async Task<IResult> HandleAsync(string batchId, HttpContext context, PayoutStore payouts, PromoterStore promoters, LedgerStore ledger,
        TimeProvider time)
    {
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
                    var approval = new PayoutApproval { Status = PayoutApproval.Approved, DecidedBy = me, DecidedAt = time.GetUtcNow() };
                    await payouts.TryDecideAsync(batchId, PayoutBatch.Paying, approval, ct);
                    continue; // approved by us or by someone else meanwhile: either way, read it and pay
                case PayoutBatch.Paying or PayoutBatch.Completed when batch.Approval.Status == PayoutApproval.Approved:
                    return await CreatePayoutBatch.ContinueAsync(batch, StatusCodes.Status200OK, context, payouts, promoters, ledger, time, ct);
                default:
                    return PayoutDecisions.NotAwaiting(batch);
            }
        }
        return Problem.Of(ProblemTypes.ConcurrentUpdate, 409, "The batch kept changing; try again.").ToResult();
    }
}
