using Marketing.Functions.Audit;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Wallet;

namespace Marketing.Functions.Campaigns;

public sealed record RejectTopUpRequest(string Reason);

/// <summary>
/// POST /api/campaigns/{id}/budget/top-ups/{key}/reject — an approver (or admin) rejects a top-up request, with a reason.
/// Final: a rejected request is never applied (no path applies a request that is not approved) and cannot be approved
/// later (409 approval-not-pending). The requester may not reject their own (403 four-eyes: withdrawing is not deciding).
/// Repeating the same rejection answers the same (200); any other decision on a decided request is 409.
/// </summary>
public static class RejectTopUp
{
    public static RouteHandlerBuilder MapRejectTopUp(this IEndpointRouteBuilder group) =>
        group.MapPost("/{id}/budget/top-ups/{key}/reject", HandleAsync)
            .AsFunction("RejectTopUp")
            .RequireAuthorization(Policies.Approver)
            .Audited("reject", AuditKinds.TopUp, "id", "key")
            .WithProblems(403, ProblemTypes.FourEyes)
            .WithProblems(409, ProblemTypes.ApprovalNotPending, ProblemTypes.ConcurrentUpdate)
            .AcceptsJson(new RejectTopUpRequest("Above this quarter's plan; ask finance first"))
            .Produces<TopUpView>()
            .WithSummary("Reject a top-up request (not your own), with a reason: it is never applied.");

    private static async Task<IResult> HandleAsync(string id, string key, HttpContext context, StockStore stock, TimeProvider time)
    {
        var (body, problem) = await JsonBody.ReadAsync<RejectTopUpRequest>(context.Request, TopUpDecisions.ValidateReason);
        if (problem is not null) return problem.ToResult();
        var reason = body!.Reason;
        context.AuditReason(reason);
        var ct = context.RequestAborted;
        if (!ClaimCoupon.IsValidKey(key)) return Problem.NotFound("The top-up").ToResult();
        var approver = context.User.SubjectId();

        for (var attempt = 0; attempt < 5; attempt++)
        {
            if (await stock.FindTopUpAsync(id, key, ct) is not { } recorded) return Problem.NotFound("The top-up").ToResult();
            if (recorded.Approval is null)
                return Problem.Of(ProblemTypes.ApprovalNotPending, 409, "This top-up needed no approval.", "It was at or below the approval threshold.").ToResult();
            if (recorded.By == approver) return TopUpDecisions.FourEyes();
            if (recorded.Approval is { Status: TopUpApproval.Rejected } done && done.DecidedBy == approver && done.Reason == reason)
                return TypedResults.Ok(TopUpView.Of(recorded)); // the same rejection again (a retry)
            if (recorded.Approval.Status != TopUpApproval.Pending) return TopUpDecisions.NotPending(recorded);
            var rejected = recorded with
            {
                Approval = new TopUpApproval { Status = TopUpApproval.Rejected, DecidedBy = approver, DecidedAt = time.GetUtcNow(), Reason = reason },
            };
            if (await stock.TryReplaceTopUpAsync(rejected, CancellationToken.None) is { } stored)
                return TypedResults.Ok(TopUpView.Of(stored));
        }
        return Problem.Of(ProblemTypes.ConcurrentUpdate, 409, "The top-up is being changed by someone else; try again.").ToResult();
    }
}

/// <summary>What approving and rejecting top-ups share.</summary>
public static class TopUpDecisions
{
    public const int MaxReason = 200;

    public static IResult FourEyes() => Problem.Of(ProblemTypes.FourEyes, 403, "You requested this top-up: someone else must decide it.",
        "Maker-checker: the requester never approves or rejects their own request (docs/approvals.md).").ToResult();

    public static IResult NotPending(TopUp topUp) => Problem.Of(ProblemTypes.ApprovalNotPending, 409, $"This top-up was already decided: {topUp.State}.",
        "Decisions are final; request a new top-up with a new Idempotency-Key.").ToResult();

    public static IReadOnlyDictionary<string, string[]> ValidateReason(RejectTopUpRequest request)
    {
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrWhiteSpace(request.Reason) || request.Reason.Length > MaxReason) errors["reason"] = [$"Required, at most {MaxReason} characters."];
        return errors;
    }
}
