using Marketing.Functions.Audit;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Notifications;

/// <summary>
/// POST /api/me/notifications/{id}/read — marks one of the caller's messages read. Idempotent: again, it answers the
/// same message with its first read instant. The message is looked up in the caller's own partition, so another
/// customer's id (or an operator alert's) is simply not found (404), never theirs to mark.
/// </summary>
public static class MarkNotificationRead
{
    public static RouteHandlerBuilder MapMarkNotificationRead(this IEndpointRouteBuilder group) =>
        group.MapPost("/{id}/read", HandleAsync)
            .AsFunction("MarkNotificationRead")
            .NotAudited("A customer's own self-service: the document it writes records who and when (docs/audit.md).")
            .RequireAuthorization(Policies.Customer)
            .Produces<NotificationView>()
            .WithSummary("Mark one of my notifications read (idempotent).");

    private static async Task<IResult> HandleAsync(string id, HttpContext context, NotificationStore store, TimeProvider time)
    {
        var customerId = context.User.SubjectId();
        var ct = context.RequestAborted;
        var record = await store.FindInboxAsync(customerId, id, ct);
        if (record is null) return Problem.NotFound("The notification").ToResult();
        if (record.ReadAt is null)
        {
            // Refused only when it was read meanwhile (or is gone): read it again either way for the answer.
            await store.TryMarkReadAsync(customerId, id, time.GetUtcNow(), ct);
            record = await store.FindInboxAsync(customerId, id, ct);
            if (record is null) return Problem.NotFound("The notification").ToResult();
        }
        return TypedResults.Ok(NotificationView.Of(record));
    }
}
