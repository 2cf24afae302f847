using Marketing.Functions.Hosting;

namespace Marketing.Functions.Commissions;

public static class CommissionsModule
{
    public static readonly ContainerSpec[] Containers = [CommissionRulesStore.Spec, SettlementStore.Spec, LedgerStore.Spec, QuarantineStore.Spec];

    public static IServiceCollection AddCommissions(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<CommissionOptions>().Bind(configuration.GetSection(CommissionOptions.Section))
            .ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<CommissionRulesStore>();
        services.AddSingleton<SettlementStore>();
        services.AddSingleton<LedgerStore>();
        services.AddOptions<QuarantineOptions>().Bind(configuration.GetSection(QuarantineOptions.Section))
            .ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<QuarantineStore>();
        return services;
    }

    public static IEndpointRouteBuilder MapCommissions(this IEndpointRouteBuilder routes)
    {
        var rules = routes.MapGroup("/api/commission-rules").WithTags("Distribution");
        rules.MapSetCommissionRules();
        rules.MapGetCommissionRules();
        routes.MapGroup("/api/promoters").WithTags("Distribution").MapMyCommissions();
        routes.MapGroup("/api/order-events").WithTags("Distribution").MapListQuarantinedEvents();
        routes.MapSettleCommission();
        routes.MapReleaseCommissions();
        return routes;
    }
}
