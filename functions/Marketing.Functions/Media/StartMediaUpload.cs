using Marketing.Functions.Audit;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Media;

public sealed record StartMediaUploadRequest(string Kind, string ContentType, long Length);

/// <summary>Where and how to upload: PUT the bytes to <c>UploadUrl</c> with exactly these headers, before <c>ExpiresAt</c>.</summary>
public sealed record MediaUpload(string MediaId, string UploadUrl, string Method, IReadOnlyDictionary<string, string> Headers, DateTimeOffset ExpiresAt);

/// <summary>
/// POST /api/campaigns/{id}/media — an operator announces a media item (kind, content type, length) and gets a link that
/// lets the client write that one upload blob straight to storage, for a few minutes. Nothing the link allows is trusted:
/// a SAS caps neither size nor type, so complete checks both (docs/media.md).
/// </summary>
public static class StartMediaUpload
{
    public const string BlobTypeHeader = "x-ms-blob-type";

    public static RouteHandlerBuilder MapStartMediaUpload(this IEndpointRouteBuilder group) =>
        group.MapPost("/{id}/media", HandleAsync)
            .AsFunction("StartMediaUpload")
            .RequireAuthorization(Policies.Operator)
            .Audited("start-upload", AuditKinds.Media)
            .AcceptsJson(new StartMediaUploadRequest("banner", MediaKind.Png, 348_211))
            .Produces<MediaUpload>(StatusCodes.Status201Created)
            .WithSummary("Announce a media item of a campaign and get its upload link (PUT the bytes there, then complete).");

    private static async Task<IResult> HandleAsync(string id, HttpContext context, CampaignStore campaigns, MediaStore media, MediaBlobs blobs, TimeProvider time)
    {
        var (body, problem) = await JsonBody.ReadAsync<StartMediaUploadRequest>(context.Request, Validate);
        if (problem is not null) return problem.ToResult();
        var request = body!;
        var ct = context.RequestAborted;
        if (await campaigns.FindAsync(id, ct) is null) return Problem.NotFound("The campaign").ToResult();

        var mediaId = Ids.New("med");
        await context.BeginAuditAsync(id + "/" + mediaId);
        var uploadBlob = MediaBlobs.UploadName(id, mediaId);
        var link = await blobs.UploadLinkAsync(uploadBlob, ct);
        var item = new MediaItem
        {
            Id = mediaId, CampaignId = id, Kind = request.Kind, ContentType = request.ContentType, Length = request.Length,
            State = MediaItem.Pending, UploadBlob = uploadBlob, CreatedAt = time.GetUtcNow(), CreatedBy = context.User.SubjectId(),
            Ttl = MediaItem.PendingTtlSeconds,
        };
        // A new id: only a resend of this very write can meet it, and TryCreateAsync takes that as done.
        await media.TryCreateAsync(item, ct);
        var headers = new Dictionary<string, string> { [BlobTypeHeader] = "BlockBlob", ["Content-Type"] = request.ContentType };
        return TypedResults.Created($"/api/campaigns/{id}/media/{mediaId}",
            new MediaUpload(mediaId, link.Url.ToString(), "PUT", headers, link.ExpiresAt));
    }

    private static Dictionary<string, string[]> Validate(StartMediaUploadRequest request)
    {
        var errors = new Dictionary<string, string[]>();
        var kind = MediaKind.Find(request.Kind);
        if (kind is null)
            errors["kind"] = [$"One of {string.Join(", ", MediaKind.All.Select(k => k.Name))}."];
        else if (!kind.ContentTypes.Contains(request.ContentType))
            errors["contentType"] = [$"A {kind.Name} is one of {string.Join(", ", kind.ContentTypes)}."];
        var limit = kind?.MaxBytes ?? MediaKind.All.Max(k => k.MaxBytes);
        if (request.Length < 1 || request.Length > limit)
            errors["length"] = [$"The upload's exact size in bytes: 1 to {limit}" + (kind is null ? "." : $" for a {kind.Name}.")];
        return errors;
    }
}
