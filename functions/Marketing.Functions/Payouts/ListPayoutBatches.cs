using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Payouts;

/// <summary>A batch in the list: its header only (what it asked for, where it is, what the plan came to), never its lines.</summary>
public sealed record PayoutBatchSummary(string BatchId, string State, long Minimum, string Currency, long? Total, int? Lines,
    string CreatedBy, DateTimeOffset CreatedAt, DateTimeOffset? CompletedAt, PayoutApproval? Approval)
{
    public static PayoutBatchSummary Of(PayoutBatch b)
        => new(b.BatchId, b.State, b.Minimum, b.Currency, b.Total, b.Lines, b.CreatedBy, b.CreatedAt, b.CompletedAt, b.Approval);
}

public sealed record PayoutBatchPage(List<PayoutBatchSummary> Items, string? ContinuationToken);

/// <summary>
/// GET /api/payouts?limit=&amp;continuationToken= — the payout batches, newest first, a page at a time (the console's list;
/// a batch's lines are in GET /api/payouts/{id}). Operators, finance and admins. Total and lines are null while a batch is
/// still being planned.
/// </summary>
public static class ListPayoutBatches
{
    public const int DefaultPageSize = 20;
    public const int MaxPageSize = 100;

    public static RouteHandlerBuilder MapListPayoutBatches(this IEndpointRouteBuilder group) =>
        group.MapGet("", async (HttpContext context, PayoutStore payouts, ILoggerFactory logs, string? limit, string? continuationToken) =>
            {
                // Bound as text: a limit that is not a number is a field error like one out of range (Paging.Limit).
                var errors = new Dictionary<string, string[]>();
                var pageSize = Paging.Limit(limit, MaxPageSize, errors);
                if (errors.Count > 0) return Problem.Validation(errors).ToResult();
                try
                {
                    var page = await payouts.ListBatchesAsync(pageSize ?? DefaultPageSize, continuationToken, logs.CreateLogger(typeof(ListPayoutBatches)), context.RequestAborted);
                    return (IResult)TypedResults.Ok(new PayoutBatchPage(page.Items.Select(PayoutBatchSummary.Of).ToList(), page.ContinuationToken));
                }
                catch (InvalidPageTokenException e)
                {
                    return Problem.InvalidPageToken(e.Message).ToResult();
                }
            })
            .AsFunction("ListPayoutBatches")
            .RequireAuthorization(Policies.PayoutReader)
            .Produces<PayoutBatchPage>()
            .WithSummary("The payout batches, newest first (headers: state, minimum, total, lines); page with continuationToken.")
            .WithDescription(Paging.Description);
}
