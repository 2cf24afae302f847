using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Redemption;

/// <summary>GET /api/redemptions/{orderId} — the redemption of an order with its whole history.</summary>
public static class GetRedemption
{
    public static RouteHandlerBuilder MapGetRedemption(this IEndpointRouteBuilder group) =>
        group.MapGet("/{orderId}", async (string orderId, HttpContext context, RedemptionStore redemptions) =>
                await redemptions.FindAsync(orderId, context.RequestAborted) is { } record
                    ? RedemptionResults.Ok(record, context, replayed: false)
                    : RedemptionResults.NotFound().ToResult())
            .AsFunction("GetRedemption")
            .RequireAuthorization(Policies.OrderSystemOrOperator)
            .Produces<RedemptionView>()
            .WithSummary("An order's redemption: coupon, discount, state and every step taken.");
}
