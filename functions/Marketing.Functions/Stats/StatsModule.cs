using Marketing.Functions.Hosting;

namespace Marketing.Functions.Stats;

/// <summary>Campaign statistics: AggregateStats folds the change feeds into days; operators read them (docs/stats.md).</summary>
public static class StatsModule
{
    public static readonly ContainerSpec[] Containers = [StatsStore.Spec];

    public static IServiceCollection AddStats(this IServiceCollection services)
    {
        services.AddOptions<StatsOptions>().BindConfiguration(StatsOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<StatsStore>();
        services.AddSingleton<StatsFolder>();
        services.AddSingleton<RecountStats>();
        return services;
    }

    public static IEndpointRouteBuilder MapStats(this IEndpointRouteBuilder routes)
    {
        var campaigns = routes.MapGroup("/api/campaigns").WithTags("Stats");
        campaigns.MapGetCampaignStats();
        campaigns.MapExportCampaignStats();
        routes.MapGetStatsOverview();
        routes.MapGetDistributionStats();
        routes.MapAggregateStats();
        return routes;
    }
}
