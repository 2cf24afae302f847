namespace Marketing.Functions.Campaigns;

/// <summary>A campaign as operators see it: its terms and lifecycle (no storage fields).</summary>
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
    string? EndReason)
{
    public static CampaignView Of(Campaign c) =>
        new(c.Id, c.Status, c.Terms, c.CreatedAt, c.CreatedBy, c.UpdatedAt, c.UpdatedBy, c.PublishedAt, c.EndedAt, c.EndReason);
}

public sealed record CampaignPage(IReadOnlyList<CampaignView> Items, string? ContinuationToken);

public static class CampaignResults
{
    /// <summary>200/201 with the campaign and its ETag, for optimistic concurrency on updates.</summary>
    public static IResult Campaign(Campaign campaign, HttpContext context, int status = StatusCodes.Status200OK)
    {
        if (campaign.ETag is not null) context.Response.Headers.ETag = HttpETag(campaign.ETag);
        return status == StatusCodes.Status201Created
            ? TypedResults.Created($"/api/campaigns/{campaign.Id}", CampaignView.Of(campaign))
            : TypedResults.Ok(CampaignView.Of(campaign));
    }

    /// <summary>Cosmos etags as HTTP entity tags (quoted).</summary>
    public static string HttpETag(string etag) => etag.StartsWith('"') ? etag : $"\"{etag}\"";

    /// <summary>Whether an If-Match header value names this etag (or is "*").</summary>
    public static bool Matches(string ifMatch, string etag)
        => ifMatch.Split(',', StringSplitOptions.TrimEntries).Any(v => v == "*" || v == HttpETag(etag) || v == etag);
}
