using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Media;

public sealed record MediaList(IReadOnlyList<MediaView> Items);

/// <summary>GET /api/campaigns/{id}/media — a campaign's media items in every state (at most <see cref="MediaStore.MaxListed"/>), newest first.</summary>
public static class ListMedia
{
    public static RouteHandlerBuilder MapListMedia(this IEndpointRouteBuilder group) =>
        group.MapGet("/{id}/media", async Task<IResult> (string id, HttpContext context, CampaignStore campaigns, MediaStore media, MediaBlobs blobs) =>
            {
                var ct = context.RequestAborted;
                if (await campaigns.FindAsync(id, ct) is null) return Problem.NotFound("The campaign").ToResult();
                var items = await media.ListAsync(id, readyOnly: false, ct);
                return TypedResults.Ok(new MediaList(items.Select(m => MediaView.Of(m, blobs)).ToList()));
            })
            .AsFunction("ListMedia")
            .RequireAuthorization(Policies.Operator)
            .Produces<MediaList>()
            .WithSummary("A campaign's media items: pending, ready (with their renditions) and refused (with why).");
}
