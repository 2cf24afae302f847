using Marketing.Functions.Hosting;

namespace Marketing.Functions.Audit;

/// <summary>The audit trail (docs/audit.md): its store, one reader per audited kind, the repair timer and the auditors' list.</summary>
public static class AuditModule
{
    public static readonly ContainerSpec[] Containers = [AuditStore.Spec];

    public static IServiceCollection AddAudit(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<AuditOptions>().Bind(configuration.GetSection(AuditOptions.Section))
            .ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<AuditStore>();
        services.AddSingleton<AuditTrail>();
        // One reader per kind of target, named here (no discovery): a kind without one fails its first audited call.
        services.AddSingleton<IAuditTarget, CampaignAuditTarget>();
        services.AddSingleton<IAuditTarget, BudgetAuditTarget>();
        services.AddSingleton<IAuditTarget, TopUpAuditTarget>();
        services.AddSingleton<IAuditTarget, PayoutBatchAuditTarget>();
        services.AddSingleton<IAuditTarget, MediaAuditTarget>();
        services.AddSingleton<IAuditTarget, CommissionRulesAuditTarget>();
        return services;
    }

    public static IEndpointRouteBuilder MapAudit(this IEndpointRouteBuilder routes)
    {
        routes.MapListAuditEntries();
        routes.MapAuditRepair();
        return routes;
    }
}
