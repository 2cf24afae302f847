using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Campaigns;

/// <summary>GET /api/campaigns/{id} (with its budget's summary) and GET /api/campaigns?status= — operators read the catalog.</summary>
public static class GetCampaigns
{
    public const int DefaultPageSize = 50;
    public const int MaxPageSize = 200;

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
            .WithSummary("List campaigns, optionally by status; page with continuationToken.")
            .WithDescription(Paging.Description);
    }

    /// <summary>
    /// The campaign, and the summary of its budget when it has one: one more query (the figures of every budget shard,
    /// naming their partitions) only for a campaign with a budget document, so a GET costs 1 round trip without a budget
    /// and 2 with one. Operators read one campaign at a time, rarely; the list does not read budgets (it would cost a
    /// query per campaign on the page), and neither do the writes' answers.
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

    private static async Task<IResult> ListAsync(HttpContext context, CampaignStore store,
        string? status, int? limit, string? continuationToken)
    {
        CampaignStatus? filter = null;
        if (status is not null)
        {
            filter = Enum.GetValues<CampaignStatus>().Cast<CampaignStatus?>().FirstOrDefault(s => CampaignStore.Wire(s!.Value) == status);
            if (filter is null) return Problem.Validation("status", $"One of {string.Join(", ", Enum.GetValues<CampaignStatus>().Select(CampaignStore.Wire))}.").ToResult();
        }
        if (limit is < 1 or > MaxPageSize) return Problem.Validation("limit", $"1 to {MaxPageSize}.").ToResult();

        try
        {
            var page = await store.ListAsync(filter, limit ?? DefaultPageSize, continuationToken, context.RequestAborted);
            return TypedResults.Ok(new CampaignPage(page.Items.Select(CampaignView.Of).ToList(), page.ContinuationToken));
        }
        catch (InvalidPageTokenException e)
        {
            return Problem.InvalidPageToken(e.Message).ToResult();
        }
    }
}
