namespace Marketing.Functions.Campaigns;

/// <summary>
/// A campaign as operators see it: its terms and lifecycle (no storage fields), and on GET /api/campaigns/{id} and in the list the
/// summary of its budget when it has one (published, paused or ended with a budget; null elsewhere, see GetCampaigns),
/// and where it is in review: the revision of its terms, its makers (who may not approve it), who submitted it, the approval
/// of the current revision (null when there is none), and the last rejection or return.
/// </summary>
public sealed record CampaignView(
    string Id,
    CampaignStatus Status,
    CampaignTerms Terms,
    DateTimeOffset CreatedAt,
    string CreatedBy,
    DateTimeOffset UpdatedAt,
    string UpdatedBy,
    DateTimeOffset? PublishedAt,
    DateTimeOffset? EndedAt,
    string? EndReason,
    BudgetSummary? Budget,
    int Revision,
    IReadOnlyList<string> Makers,
    string? SubmittedBy,
    DateTimeOffset? SubmittedAt,
    CampaignApproval? Approval,
    CampaignReview? Review)
{
    public static CampaignView Of(Campaign c) => Of(c, null);

    public static CampaignView Of(Campaign c, BudgetSummary? budget) =>
        new(c.Id, c.Status, c.Terms, c.CreatedAt, c.CreatedBy, c.UpdatedAt, c.UpdatedBy, c.PublishedAt, c.EndedAt, c.EndReason, budget,
            c.Revision, c.CurrentMakers, c.SubmittedBy, c.SubmittedAt, c.Approval, c.Review);
}

/// <summary>
/// A page of the catalog. <see cref="BudgetsAsOf"/>: when the budgets of the page's campaigns were read (live figures, one
/// query for the page); null when the page has no launched campaign with a budget.
/// </summary>
public sealed record CampaignPage(IReadOnlyList<CampaignView> Items, string? ContinuationToken, DateTimeOffset? BudgetsAsOf = null);

public static class CampaignResults
{
    /// <summary>200/201 with the campaign and its ETag, for optimistic concurrency on updates.</summary>
    public static IResult Campaign(Campaign campaign, HttpContext context, int status = StatusCodes.Status200OK, BudgetSummary? budget = null)
    {
        if (campaign.ETag is not null) context.Response.Headers.ETag = HttpETag(campaign.ETag);
        return status == StatusCodes.Status201Created
            ? TypedResults.Created($"/api/campaigns/{campaign.Id}", CampaignView.Of(campaign, budget))
            : TypedResults.Ok(CampaignView.Of(campaign, budget));
    }

    /// <summary>Cosmos etags as HTTP entity tags (quoted).</summary>
    public static string HttpETag(string etag) => etag.StartsWith('"') ? etag : $"\"{etag}\"";

    /// <summary>Whether an If-Match header value names this etag (or is "*").</summary>
    public static bool Matches(string ifMatch, string etag)
        => ifMatch.Split(',', StringSplitOptions.TrimEntries).Any(v => v == "*" || v == HttpETag(etag) || v == etag);
}
