namespace Marketing.Functions.Redemption;

public static class RedemptionModule
{
    public static IEndpointRouteBuilder MapRedemption(this IEndpointRouteBuilder routes)
    {
        routes.MapGroup("/api/redemptions").WithTags("Redemption").MapQuoteCoupons();
        return routes;
    }
}
