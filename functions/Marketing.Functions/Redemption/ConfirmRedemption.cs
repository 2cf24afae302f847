using Marketing.Functions.Audit;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Telemetry;
using Marketing.Functions.Wallet;

namespace Marketing.Functions.Redemption;

/// <summary>
/// POST /api/redemptions/{orderId}/confirm — the order was paid: locked → used, and the budget reservation
/// becomes spent. Only while the lock holds: a lapsed lock is the expiry timer's to cancel.
/// Three Cosmos round trips: (a) the record, locked and not lapsed → used, by one filtered patch that returns it — the
/// record decides between a confirm, a cancel and the timer's expire (each is such a patch; exactly one matches);
/// (b) spend the reservation; (c) the coupon, locked → used. The coupon is the last write: a confirm interrupted after
/// (a) leaves its coupon locked, which the timer's lapsed-lock phase finds and finishes (spend, coupon used), as does
/// a replay of the confirm.
/// </summary>
public static class ConfirmRedemption
{
    public static RouteHandlerBuilder MapConfirmRedemption(this IEndpointRouteBuilder group) =>
        group.MapPost("/{orderId}/confirm", HandleAsync)
            .AsFunction("ConfirmRedemption")
            .NotAudited("An order transaction: the redemption record is the trail of an order transaction (docs/audit.md).")
            .RequireAuthorization(Policies.OrderSystem)
            .WithProblems(409, ProblemTypes.InvalidTransition, ProblemTypes.ConcurrentUpdate, ProblemTypes.IdempotencyInFlight)
            .AcceptsJson(new StepRequest("Order paid"), isOptional: true)
            .Produces<RedemptionView>()
            .WithSummary("The order was paid: the locked coupon becomes used (idempotent).");

    private static async Task<IResult> HandleAsync(string orderId, HttpContext context, RedemptionStore redemptions, WalletStore wallets,
        StockStore stock, TimeProvider time)
    {
        var (reason, problem) = await StepRequest.ReadAsync(context.Request);
        if (problem is not null) return problem.ToResult();
        if (!RedemptionStore.IsValidOrderId(orderId)) return RedemptionResults.NotFound().ToResult();
        var now = time.GetUtcNow();
        // The record's campaign once read: what the step is counted under (docs/operations.md).
        Redemption? known = null;
        IResult Answer(IResult answer) => answer.Counted(Metrics.RedemptionSteps.Confirm, context, known?.CampaignId);
        var step = new RedemptionStep("confirm", RedemptionState.Used, now, context.User.SubjectId(), reason);
        for (var attempt = 0; attempt < 5; attempt++)
        {
            // (a) The record decides. Instants are stored in one fixed-width form, so they compare as strings.
            var (confirmed, record) = await redemptions.TryStepAsync(orderId,
                $"c.state = \"{RedemptionResults.Wire(RedemptionState.Locked)}\" AND c.lockedUntil > \"{UtcInstantConverter.Text(now)}\"", step,
                context.RequestAborted);
            known = confirmed ?? record;
            if (confirmed is not null)
            {
                // From here on, finish even if the client goes away.
                await FinishAsync(confirmed, stock, wallets);
                return Answer(RedemptionResults.Ok(confirmed, context, replayed: false));
            }
            switch (record?.State)
            {
                case null:
                    return Answer(RedemptionResults.NotFound().ToResult());
                case RedemptionState.Used:
                    await FinishAsync(record, stock, wallets); // converge after a crash, then answer as before
                    return Answer(RedemptionResults.Ok(record, context, replayed: true));
                case RedemptionState.Refunded:
                    return Answer(RedemptionResults.Ok(record, context, replayed: true));
                case RedemptionState.Pending:
                    return Answer(RedemptionResults.InFlight().ToResult());
                case RedemptionState.Cancelled:
                    return Answer(RedemptionResults.Impossible("The redemption was cancelled; the order cannot use this coupon any more.").ToResult());
                case RedemptionState.Locked when now >= record.LockedUntil:
                    // A confirm of the previous release changed the coupon before its record; if it was interrupted there,
                    // the coupon is already used by this order and only the record is left to follow.
                    if (await wallets.ReadAsync(record.Coupon, CancellationToken.None) is { State: CouponStatus.Used } coupon && coupon.OrderId == orderId)
                    {
                        var (finished, _) = await redemptions.TryStepAsync(orderId,
                            $"c.state = \"{RedemptionResults.Wire(RedemptionState.Locked)}\"", step, CancellationToken.None);
                        if (finished is null) continue;
                        await FinishAsync(finished, stock, wallets);
                        return Answer(RedemptionResults.Ok(finished, context, replayed: false));
                    }
                    return Answer(RedemptionResults.Impossible($"The lock lapsed at {UtcInstantConverter.Text(record.LockedUntil)}; lock the coupon again.").ToResult());
            }
            // Locked and not lapsed, yet refused: it changed between the patch and the read. Look again.
        }
        return Answer(RedemptionResults.KeptChanging().ToResult());
    }

    /// <summary>
    /// The effects of a used record: spend the reservation, then the coupon locked → used. Both filtered, so repeating
    /// them (a replay, the timer) changes nothing; the coupon last, so an interrupted confirm still shows as a locked coupon.
    /// </summary>
    public static async Task FinishAsync(Redemption used, StockStore stock, WalletStore wallets)
    {
        await stock.MoveBudgetAsync(used, BudgetMove.Spend);
        await wallets.TryChangeCouponAsync(used.Coupon, CouponStatus.Locked, used.OrderId, CouponStatus.Used, used.OrderId, null, CancellationToken.None);
    }
}
