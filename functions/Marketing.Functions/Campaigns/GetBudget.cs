using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Campaigns;

/// <summary>A campaign's budget in minor units, summed over its shards: total = left + reserved + spent.</summary>
public sealed record BudgetSummary(long Total, long Left, long Reserved, long Spent)
{
    public static BudgetSummary Of(BudgetFigures f) => new(f.Total, f.Left, f.Reserved, f.Spent);
}

/// <summary>The budget's figures and one page of its top-ups, newest first.</summary>
public sealed record BudgetView(long Total, long Left, long Reserved, long Spent, IReadOnlyList<TopUpView> TopUps, string? ContinuationToken);

/// <summary>
/// One top-up: its Idempotency-Key, how much, why, who and when; its state (applied, or a request: pending_approval,
/// approved, rejected, refused) and, for a request, the decision (who, when, why).
/// </summary>
public sealed record TopUpView(string Key, long Amount, string Reason, string By, DateTimeOffset At, string State, TopUpApproval? Approval)
{
    public static TopUpView Of(TopUp t) => new(t.Key, t.Amount, t.Reason, t.By, t.At, t.State, t.Approval);
    public static TopUpView Of(BudgetTopUp t) => new(t.Key, t.Amount, t.Reason, t.By, t.At, TopUpStates.Applied, null);
}

/// <summary>
/// GET /api/campaigns/{id}/budget — operators read a campaign's money: total, left, reserved and spent summed over the
/// budget's shards, and who added (or asked to add) how much, when and why, with each top-up's state. Top-ups grow with the campaign's life, so they are paged.
/// Costs two queries, sent together: the figures of every shard (one query naming their partitions) and a page of
/// top-ups (one query of the campaign's partition).
/// </summary>
public static class GetBudget
{
    public const int DefaultPageSize = 50;
    public const int MaxPageSize = 200;

    public static RouteHandlerBuilder MapGetBudget(this IEndpointRouteBuilder group) =>
        group.MapGet("/{id}/budget", HandleAsync)
            .AsFunction("GetBudget")
            .RequireAuthorization(Policies.Operator)
            .Produces<BudgetView>()
            .WithSummary("A campaign's budget (total, left, reserved, spent over its shards) and its top-ups, newest first; page with continuationToken.")
            .WithDescription(Paging.Description);

    private static async Task<IResult> HandleAsync(string id, HttpContext context, CampaignCache campaigns, StockStore stock,
        string? limit, string? continuationToken)
    {
        // As text: a limit that is not a number is a field error like one out of range (Paging.Limit).
        var errors = new Dictionary<string, string[]>();
        var pageSize = Paging.Limit(limit, MaxPageSize, errors);
        if (errors.Count > 0) return Problem.Validation(errors).ToResult();
        var ct = context.RequestAborted;
        // The shard count never changes once published, so the cached catalog may tell it (an unknown campaign is read
        // from the database and counts 1: its query then finds nothing).
        var shards = (await campaigns.FindAsync(id, ct))?.Terms.ShardCount ?? 1;
        var figures = stock.SumBudgetAsync(id, shards, withOldTopUps: true, ct);
        var page = stock.ListTopUpsAsync(id, pageSize ?? DefaultPageSize, continuationToken, ct);
        try
        {
            await Task.WhenAll(figures, page);
        }
        catch (InvalidPageTokenException e)
        {
            return Problem.InvalidPageToken(e.Message).ToResult();
        }
        if (figures.Result is not { } budget) return NoBudget();

        List<TopUpView> topUps = [.. page.Result.Items.Select(TopUpView.Of)];
        // Top-ups recorded inside the document before they had their own (never appended since, so older than all of
        // those): after the last page's.
        if (page.Result.ContinuationToken is null)
            topUps.AddRange(budget.OldTopUps.OrderByDescending(t => t.At).Select(TopUpView.Of));
        return TypedResults.Ok(new BudgetView(budget.Total, budget.Left, budget.Reserved, budget.Spent, topUps, page.Result.ContinuationToken));
    }

    /// <summary>404 for an unknown campaign, one without a budget, and a campaign not yet published (its budget is created when it is published).</summary>
    public static IResult NoBudget() => Problem.Of(ProblemTypes.NotFound, 404, "Not found.",
        "This campaign has no budget: it does not exist, its terms set no budget, or it is not published yet (the budget is created when it is published).").ToResult();
}
