using Marketing.Functions.Hosting;

namespace Marketing.Functions.Wallet;

public static class WalletModule
{
    public static readonly ContainerSpec[] Containers = [WalletStore.Spec];

    public static IServiceCollection AddWallet(this IServiceCollection services)
        => services.AddSingleton<WalletStore>();

    public static IEndpointRouteBuilder MapWallet(this IEndpointRouteBuilder routes)
    {
        routes.MapGroup("/api/campaigns").WithTags("Claims").MapClaimCoupon();
        routes.MapGroup("/api/me/coupons").WithTags("Wallet").MapMyCoupons();
        return routes;
    }
}
