using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Redemption;
using Marketing.Functions.Wallet;
using Marketing.Functions.Telemetry;

namespace Marketing.Functions.Expiry;

/// <summary>
/// The lapsed-lock phase of ExpireCoupons: finds locks past their lockedUntil without any per-lock entry, by asking the
/// wallets for coupons still locked with lockedUntil ≤ now (cross-partition, served by the index on the coupons' state
/// and lockedUntil), in pages of Timers:PageSize, Timers:Parallelism at a time, until the run's deadline. A coupon is
/// locked only while its order's step is unfinished, so this finds every lock the timer has to act on:
/// - a locked record: the lock lapsed unconfirmed — the cancel step "expire" (the record decides against a confirm);
/// - a used or cancelled record: a confirm or cancel interrupted after its record — its effects are completed;
/// - no record: a lock whose attempt died before writing it — released under the order's slot (a pending record the
///   timer creates and cancels), so a retry taking the same lock over cannot interleave;
/// - a pending record (a slot, or a lock of the previous release): cancelled once its own lockedUntil has passed.
/// Every step is filtered, so overlapping runs, or a rerun after a crash, change each thing once. What a run leaves
/// (its deadline came) is found by the next exactly as this one would have found it.
/// </summary>
public static class LapsedLocks
{
    public static async Task RunAsync(WalletStore wallets, RedemptionStore redemptions, StockStore stock, TimerOptions timers, RunDeadline deadline,
        DateTimeOffset now, ExpiryReport report, CancellationToken ct)
    {
        // Coupons this run has worked on: one it could not finish (the record is not lapsed yet, or a step failed) comes
        // back in the next page; a page with nothing new ends the phase, and the next run tries them again.
        var seen = new HashSet<string>();
        while (deadline.TakeMore())
        {
            var page = await wallets.NextWithLapsedLocksAsync(now, timers.PageSize, ct);
            var lapsed = page
                .SelectMany(w => w.Coupons.Select((c, i) => (Wallet: w, Coupon: c, Index: i)))
                .Where(x => x.Coupon is { State: CouponStatus.Locked, OrderId: not null } && x.Coupon.LockedUntil <= now && seen.Add(x.Coupon.Id))
                .ToList();
            lock (report) report.LapsedLocksRead += lapsed.Count;
            if (lapsed.Count == 0)
            {
                if (page.Count > 0) report.Failed($"{page.Count} wallets with lapsed locks not finished in this run; left for the next run");
                return;
            }
            await Parallel.ForEachAsync(lapsed, new ParallelOptions { MaxDegreeOfParallelism = timers.Parallelism, CancellationToken = ct },
                async (x, token) =>
                {
                    if (!deadline.TakeMore())
                    {
                        report.Backlog.Left(x.Coupon.LockedUntil ?? now); // left locked: the next run finds it
                        return;
                    }
                    try
                    {
                        await FinishAsync(new CouponRef(x.Wallet.CustomerId, x.Wallet.CampaignId, x.Index, x.Coupon.Id), x.Coupon,
                            wallets, redemptions, stock, now, report, token);
                    }
                    catch (Exception e) when (!token.IsCancellationRequested) // our call deadline is an OperationCanceledException too
                    {
                        report.Failed($"lock of {x.Coupon.OrderId} on {x.Coupon.Id}: failed ({Failure.Of(e)})");
                        report.Backlog.Left(x.Coupon.LockedUntil ?? now);
                    }
                });
        }
    }

    private static async Task FinishAsync(CouponRef at, Coupon coupon, WalletStore wallets, RedemptionStore redemptions, StockStore stock,
        DateTimeOffset now, ExpiryReport report, CancellationToken ct)
    {
        var orderId = coupon.OrderId!;
        var record = await redemptions.FindAsync(orderId, ct);
        if (record is null)
        {
            // A lock whose record never came: the attempt that took it wrote its last long before lockedUntil (LockCoupon's
            // window), so nothing else writes for it now but a retry taking it over — which needs the order's slot. Take it.
            if (await redemptions.TryCreateAsync(Orphan(at, coupon, now), ct) is null)
                record = await redemptions.FindAsync(orderId, ct);
            else
            {
                await ExpireAsync(orderId, redemptions, wallets, stock, now, report, ct);
                return;
            }
            if (record is null) return; // a slot came and went meanwhile: the next run looks again
        }
        if (record.CouponId != coupon.Id || record.State is RedemptionState.Refunded)
        {
            // The order's record is another coupon's (two locks of one order raced and this one's attempt died before its
            // undo), or refunded: this coupon lock and its reservation are nobody's. No lock of this order can write a
            // record for it any more (there is one), so release them. (A refunded record whose coupon is still locked was
            // refunded before its interrupted confirm was finished: the discount was never spent, so releasing it gives
            // the refund's result, and the coupon ends where the refund said: back, or used.)
            if (coupon.Budgeted && coupon.LockedDiscount is > 0)
                await stock.ReleaseWhereverAsync(at.CampaignId, orderId, coupon.Id, coupon.LockedDiscount.Value);
            var to = record.CouponId == coupon.Id && !record.CouponReturned ? CouponStatus.Used
                : now >= coupon.ValidTo ? CouponStatus.Expired : CouponStatus.Available;
            await wallets.TryChangeCouponAsync(at, CouponStatus.Locked, orderId, to, to == CouponStatus.Used ? orderId : null, null, ct);
            lock (report) report.LocksReleased++;
            return;
        }
        switch (record.State)
        {
            case RedemptionState.Locked or RedemptionState.Pending:
                await ExpireAsync(orderId, redemptions, wallets, stock, now, report, ct);
                break;
            case RedemptionState.Used:
                // A confirm interrupted after its record: spend, coupon used.
                await ConfirmRedemption.FinishAsync(record, stock, wallets);
                lock (report) report.LocksFinished++;
                break;
            case RedemptionState.Cancelled:
                // A cancel interrupted after its record (or a replayed lock of the cancelled order that died): release.
                if (record.Budgeted && record.Discount > 0)
                    await stock.ReleaseWhereverAsync(record.CampaignId, orderId, record.CouponId, record.Discount);
                await CancelRedemption.FinishAsync(record, wallets, stock, now);
                lock (report) report.LocksFinished++;
                break;
        }
    }

    private static async Task ExpireAsync(string orderId, RedemptionStore redemptions, WalletStore wallets, StockStore stock, DateTimeOffset now,
        ExpiryReport report, CancellationToken ct)
    {
        var outcome = await CancelRedemption.CancelAsync(orderId, "expire", ExpireCoupons.By, "lock lapsed", redemptions, wallets, stock, now, ct);
        if (outcome.Refusal?.Type == ProblemTypes.Prefix + ProblemTypes.ConcurrentUpdate)
            throw new InvalidOperationException($"Order {orderId} kept changing; its lock is retried on the next run.");
        // Otherwise: done now, done by an overlapping run, or not lapsed by the record (a retry holds the order's slot).
        if (outcome is { Refusal: null, Replayed: false })
            lock (report) report.LocksReleased++;
    }

    /// <summary>The order's slot for a lock whose record never came: pending, lapsed, with what the coupon says about the lock.</summary>
    private static Redemption.Redemption Orphan(CouponRef at, Coupon coupon, DateTimeOffset now) => new()
    {
        Id = coupon.OrderId!,
        OrderId = coupon.OrderId!,
        CustomerId = at.CustomerId,
        CouponId = coupon.Id,
        CouponCode = coupon.Code,
        CampaignId = coupon.CampaignId,
        CouponIndex = at.Index,
        CouponValidTo = coupon.ValidTo,
        Discount = coupon.LockedDiscount ?? 0,
        Currency = coupon.Currency,
        Budgeted = coupon.Budgeted,
        ReturnOnRefund = coupon.ReturnOnRefund,
        State = RedemptionState.Pending,
        LockedUntil = coupon.LockedUntil ?? now,
        RequestHash = "", // no request: a retry of the lock is answered by this record, as for any other lock of the order
        CreatedAt = now,
        History = [],
    };
}
