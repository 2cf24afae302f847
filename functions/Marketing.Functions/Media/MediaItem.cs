namespace Marketing.Functions.Media;

/// <summary>
/// One published web rendition of a media item (or the PDF itself), under a content-addressed name. <c>Url</c> is stored
/// as it was when published; answers give the URL under today's Media:PublicBaseUrl (<see cref="MediaView.Of"/>), so a
/// CDN put in front later serves every rendition, old ones included.
/// </summary>
public sealed record Rendition(string Name, string Url, string ContentType, int? Width, int? Height, long Bytes);

/// <summary>Why an upload was refused: its stable problem type and the words for the operator.</summary>
public sealed record Refusal(string Type, string Detail);

/// <summary>
/// A campaign's media item (container "media", partition /campaignId): what the operator declared, where the upload
/// goes, and once completed either its renditions (ready) or why it was refused. A pending or refused item carries a
/// "ttl", so an upload link nobody used does not leave a document forever; a ready one does not.
/// </summary>
public sealed record MediaItem
{
    public const string Pending = "pending";
    public const string Ready = "ready";
    public const string Refused = "refused";

    /// <summary>A pending item is removed two days after its link was issued (the link is valid minutes; the blob goes after a day).</summary>
    public const int PendingTtlSeconds = 2 * 24 * 3600;
    /// <summary>A refused item stays a week, so the operator's client can still read why.</summary>
    public const int RefusedTtlSeconds = 7 * 24 * 3600;

    public required string Id { get; init; }
    public required string CampaignId { get; init; }
    public required string Kind { get; init; }
    public required string ContentType { get; init; }
    public required long Length { get; init; }
    public required string State { get; init; }
    /// <summary>The blob in the uploads container the link lets the client write.</summary>
    public required string UploadBlob { get; init; }
    public IReadOnlyList<Rendition> Renditions { get; init; } = [];
    public Refusal? Refusal { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required string CreatedBy { get; init; }
    public DateTimeOffset? CompletedAt { get; init; }
    public int? Ttl { get; init; }
    /// <summary>The etag it was read with (not stored).</summary>
    [System.Text.Json.Serialization.JsonPropertyName("_etag")] public string? ETag { get; init; }
}

/// <summary>A media item as the API shows it.</summary>
public sealed record MediaView(string MediaId, string CampaignId, string Kind, string ContentType, long Length, string State,
    IReadOnlyList<Rendition> Renditions, Refusal? Refusal, DateTimeOffset CreatedAt, string CreatedBy, DateTimeOffset? CompletedAt)
{
    public static MediaView Of(MediaItem m, MediaBlobs blobs) =>
        new(m.Id, m.CampaignId, m.Kind, m.ContentType, m.Length, m.State, m.Renditions.Select(r => r with { Url = blobs.PublicUrl(r.Name) }).ToList(),
            m.Refusal, m.CreatedAt, m.CreatedBy, m.CompletedAt);
}
