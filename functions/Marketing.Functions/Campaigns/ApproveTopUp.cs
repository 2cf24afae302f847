using Marketing.Functions.Audit;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Wallet;

namespace Marketing.Functions.Campaigns;

/// <summary>
/// POST /api/campaigns/{id}/budget/top-ups/{key}/approve — an approver (or admin) approves a top-up request that was over
/// Approvals:TopUpThreshold, and it is applied at once, exactly once (docs/approvals.md, "Money"). The requester may not
/// approve their own request (403 four-eyes).
/// The approval is one etag-guarded write of the request (pending → approved, with the lease the apply runs under), so of
/// two approvals at once exactly one wins; the money then moves through the one apply path (TopUpApplication). A crash
/// after the mark leaves an approved, unapplied request: the next approve, or a replay of the top-up's own key, takes its
/// lease over once it has lapsed and finishes it (per-key shard entries make each shard's add happen once). Approving an
/// approved request again answers its result (200) or, while it is being applied, 409 idempotency-in-flight; a rejected
/// one is 409 approval-not-pending.
/// </summary>
public static class ApproveTopUp
{
    public static RouteHandlerBuilder MapApproveTopUp(this IEndpointRouteBuilder group) =>
        group.MapPost("/{id}/budget/top-ups/{key}/approve", HandleAsync)
            .AsFunction("ApproveTopUp")
            .RequireAuthorization(Policies.Approver)
            .Audited("approve", AuditKinds.TopUp, "id", "key")
            .WithProblems(403, ProblemTypes.FourEyes)
            .WithProblems(409, ProblemTypes.ApprovalNotPending, ProblemTypes.CampaignNotActive, ProblemTypes.IdempotencyInFlight, ProblemTypes.ConcurrentUpdate)
            .Produces<TopUpResult>()
            .WithSummary("Approve a top-up request (not your own): it is added to the budget, once.");

    private static async Task<IResult> HandleAsync(string id, string key, HttpContext context, CampaignStore campaigns, StockStore stock, TimeProvider time)
    {
        var ct = context.RequestAborted;
        if (!ClaimCoupon.IsValidKey(key)) return Problem.NotFound("The top-up").ToResult();
        var campaign = await campaigns.FindAsync(id, ct);
        if (campaign is null) return Problem.NotFound("The campaign").ToResult();
        var approver = context.User.SubjectId();

        for (var attempt = 0; attempt < 5; attempt++)
        {
            var now = time.GetUtcNow();
            if (await stock.FindTopUpAsync(id, key, ct) is not { } recorded) return Problem.NotFound("The top-up").ToResult();
            if (recorded.Approval is null)
                return Problem.Of(ProblemTypes.ApprovalNotPending, 409, "This top-up needed no approval.", "It was at or below the approval threshold.").ToResult();
            if (recorded.By == approver) return TopUpDecisions.FourEyes();
            switch (recorded.Approval.Status)
            {
                case TopUpApproval.Pending:
                    if (campaign.Status == CampaignStatus.Ended)
                        return Problem.Of(ProblemTypes.CampaignNotActive, 409, "The campaign has ended.", "Reject the request instead.").ToResult();
                    // The decision and the lease in one write: whoever wins this write applies it; a crash after it leaves an
                    // approved request whose lapsed lease the next approve (or the key's replay) takes over.
                    var approved = recorded with
                    {
                        Approval = new TopUpApproval { Status = TopUpApproval.Approved, DecidedBy = approver, DecidedAt = now },
                        LeaseUntil = now + StockStore.Lease,
                    };
                    if (await stock.TryReplaceTopUpAsync(approved, CancellationToken.None) is { } marked)
                        return await ApplyAsync(marked);
                    continue; // decided meanwhile (or its lease taken): look again
                case TopUpApproval.Approved when recorded.AppliedAt is not null:
                    // Its entries may still be there if a crash came before their removal.
                    await stock.ClearTopUpAsync(id, await TopUpApplication.ShardsAsync(stock, id), key, CancellationToken.None);
                    return await TopUpBudget.Answer(context, stock, campaign, TopUpView.Of(recorded), StatusCodes.Status200OK);
                case TopUpApproval.Approved:
                    if (now < recorded.LeaseUntil + StockStore.LeaseMargin) return TopUpBudget.InFlight(context);
                    if (await stock.TryReplaceTopUpAsync(recorded with { LeaseUntil = now + StockStore.Lease }, CancellationToken.None) is { } taken)
                        return await ApplyAsync(taken);
                    continue;
                default:
                    return TopUpDecisions.NotPending(recorded);
            }
        }
        return Problem.Of(ProblemTypes.ConcurrentUpdate, 409, "The top-up is being changed by someone else; try again.").ToResult();

        async Task<IResult> ApplyAsync(TopUp leased)
        {
            var (outcome, topUp) = await TopUpApplication.ApplyAsync(stock, leased, await TopUpApplication.ShardsAsync(stock, id), time);
            return outcome switch
            {
                TopUpApplied.Done => await TopUpBudget.Answer(context, stock, campaign, TopUpView.Of(topUp), StatusCodes.Status200OK),
                TopUpApplied.OverCap => TopUpBudget.OverCap((await stock.FindBudgetAsync(id, CancellationToken.None))?.Budget ?? 0),
                _ => TopUpBudget.InFlight(context),
            };
        }
    }
}
