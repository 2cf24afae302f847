using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Expiry;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Wallet;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Redemption;

public sealed record LockRequest(string OrderId, string CustomerId, string CouponId, OrderDraft Order);

/// <summary>
/// POST /api/redemptions — the order system places an order with a coupon: validate the coupon against the
/// order again, lock it for the order (it lapses after Redemption:LockMinutes unless confirmed) and reserve
/// its discount against the campaign's budget. Idempotent per order id: a replay answers the same record.
///
/// Writes, in this order: (1) the lock's due entry, then the order's record, pending — the per-order
/// mutex; (2) the coupon, available → locked by this order — the decisive write, so of two
/// orders racing for one coupon exactly one wins; (3) the budget, only while what is left covers the
/// discount; (4) the record, pending → locked. A refusal at (2) or (3) undoes what was done, so nothing
/// is left behind; a crash leaves a pending record that a retry resumes, or the expiry timer cancels
/// when the lock lapses (docs/redemption.md).
/// </summary>
public static class LockCoupon
{
    /// <summary>A pending record older than this belongs to an interrupted lock, which a retry may resume.</summary>
    public static readonly TimeSpan LockDeadline = TimeSpan.FromSeconds(30);

    public static RouteHandlerBuilder MapLockCoupon(this IEndpointRouteBuilder group) =>
        group.MapPost("", HandleAsync)
            .AsFunction("LockCoupon")
            .RequireAuthorization(Policies.OrderSystem)
            .Accepts<LockRequest>("application/json")
            .Produces<RedemptionView>(StatusCodes.Status201Created)
            .WithSummary("Lock a coupon for an order and reserve its discount (idempotent per orderId).");

    private static async Task<IResult> HandleAsync(HttpContext context, RedemptionStore redemptions, WalletStore wallets, StockStore stock,
        DueIndex due, IOptions<RedemptionOptions> options, TimeProvider time)
    {
        var (request, problem) = await JsonBody.ReadAsync<LockRequest>(context.Request);
        if (problem is not null) return problem.ToResult();
        var errors = Validate(request!);
        if (errors.Count > 0) return Problem.Validation(errors).ToResult();

        var ct = context.RequestAborted;
        var now = time.GetUtcNow();
        var hash = Fingerprint(request!);
        var existing = await redemptions.FindAsync(request!.OrderId, ct);
        if (existing is not null && !IsInterrupted(existing, now))
            return Replay(existing, hash, context);
        if (existing is not null && existing.RequestHash != hash)
            return OtherCoupon(existing).ToResult();

        var slot = await wallets.FindSlotAsync(request.CustomerId, request.CouponId, ct);
        if (slot is null)
            return Problem.Of(ProblemTypes.NotFound, 404, "Not found.", "The coupon is not in this customer's wallet.").ToResult();
        var (discount, refusal) = Check(slot.Coupon, request, now);
        if (refusal is not null)
        {
            if (existing is not null) await redemptions.TryDeleteAsync(existing, CancellationToken.None);
            return refusal.ToResult();
        }

        var record = existing;
        if (record is null)
        {
            var lockedUntil = now.AddMinutes(options.Value.LockMinutes);
            // The due entry first: a lock the timer cannot find must never exist.
            await due.AddLockExpiryAsync(request.OrderId, lockedUntil);
            record = await redemptions.TryCreateAsync(NewRecord(request, slot, discount, lockedUntil, hash, now), ct);
            if (record is null)
                return await redemptions.FindAsync(request.OrderId, ct) is { } raced ? Replay(raced, hash, context) : InFlight().ToResult();
        }
        else
        {
            await due.AddLockExpiryAsync(record.OrderId, record.LockedUntil); // create-if-absent: resuming repeats it harmlessly
        }

        // From here on, undo on refusal even if the client goes away.
        var (failed, budgetShard) = await ReserveAsync(record, slot, request, redemptions, wallets, stock, now);
        if (failed is not null) return failed.ToResult();

        // The record names the budget shard holding the reservation, so confirm, cancel and refund move it there.
        var locked = await redemptions.TryReplaceAsync(record.Then("lock", RedemptionState.Locked, now, context.User.SubjectId()) with { BudgetShard = budgetShard },
            CancellationToken.None);
        if (locked is null)
            return await redemptions.FindAsync(request.OrderId, ct) is { } changed ? Replay(changed, hash, context) : InFlight().ToResult();
        return RedemptionResults.Created(locked, context, replayed: false);
    }

    /// <summary>
    /// Locks the coupon for the order (the decisive write), then reserves the discount. Both are idempotent per
    /// order, so resuming an interrupted lock repeats them harmlessly. On a refusal or an error, everything
    /// this order holds is let go and its pending record removed: a rejected lock leaves nothing behind.
    /// </summary>
    private static async Task<(Problem? Refusal, int BudgetShard)> ReserveAsync(Redemption record, CouponSlot slot, LockRequest request,
        RedemptionStore redemptions, WalletStore wallets, StockStore stock, DateTimeOffset now)
    {
        var orderId = request.OrderId;
        try
        {
            if (!await wallets.TryChangeCouponAsync(slot.Ref, CouponStatus.Available, null, CouponStatus.Locked, orderId, record.LockedUntil,
                    CancellationToken.None))
            {
                var current = await wallets.ReadAsync(slot.Ref, CancellationToken.None) ?? slot.Coupon;
                if (!(current.State == CouponStatus.Locked && current.OrderId == orderId)) // else: ours, from an interrupted attempt
                {
                    await redemptions.TryDeleteAsync(record, CancellationToken.None);
                    // Null: the coupon was locked and released again between our read and our write.
                    return (Check(current, request, now).Refusal
                        ?? Problem.Of(ProblemTypes.ConcurrentUpdate, 409, "The coupon changed while it was being locked; try again."), 0);
                }
            }
            if (!(record.Budgeted && record.Discount > 0))
                return (null, 0);
            // A resumed lock's earlier attempt may have reserved in any budget shard: the reservation looks there first.
            var resuming = now - record.CreatedAt >= LockDeadline;
            if (await stock.TryReserveBudgetAsync(record.CampaignId, orderId, record.CouponId, record.Discount, CancellationToken.None, resuming) is { } shard)
                return (null, shard);
            await LetGoAsync(record, redemptions, wallets, stock, now);
            return (Problem.Of(ProblemTypes.BudgetExhausted, 409, "The campaign's budget cannot cover this discount.",
                "The order can go ahead without this coupon."), 0);
        }
        catch (Exception) when (record.State == RedemptionState.Pending)
        {
            await LetGoAsync(record, redemptions, wallets, stock, now);
            throw;
        }
    }

    private static async Task LetGoAsync(Redemption record, RedemptionStore redemptions, WalletStore wallets, StockStore stock, DateTimeOffset now)
    {
        await stock.MoveBudgetAsync(record, BudgetMove.Release);
        await wallets.TryChangeCouponAsync(record.Coupon, CouponStatus.Locked, record.OrderId,
            now >= record.CouponValidTo ? CouponStatus.Expired : CouponStatus.Available, null, null, CancellationToken.None);
        await redemptions.TryDeleteAsync(record, CancellationToken.None);
    }

    private static Dictionary<string, string[]> Validate(LockRequest request)
    {
        var errors = request.Order is null
            ? new Dictionary<string, string[]> { ["order"] = ["Required."] }
            : request.Order.Validate("order.");
        if (!RedemptionStore.IsValidOrderId(request.OrderId))
            errors["orderId"] = [$"1 to {RedemptionStore.MaxOrderIdLength} characters of A-Z a-z 0-9 . _ : -"];
        if (string.IsNullOrWhiteSpace(request.CustomerId) || request.CustomerId.Length > 128)
            errors["customerId"] = ["Required, at most 128 characters."];
        if (!Ids.IsWellFormed(request.CouponId))
            errors["couponId"] = ["A coupon id as returned by a claim (cpn_...)."];
        return errors;
    }

    /// <summary>The discount, or why this coupon cannot be locked for this order.</summary>
    private static (long Discount, Problem? Refusal) Check(Coupon coupon, LockRequest request, DateTimeOffset now)
    {
        switch (coupon.StatusAt(now))
        {
            case CouponStatus.Locked when coupon.OrderId != request.OrderId:
                return (0, Problem.Of(ProblemTypes.CouponLocked, 409, "The coupon is locked by another order.",
                    $"It is released when that order is paid, cancelled, or its lock lapses at {UtcInstantConverter.Text(coupon.LockedUntil ?? now)}."));
            case CouponStatus.Used:
                return (0, Problem.Of(ProblemTypes.InvalidTransition, 409, "The coupon was already used by another order."));
        }
        var price = Discount.Price(coupon with { State = CouponStatus.Available }, request.Order, now);
        if (!price.Applies)
            return (0, Problem.Of(ProblemTypes.CouponNotApplicable, 422, "The coupon does not apply to this order.",
                Explain(price.Reason!.Value, coupon)).With("reason", Discount.Wire(price.Reason.Value)));
        return (price.Discount, null);
    }

    private static string Explain(NotApplicableReason reason, Coupon coupon) => reason switch
    {
        NotApplicableReason.BelowThreshold => $"The eligible lines must add up to at least {coupon.MinimumSpend} (minor units).",
        NotApplicableReason.Category => "No line of the order is in the coupon's categories.",
        NotApplicableReason.Channel => "The coupon cannot be used on this channel.",
        NotApplicableReason.Currency => $"The coupon is in {coupon.Currency}.",
        NotApplicableReason.Expired => $"The coupon expired at {UtcInstantConverter.Text(coupon.ValidTo)}.",
        NotApplicableReason.NotYetValid => $"The coupon is valid from {UtcInstantConverter.Text(coupon.ValidFrom)}.",
        _ => "The coupon cannot be used.",
    };

    private static bool IsInterrupted(Redemption record, DateTimeOffset now)
        => record.State == RedemptionState.Pending && now - record.CreatedAt >= LockDeadline && now < record.LockedUntil;

    private static IResult Replay(Redemption existing, string hash, HttpContext context)
    {
        if (existing.RequestHash != hash) return OtherCoupon(existing).ToResult();
        if (existing.State == RedemptionState.Pending) return InFlight().ToResult();
        return RedemptionResults.Created(existing, context, replayed: true);
    }

    private static Problem OtherCoupon(Redemption existing)
        => Problem.Of(ProblemTypes.InvalidTransition, 409, "This order already has a redemption.",
            $"Order {existing.OrderId} redeems coupon {existing.CouponCode} ({RedemptionResults.Wire(existing.State)}); one coupon per order, locked once.");

    private static Problem InFlight() => RedemptionResults.InFlight();

    private static Redemption NewRecord(LockRequest request, CouponSlot slot, long discount, DateTimeOffset lockedUntil, string hash, DateTimeOffset now) => new()
    {
        Id = request.OrderId,
        OrderId = request.OrderId,
        CustomerId = request.CustomerId,
        CouponId = slot.Coupon.Id,
        CouponCode = slot.Coupon.Code,
        CampaignId = slot.Coupon.CampaignId,
        CouponIndex = slot.Ref.Index,
        CouponValidTo = slot.Coupon.ValidTo,
        Discount = discount,
        Currency = slot.Coupon.Currency,
        Budgeted = slot.Coupon.Budgeted,
        ReturnOnRefund = slot.Coupon.ReturnOnRefund,
        State = RedemptionState.Pending,
        LockedUntil = lockedUntil,
        RequestHash = hash,
        CreatedAt = now,
        History = [],
    };

    /// <summary>What makes two locks "the same request": customer, coupon and the order draft's meaning.</summary>
    private static string Fingerprint(LockRequest request)
        => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(request, Json.Options))));
}
