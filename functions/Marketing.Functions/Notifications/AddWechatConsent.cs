using Marketing.Functions.Audit;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Notifications;

/// <summary>
/// POST /api/me/notification-preferences/wechat-consents — the customer accepted one WeChat one-time subscribe message
/// (wx.requestSubscribeMessage: one acceptance allows one message). Adds one unused consent with its instant; each
/// WeChat reminder uses one (<see cref="NotificationStore.TryConsumeWechatConsentAsync"/>). WeChat messages also need
/// the channel opted in. A retried POST may add a second consent: WeChat keeps its own count and refuses a message
/// beyond it, so the worst case is one refused send, never a message the customer did not allow.
/// </summary>
public static class AddWechatConsent
{
    public static RouteHandlerBuilder MapAddWechatConsent(this IEndpointRouteBuilder group) =>
        group.MapPost("/wechat-consents", HandleAsync)
            .AsFunction("AddWechatConsent")
            .NotAudited("A customer's own self-service: the document it writes records who and when (docs/audit.md).")
            .RequireAuthorization(Policies.Customer)
            .Produces<PreferencesView>()
            .WithSummary("Record one WeChat one-time subscribe consent (one per subscribe action); answers my preferences.");

    private static async Task<IResult> HandleAsync(HttpContext context, NotificationStore store, TimeProvider time)
    {
        var consent = new WechatConsent(NotificationStore.NewWechatConsentId(), time.GetUtcNow());
        var preferences = await store.AddWechatConsentAsync(context.User.SubjectId(), consent, context.RequestAborted);
        return GetNotificationPreferences.Result(preferences, context);
    }
}
