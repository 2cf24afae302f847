using Marketing.Functions.Approvals;
using Marketing.Functions.Hosting;

namespace Marketing.Functions.Campaigns;

public static class CampaignsModule
{
    public static readonly ContainerSpec[] Containers = [CampaignStore.Spec, StockStore.Spec];

    public static IServiceCollection AddCampaigns(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<CampaignCacheOptions>().Bind(configuration.GetSection(CampaignCacheOptions.Section))
            .ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<StockOptions>().Bind(configuration.GetSection(StockOptions.Section))
            .ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<CampaignStore>();
        services.AddSingleton<StockStore>();
        services.AddSingleton<CampaignCache>();
        // Submitted campaigns in the approvers' queue (GET /api/approvals).
        services.AddSingleton<IApprovalQueue, CampaignApprovalQueue>();
        // Top-up requests over the threshold, after the campaigns.
        services.AddSingleton<IApprovalQueue, PendingTopUps>();
        return services;
    }

    public static IEndpointRouteBuilder MapCampaigns(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/campaigns").WithTags("Campaigns");
        group.MapCreateCampaign();
        group.MapGetCampaigns();
        group.MapUpdateCampaign();
        group.MapSubmitCampaign();
        group.MapDecideCampaign();
        group.MapChangeCampaignStatus();
        group.MapListClaimableCampaigns();
        group.MapTopUpBudget();
        group.MapGetBudget();
        group.MapApproveTopUp();
        group.MapRejectTopUp();
        routes.MapReconcileStock();
        return routes;
    }
}
