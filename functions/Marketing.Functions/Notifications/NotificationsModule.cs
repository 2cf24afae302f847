using Marketing.Functions.Hosting;

namespace Marketing.Functions.Notifications;

/// <summary>Notifications: expiry reminders and operator alerts, the in-app inbox, preferences, delivery (docs/notifications.md).</summary>
public static class NotificationsModule
{
    public static readonly ContainerSpec[] Containers = [NotificationStore.Spec];

    public static IServiceCollection AddNotifications(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton<NotificationStore>();
        services.AddOptions<ReminderOptions>().Bind(configuration.GetSection(ReminderOptions.Section))
            .ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<AlertOptions>().Bind(configuration.GetSection(AlertOptions.Section))
            .ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<OperatorAlerts>();
        services.AddOptions<DeliveryOptions>().Bind(configuration.GetSection(DeliveryOptions.Section))
            .ValidateDataAnnotations().ValidateOnStart();
        ProviderWebhook.AddProviderWebhooks(services);
        return services;
    }

    public static IEndpointRouteBuilder MapNotifications(this IEndpointRouteBuilder routes)
    {
        var preferences = routes.MapGroup("/api/me/notification-preferences").WithTags("Notifications");
        preferences.MapGetNotificationPreferences();
        preferences.MapSetNotificationPreferences();
        preferences.MapAddWechatConsent();
        var inbox = routes.MapGroup("/api/me/notifications").WithTags("Notifications");
        inbox.MapListMyNotifications();
        inbox.MapMarkNotificationRead();
        routes.MapDeliverNotifications();
        routes.MapSendReminders();
        return routes;
    }
}
