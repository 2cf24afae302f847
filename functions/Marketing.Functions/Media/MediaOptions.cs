using System.ComponentModel.DataAnnotations;
using Marketing.Functions.Hosting;

namespace Marketing.Functions.Media;

/// <summary>Where campaign media lives (docs/media.md). Bound from the "Media" section (Media__* settings).</summary>
public sealed class MediaOptions : IValidatableObject
{
    public const string Section = "Media";

    /// <summary>
    /// The media storage account's blob endpoint: https://acct.blob.core.windows.net/ in Azure, Azurite's
    /// http://127.0.0.1:10000/devstoreaccount1 locally.
    /// </summary>
    [Required] public string BlobEndpoint { get; set; } = "";
    /// <summary>
    /// Account key: only for Azurite (upload links signed with the account key). In Azure shared-key access is off and
    /// upload links are user-delegation SAS obtained with the managed identity.
    /// </summary>
    [LocalOnly] public string? AccountKey { get; set; }
    /// <summary>Client id of the user-assigned managed identity (Azure); empty = DefaultAzureCredential.</summary>
    public string? ClientId { get; set; }
    /// <summary>
    /// Where the published renditions are read from (a CDN endpoint in front of the media container, or the container's
    /// own URL), without a trailing slash; empty = the media container's blob URL.
    /// </summary>
    public string? PublicBaseUrl { get; set; }
    /// <summary>How long an upload link stays valid: the client must start its PUT within this time.</summary>
    [Range(1, 60)] public int UploadMinutes { get; set; } = 10;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!Uri.TryCreate(BlobEndpoint, UriKind.Absolute, out var uri) || (uri.Scheme != "https" && uri.Scheme != "http"))
            yield return new ValidationResult("Media:BlobEndpoint must be an absolute http(s) URL.", [nameof(BlobEndpoint)]);
        if (!string.IsNullOrEmpty(PublicBaseUrl) && (!Uri.TryCreate(PublicBaseUrl, UriKind.Absolute, out var cdn) || (cdn.Scheme != "https" && cdn.Scheme != "http")))
            yield return new ValidationResult("Media:PublicBaseUrl must be empty or an absolute http(s) URL.", [nameof(PublicBaseUrl)]);
    }
}
