using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Wallet;

namespace Marketing.Functions.Redemption;

/// <summary>
/// POST /api/redemptions/{orderId}/refund — a paid order was refunded: the discount goes back to the budget,
/// and the coupon goes back to the wallet if the campaign says so (returnOnRefund) and the coupon is still
/// valid; otherwise it stays used. Appended to the history as its own step; nothing is erased.
/// </summary>
public static class RefundRedemption
{
    public static RouteHandlerBuilder MapRefundRedemption(this IEndpointRouteBuilder group) =>
        group.MapPost("/{orderId}/refund", HandleAsync)
            .AsFunction("RefundRedemption")
            .RequireAuthorization(Policies.OrderSystem)
            .Accepts<StepRequest>("application/json")
            .Produces<RedemptionView>()
            .WithSummary("A paid order was refunded: reverse the budget, return the coupon if the campaign allows (idempotent).");

    private static async Task<IResult> HandleAsync(string orderId, HttpContext context, RedemptionStore redemptions, WalletStore wallets,
        StockStore stock, TimeProvider time)
    {
        var (reason, problem) = await StepRequest.ReadAsync(context.Request);
        if (problem is not null) return problem.ToResult();
        var now = time.GetUtcNow();
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var record = await redemptions.FindAsync(orderId, context.RequestAborted);
            switch (record?.State)
            {
                case null:
                    return RedemptionResults.NotFound().ToResult();
                case RedemptionState.Refunded:
                    // Converge after a crash, then answer as before.
                    if (record.CouponReturned) await ReturnCouponAsync(wallets, record);
                    await stock.MoveBudgetAsync(record, BudgetMove.Refund);
                    return RedemptionResults.Ok(record, context, replayed: true);
                case RedemptionState.Pending or RedemptionState.Locked or RedemptionState.Cancelled:
                    return RedemptionResults.Impossible($"Only a paid order can be refunded; this one is {RedemptionResults.Wire(record.State)}.").ToResult();
            }

            var giveBack = record.ReturnOnRefund && now < record.CouponValidTo;
            // If this fails the coupon was already given back by an earlier attempt (and may even be locked by
            // a new order by now): either way it is back in the wallet.
            if (giveBack) await ReturnCouponAsync(wallets, record);
            await stock.MoveBudgetAsync(record, BudgetMove.Refund);

            var refunded = await redemptions.TryReplaceAsync(
                record.Then("refund", RedemptionState.Refunded, now, context.User.SubjectId(), reason) with { CouponReturned = giveBack },
                CancellationToken.None);
            if (refunded is null) continue;
            return RedemptionResults.Ok(refunded, context, replayed: false);
        }
        return RedemptionResults.KeptChanging().ToResult();
    }

    private static Task<bool> ReturnCouponAsync(WalletStore wallets, Redemption record)
        => wallets.TryChangeCouponAsync(record.Coupon, CouponStatus.Used, record.OrderId, CouponStatus.Available, null, null, CancellationToken.None);
}
