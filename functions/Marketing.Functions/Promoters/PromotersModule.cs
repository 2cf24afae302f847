using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Microsoft.AspNetCore.Authorization;

namespace Marketing.Functions.Promoters;

public static class PromotersModule
{
    public static readonly ContainerSpec[] Containers = [PromoterStore.Spec, ReferralStore.Spec];

    public static IServiceCollection AddPromoters(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ReferralOptions>().Bind(configuration.GetSection(ReferralOptions.Section))
            .ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<PromoterStore>();
        services.AddSingleton<ReferralStore>();
        services.AddSingleton<IAuthorizationHandler, PromoterAccess>();
        services.AddAuthorizationBuilder()
            .AddPolicy(Policies.Promoter, p => p.BearerUser().AddRequirements(new PromoterRequirement()));
        return services;
    }

    public static IEndpointRouteBuilder MapPromoters(this IEndpointRouteBuilder routes)
    {
        var promoters = routes.MapGroup("/api/promoters").WithTags("Distribution");
        promoters.MapRegisterPromoter();
        promoters.MapGetMyPromoter();
        routes.MapGroup("/api/referrals").WithTags("Distribution").MapRecordReferralVisit();
        return routes;
    }
}
