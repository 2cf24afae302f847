using Marketing.Functions.Audit;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Telemetry;
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
            .NotAudited("An order transaction: the redemption record is the trail of an order transaction (docs/audit.md).")
            .RequireAuthorization(Policies.OrderSystem)
            .WithProblems(409, ProblemTypes.InvalidTransition, ProblemTypes.ConcurrentUpdate, ProblemTypes.IdempotencyInFlight)
            .AcceptsJson(new StepRequest("Order cancelled before payment"), isOptional: true)
            .Produces<RedemptionView>()
            .WithSummary("The order was cancelled before payment: release the coupon and the budget (idempotent).");

    private static async Task<IResult> HandleAsync(string orderId, HttpContext context, RedemptionStore redemptions, WalletStore wallets,
        StockStore stock, TimeProvider time)
    {
        var (reason, problem) = await StepRequest.ReadAsync(context.Request);
        if (problem is not null) return problem.ToResult();
        if (!RedemptionStore.IsValidOrderId(orderId)) return RedemptionResults.NotFound().ToResult(); // no such order can exist: not a step
        var outcome = await CancelAsync(orderId, "cancel", context.User.SubjectId(), reason, redemptions, wallets, stock,
            time.GetUtcNow(), context.RequestAborted);
        // The order system's cancels only: the timer's "expire" is not a step the order system asked for.
        return (outcome.Refusal is not null ? outcome.Refusal.ToResult() : RedemptionResults.Ok(outcome.Record!, context, outcome.Replayed))
            .Counted(Metrics.RedemptionSteps.Cancel, context, outcome.Record?.CampaignId);
    }

    public sealed record Outcome(Redemption? Record, Problem? Refusal, bool Replayed);

    /// <summary>
    /// The cancel step, for the order system ("cancel") and for the expiry timer ("expire", which only acts on locks that
    /// have lapsed). Three Cosmos round trips: (a) the record, locked → cancelled, by one filtered patch (for "expire" also
    /// filtered on the lock having lapsed) — the record decides between this and a confirm; (b) release the reservation;
    /// (c) the coupon back to the wallet (or expired past validity), last, so an interrupted cancel leaves a locked coupon
    /// the timer's lapsed-lock phase finds and finishes. Record and budget change once however often it runs.
    /// </summary>
    public static async Task<Outcome> CancelAsync(string orderId, string step, string by, string? reason, RedemptionStore redemptions,
        WalletStore wallets, StockStore stock, DateTimeOffset now, CancellationToken ct)
    {
        if (!RedemptionStore.IsValidOrderId(orderId)) return new(null, RedemptionResults.NotFound(), false);
        var expiring = step == "expire";
        var change = new RedemptionStep(step, RedemptionState.Cancelled, now, by, reason);
        var filter = $"c.state = \"{RedemptionResults.Wire(RedemptionState.Locked)}\"";
        if (expiring) filter += $" AND c.lockedUntil <= \"{UtcInstantConverter.Text(now)}\"";
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var (cancelled, record) = await redemptions.TryStepAsync(orderId, filter, change, ct);
            if (cancelled is not null)
            {
                await FinishAsync(cancelled, wallets, stock, now);
                return new(cancelled, null, false);
            }
            switch (record?.State)
            {
                case null:
                    return new(null, RedemptionResults.NotFound(), false);
                case RedemptionState.Cancelled:
                    await FinishAsync(record, wallets, stock, now); // converge after a crash, then answer as before
                    return new(record, null, true);
                case RedemptionState.Used or RedemptionState.Refunded:
                    return new(record, RedemptionResults.Impossible("The order was paid: refund it instead."), false);
                case RedemptionState.Locked when expiring && now < record.LockedUntil:
                    return new(record, RedemptionResults.Impossible("The lock has not lapsed."), false);
                case RedemptionState.Pending:
                    if (!expiring && now - record.CreatedAt < LockCoupon.LockDeadline)
                        return new(record, RedemptionResults.InFlight(), false);
                    if (expiring && now < record.LockedUntil)
                        return new(record, RedemptionResults.Impossible("The lock has not lapsed."), false);
                    // A slot nobody holds any more (or the timer's own, for a lock whose record never came): the record
                    // first, by its etag — so of this and a retry taking the lock over, one wins — then the effects.
                    var ended = await redemptions.TryReplaceAsync(record.Then(step, RedemptionState.Cancelled, now, by, reason), CancellationToken.None);
                    if (ended is null) continue;
                    await FinishAsync(ended, wallets, stock, now);
                    return new(ended, null, false);
            }
            // Locked (and lapsed, for "expire"), yet refused: it changed between the patch and the read. Look again.
        }
        return new(null, RedemptionResults.KeptChanging(), false);
    }

    /// <summary>
    /// The effects of a cancelled record: the reservation released, then the coupon back (locked by this order →
    /// available, or expired past validity). Both filtered, so repeating them changes nothing.
    /// </summary>
    public static async Task FinishAsync(Redemption cancelled, WalletStore wallets, StockStore stock, DateTimeOffset now)
    {
        await stock.ReleaseAsync(cancelled);
        await wallets.TryChangeCouponAsync(cancelled.Coupon, CouponStatus.Locked, cancelled.OrderId,
            now >= cancelled.CouponValidTo ? CouponStatus.Expired : CouponStatus.Available, null, null, CancellationToken.None);
    }
}
