using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Wallet;

namespace Marketing.Functions.Redemption;

/// <summary>One line of an order draft: price in minor units of the order's currency.</summary>
public sealed record OrderLine(string Sku, string Category, long UnitPrice, int Quantity);

/// <summary>
/// What an order looks like before it is placed: enough to price coupons against it. Every price, every line's
/// total (unit price × quantity) and the order's total are at most <see cref="Limits.MaxMoney"/>, so the
/// discount arithmetic never overflows and every amount derived from the order is storable.
/// </summary>
public sealed record OrderDraft(Channel Channel, string Currency, OrderLine[] Lines)
{
    public const int MaxLines = 200;
    public const int MaxQuantity = 10_000;

    /// <summary>The example order of the OpenAPI document (two lines, 258.00 CNY).</summary>
    public static OrderDraft Example { get; } = new(Channel.App, "CNY",
        [new OrderLine("sku-tea-500g", "grocery", 12900, 1), new OrderLine("sku-cup-2", "kitchen", 6450, 2)]);

    /// <summary>The order's gross value: the sum of its lines (at most <see cref="Limits.MaxMoney"/> once validated).</summary>
    [System.Text.Json.Serialization.JsonIgnore] public long Total => Lines.Sum(l => l.UnitPrice * l.Quantity);

    public Dictionary<string, string[]> Validate(string prefix = "")
    {
        var errors = new Dictionary<string, string[]>();
        if (Currency is null || Currency.Length != 3 || !Currency.All(char.IsAsciiLetterUpper))
            errors[prefix + "currency"] = ["An ISO 4217 code such as CNY."];
        if (Lines is null || Lines.Length is 0 or > MaxLines)
            errors[prefix + "lines"] = [$"1 to {MaxLines} lines."];
        else
        {
            var total = 0L;
            for (var i = 0; i < Lines.Length; i++)
            {
                var line = Lines[i];
                if (line is null)
                {
                    errors[$"{prefix}lines[{i}]"] = ["Required."];
                    continue;
                }
                if (string.IsNullOrWhiteSpace(line.Sku) || line.Sku.Length > 64) errors[$"{prefix}lines[{i}].sku"] = ["Required, at most 64 characters."];
                if (string.IsNullOrWhiteSpace(line.Category) || line.Category.Length > 64) errors[$"{prefix}lines[{i}].category"] = ["Required, at most 64 characters."];
                var price = Limits.IsMoney(line.UnitPrice);
                var quantity = line.Quantity is >= 1 and <= MaxQuantity;
                if (!price) errors[$"{prefix}lines[{i}].unitPrice"] = [$"0 to {Limits.MaxMoney} in minor units."];
                if (!quantity) errors[$"{prefix}lines[{i}].quantity"] = [$"1 to {MaxQuantity}."];
                if (!price || !quantity) continue;
                // Both bounded above (10^12 × 10^4): no overflow.
                var lineTotal = line.UnitPrice * line.Quantity;
                if (lineTotal > Limits.MaxMoney)
                    errors[$"{prefix}lines[{i}]"] = [$"unitPrice × quantity must be at most {Limits.MaxMoney} minor units."];
                total = Math.Min(total + lineTotal, Limits.MaxMoney + 1);
            }
            if (total > Limits.MaxMoney)
                errors.TryAdd($"{prefix}lines", [$"The lines must add up to at most {Limits.MaxMoney} minor units."]);
        }
        return errors;
    }
}

/// <summary>Why a coupon does not apply to an order (the reason field of coupon-not-applicable).</summary>
public enum NotApplicableReason { BelowThreshold, Category, Channel, Currency, Expired, NotYetValid, Used, Locked }

/// <summary>A coupon priced against an order: either a discount, or the reason it does not apply.</summary>
public sealed record CouponPrice(long Discount, long EligibleSubtotal, NotApplicableReason? Reason)
{
    public bool Applies => Reason is null;
}

/// <summary>
/// The discount arithmetic, in integers (minor units), never more than the eligible subtotal:
/// - eligible lines: those whose category the coupon names (all lines when it names none);
/// - the threshold (minimumSpend) is met by the eligible subtotal, not the whole order;
/// - amount_off: the amount; percent_off: eligibleSubtotal × percent / 100 rounded DOWN to the minor
///   unit (the customer never gets a fraction of a fen more than the percentage), then capped by
///   maxDiscount; both capped by the eligible subtotal.
/// A coupon with nothing eligible does not apply (reason: category).
/// </summary>
public static class Discount
{
    public static CouponPrice Price(Coupon coupon, OrderDraft order, DateTimeOffset now)
    {
        switch (coupon.StatusAt(now))
        {
            case CouponStatus.Used: return NotApplicable(NotApplicableReason.Used);
            case CouponStatus.Locked: return NotApplicable(NotApplicableReason.Locked);
            case CouponStatus.Expired: return NotApplicable(NotApplicableReason.Expired);
        }
        if (now < coupon.ValidFrom) return NotApplicable(NotApplicableReason.NotYetValid);
        if (!string.Equals(coupon.Currency, order.Currency, StringComparison.Ordinal)) return NotApplicable(NotApplicableReason.Currency);
        if (coupon.Channels is { } channels && !channels.Contains(order.Channel)) return NotApplicable(NotApplicableReason.Channel);

        var eligible = order.Lines.Where(l => coupon.Categories.Length == 0 || coupon.Categories.Contains(l.Category, StringComparer.Ordinal));
        var subtotal = eligible.Sum(l => checked(l.UnitPrice * l.Quantity));
        if (subtotal == 0) return NotApplicable(NotApplicableReason.Category, subtotal);
        if (subtotal < coupon.MinimumSpend) return NotApplicable(NotApplicableReason.BelowThreshold, subtotal);

        var discount = coupon.Kind switch
        {
            DiscountKind.AmountOff => coupon.AmountOff ?? 0,
            // Integers only, rounded down (subtotal is at most Limits.MaxMoney by OrderDraft's limits: no overflow).
            DiscountKind.PercentOff => Math.Min(checked(subtotal * (coupon.PercentOff ?? 0)) / 100, coupon.MaxDiscount ?? long.MaxValue),
            _ => 0,
        };
        return new CouponPrice(Math.Min(discount, subtotal), subtotal, null);
    }

    private static CouponPrice NotApplicable(NotApplicableReason reason, long subtotal = 0) => new(0, subtotal, reason);

    public static string Wire(NotApplicableReason reason) => reason switch
    {
        NotApplicableReason.BelowThreshold => "below_threshold",
        NotApplicableReason.Category => "category",
        NotApplicableReason.Channel => "channel",
        NotApplicableReason.Currency => "currency",
        NotApplicableReason.Expired => "expired",
        NotApplicableReason.NotYetValid => "not_yet_valid",
        NotApplicableReason.Used => "used",
        NotApplicableReason.Locked => "locked",
        _ => throw new ArgumentOutOfRangeException(nameof(reason)),
    };
}
