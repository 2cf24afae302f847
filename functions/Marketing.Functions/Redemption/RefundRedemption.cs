using Marketing.Functions.Audit;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Telemetry;
using Marketing.Functions.Wallet;

namespace Marketing.Functions.Redemption;

/// <summary>
/// POST /api/redemptions/{orderId}/refund — a paid order was refunded: the discount goes back to the budget,
/// and the coupon goes back to the wallet if the campaign says so (returnOnRefund) and the coupon is still
/// valid; otherwise it stays used. Appended to the history as its own step; nothing is erased.
///
/// Writes, in this order: (1) the record takes the refund's lease (etag: of concurrent attempts one goes on, the
/// others answer in-flight until the lease ends); (2) the coupon and (3) the budget's refund with its per-order entry,
/// both cancelled when the lease ends; (4) the record commits refunded (etag); (5) the entry is removed. Committed ⇒
/// (2) and (3) happened, and nobody can move this refund's money any more: a replay of the committed record moves
/// nothing, and every other attempt either never got the lease or held an earlier one whose calls ended before it could
/// be taken over. So the budget keeps no entry per refunded order (docs/redemption.md, "Budgets").
/// </summary>
public static class RefundRedemption
{
    public static RouteHandlerBuilder MapRefundRedemption(this IEndpointRouteBuilder group) =>
        group.MapPost("/{orderId}/refund", HandleAsync)
            .AsFunction("RefundRedemption")
            .NotAudited("An order transaction: the redemption record is the trail of an order transaction (docs/audit.md).")
            .RequireAuthorization(Policies.OrderSystem)
            .WithProblems(409, ProblemTypes.InvalidTransition, ProblemTypes.ConcurrentUpdate, ProblemTypes.IdempotencyInFlight)
            .AcceptsJson(new StepRequest("Goods returned"), isOptional: true)
            .Produces<RedemptionView>()
            .WithSummary("A paid order was refunded: reverse the budget, return the coupon if the campaign allows (idempotent).");

    private static async Task<IResult> HandleAsync(string orderId, HttpContext context, RedemptionStore redemptions, WalletStore wallets,
        StockStore stock, TimeProvider time)
    {
        var (reason, problem) = await StepRequest.ReadAsync(context.Request);
        if (problem is not null) return problem.ToResult();
        if (!RedemptionStore.IsValidOrderId(orderId)) return RedemptionResults.NotFound().ToResult(); // no such order can exist: not a step
        var now = time.GetUtcNow();
        // The record's campaign once read: what the step is counted under (docs/operations.md).
        Redemption? known = null;
        IResult Answer(IResult answer) => answer.Counted(Metrics.RedemptionSteps.Refund, context, known?.CampaignId);
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var record = await redemptions.FindAsync(orderId, context.RequestAborted);
            known = record;
            switch (record?.State)
            {
                case null:
                    return Answer(RedemptionResults.NotFound().ToResult());
                case RedemptionState.Refunded:
                    // Committed, so its effects are done: converge after a crash (the coupon's return is filtered on it still
                    // being used by this order; the budget's entry, if the crash came before its removal, goes), never move
                    // the money again.
                    if (record.CouponReturned) await ReturnCouponAsync(wallets, record, CancellationToken.None);
                    await stock.ClearRefundAsync(record);
                    return Answer(RedemptionResults.Ok(record, context, replayed: true));
                case RedemptionState.Pending or RedemptionState.Locked or RedemptionState.Cancelled:
                    return Answer(RedemptionResults.Impossible($"Only a paid order can be refunded; this one is {RedemptionResults.Wire(record.State)}.").ToResult());
            }

            if (record.RefundingUntil is { } until && now < until + StockStore.LeaseMargin)
                return Answer(InFlight(context).ToResult());
            var leased = await redemptions.TryReplaceAsync(record with { RefundingUntil = now + StockStore.Lease }, CancellationToken.None);
            if (leased is null) continue; // another attempt took it, or committed: read it again
            // Every move of this attempt ends with its lease (a client that goes away does not stop it earlier).
            using var lease = new CancellationTokenSource(StockStore.Lease);

            var giveBack = record.ReturnOnRefund && now < record.CouponValidTo;
            // If this fails the coupon was already given back by an earlier attempt (and may even be locked by
            // a new order by now): either way it is back in the wallet.
            if (giveBack) await ReturnCouponAsync(wallets, record, lease.Token);
            await stock.MoveBudgetAsync(record, BudgetMove.Refund, lease.Token);

            var refunded = await redemptions.TryReplaceAsync(
                leased.Then("refund", RedemptionState.Refunded, now, context.User.SubjectId(), reason) with { CouponReturned = giveBack, RefundingUntil = null },
                CancellationToken.None);
            if (refunded is null) continue; // our lease ran out and another attempt took it over: read it again
            await stock.ClearRefundAsync(refunded);
            return Answer(RedemptionResults.Ok(refunded, context, replayed: false));
        }
        return Answer(RedemptionResults.KeptChanging().ToResult());
    }

    private static Problem InFlight(HttpContext context)
    {
        context.Response.Headers.RetryAfter = "1";
        return Problem.Of(ProblemTypes.IdempotencyInFlight, 409, "A refund of this order is still in progress.", "Retry shortly.");
    }

    private static Task<bool> ReturnCouponAsync(WalletStore wallets, Redemption record, CancellationToken ct)
        => wallets.TryChangeCouponAsync(record.Coupon, CouponStatus.Used, record.OrderId, CouponStatus.Available, null, null, ct);
}
