using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Approvals;

public sealed record ApprovalPage(List<ApprovalItem> Items, string? ContinuationToken);

/// <summary>
/// GET /api/approvals?status=pending[&amp;kind=] — the approvers' queue: everything waiting for a decision, kind by kind
/// (campaigns, then top-ups, then payouts), a page at a time. The page token names the kind it stopped in and that kind's
/// own token, so a page may span kinds and the next one resumes exactly where this one stopped. A caller sees the kinds
/// their role decides: approvers campaigns and top-ups, finance payouts, admins all.
/// </summary>
public static class ListApprovals
{
    public const int DefaultPageSize = 50;
    public const int MaxPageSize = 200;

    public static RouteHandlerBuilder MapListApprovals(this IEndpointRouteBuilder routes) =>
        routes.MapGet("/api/approvals", HandleAsync)
            .AsFunction("ListApprovals")
            .RequireAuthorization(Policies.ApprovalQueue)
            .WithTags("Approvals")
            .Produces<ApprovalPage>()
            .WithSummary("The approvers' queue: pending campaigns, top-ups and payouts, with what changed since the last approval.")
            .WithDescription(Paging.Description);

    private static async Task<IResult> HandleAsync(HttpContext context, IEnumerable<IApprovalQueue> queues, string? status, string? kind, string? limit,
        string? continuationToken)
    {
        var errors = new Dictionary<string, string[]>();
        var all = queues.Where(q => context.User.IsInRole(Roles.Admin) || context.User.IsInRole(q.DecidedBy)).ToList();
        if (status is not null and not "pending") errors["status"] = ["Only pending (decisions are in the audit trail: GET /api/audit)."];
        if (kind is not null && all.All(q => q.Kind != kind)) errors["kind"] = [$"One of {string.Join(", ", all.Select(q => q.Kind))}."];
        var limitValue = Paging.Limit(limit, MaxPageSize, errors); // as text: "ten" is a field error beside the others
        if (errors.Count > 0) return Problem.Validation(errors).ToResult();
        var selected = kind is null ? all : all.Where(q => q.Kind == kind).ToList();
        var pageSize = limitValue ?? DefaultPageSize;

        var (start, inner) = (0, (string?)null);
        if (continuationToken is not null)
        {
            if (Decode(continuationToken, selected) is not { } position)
                return Problem.InvalidPageToken("Pass the continuationToken of the previous page unchanged, with the same filters.").ToResult();
            (start, inner) = position;
        }
        var items = new List<ApprovalItem>();
        try
        {
            for (var i = start; i < selected.Count; i++, inner = null)
            {
                var page = await selected[i].PendingAsync(pageSize - items.Count, inner, context.RequestAborted);
                items.AddRange(page.Items);
                if (page.ContinuationToken is not null)
                    return TypedResults.Ok(new ApprovalPage(items, Encode(selected[i].Kind, page.ContinuationToken)));
                if (items.Count >= pageSize)
                    return TypedResults.Ok(new ApprovalPage(items, i + 1 < selected.Count ? Encode(selected[i + 1].Kind, null) : null));
            }
        }
        catch (InvalidPageTokenException e)
        {
            return Problem.InvalidPageToken(e.Message).ToResult();
        }
        return TypedResults.Ok(new ApprovalPage(items, null));
    }

    // "q1.{kind}.{inner}": the inner token (a Paging token, already URL-safe) is carried as it is, not encoded again.
    private static string Encode(string kind, string? inner) => "q1." + kind + "." + inner;

    private static (int Start, string? Inner)? Decode(string token, List<IApprovalQueue> queues)
    {
        if (!token.StartsWith("q1.", StringComparison.Ordinal) || token.Length > Paging.MaxTokenLength + 64) return null;
        var rest = token[3..];
        var split = rest.IndexOf('.');
        if (split < 0) return null;
        var index = queues.FindIndex(q => q.Kind == rest[..split]);
        if (index < 0) return null;
        var inner = rest[(split + 1)..];
        return (index, inner.Length == 0 ? null : inner);
    }
}
