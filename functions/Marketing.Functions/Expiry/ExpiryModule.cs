using Marketing.Functions.Hosting;

namespace Marketing.Functions.Expiry;

public static class ExpiryModule
{
    public static readonly ContainerSpec[] Containers = [DueIndex.Spec];

    public static IServiceCollection AddExpiry(this IServiceCollection services)
    {
        // Bound from the app's configuration in the container (BindConfiguration), so the call site needs none.
        services.AddOptions<DueIndexOptions>().BindConfiguration(DueIndexOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();
        return services.AddSingleton<DueIndex>();
    }

    public static IEndpointRouteBuilder MapExpiry(this IEndpointRouteBuilder routes)
    {
        routes.MapExpireCoupons();
        return routes;
    }
}
