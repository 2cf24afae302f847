using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Wallet;

public sealed record MyCoupons(IReadOnlyList<CouponView> Items);

/// <summary>
/// GET /api/me/coupons?status= and GET /api/me/coupons/{couponId} — a customer's own wallet. The caller's
/// id comes from the token, never from the URL, so nobody can ask for someone else's wallet; a coupon id
/// that is not in the caller's wallet is simply not found. Status "expired" is computed from the clock (see CouponStatus).
/// </summary>
public static class ListMyCoupons
{
    public static void MapMyCoupons(this IEndpointRouteBuilder group)
    {
        group.MapGet("", ListAsync)
            .AsFunction("ListMyCoupons")
            .RequireAuthorization(Policies.Customer)
            .Produces<MyCoupons>()
            .WithSummary("My coupons, soonest expiry first; filter by status (available, locked, used, expired).");

        group.MapGet("/{couponId}", GetAsync)
            .AsFunction("GetMyCoupon")
            .RequireAuthorization(Policies.Customer)
            .Produces<CouponView>()
            .WithSummary("One of my coupons.");
    }

    private static async Task<IResult> ListAsync(HttpContext context, WalletStore wallets, TimeProvider time, string? status)
    {
        CouponStatus? wanted = null;
        if (status is not null)
        {
            wanted = status switch
            {
                "available" => CouponStatus.Available,
                "locked" => CouponStatus.Locked,
                "used" => CouponStatus.Used,
                "expired" => CouponStatus.Expired,
                _ => null,
            };
            if (wanted is null) return Problem.Validation("status", "One of available, locked, used, expired.").ToResult();
        }
        var now = time.GetUtcNow();
        var coupons = await wallets.ListCouponsAsync(context.User.SubjectId(), context.RequestAborted);
        var items = coupons
            .Select(c => CouponView.Of(c, now))
            .Where(c => wanted is null || c.Status == wanted)
            .OrderBy(c => c.ValidTo).ThenBy(c => c.Id, StringComparer.Ordinal)
            .ToList();
        return TypedResults.Ok(new MyCoupons(items));
    }

    private static async Task<IResult> GetAsync(string couponId, HttpContext context, WalletStore wallets, TimeProvider time)
    {
        var coupon = await wallets.FindCouponAsync(context.User.SubjectId(), couponId, context.RequestAborted);
        return coupon is null ? Problem.NotFound("The coupon").ToResult() : TypedResults.Ok(CouponView.Of(coupon, time.GetUtcNow()));
    }
}
