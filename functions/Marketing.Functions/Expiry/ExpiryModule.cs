using Marketing.Functions.Hosting;

namespace Marketing.Functions.Expiry;

public static class ExpiryModule
{
    public static readonly ContainerSpec[] Containers = [DueIndex.Spec];

    public static IServiceCollection AddExpiry(this IServiceCollection services) => services.AddSingleton<DueIndex>();

    public static IEndpointRouteBuilder MapExpiry(this IEndpointRouteBuilder routes)
    {
        routes.MapExpireCoupons();
        return routes;
    }
}
