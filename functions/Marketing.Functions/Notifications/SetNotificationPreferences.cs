using Marketing.Functions.Audit;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Notifications;

/// <summary>
/// PUT /api/me/notification-preferences — replaces the caller's preferences. A channel opted in now gets its consent
/// instant from the server clock; one that stays in keeps its first instant; one opted out loses it (and opting out of
/// WeChat drops its unused one-time consents: consent withdrawn). Optional If-Match (the ETag of a GET) guards against
/// overwriting a change made elsewhere (another device): 412 precondition-failed.
/// </summary>
public static class SetNotificationPreferences
{
    public static RouteHandlerBuilder MapSetNotificationPreferences(this IEndpointRouteBuilder group) =>
        group.MapPut("", HandleAsync)
            .AsFunction("SetNotificationPreferences")
            .NotAudited("A customer's own self-service: the document it writes records who and when (docs/audit.md).")
            .RequireAuthorization(Policies.Customer)
            .WithHeader(RequestHeader.IfMatch)
            .WithProblems(409, ProblemTypes.ConcurrentUpdate)
            .WithProblems(412, ProblemTypes.PreconditionFailed)
            .AcceptsJson(PreferencesRequest.Example)
            .Produces<PreferencesView>()
            .WithSummary("Set my notification preferences (channels opted in, quiet hours HH:mm, IANA time zone or null for the campaign's).");

    private static async Task<IResult> HandleAsync(HttpContext context, NotificationStore store, TimeProvider time)
    {
        var (body, problem) = await JsonBody.ReadAsync<PreferencesRequest>(context.Request, r => r.Validate());
        if (problem is not null) return problem.ToResult();
        var request = body!;
        string? ifMatch = context.Request.Headers.IfMatch;
        var customerId = context.User.SubjectId();

        for (var attempt = 0; ; attempt++)
        {
            var current = await store.FindPreferencesAsync(customerId, context.RequestAborted);
            // Nothing stored matches no entity tag, not even "*".
            if (ifMatch is not null && (current.ETag is null || !CampaignResults.Matches(ifMatch, current.ETag)))
                return Stale();
            var next = Apply(current, request, time.GetUtcNow());
            if (await store.TrySavePreferencesAsync(next, current.ETag, context.RequestAborted) is { } etag)
                return GetNotificationPreferences.Result(next with { ETag = etag }, context);
            if (ifMatch is not null) return Stale();
            if (attempt >= 3)
                return Problem.Of(ProblemTypes.ConcurrentUpdate, 409, "Your preferences are being changed elsewhere; try again.").ToResult();
        }
    }

    /// <summary>The preferences after the request: consent instants kept for channels that stay in, set for new ones.</summary>
    public static NotificationPreferences Apply(NotificationPreferences current, PreferencesRequest request, DateTimeOffset now)
    {
        var consents = request.Channels.Where(c => c != NotificationChannel.Inapp).Distinct()
            .Select(c => current.Consents.FirstOrDefault(x => x.Channel == c) ?? new ChannelConsent(c, now))
            .OrderBy(c => c.Channel).ToList();
        return current with
        {
            Consents = consents,
            QuietHours = request.QuietHours ?? QuietHours.Default,
            TimeZone = request.TimeZone,
            WechatConsents = consents.Any(c => c.Channel == NotificationChannel.Wechat) ? current.WechatConsents : [],
            UpdatedAt = now,
        };
    }

    private static IResult Stale() => Problem.Of(ProblemTypes.PreconditionFailed, 412, "Your preferences changed since you read them.",
        "GET them again and re-apply your change.").ToResult();
}
