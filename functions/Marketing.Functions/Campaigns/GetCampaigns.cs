using System.Globalization;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Campaigns;

/// <summary>GET /api/campaigns/{id} (with its budget's summary) and GET /api/campaigns?status= — operators read the catalog.</summary>
public static class GetCampaigns
{
    public const int DefaultPageSize = 50;
    public const int MaxPageSize = 200;
    public const int MaxNameFilterLength = 100;

    public static void MapGetCampaigns(this IEndpointRouteBuilder group)
    {
        group.MapGet("/{id}", GetAsync)
            .AsFunction("GetCampaign")
            .RequireAuthorization(Policies.Operator)
            .Produces<CampaignView>()
            .WithSummary("Get a campaign.");

        group.MapGet("", ListAsync)
            .AsFunction("ListCampaigns")
            .RequireAuthorization(Policies.Operator)
            .Produces<CampaignPage>()
            .WithSummary("List campaigns, optionally by status, part of the name and claim end; page with continuationToken.")
            .WithDescription("status is one of the lifecycle's; name matches part of the name in any case; claimEndsFrom (inclusive) and "
                + "claimEndsBefore (exclusive) are ISO 8601 instants bounding the claim end (\"ending within 7 days\": now and now + 7 days). " + Paging.Description);
    }

    /// <summary>
    /// The campaign, and the summary of its budget when it has one: one more query (the figures of every budget shard,
    /// naming their partitions) only for a campaign with a budget document, so a GET costs 1 round trip without a budget
    /// and 2 with one. The list reads the budgets of a whole page in one query (below); the writes' answers read none.
    /// </summary>
    private static async Task<IResult> GetAsync(string id, HttpContext context, CampaignStore store, StockStore stock)
    {
        var ct = context.RequestAborted;
        var campaign = await store.FindAsync(id, ct);
        if (campaign is null) return Problem.NotFound("The campaign").ToResult();
        BudgetSummary? budget = null;
        // Until publishing creates the budget documents (draft, in review, approved), the budget is only its terms.
        if (campaign.Terms.Budget is not null && campaign.Status.IsLaunched()
            && await stock.SumBudgetAsync(id, campaign.Terms.ShardCount, ct: ct) is { } figures)
            budget = BudgetSummary.Of(figures);
        return CampaignResults.Campaign(campaign, context, budget: budget);
    }

    /// <summary>
    /// A page of the catalog, each launched campaign with a budget carrying its budget's summary (as GET /{id}) and the
    /// page the instant they were read (<c>budgetsAsOf</c>): one query for the page, and one more for the budgets of all
    /// its launched budgeted campaigns together (<see cref="StockStore.SumBudgetsAsync"/>), none when it has none. Live
    /// figures for the console's burn bars, at a bounded cost per page whatever its size
    /// (docs/decisions/0010-budget-burn-in-the-campaigns-list.md).
    /// </summary>
    private static async Task<IResult> ListAsync(HttpContext context, CampaignStore store, StockStore stock, TimeProvider time,
        string? status, string? name, string? claimEndsFrom, string? claimEndsBefore, string? limit, string? continuationToken)
    {
        // Every filter is checked here, so a request with several mistakes hears of all of them at once.
        var errors = new Dictionary<string, string[]>();
        CampaignStatus? filter = null;
        if (status is not null)
        {
            filter = Enum.GetValues<CampaignStatus>().Cast<CampaignStatus?>().FirstOrDefault(s => CampaignStore.Wire(s!.Value) == status);
            if (filter is null) errors["status"] = [$"One of {string.Join(", ", Enum.GetValues<CampaignStatus>().Select(CampaignStore.Wire))}."];
        }
        if (name is not null && (name.Length is 0 or > MaxNameFilterLength || !JsonBody.IsPrintable(name)))
            errors["name"] = [$"1 to {MaxNameFilterLength} characters (part of the name, any case); no control characters."];
        var endsFrom = QueryParameters.Instant(claimEndsFrom, "claimEndsFrom", errors);
        var endsBefore = QueryParameters.Instant(claimEndsBefore, "claimEndsBefore", errors);
        if (endsFrom is not null && endsBefore is not null && endsFrom >= endsBefore)
            errors["claimEndsBefore"] = ["After claimEndsFrom."];
        var pageSize = Paging.Limit(limit, MaxPageSize, errors);
        if (errors.Count > 0) return Problem.Validation(errors).ToResult();

        try
        {
            var ct = context.RequestAborted;
            var page = await store.ListAsync(new CampaignListFilter(filter, name, endsFrom, endsBefore), pageSize ?? DefaultPageSize, continuationToken, ct);
            // Until publishing creates the budget documents (draft, in review, approved), a budget is only its terms.
            var budgeted = page.Items.Where(c => c.Terms.Budget is not null && c.Status.IsLaunched())
                .Select(c => (c.Id, c.Terms.ShardCount)).ToList();
            var budgets = budgeted.Count == 0 ? [] : await stock.SumBudgetsAsync(budgeted, ct);
            return TypedResults.Ok(new CampaignPage(
                [.. page.Items.Select(c => CampaignView.Of(c, budgets.TryGetValue(c.Id, out var b) ? BudgetSummary.Of(b) : null))],
                page.ContinuationToken,
                budgeted.Count == 0 ? null : time.GetUtcNow()));
        }
        catch (InvalidPageTokenException e)
        {
            return Problem.InvalidPageToken(e.Message).ToResult();
        }
    }
}
