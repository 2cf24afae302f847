using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;

namespace Marketing.Functions.Wallet;

/// <summary>
/// A coupon's state. Stored: available, locked (reserved by an order), used, expired (marked by the
/// expiry timer). Customers see the state at the current instant: an available coupon past its validity
/// reads as expired even before the timer has marked it, so the clock always decides, never the timer.
/// </summary>
public enum CouponStatus { Available, Locked, Used, Expired }

/// <summary>
/// A coupon in a customer's wallet. It carries a snapshot of the campaign's discount terms (a published
/// campaign's terms cannot change), so the wallet and, later, redemption never need the campaign.
/// </summary>
public sealed record Coupon
{
    public required string Id { get; init; }
    /// <summary>The code shown to the customer and typed at a till; unique with high probability, not secret.</summary>
    public required string Code { get; init; }
    public required string CampaignId { get; init; }
    public required string CampaignName { get; init; }
    public required DiscountKind Kind { get; init; }
    public long? AmountOff { get; init; }
    public int? PercentOff { get; init; }
    public long? MaxDiscount { get; init; }
    public long MinimumSpend { get; init; }
    public required string Currency { get; init; }
    public string[] Categories { get; init; } = [];
    /// <summary>Channels the coupon can be used on (the campaign's). Null on coupons stored before this field: any.</summary>
    public Channel[]? Channels { get; init; }
    public required Channel ClaimedOn { get; init; }
    public required DateTimeOffset ClaimedAt { get; init; }
    public required DateTimeOffset ValidFrom { get; init; }
    /// <summary>Exclusive end of validity.</summary>
    public required DateTimeOffset ValidTo { get; init; }
    /// <summary>Whether locks reserve this coupon's discount against the campaign's budget (the campaign has one).</summary>
    public bool Budgeted { get; init; }
    /// <summary>Whether a refunded order gives the coupon back (while it is still valid).</summary>
    public bool ReturnOnRefund { get; init; }
    /// <summary>
    /// Sharded campaigns only: the stock shard this coupon's unit was taken from, so a give-back returns it there and
    /// the stock recount counts issued coupons per shard. Null for a campaign with one counter.
    /// </summary>
    public int? StockShard { get; init; }

    /// <summary>Stored state (see <see cref="CouponStatus"/>); what it means now is <see cref="StatusAt"/>.</summary>
    public CouponStatus State { get; init; } = CouponStatus.Available;
    /// <summary>The order holding the coupon (locked) or that used it (used).</summary>
    public string? OrderId { get; init; }
    /// <summary>Locked: when the order's reservation lapses unless it is confirmed.</summary>
    public DateTimeOffset? LockedUntil { get; init; }
    /// <summary>Locked: when the lock was taken, so a retry can tell an attempt still in flight from one that died (LockCoupon).</summary>
    public DateTimeOffset? LockedAt { get; init; }
    /// <summary>
    /// Locked: the discount the lock reserves against the budget. Only the timer reads it, to release the reservation of
    /// a lock whose record was never written (a crashed lock): nothing else knows the amount then.
    /// </summary>
    public long? LockedDiscount { get; init; }

    // Idempotency: the key this coupon was claimed with, a fingerprint of that request, and the exact
    // answer sent, so a replay of the key returns the same bytes.
    public required string IdempotencyKey { get; init; }
    public required string RequestHash { get; init; }
    public required string Response { get; init; }

    public CouponStatus StatusAt(DateTimeOffset now)
        => State == CouponStatus.Available && now >= ValidTo ? CouponStatus.Expired : State;
}

/// <summary>
/// Coupon ids name their campaign ("cpn_" + the campaign id's random part + "_" + random), so the wallet
/// document holding a coupon (id = campaign id, partition = customer) is found with a point read.
/// </summary>
public static class CouponIds
{
    private const string CampaignPrefix = "cmp_";

    public static string New(string campaignId)
        => Ids.New("cpn_" + (campaignId.StartsWith(CampaignPrefix, StringComparison.Ordinal) ? campaignId[CampaignPrefix.Length..] : campaignId));

    /// <summary>The campaign a coupon id names; null for ids of another shape (e.g. coupons issued before this scheme).</summary>
    public static string? CampaignOf(string couponId)
    {
        var parts = couponId.Split('_');
        return parts is ["cpn", { Length: > 0 } campaign, { Length: > 0 }] ? CampaignPrefix + campaign : null;
    }
}

/// <summary>What customers see of a coupon.</summary>
public sealed record CouponView(
    string Id,
    string Code,
    string CampaignId,
    string CampaignName,
    CouponStatus Status,
    DiscountKind Kind,
    long? AmountOff,
    int? PercentOff,
    long? MaxDiscount,
    long MinimumSpend,
    string Currency,
    string[] Categories,
    DateTimeOffset ClaimedAt,
    DateTimeOffset ValidFrom,
    DateTimeOffset ValidTo)
{
    public static CouponView Of(Coupon c, DateTimeOffset now) => new(c.Id, c.Code, c.CampaignId, c.CampaignName, c.StatusAt(now),
        c.Kind, c.AmountOff, c.PercentOff, c.MaxDiscount, c.MinimumSpend, c.Currency, c.Categories, c.ClaimedAt, c.ValidFrom, c.ValidTo);
}
