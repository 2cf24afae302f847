using Marketing.Functions.Hosting;

namespace Marketing.Functions.Redemption;

public static class RedemptionModule
{
    public static readonly ContainerSpec[] Containers = [RedemptionStore.Spec];

    public static IServiceCollection AddRedemption(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<RedemptionOptions>().Bind(configuration.GetSection(RedemptionOptions.Section))
            .ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<RedemptionStore>();
        return services;
    }

    public static IEndpointRouteBuilder MapRedemption(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/redemptions").WithTags("Redemption");
        group.MapQuoteCoupons();
        group.MapLockCoupon();
        group.MapGetRedemption();
        group.MapConfirmRedemption();
        group.MapCancelRedemption();
        group.MapRefundRedemption();
        return routes;
    }
}
