using Marketing.Functions.Campaigns;

namespace Marketing.Functions.Wallet;

public enum CouponStatus { Available, Used, Expired }

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
    /// <summary>Stored state; "expired" is never stored, it is computed from the clock.</summary>
    public bool Used { get; init; }

    // Idempotency: the key this coupon was claimed with, a fingerprint of that request, and the exact
    // answer sent, so a replay of the key returns the same bytes.
    public required string IdempotencyKey { get; init; }
    public required string RequestHash { get; init; }
    public required string Response { get; init; }

    public CouponStatus StatusAt(DateTimeOffset now)
        => Used ? CouponStatus.Used : now >= ValidTo ? CouponStatus.Expired : CouponStatus.Available;
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
