using System.Globalization;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Audit;

public sealed record AuditPage(List<AuditEntry> Items, string? ContinuationToken);

/// <summary>
/// GET /api/audit?target=&amp;actor=&amp;from=&amp;to=&amp;limit=&amp;continuationToken= — the audit trail, newest first, for
/// approvers and admins. With a target ("campaign/cmp_…") one partition is read; without, the query runs across
/// partitions. Read-only: no route changes or deletes an entry (docs/audit.md).
/// </summary>
public static class ListAuditEntries
{
    public const int DefaultPageSize = 50;
    public const int MaxPageSize = 200;
    private const int MaxFilterLength = 256;

    public static RouteHandlerBuilder MapListAuditEntries(this IEndpointRouteBuilder routes) =>
        routes.MapGet("/api/audit", HandleAsync)
            .AsFunction("ListAuditEntries")
            .RequireAuthorization(Policies.Auditor)
            .WithTags("Audit")
            .Produces<AuditPage>()
            .WithSummary("The audit trail, newest first: who changed what, when, why, and the field-level diff.")
            .WithDescription("target is \"{kind}/{id}\" (kinds: " + string.Join(", ", Kinds) + "); from (inclusive) and to (exclusive) are ISO 8601 instants. "
                + Paging.Description);

    private static readonly string[] Kinds = [AuditKinds.Campaign, AuditKinds.Budget, AuditKinds.TopUp, AuditKinds.PayoutBatch, AuditKinds.Media, AuditKinds.CommissionRules];

    // Every filter is bound as text and checked here, so that a request with several mistakes hears of all of them at once.
    private static async Task<IResult> HandleAsync(HttpContext context, AuditStore store, string? target, string? actor, string? from, string? to,
        string? limit, string? continuationToken)
    {
        var errors = new Dictionary<string, string[]>();
        if (target is not null && (target.Length > MaxFilterLength || !Kinds.Any(k => target.StartsWith(k + "/", StringComparison.Ordinal))))
            errors["target"] = [$"\"{{kind}}/{{id}}\", kind one of {string.Join(", ", Kinds)}; at most {MaxFilterLength} characters."];
        if (actor is not null && (actor.Length is 0 or > MaxFilterLength))
            errors["actor"] = [$"A subject (sub), 1 to {MaxFilterLength} characters."];
        var fromInstant = QueryParameters.Instant(from, "from", errors);
        var toInstant = QueryParameters.Instant(to, "to", errors);
        if (fromInstant is not null && toInstant is not null && fromInstant >= toInstant)
            errors["to"] = ["After from."];
        int? pageSize = null;
        if (limit is not null)
        {
            if (int.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= MaxPageSize) pageSize = n;
            else errors["limit"] = [$"1 to {MaxPageSize}."];
        }
        if (errors.Count > 0) return Problem.Validation(errors).ToResult();

        try
        {
            var page = await store.ListAsync(target, actor, fromInstant, toInstant, pageSize ?? DefaultPageSize, continuationToken, context.RequestAborted);
            return TypedResults.Ok(new AuditPage([.. page.Items.Select(e => e with { ETag = null })], page.ContinuationToken));
        }
        catch (InvalidPageTokenException e)
        {
            return Problem.InvalidPageToken(e.Message).ToResult();
        }
    }
}
