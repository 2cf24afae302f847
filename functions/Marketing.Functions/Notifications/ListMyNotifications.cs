using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Notifications;

/// <summary>A message as its customer sees it in the in-app inbox.</summary>
public sealed record NotificationView(string Id, NotificationKind Kind, NotificationChannel Channel, string Title, string Body,
    IReadOnlyList<string> CouponIds, string? CampaignId, DateTimeOffset CreatedAt, bool Read, DateTimeOffset? ReadAt)
{
    public static NotificationView Of(NotificationRecord r)
        => new(r.Id, r.Kind, r.Channel, r.Title, r.Body, r.CouponIds, r.CampaignId, r.CreatedAt, r.ReadAt is not null, r.ReadAt);
}

public sealed record NotificationPage(IReadOnlyList<NotificationView> Items, string? ContinuationToken);

/// <summary>
/// GET /api/me/notifications — the caller's in-app inbox, newest first, paged. One query in one partition (the
/// caller's: the token's subject), so nobody lists someone else's messages; operator alerts are never listed.
/// </summary>
public static class ListMyNotifications
{
    public const int DefaultPageSize = 20;
    public const int MaxPageSize = 100;

    public static RouteHandlerBuilder MapListMyNotifications(this IEndpointRouteBuilder group) =>
        group.MapGet("", HandleAsync)
            .AsFunction("ListMyNotifications")
            .RequireAuthorization(Policies.Customer)
            .Produces<NotificationPage>()
            .WithSummary("My notifications, newest first, each read or not; page with continuationToken.")
            .WithDescription(Paging.Description);

    private static async Task<IResult> HandleAsync(HttpContext context, NotificationStore store, ILoggerFactory loggers,
        string? limit, string? continuationToken)
    {
        // As text: a limit that is not a number is a field error like one out of range (Paging.Limit).
        var errors = new Dictionary<string, string[]>();
        var pageSize = Paging.Limit(limit, MaxPageSize, errors);
        if (errors.Count > 0) return Problem.Validation(errors).ToResult();
        try
        {
            var page = await store.ListInboxAsync(context.User.SubjectId(), pageSize ?? DefaultPageSize, continuationToken,
                loggers.CreateLogger(typeof(ListMyNotifications)), context.RequestAborted);
            return TypedResults.Ok(new NotificationPage(page.Items.Select(NotificationView.Of).ToList(), page.ContinuationToken));
        }
        catch (InvalidPageTokenException e)
        {
            return Problem.InvalidPageToken(e.Message).ToResult();
        }
    }
}
