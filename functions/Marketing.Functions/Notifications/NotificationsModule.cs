using Marketing.Functions.Hosting;

namespace Marketing.Functions.Notifications;

/// <summary>Notifications: expiry reminders and operator alerts, the in-app inbox, preferences, delivery (docs/notifications.md).</summary>
public static class NotificationsModule
{
    public static readonly ContainerSpec[] Containers = [NotificationStore.Spec];

    public static IServiceCollection AddNotifications(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton<NotificationStore>();
        services.AddOptions<DeliveryOptions>().Bind(configuration.GetSection(DeliveryOptions.Section))
            .ValidateDataAnnotations().ValidateOnStart();
        ProviderWebhook.AddProviderWebhooks(services);
        return services;
    }

    public static IEndpointRouteBuilder MapNotifications(this IEndpointRouteBuilder routes)
    {
        routes.MapDeliverNotifications();
        return routes;
    }
}
