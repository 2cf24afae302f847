using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Notifications;

/// <summary>
/// GET /api/me/notification-preferences — the caller's own preferences (the token's subject, never a URL value), or the
/// defaults when they never set any. With an ETag when stored, for a later PUT's If-Match.
/// </summary>
public static class GetNotificationPreferences
{
    public static RouteHandlerBuilder MapGetNotificationPreferences(this IEndpointRouteBuilder group) =>
        group.MapGet("", HandleAsync)
            .AsFunction("GetNotificationPreferences")
            .RequireAuthorization(Policies.Customer)
            .Produces<PreferencesView>()
            .WithSummary("My notification preferences: channels (inapp always on), quiet hours, time zone, unused WeChat consents.");

    private static async Task<IResult> HandleAsync(HttpContext context, NotificationStore store)
    {
        var preferences = await store.FindPreferencesAsync(context.User.SubjectId(), context.RequestAborted);
        return Result(preferences, context);
    }

    public static IResult Result(NotificationPreferences preferences, HttpContext context)
    {
        if (preferences.ETag is { } etag) context.Response.Headers.ETag = CampaignResults.HttpETag(etag);
        return TypedResults.Ok(PreferencesView.Of(preferences));
    }
}
