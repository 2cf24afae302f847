using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Media;

/// <summary>A published image or document as the app shows it: where to read each rendition (no storage names, no states).</summary>
public sealed record PublishedMedia(string MediaId, string Kind, IReadOnlyList<PublishedRendition> Renditions);

public sealed record PublishedRendition(string Url, string ContentType, int? Width, int? Height);

/// <summary>A campaign's page in the app: the campaign as the coupon centre lists it, and its ready media.</summary>
public sealed record CampaignPageView(ClaimableCampaign Campaign, IReadOnlyList<PublishedMedia> Media);

/// <summary>
/// GET /api/campaigns/{id}/page — what the app needs to draw a campaign's page: its terms from the instance's copy of the
/// catalog (no read for a published campaign) and its ready media from one query in the campaign's media partition.
/// Only published campaigns have a page; anything else is not found, as it is for the coupon centre.
/// </summary>
public static class GetCampaignPage
{
    public static RouteHandlerBuilder MapGetCampaignPage(this IEndpointRouteBuilder group) =>
        group.MapGet("/{id}/page", async Task<IResult> (string id, HttpContext context, CampaignCache campaigns, MediaStore media, MediaBlobs blobs) =>
            {
                var ct = context.RequestAborted;
                var campaign = await campaigns.FindAsync(id, ct);
                if (campaign is not { Status: CampaignStatus.Published }) return Problem.NotFound("The campaign").ToResult();
                var ready = await media.ListAsync(id, readyOnly: true, ct);
                var published = ready.Select(m => new PublishedMedia(m.Id, m.Kind,
                    m.Renditions.Select(r => new PublishedRendition(blobs.PublicUrl(r.Name), r.ContentType, r.Width, r.Height)).ToList())).ToList();
                return TypedResults.Ok(new CampaignPageView(ClaimableCampaign.Of(campaign), published));
            })
            .AsFunction("GetCampaignPage")
            .RequireAuthorization(Policies.Customer)
            .Produces<CampaignPageView>()
            .WithSummary("A published campaign's page for the app: its terms and the URLs of its images and rules.");
}
