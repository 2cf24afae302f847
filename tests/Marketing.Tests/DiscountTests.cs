using Marketing.Functions.Campaigns;
using Marketing.Functions.Redemption;
using Marketing.Functions.Wallet;
using Xunit;

namespace Marketing.Tests;

/// <summary>The discount arithmetic: thresholds on eligible lines only, percent caps, rounding, currency.</summary>
public sealed class DiscountTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 21, 2, 0, 0, TimeSpan.Zero);

    private static Coupon Coupon(DiscountKind kind, long? amountOff = null, int? percentOff = null, long? maxDiscount = null,
        long minimumSpend = 0, string[]? categories = null, Channel[]? channels = null, string currency = "CNY") => new()
    {
        Id = "cpn_t", Code = "X", CampaignId = "cmp_t", CampaignName = "t", Kind = kind, AmountOff = amountOff, PercentOff = percentOff,
        MaxDiscount = maxDiscount, MinimumSpend = minimumSpend, Currency = currency, Categories = categories ?? [], Channels = channels,
        ClaimedOn = Channel.App, ClaimedAt = Now.AddDays(-1), ValidFrom = Now.AddDays(-1), ValidTo = Now.AddDays(6),
        IdempotencyKey = "k", RequestHash = "h", Response = "{}",
    };

    private static OrderDraft Order(params (string Category, long UnitPrice, int Quantity)[] lines)
        => new(Channel.App, "CNY", lines.Select((l, i) => new OrderLine($"sku{i}", l.Category, l.UnitPrice, l.Quantity)).ToArray());

    [Fact]
    public void Amount_off_applies_once_the_eligible_subtotal_reaches_the_threshold()
    {
        var coupon = Coupon(DiscountKind.AmountOff, amountOff: 2000, minimumSpend: 10000);
        Assert.Equal(NotApplicableReason.BelowThreshold, Discount.Price(coupon, Order(("food", 9999, 1)), Now).Reason);
        Assert.Equal(2000, Discount.Price(coupon, Order(("food", 5000, 2)), Now).Discount);
    }

    [Fact]
    public void The_threshold_counts_only_lines_of_the_coupons_categories()
    {
        var coupon = Coupon(DiscountKind.AmountOff, amountOff: 2000, minimumSpend: 10000, categories: ["shoes"]);
        var order = Order(("shoes", 6000, 1), ("food", 50000, 1));
        var price = Discount.Price(coupon, order, Now);
        Assert.Equal(NotApplicableReason.BelowThreshold, price.Reason);
        Assert.Equal(6000, price.EligibleSubtotal);
        Assert.Equal(NotApplicableReason.Category, Discount.Price(coupon, Order(("food", 50000, 1)), Now).Reason);
        Assert.Equal(2000, Discount.Price(coupon, Order(("shoes", 6000, 2), ("food", 1, 1)), Now).Discount);
    }

    [Fact]
    public void The_discount_never_exceeds_the_eligible_subtotal()
    {
        var coupon = Coupon(DiscountKind.AmountOff, amountOff: 5000, categories: ["socks"]);
        Assert.Equal(1200, Discount.Price(coupon, Order(("socks", 600, 2), ("coats", 90000, 1)), Now).Discount);
        Assert.Equal(1200, Discount.Price(Coupon(DiscountKind.PercentOff, percentOff: 100), Order(("socks", 600, 2)), Now).Discount);
    }

    [Theory]
    [InlineData(15, null, 9999, 1499)]    // 1499.85 rounds down to 1499
    [InlineData(15, null, 10000, 1500)]
    [InlineData(33, null, 1, 0)]          // a third of 1 fen is nothing
    [InlineData(15, 1000L, 10000, 1000)]  // capped by maxDiscount
    [InlineData(50, 100000L, 3333, 1666)]
    public void Percent_off_rounds_down_to_the_minor_unit_and_respects_the_cap(int percent, long? cap, long subtotal, long expected)
    {
        var coupon = Coupon(DiscountKind.PercentOff, percentOff: percent, maxDiscount: cap);
        Assert.Equal(expected, Discount.Price(coupon, Order(("any", subtotal, 1)), Now).Discount);
    }

    [Fact]
    public void Currency_channel_and_validity_mismatches_give_their_reason()
    {
        var order = Order(("any", 10000, 1));
        Assert.Equal(NotApplicableReason.Currency, Discount.Price(Coupon(DiscountKind.AmountOff, amountOff: 100, currency: "USD"), order, Now).Reason);
        Assert.Equal(NotApplicableReason.Channel, Discount.Price(Coupon(DiscountKind.AmountOff, amountOff: 100, channels: [Channel.H5]), order, Now).Reason);
        var coupon = Coupon(DiscountKind.AmountOff, amountOff: 100);
        Assert.Equal(NotApplicableReason.Expired, Discount.Price(coupon, order, coupon.ValidTo).Reason);
        Assert.Equal(NotApplicableReason.NotYetValid, Discount.Price(coupon, order, coupon.ValidFrom.AddTicks(-1)).Reason);
        Assert.Equal(NotApplicableReason.Used, Discount.Price(coupon with { State = CouponStatus.Used }, order, Now).Reason);
        Assert.Equal(NotApplicableReason.Locked, Discount.Price(coupon with { State = CouponStatus.Locked, OrderId = "o-1" }, order, Now).Reason);
        Assert.Null(Discount.Price(coupon, order, coupon.ValidTo.AddTicks(-1)).Reason);
    }
}
