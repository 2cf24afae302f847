using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Wallet;

namespace Marketing.Functions.Redemption;

/// <summary>
/// POST /api/redemptions/{orderId}/confirm — the order was paid: locked → used, and the budget reservation
/// becomes spent. Only while the lock holds: a lapsed lock is the expiry timer's to cancel, and the coupon
/// document decides a race between the two (whoever changes the coupon first wins; the other is refused).
/// </summary>
public static class ConfirmRedemption
{
    public static RouteHandlerBuilder MapConfirmRedemption(this IEndpointRouteBuilder group) =>
        group.MapPost("/{orderId}/confirm", HandleAsync)
            .AsFunction("ConfirmRedemption")
            .RequireAuthorization(Policies.OrderSystem)
            .Accepts<StepRequest>("application/json")
            .Produces<RedemptionView>()
            .WithSummary("The order was paid: the locked coupon becomes used (idempotent).");

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
                case RedemptionState.Used:
                    // Converge after a crash, then answer as before.
                    await ChangeCouponAsync(record, wallets);
                    await stock.MoveBudgetAsync(record, BudgetMove.Spend);
                    return RedemptionResults.Ok(record, context, replayed: true);
                case RedemptionState.Refunded:
                    return RedemptionResults.Ok(record, context, replayed: true);
                case RedemptionState.Pending:
                    return RedemptionResults.InFlight().ToResult();
                case RedemptionState.Cancelled:
                    return RedemptionResults.Impossible("The redemption was cancelled; the order cannot use this coupon any more.").ToResult();
            }

            // The coupon decides: locked by this order → used. Past the lock's time that is the expiry timer's to
            // undo, so then only a confirm that already changed the coupon (and was interrupted) may finish.
            var lapsed = now >= record.LockedUntil;
            if (lapsed || !await ChangeCouponAsync(record, wallets))
            {
                var coupon = await wallets.ReadAsync(record.Coupon, CancellationToken.None);
                if (!(coupon is { State: CouponStatus.Used } && coupon.OrderId == orderId))
                    return RedemptionResults.Impossible(lapsed
                        ? $"The lock lapsed at {UtcInstantConverter.Text(record.LockedUntil)}; lock the coupon again."
                        : "The order no longer holds the coupon (its lock lapsed).").ToResult();
            }
            await stock.MoveBudgetAsync(record, BudgetMove.Spend);

            var used = await redemptions.TryReplaceAsync(record.Then("confirm", RedemptionState.Used, now, context.User.SubjectId(), reason),
                CancellationToken.None);
            if (used is null) continue; // a concurrent confirm committed first: read it and replay
            return RedemptionResults.Ok(used, context, replayed: false);
        }
        return RedemptionResults.KeptChanging().ToResult();
    }

    private static Task<bool> ChangeCouponAsync(Redemption record, WalletStore wallets)
        => wallets.TryChangeCouponAsync(record.Coupon, CouponStatus.Locked, record.OrderId, CouponStatus.Used, record.OrderId, null, CancellationToken.None);
}
