using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Wallet;

namespace Marketing.Functions.Redemption;

/// <summary>
/// POST /api/redemptions/{orderId}/cancel — the order was cancelled before payment: the coupon goes back to
/// the wallet (or to expired, past its validity) and the reserved budget is released. The expiry timer
/// runs the same step ("expire") for locks that lapsed.
/// </summary>
public static class CancelRedemption
{
    public static RouteHandlerBuilder MapCancelRedemption(this IEndpointRouteBuilder group) =>
        group.MapPost("/{orderId}/cancel", HandleAsync)
            .AsFunction("CancelRedemption")
            .RequireAuthorization(Policies.OrderSystem)
            .Accepts<StepRequest>("application/json")
            .Produces<RedemptionView>()
            .WithSummary("The order was cancelled before payment: release the coupon and the budget (idempotent).");

    private static async Task<IResult> HandleAsync(string orderId, HttpContext context, RedemptionStore redemptions, WalletStore wallets,
        StockStore stock, TimeProvider time)
    {
        var (reason, problem) = await StepRequest.ReadAsync(context.Request);
        if (problem is not null) return problem.ToResult();
        var outcome = await CancelAsync(orderId, "cancel", context.User.SubjectId(), reason, redemptions, wallets, stock,
            time.GetUtcNow(), context.RequestAborted);
        return outcome.Refusal is not null ? outcome.Refusal.ToResult() : RedemptionResults.Ok(outcome.Record!, context, outcome.Replayed);
    }

    public sealed record Outcome(Redemption? Record, Problem? Refusal, bool Replayed);

    /// <summary>
    /// The cancel step, for the order system ("cancel") and for the expiry timer ("expire", which only acts
    /// on locks that have lapsed). Record and budget change once however often it runs.
    /// </summary>
    public static async Task<Outcome> CancelAsync(string orderId, string step, string by, string? reason, RedemptionStore redemptions,
        WalletStore wallets, StockStore stock, DateTimeOffset now, CancellationToken ct)
    {
        var expiring = step == "expire";
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var record = await redemptions.FindAsync(orderId, ct);
            switch (record?.State)
            {
                case null:
                    return new(null, RedemptionResults.NotFound(), false);
                case RedemptionState.Cancelled:
                    await stock.MoveBudgetAsync(record, BudgetMove.Release); // converge after a crash, then answer as before
                    return new(record, null, true);
                case RedemptionState.Used or RedemptionState.Refunded:
                    return new(record, RedemptionResults.Impossible("The order was paid: refund it instead."), false);
                case RedemptionState.Pending when !expiring && now - record.CreatedAt < LockCoupon.LockDeadline:
                    return new(record, RedemptionResults.InFlight(), false);
            }
            if (expiring && now < record.LockedUntil)
                return new(record, RedemptionResults.Impossible("The lock has not lapsed."), false);

            // The decisive write; if the coupon is already used by this order, a confirm won the race.
            if (!await ReleaseCouponAsync(wallets, record, now))
            {
                var coupon = await wallets.ReadAsync(record.Coupon, CancellationToken.None);
                if (coupon is { State: CouponStatus.Used } && coupon.OrderId == orderId)
                    return new(record, RedemptionResults.Impossible("The order was just paid: refund it instead."), false);
            }

            // Idempotent per order: releases the reservation if there is one (an interrupted lock may have none).
            await stock.MoveBudgetAsync(record, BudgetMove.Release);

            var cancelled = await redemptions.TryReplaceAsync(record.Then(step, RedemptionState.Cancelled, now, by, reason), CancellationToken.None);
            if (cancelled is null) continue;
            return new(cancelled, null, false);
        }
        return new(null, RedemptionResults.KeptChanging(), false);
    }

    /// <summary>Locked by this order → available (or expired past validity). False when the order did not hold it.</summary>
    private static Task<bool> ReleaseCouponAsync(WalletStore wallets, Redemption record, DateTimeOffset now)
        => wallets.TryChangeCouponAsync(record.Coupon, CouponStatus.Locked, record.OrderId,
            now >= record.CouponValidTo ? CouponStatus.Expired : CouponStatus.Available, null, null, CancellationToken.None);
}
