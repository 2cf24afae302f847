using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Marketing.Functions.Audit;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Telemetry;
using Marketing.Functions.Wallet;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Redemption;

public sealed record LockRequest(string OrderId, string CustomerId, string CouponId, OrderDraft Order);

/// <summary>
/// POST /api/redemptions — the order system places an order with a coupon: validate the coupon against the
/// order again, lock it for the order (it lapses after Redemption:LockMinutes unless confirmed) and reserve
/// its discount against the campaign's budget. Idempotent per order id: a replay answers the same record.
///
/// Four Cosmos round trips with a budget, three without (docs/redemption.md): (a) read the coupon's wallet document;
/// (b) the coupon, available → locked by this order — the decisive write, so of two orders racing for one coupon
/// exactly one wins; (c) reserve the discount, only while the budget covers it; (d) create the record, already
/// locked (create-if-absent: of two locks of one order, one record). The record is written last, so a record that
/// exists always has its coupon and reservation behind it. A refusal at (b) or (c) undoes what was done.
///
/// Only the attempt that took the coupon lock writes for it, and only within <see cref="SendWindow"/> of taking it
/// (and well before the lock lapses): after that it stops and answers "in flight". So a retry that finds the coupon
/// locked for its order with no record knows, once that window and one call's deadline have passed, that nobody
/// else will write for it any more, and takes over (under a pending record: the per-order slot); the expiry timer,
/// which acts only after lockedUntil, releases a lock whose record never came (under the same slot).
/// </summary>
public static class LockCoupon
{
    /// <summary>
    /// A pending record older than this belongs to an interrupted lock: a cancel may then cancel it. (Pending records
    /// are the per-order slot a takeover or the timer holds, and locks of the previous release.)
    /// </summary>
    public static readonly TimeSpan LockDeadline = TimeSpan.FromSeconds(30);

    /// <summary>An attempt sends its writes (lock, reservation, record, or their undo) only this long after taking the coupon lock.</summary>
    public static readonly TimeSpan SendWindow = TimeSpan.FromSeconds(20);

    /// <summary>How far apart two instances' clocks may be: a margin between a lock's last write and the timer's first look.</summary>
    public static readonly TimeSpan ClockSkew = TimeSpan.FromSeconds(5);

    public static RouteHandlerBuilder MapLockCoupon(this IEndpointRouteBuilder group) =>
        group.MapPost("", HandleAsync)
            .AsFunction("LockCoupon")
            .NotAudited("An order transaction: the redemption record is the trail of an order transaction (docs/audit.md).")
            .RequireAuthorization(Policies.OrderSystem)
            .WithProblems(404, ProblemTypes.NotFound)
            .WithProblems(409, ProblemTypes.BudgetExhausted, ProblemTypes.ConcurrentUpdate, ProblemTypes.CouponLocked, ProblemTypes.InvalidTransition, ProblemTypes.IdempotencyInFlight)
            .WithProblems(422, ProblemTypes.CouponNotApplicable)
            .AcceptsJson(new LockRequest("ord-20261202-0001", "cust-8817", "cpn_7k2q9x0c4m1vb3nd", OrderDraft.Example))
            .Produces<RedemptionView>(StatusCodes.Status201Created)
            .WithSummary("Lock a coupon for an order and reserve its discount (idempotent per orderId).");

    private static async Task<IResult> HandleAsync(HttpContext context, RedemptionStore redemptions, WalletStore wallets, StockStore stock,
        IOptions<RedemptionOptions> options, IOptions<CosmosOptions> cosmos, TimeProvider time)
    {
        var (request, problem) = await JsonBody.ReadAsync<LockRequest>(context.Request, Validate);
        if (problem is not null) return problem.ToResult();
        var attempt = new Attempt(request!, Fingerprint(request!), context, redemptions, wallets, stock, time,
            TimeSpan.FromMinutes(options.Value.LockMinutes), TimeSpan.FromSeconds(cosmos.Value.CallTimeoutSeconds));
        var answer = await attempt.RunAsync(context.RequestAborted);
        if (answer is ProblemResult { Value.Type: ProblemTypes.Prefix + ProblemTypes.BudgetExhausted } && attempt.CampaignId is { } spent)
            Metrics.BudgetSpent(spent);
        return answer.Counted(Metrics.RedemptionSteps.Lock, context, attempt.CampaignId);
    }

    /// <summary>
    /// After this long, an attempt that locked a coupon sends nothing more for it: its window plus one call's deadline
    /// (CosmosCallDeadline bounds a call, the SDK's retries included).
    /// </summary>
    public static TimeSpan WritesEndAfter(TimeSpan callTimeout) => SendWindow + callTimeout;

    /// <summary>One lock request: the request, its fingerprint, and what it writes with.</summary>
    private sealed class Attempt(LockRequest request, string hash, HttpContext context, RedemptionStore redemptions, WalletStore wallets,
        StockStore stock, TimeProvider time, TimeSpan lockFor, TimeSpan callTimeout)
    {
        private readonly DateTimeOffset now = time.GetUtcNow();
        private string OrderId => request.OrderId;

        /// <summary>The campaign of the coupon as stored in the wallet, once read (a coupon id from the request is not a tag).</summary>
        public string? CampaignId { get; private set; }

        public async Task<IResult> RunAsync(CancellationToken ct)
        {
            // (a) The coupon: coupon ids name their campaign, so this is a point read of one wallet document.
            var slot = await wallets.FindSlotAsync(request.CustomerId, request.CouponId, ct);
            if (slot is null) return await RefusedAsync(NotInWallet(), ct);
            CampaignId = slot.Coupon.CampaignId;
            if (slot.Coupon.State == CouponStatus.Locked && slot.Coupon.OrderId == OrderId)
                return await ResumeAsync(slot, ct);
            var (discount, refusal) = Check(slot.Coupon, request, now);
            if (refusal is not null) return await RefusedAsync(refusal, ct);

            // From here on, finish or undo even if the client goes away.
            var lockedUntil = now + lockFor;
            var window = Window(now, lockedUntil);
            // (b) The decisive write.
            if (!await wallets.TryLockCouponAsync(slot.Ref, null, OrderId, lockedUntil, now, discount, CancellationToken.None))
            {
                var current = await wallets.ReadAsync(slot.Ref, CancellationToken.None);
                if (current is { State: CouponStatus.Locked } && current.OrderId == OrderId)
                    return await ResumeAsync(slot with { Coupon = current }, ct); // a duplicate of this lock got there first
                return await RefusedAsync(current is null ? NotInWallet() : Check(current, request, now).Refusal
                    ?? Problem.Of(ProblemTypes.ConcurrentUpdate, 409, "The coupon changed while it was being locked; try again."), ct);
            }
            return await ReserveAndCommitAsync(NewRecord(slot, discount, RedemptionState.Locked, lockedUntil), slot, window, held: null);
        }

        /// <summary>
        /// (c) and (d): reserve the discount, then write the record — create it, or, holding the order's slot, turn the
        /// pending record into the locked one. A refusal undoes what this attempt holds, within its window only.
        /// </summary>
        private async Task<IResult> ReserveAndCommitAsync(Redemption record, CouponSlot slot, Func<bool> window, Redemption? held)
        {
            // Undo for a reservation refused: within the window only. The slot first, then the coupon: a crash in between
            // leaves a lock the timer finds and releases.
            async Task LetGoAsync()
            {
                if (!window()) return;
                if (held is not null) await redemptions.TryDeleteAsync(held, CancellationToken.None);
                await ReleaseCouponAsync(slot.Ref, record.CouponValidTo);
            }

            if (record.Budgeted && record.Discount > 0)
            {
                if (!window()) return await StoppedAsync(held);
                // A takeover (held) finishes a dead attempt that may have reserved in any budget shard: look there first.
                int? shard;
                try
                {
                    shard = await stock.TryReserveBudgetAsync(record.CampaignId, OrderId, record.CouponId, record.Discount, CancellationToken.None,
                        resuming: held is not null);
                }
                catch (BudgetBusyException)
                {
                    // Every shard that could cover it is at its cap of open reservations: nothing was reserved, so let the
                    // coupon go as for a refusal, and answer 503 (retry shortly).
                    await LetGoAsync();
                    throw;
                }
                if (shard is null)
                {
                    await LetGoAsync();
                    return await RefusedAsync(Problem.Of(ProblemTypes.BudgetExhausted, 409, "The campaign's budget cannot cover this discount.",
                        "The order can go ahead without this coupon."), CancellationToken.None);
                }
                record = record with { BudgetShard = shard.Value };
            }
            if (!window()) return await StoppedAsync(held);
            // (d) The record, last: one per order.
            var written = held is null
                ? await redemptions.TryCreateAsync(record, CancellationToken.None)
                : await redemptions.TryReplaceAsync(record with { ETag = held.ETag, CreatedAt = held.CreatedAt }, CancellationToken.None);
            if (written is not null) return RedemptionResults.Created(written, context, replayed: false);

            var current = await redemptions.FindAsync(OrderId, CancellationToken.None);
            if (current is null) return InFlight().ToResult();
            if (held is null && IsAbandoned(current) && current.RequestHash == hash)
            {
                // A pending record of this same lock whose attempt died (the previous release wrote one before locking):
                // the coupon and the reservation are in place now, so finish it.
                var resumed = await redemptions.TryReplaceAsync(record with { ETag = current.ETag, CreatedAt = current.CreatedAt }, CancellationToken.None);
                if (resumed is not null) return RedemptionResults.Created(resumed, context, replayed: false);
                current = await redemptions.FindAsync(OrderId, CancellationToken.None) ?? current;
            }
            // Same order and coupon in a live state: the coupon lock and reservation are that record's; never undo them.
            if (!IsTheRecords(current, record) && window())
            {
                if (record.Budgeted && record.Discount > 0) await stock.MoveBudgetAsync(record, BudgetMove.Release);
                await ReleaseCouponAsync(slot.Ref, record.CouponValidTo);
            }
            return Replay(current);
        }

        /// <summary>
        /// The coupon is already locked for this order: a replay of a lock that succeeded, a duplicate still in flight, or
        /// a lock whose attempt died before writing its record. The record says which.
        /// </summary>
        private async Task<IResult> ResumeAsync(CouponSlot slot, CancellationToken ct)
        {
            var current = await redemptions.FindAsync(OrderId, ct);
            if (current is not null)
                return current.State == RedemptionState.Pending && current.RequestHash == hash && IsAbandoned(current)
                    ? await TakeOverAsync(slot, current)
                    : Replay(current);
            var lockedAt = slot.Coupon.LockedAt ?? (slot.Coupon.LockedUntil ?? now) - lockFor;
            if (now < lockedAt + WritesEndAfter(callTimeout))
                return InFlight().ToResult(); // the attempt that locked it may still write its record
            return await TakeOverAsync(slot, held: null);
        }

        /// <summary>
        /// Finishes a lock whose attempt died, holding the order's slot: a pending record this call creates (or an abandoned
        /// one it claims, with an etag), so the timer or another retry cannot act on the same lock meanwhile. The coupon is
        /// locked afresh (a new lockedUntil, from whichever state the dead attempt left it in), then (c) and (d) as usual.
        /// </summary>
        private async Task<IResult> TakeOverAsync(CouponSlot slot, Redemption? held)
        {
            var (discount, refusal) = Check(slot.Coupon, request, now);
            if (refusal is not null) return await RefusedAsync(refusal, CancellationToken.None);
            var lockedUntil = now + lockFor;
            var window = Window(now, lockedUntil);
            var pending = NewRecord(slot, discount, RedemptionState.Pending, lockedUntil);
            held = held is null
                ? await redemptions.TryCreateAsync(pending, CancellationToken.None)
                : await redemptions.TryReplaceAsync(pending with { ETag = held.ETag }, CancellationToken.None);
            if (held is null)
                return await redemptions.FindAsync(OrderId, CancellationToken.None) is { } raced ? Replay(raced) : InFlight().ToResult();

            if (!window()) return await StoppedAsync(held);
            var heldBy = slot.Coupon.State == CouponStatus.Locked ? OrderId : null;
            if (!await wallets.TryLockCouponAsync(slot.Ref, heldBy, OrderId, lockedUntil, now, discount, CancellationToken.None))
            {
                // Released meanwhile (a cancel of the dead attempt's record, the timer): give the slot back and answer as a new lock would.
                await redemptions.TryDeleteAsync(held, CancellationToken.None);
                var current = await wallets.ReadAsync(slot.Ref, CancellationToken.None);
                return await RefusedAsync(current is null ? NotInWallet() : Check(current, request, now).Refusal
                    ?? Problem.Of(ProblemTypes.ConcurrentUpdate, 409, "The coupon changed while it was being locked; try again."), CancellationToken.None);
            }
            return await ReserveAndCommitAsync(pending with { State = RedemptionState.Locked, History = [LockStep()] }, slot, window, held);
        }

        /// <summary>
        /// Too slow to write any more: what is done stays for a retry (which takes over once this attempt's writes are
        /// over) or for the timer (after lockedUntil). A pending record this attempt holds stays too, claimed the same way.
        /// </summary>
        private static Task<IResult> StoppedAsync(Redemption? held)
        {
            _ = held;
            return Task.FromResult<IResult>(InFlight().ToResult());
        }

        /// <summary>A refusal: unless the order already has a record (then that record is the answer, as for any replay).</summary>
        private async Task<IResult> RefusedAsync(Problem refusal, CancellationToken ct)
            => await redemptions.FindAsync(OrderId, ct) is { } existing ? Replay(existing) : refusal.ToResult();

        private IResult Replay(Redemption existing)
        {
            if (existing.RequestHash != hash) return OtherCoupon(existing).ToResult();
            if (existing.State == RedemptionState.Pending) return InFlight().ToResult();
            return RedemptionResults.Created(existing, context, replayed: true);
        }

        /// <summary>
        /// Whether a coupon lock and reservation of this order and coupon belong to <paramref name="current"/>: it is live
        /// (pending: someone holds the slot; locked or used: they are its). A cancelled or refunded record, or one of another
        /// coupon, owns nothing of ours.
        /// </summary>
        private static bool IsTheRecords(Redemption current, Redemption ours)
            => current.CouponId == ours.CouponId && current.State is RedemptionState.Pending or RedemptionState.Locked or RedemptionState.Used;

        /// <summary>A pending record whose holder sends nothing more (its window and a call's deadline are over).</summary>
        private bool IsAbandoned(Redemption record)
            => record.State == RedemptionState.Pending && now - record.CreatedAt >= Max(LockDeadline, WritesEndAfter(callTimeout));

        /// <summary>
        /// While this attempt may still write: within <see cref="SendWindow"/> of taking the lock, and so long before the
        /// lock lapses that its last call ends before the timer (which acts only after lockedUntil) could look.
        /// </summary>
        private Func<bool> Window(DateTimeOffset lockedAt, DateTimeOffset lockedUntil)
        {
            var deadline = Min(lockedAt + SendWindow, lockedUntil - callTimeout - ClockSkew);
            return () => time.GetUtcNow() < deadline;
        }

        private Task<bool> ReleaseCouponAsync(CouponRef at, DateTimeOffset validTo)
            => wallets.TryChangeCouponAsync(at, CouponStatus.Locked, OrderId, now >= validTo ? CouponStatus.Expired : CouponStatus.Available,
                null, null, CancellationToken.None);

        private RedemptionStep LockStep() => new("lock", RedemptionState.Locked, now, context.User.SubjectId());

        private Redemption NewRecord(CouponSlot slot, long discount, RedemptionState state, DateTimeOffset lockedUntil) => new()
        {
            Id = OrderId,
            OrderId = OrderId,
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
            State = state,
            LockedUntil = lockedUntil,
            RequestHash = hash,
            CreatedAt = now,
            History = state == RedemptionState.Locked ? [LockStep()] : [],
            Channel = request.Order.Channel,
            OrderTotal = request.Order.Total,
        };
    }

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;
    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private static Problem NotInWallet() => Problem.Of(ProblemTypes.NotFound, 404, "Not found.", "The coupon is not in this customer's wallet.");

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

    private static Problem OtherCoupon(Redemption existing)
        => Problem.Of(ProblemTypes.InvalidTransition, 409, "This order already has a redemption.",
            $"Order {existing.OrderId} redeems coupon {existing.CouponCode} ({RedemptionResults.Wire(existing.State)}); one coupon per order, locked once.");

    private static Problem InFlight() => RedemptionResults.InFlight();

    /// <summary>What makes two locks "the same request": customer, coupon and the order draft's meaning.</summary>
    private static string Fingerprint(LockRequest request)
        => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(request, Json.Options))));
}
