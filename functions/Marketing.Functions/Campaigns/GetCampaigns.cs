using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Campaigns;

/// <summary>GET /api/campaigns/{id} and GET /api/campaigns?status= — operators read the catalog.</summary>
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

    private static async Task<IResult> GetAsync(string id, HttpContext context, CampaignStore store)
    {
        var campaign = await store.FindAsync(id, context.RequestAborted);
        return campaign is null ? Problem.NotFound("The campaign").ToResult() : CampaignResults.Campaign(campaign, context);
    }

    private static async Task<IResult> ListAsync(HttpContext context, CampaignStore store,
        string? status, int? limit, string? continuationToken)
    {
        CampaignStatus? filter = null;
        if (status is not null)
        {
            filter = Enum.GetValues<CampaignStatus>().Cast<CampaignStatus?>().FirstOrDefault(s => CampaignStore.Wire(s!.Value) == status);
            if (filter is null) return Problem.Validation("status", "One of draft, published, paused, ended.").ToResult();
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
