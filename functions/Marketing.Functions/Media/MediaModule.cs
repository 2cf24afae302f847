using Marketing.Functions.Hosting;

namespace Marketing.Functions.Media;

public static class MediaModule
{
    public static readonly ContainerSpec[] Containers = [MediaStore.Spec];

    public static IServiceCollection AddMedia(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<MediaOptions>().Bind(configuration.GetSection(MediaOptions.Section))
            .ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<MediaScanOptions>().Bind(configuration.GetSection(MediaScanOptions.Section))
            .ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<MediaStore>();
        services.AddSingleton<MediaBlobs>();
        return services;
    }

    /// <summary>Under /api/campaigns: media belong to a campaign, and every route names it.</summary>
    public static IEndpointRouteBuilder MapMedia(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/campaigns").WithTags("Campaign media");
        group.MapStartMediaUpload();
        group.MapCompleteMediaUpload();
        group.MapListMedia();
        group.MapDeleteMedia();
        group.MapGetCampaignPage();
        return routes;
    }
}
