using Marketing.Functions.Audit;
using Azure;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Media;

/// <summary>
/// POST /api/campaigns/{id}/media/{mediaId}/complete — checks what the client uploaded and publishes it, or refuses it.
/// The checks, cheapest first: there at all, not empty, within the kind's limit and exactly the declared length; magic
/// bytes of the declared type; for images the header's dimensions within bounds, read before anything is decoded (a
/// decompression bomb never reaches the decoder); then decoded and re-encoded as renditions without metadata.
/// Never half-published: the renditions are written first (content-addressed, so writing them twice is harmless), then
/// the document is replaced on its etag; only then is the upload deleted. Complete again, or twice at once, answers the
/// same media item (or the same refusal).
/// </summary>
public static class CompleteMediaUpload
{
    /// <summary>A complete reads and re-encodes at most a few MB; past this the request is cut off rather than left hanging.</summary>
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    /// <summary>Images decoded at once per instance: 2 × ~320 MB at most, within a Flex Consumption instance's 2 GB.</summary>
    private static readonly SemaphoreSlim Decoding = new(2, 2);

    public static RouteHandlerBuilder MapCompleteMediaUpload(this IEndpointRouteBuilder group) =>
        group.MapPost("/{id}/media/{mediaId}/complete", HandleAsync)
            .AsFunction("CompleteMediaUpload")
            .RequireAuthorization(Policies.Operator)
            .Audited("complete-upload", AuditKinds.Media, "id", "mediaId")
            .WithProblems(409, ProblemTypes.MediaNotUploaded, ProblemTypes.MediaScanPending, ProblemTypes.ConcurrentUpdate)
            .WithProblems(422, ProblemTypes.MediaMalicious, ProblemTypes.MediaEmpty, ProblemTypes.MediaTooLarge, ProblemTypes.MediaLengthMismatch, ProblemTypes.MediaTypeMismatch,
                ProblemTypes.MediaUnreadable, ProblemTypes.MediaDimensionsTooLarge)
            .Produces<MediaView>()
            .WithSummary("Check the uploaded bytes and publish the media item's renditions, or refuse it and say why.");

    private static async Task<IResult> HandleAsync(string id, string mediaId, HttpContext context, MediaStore media, MediaBlobs blobs, TimeProvider time,
        Microsoft.Extensions.Options.IOptions<MediaScanOptions> scanning)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        deadline.CancelAfter(Deadline);
        var ct = deadline.Token;
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var item = await media.FindAsync(id, mediaId, ct);
            if (item is null) return Problem.NotFound("The media item").ToResult();
            if (item.State == MediaItem.Ready) return TypedResults.Ok(MediaView.Of(item, blobs));
            if (item.State == MediaItem.Refused) return Refused(item.Refusal!);

            var properties = await blobs.UploadPropertiesAsync(item.UploadBlob, ct);
            if (properties is null)
            {
                // Nothing uploaded, or a complete running beside this one has just published it and deleted the upload.
                var now = await media.FindAsync(id, mediaId, ct);
                if (now?.State is MediaItem.Ready or MediaItem.Refused) continue;
                context.Response.Headers.RetryAfter = "1";
                return Problem.Of(ProblemTypes.MediaNotUploaded, 409, "Nothing has been uploaded for this media item.",
                    "PUT the bytes to the upload link first (a link that expired needs a new media item).").ToResult();
            }

            // Malware scanning (when on: Defender for Storage on the upload account), before a byte of the upload is read:
            // no verdict yet → 409 with Retry-After; malicious → refused (the blob is deleted); a missing verdict is never
            // taken as clean (Media/MalwareScan.cs, docs/malware-scanning.md).
            if (scanning.Value is { ScanUploads: true } scan)
            {
                var verdict = await MalwareScan.CheckAsync(blobs.Uploads.GetBlobClient(item.UploadBlob), scan, ct);
                if (verdict == ScanVerdict.Malicious)
                {
                    var malicious = new Refusal(ProblemTypes.MediaMalicious, "Defender for Storage found malicious content; the upload was deleted.");
                    if (!await media.TryReplaceAsync(item with
                        {
                            State = MediaItem.Refused, Refusal = malicious, CompletedAt = time.GetUtcNow(), Ttl = MediaItem.RefusedTtlSeconds,
                        }, ct)) continue;
                    return Refused(malicious);
                }
                if (MalwareScan.ProblemFor(verdict) is { } pending)
                {
                    context.Response.Headers.RetryAfter = scan.ScanWaitSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    return pending.ToResult();
                }
            }

            Outcome outcome;
            try
            {
                outcome = await InspectAsync(item, properties.ContentLength, properties.ETag, blobs, ct);
            }
            catch (RequestFailedException e) when (e.Status is 404 or 412)
            {
                // The upload was rewritten (or removed) while we read it: look again from the top.
                continue;
            }

            if (outcome.Refusal is { } refusal)
            {
                var refused = item with { State = MediaItem.Refused, Refusal = refusal, CompletedAt = time.GetUtcNow(), Ttl = MediaItem.RefusedTtlSeconds };
                if (!await media.TryReplaceAsync(refused, ct)) continue; // someone else decided first: answer as they did
                await blobs.DeleteUploadAsync(item.UploadBlob, ct);
                return Refused(refusal);
            }

            var published = new List<Rendition>();
            foreach (var rendition in outcome.Renditions!)
            {
                await blobs.PublishAsync(rendition.Name, rendition.Bytes, rendition.ContentType, ct);
                published.Add(new Rendition(rendition.Name, blobs.PublicUrl(rendition.Name), rendition.ContentType, rendition.Width, rendition.Height, rendition.Bytes.Length));
            }
            var ready = item with { State = MediaItem.Ready, Renditions = published, CompletedAt = time.GetUtcNow(), Ttl = null };
            if (!await media.TryReplaceAsync(ready, ct))
            {
                // A concurrent complete published the same names (same bytes) first: fine, answer it. A DELETE in between
                // removed the item: what was just published belongs to nothing, so it goes too.
                if (await media.FindAsync(id, mediaId, ct) is null)
                {
                    await blobs.UnpublishAsync(id, mediaId, ct);
                    return Problem.NotFound("The media item").ToResult();
                }
                continue;
            }
            await blobs.DeleteUploadAsync(item.UploadBlob, ct);
            return TypedResults.Ok(MediaView.Of(ready, blobs));
        }
        return Problem.Of(ProblemTypes.ConcurrentUpdate, 409, "The media item is being changed by someone else; try again.").ToResult();
    }

    private sealed record Outcome(Refusal? Refusal, IReadOnlyList<RenditionBytes>? Renditions);

    private static async Task<Outcome> InspectAsync(MediaItem item, long length, ETag etag, MediaBlobs blobs, CancellationToken ct)
    {
        var kind = MediaKind.Find(item.Kind)!;
        if (length == 0) return Refuse(ProblemTypes.MediaEmpty, "The upload is empty.");
        if (length > kind.MaxBytes) return Refuse(ProblemTypes.MediaTooLarge, $"The upload is {length} bytes; a {kind.Name} is at most {kind.MaxBytes}.");
        if (length != item.Length) return Refuse(ProblemTypes.MediaLengthMismatch, $"The upload is {length} bytes; {item.Length} were declared.");

        // The header alone first: type and dimensions are known before the rest is even fetched.
        var header = await blobs.ReadUploadAsync(item.UploadBlob, etag, Math.Min(length, MediaInspection.HeaderBytes), ct);
        var actual = MediaInspection.Sniff(header);
        if (actual != item.ContentType)
            return Refuse(ProblemTypes.MediaTypeMismatch, $"The upload is {(actual is null ? "not an accepted type" : actual)}; {item.ContentType} was declared.");

        var prefix = MediaBlobs.RenditionPrefix(item.CampaignId, item.Id);
        if (!kind.IsImage)
        {
            var document = length > header.Length ? await blobs.ReadUploadAsync(item.UploadBlob, etag, length, ct) : header;
            return new Outcome(null, [Renditions.Document(document, prefix)]);
        }

        if (MediaInspection.Dimensions(header, actual) is not { } size)
            return Refuse(ProblemTypes.MediaUnreadable, "The image's header cannot be read.");
        if (size.Width > MediaKind.MaxSide || size.Height > MediaKind.MaxSide || (long)size.Width * size.Height > MediaKind.MaxPixels)
            return Refuse(ProblemTypes.MediaDimensionsTooLarge,
                $"The image is {size.Width} × {size.Height}; at most {MediaKind.MaxSide} pixels a side and {MediaKind.MaxPixels} in all.");

        var bytes = length > header.Length ? await blobs.ReadUploadAsync(item.UploadBlob, etag, length, ct) : header;
        List<RenditionBytes>? renditions;
        // Each decode is bounded (MaxPixels, about 160 MB of pixels and an upright copy); so is how many run at once on an
        // instance, so that many large completes together cannot add up past the instance's memory.
        await Decoding.WaitAsync(ct);
        try
        {
            renditions = Renditions.Make(bytes, kind, prefix, size);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            renditions = null;
        }
        finally
        {
            Decoding.Release();
        }
        return renditions is null
            ? Refuse(ProblemTypes.MediaUnreadable, "The image does not decode.")
            : new Outcome(null, renditions);
    }

    private static Outcome Refuse(string type, string detail) => new(new Refusal(type, detail), null);

    private static IResult Refused(Refusal refusal) =>
        Problem.Of(refusal.Type, 422, "The upload was refused.", refusal.Detail + " Start a new media item to upload again.").ToResult();
}
