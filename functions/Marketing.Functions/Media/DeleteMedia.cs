using Marketing.Functions.Audit;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Media;

/// <summary>
/// DELETE /api/campaigns/{id}/media/{mediaId} — detaches a media item and removes its blobs. The document goes first (the
/// app stops listing it), then the renditions and the upload, found by names derived from the route alone, so a repeat
/// (after a crash, or of a request already done) removes whatever is left and answers 204 again. A complete racing with it
/// finds its document gone and removes what it published.
/// </summary>
public static class DeleteMedia
{
    public static RouteHandlerBuilder MapDeleteMedia(this IEndpointRouteBuilder group) =>
        group.MapDelete("/{id}/media/{mediaId}", async (string id, string mediaId, HttpContext context, MediaStore media, MediaBlobs blobs) =>
            {
                var ct = context.RequestAborted;
                if (!Ids.IsWellFormed(id) || !Ids.IsWellFormed(mediaId)) return Results.NoContent();
                await media.DeleteAsync(id, mediaId, ct);
                await blobs.UnpublishAsync(id, mediaId, ct);
                await blobs.DeleteUploadAsync(MediaBlobs.UploadName(id, mediaId), ct);
                return Results.NoContent();
            })
            .AsFunction("DeleteMedia")
            .RequireAuthorization(Policies.Operator)
            .Audited("delete", AuditKinds.Media, "id", "mediaId")
            .Produces(StatusCodes.Status204NoContent)
            .WithSummary("Detach a media item from its campaign and remove its files (again: 204 too).");
}
