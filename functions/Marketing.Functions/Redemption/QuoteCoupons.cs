using System.Text.Json.Serialization;
using Marketing.Functions.Audit;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Telemetry;
using Marketing.Functions.Wallet;

namespace Marketing.Functions.Redemption;

/// <summary>
/// The body of a quote. Customers quote their own cart (customerId omitted or their own); the order
/// system quotes for any customer and must name them.
/// </summary>
public sealed record QuoteRequest(Channel Channel, string Currency, OrderLine[] Lines, string? CustomerId = null)
{
    [JsonIgnore] public OrderDraft Order => new(Channel, Currency, Lines);
}

public sealed record QuotedCoupon(string CouponId, string Code, string CampaignId, string CampaignName, long Discount,
    long EligibleSubtotal, DateTimeOffset ValidTo);

public sealed record UnquotedCoupon(string CouponId, string CampaignId, string Reason);

public sealed record Quote(IReadOnlyList<QuotedCoupon> Applicable, IReadOnlyList<UnquotedCoupon> NotApplicable, QuotedCoupon? Best);

/// <summary>
/// POST /api/redemptions/quote — every coupon in the customer's wallet priced against an order draft,
/// and the best one (largest discount; ties go to the coupon that expires first). Nothing is reserved:
/// one single-partition read of the wallet, then arithmetic (<see cref="Discount"/>).
/// </summary>
public static class QuoteCoupons
{
    public static RouteHandlerBuilder MapQuoteCoupons(this IEndpointRouteBuilder group) =>
        group.MapPost("/quote", HandleAsync)
            .AsFunction("QuoteCoupons")
            .NotAudited("Prices an order draft and changes nothing; the redemption record is the trail of an order transaction (docs/audit.md).")
            .RequireAuthorization(Policies.CustomerOrOrderSystem)
            .AcceptsJson(new QuoteRequest(OrderDraft.Example.Channel, OrderDraft.Example.Currency, OrderDraft.Example.Lines))
            .Produces<Quote>()
            .WithSummary("Price the customer's coupons against an order draft and pick the best (reserves nothing).");

    private static async Task<IResult> HandleAsync(HttpContext context, WalletStore wallets, TimeProvider time)
    {
        var (request, problem) = await JsonBody.ReadAsync<QuoteRequest>(context.Request, r => r.Order.Validate());
        if (problem is not null) return problem.ToResult();
        var order = request!.Order;

        // Whose wallet: a customer only ever their own; the order system must say whose.
        string customerId;
        if (context.User.IsInRole(Roles.OrderSystem))
        {
            if (string.IsNullOrWhiteSpace(request.CustomerId) || request.CustomerId.Length > 128)
                return Problem.Validation("customerId", "Required when the order system asks.").ToResult();
            customerId = request.CustomerId;
        }
        else
        {
            customerId = context.User.SubjectId();
            if (request.CustomerId is not null && request.CustomerId != customerId)
                return Problem.Of(ProblemTypes.Forbidden, 403, "Customers can only quote their own cart.").ToResult();
        }

        var now = time.GetUtcNow();
        var applicable = new List<QuotedCoupon>();
        var notApplicable = new List<UnquotedCoupon>();
        foreach (var coupon in await wallets.ListCouponsAsync(customerId, context.RequestAborted))
        {
            var price = Discount.Price(coupon, order, now);
            if (price.Applies)
                applicable.Add(new QuotedCoupon(coupon.Id, coupon.Code, coupon.CampaignId, coupon.CampaignName, price.Discount,
                    price.EligibleSubtotal, coupon.ValidTo));
            else
                notApplicable.Add(new UnquotedCoupon(coupon.Id, coupon.CampaignId, Discount.Wire(price.Reason!.Value)));
        }
        var ordered = applicable.OrderByDescending(c => c.Discount).ThenBy(c => c.ValidTo).ThenBy(c => c.CouponId, StringComparer.Ordinal).ToList();
        // Many coupons, many campaigns: counted without a campaign.
        return TypedResults.Ok(new Quote(ordered, notApplicable, ordered.FirstOrDefault())).Counted(Metrics.RedemptionSteps.Quote, context);
    }
}
