using Marketing.Functions.Audit;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Campaigns;

/// <summary>
/// POST /api/campaigns — an operator drafts a campaign (revision 1). Nothing is claimable until it is submitted, approved by
/// someone else and published (docs/approvals.md).
/// </summary>
public static class CreateCampaign
{
    public static RouteHandlerBuilder MapCreateCampaign(this IEndpointRouteBuilder group) =>
        group.MapPost("", HandleAsync)
            .AsFunction("CreateCampaign")
            .RequireAuthorization(Policies.Operator)
            .Audited("create", AuditKinds.Campaign)
            .AcceptsJson(CampaignTerms.Example)
            .Produces<CampaignView>(StatusCodes.Status201Created)
            .WithSummary("Create a campaign (draft).");

    private static async Task<IResult> HandleAsync(HttpContext context, CampaignStore store, TimeProvider time)
    {
        var (terms, problem) = await JsonBody.ReadAsync<CampaignTerms>(context.Request, t => t.Validate());
        if (problem is not null) return problem.ToResult();

        var now = time.GetUtcNow();
        var who = context.User.SubjectId();
        var id = Ids.New("cmp");
        await context.BeginAuditAsync(id);
        var campaign = await store.CreateAsync(new Campaign
        {
            Id = id,
            Catalog = CampaignStore.DefaultCatalog,
            Terms = terms!,
            Status = CampaignStatus.Draft,
            CreatedAt = now, CreatedBy = who, UpdatedAt = now, UpdatedBy = who,
            // The first revision, made by its creator (who may therefore not approve it).
            Revision = 1, Makers = [who],
        }, context.RequestAborted);
        return CampaignResults.Campaign(campaign, context, StatusCodes.Status201Created);
    }
}
