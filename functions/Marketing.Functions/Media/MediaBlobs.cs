using Azure;
using Azure.Core;
using Azure.Identity;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Sas;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Media;

/// <summary>An upload link: the URL to PUT to, until when.</summary>
public sealed record UploadLink(Uri Url, DateTimeOffset ExpiresAt);

/// <summary>
/// The media storage account: the private "uploads" container clients write to through a SAS, and the "media"
/// container the renditions are published in (docs/media.md, docs/decisions/0007). Every call is bounded by its token.
/// </summary>
public sealed class MediaBlobs
{
    public const string UploadsContainer = "uploads";
    public const string MediaContainer = "media";
    /// <summary>Renditions never change under their name (the name is their hash): caches may keep them for a year.</summary>
    public const string ImmutableCaching = "public, max-age=31536000, immutable";

    private readonly BlobServiceClient service;
    private readonly StorageSharedKeyCredential? key;
    private readonly MediaOptions options;
    private readonly BlobSas sas;
    private readonly SemaphoreSlim localSetup = new(1, 1);
    private bool localReady;

    public MediaBlobs(IOptions<MediaOptions> settings, BlobSas sas)
    {
        this.sas = sas;
        options = settings.Value;
        var endpoint = new Uri(options.BlobEndpoint);
        // Azurite (or any endpoint given a key) is local: the account key signs requests and upload links. In Azure
        // shared-key access is off: the managed identity signs in, and links are user-delegation SAS.
        if (!string.IsNullOrEmpty(options.AccountKey))
        {
            key = new StorageSharedKeyCredential(new BlobUriBuilder(endpoint).AccountName, options.AccountKey);
            service = new BlobServiceClient(endpoint, key, Hosting.BlobExtensions.ClientOptions());
        }
        else
        {
            service = new BlobServiceClient(endpoint, Hosting.BlobExtensions.Identity(options.ClientId), Hosting.BlobExtensions.ClientOptions());
        }
    }

    /// <summary>
    /// Lets browsers on <paramref name="origin"/> PUT uploads to the account (the console's upload, docs/media.md): the CORS
    /// rule infra/modules/media-storage.bicep declares in Azure, set here on a local account only (Azurite, with its key;
    /// called by the provision command and the browser tests). Adds the origin to the rule if another origin has one, so
    /// runs side by side on one Azurite keep theirs; setting it again changes nothing.
    /// </summary>
    public async Task AllowBrowserUploadsAsync(string origin, CancellationToken ct)
    {
        if (key is null) throw new InvalidOperationException("CORS on the media account is declared in infra/ (Bicep) in Azure, not set by the app.");
        await localSetup.WaitAsync(ct);
        try
        {
            var properties = (await service.GetPropertiesAsync(ct)).Value;
            var rule = properties.Cors.FirstOrDefault(r => r.AllowedMethods.Contains("PUT", StringComparison.Ordinal));
            var origins = rule?.AllowedOrigins.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [];
            if (origins.Contains(origin, StringComparer.OrdinalIgnoreCase)) return;
            if (rule is not null) properties.Cors.Remove(rule);
            properties.Cors.Add(new BlobCorsRule
            {
                AllowedOrigins = string.Join(",", origins.Append(origin)),
                AllowedMethods = "PUT,OPTIONS",
                AllowedHeaders = "content-type,x-ms-blob-type,x-ms-version,x-ms-client-request-id",
                ExposedHeaders = "etag,x-ms-request-id",
                MaxAgeInSeconds = 3600,
            });
            await service.SetPropertiesAsync(properties, ct);
        }
        finally
        {
            localSetup.Release();
        }
    }

    public BlobContainerClient Uploads => service.GetBlobContainerClient(UploadsContainer);
    public BlobContainerClient Published => service.GetBlobContainerClient(MediaContainer);

    /// <summary>The upload blob of a media item: one name per item, derived from the route, so a link writes nothing else.</summary>
    public static string UploadName(string campaignId, string mediaId) => $"{campaignId}/{mediaId}";

    /// <summary>The folder of a media item's renditions; every rendition's name ends in its content hash.</summary>
    public static string RenditionPrefix(string campaignId, string mediaId) => $"{campaignId}/{mediaId}/";

    /// <summary>
    /// A SAS for one blob of the uploads container: create and write only, valid <see cref="MediaOptions.UploadMinutes"/>
    /// from the injected clock, https only when the account is served over https (Azure). Locally signed with the
    /// account key; in Azure with a user-delegation key of the app's identity (Storage Blob Delegator).
    /// </summary>
    public async Task<UploadLink> UploadLinkAsync(string blobName, CancellationToken ct)
    {
        await EnsureLocalContainersAsync(ct);
        var (uri, expires) = await sas.SignAsync(Uploads.GetBlobClient(blobName), BlobSasPermissions.Create | BlobSasPermissions.Write,
            TimeSpan.FromMinutes(options.UploadMinutes), ct);
        return new UploadLink(uri, expires);
    }

    /// <summary>The upload's properties, or null when nothing was uploaded (yet, or any more).</summary>
    public async Task<BlobProperties?> UploadPropertiesAsync(string blobName, CancellationToken ct)
    {
        try
        {
            return (await Uploads.GetBlobClient(blobName).GetPropertiesAsync(cancellationToken: ct)).Value;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>
    /// Up to <paramref name="count"/> bytes of the upload from its start, and only those: the header is checked before
    /// the rest is fetched. Fetched with the etag just read, so a blob rewritten in between is not mixed with it.
    /// </summary>
    public async Task<byte[]> ReadUploadAsync(string blobName, ETag etag, long count, CancellationToken ct)
    {
        var result = await Uploads.GetBlobClient(blobName).DownloadContentAsync(new BlobDownloadOptions
        {
            Range = new HttpRange(0, count),
            Conditions = new BlobRequestConditions { IfMatch = etag },
        }, ct);
        return result.Value.Content.ToArray();
    }

    public async Task DeleteUploadAsync(string blobName, CancellationToken ct)
        => await Uploads.GetBlobClient(blobName).DeleteIfExistsAsync(DeleteSnapshotsOption.IncludeSnapshots, cancellationToken: ct);

    /// <summary>
    /// Writes a rendition under its name with long cache headers. Writing the same name twice writes the same bytes
    /// (the name is their hash), so two completes of one upload, or a retried one, agree.
    /// </summary>
    public async Task PublishAsync(string name, byte[] bytes, string contentType, CancellationToken ct)
        => await Published.GetBlobClient(name).UploadAsync(new BinaryData(bytes), new BlobUploadOptions
        {
            HttpHeaders = new BlobHttpHeaders { ContentType = contentType, CacheControl = ImmutableCaching },
        }, ct);

    /// <summary>Removes everything published under a media item's folder (also what a lost concurrent complete wrote).</summary>
    public async Task UnpublishAsync(string campaignId, string mediaId, CancellationToken ct)
    {
        await foreach (var blob in Published.GetBlobsAsync(new GetBlobsOptions { Prefix = RenditionPrefix(campaignId, mediaId) }, ct))
            await Published.GetBlobClient(blob.Name).DeleteIfExistsAsync(DeleteSnapshotsOption.IncludeSnapshots, cancellationToken: ct);
    }

    /// <summary>The public URL of a published blob: under Media:PublicBaseUrl (a CDN) when set, else the blob's own URL.</summary>
    public string PublicUrl(string name)
        => string.IsNullOrEmpty(options.PublicBaseUrl)
            ? Published.GetBlobClient(name).Uri.ToString()
            : options.PublicBaseUrl.TrimEnd('/') + "/" + name;

    /// <summary>
    /// Azurite starts empty: locally the two containers are created on first use, "media" readable by anyone as in Azure
    /// (docs/decisions/0007). In Azure infra/ creates them and the app's identity could not.
    /// </summary>
    private async Task EnsureLocalContainersAsync(CancellationToken ct)
    {
        if (key is null || localReady) return;
        await localSetup.WaitAsync(ct);
        try
        {
            if (localReady) return;
            await Uploads.CreateIfNotExistsAsync(PublicAccessType.None, cancellationToken: ct);
            await Published.CreateIfNotExistsAsync(PublicAccessType.Blob, cancellationToken: ct);
            localReady = true;
        }
        finally
        {
            localSetup.Release();
        }
    }
}
