using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Specialized;
using Azure.Storage.Sas;

namespace Marketing.Functions.Media;

/// <summary>
/// A link to one blob with only the given permissions, valid for a short time: a service SAS scoped to that blob
/// (sr=b), so it reaches no other blob or container. Signed with the account key when the client has one (Azurite
/// locally), else with a user-delegation key obtained by the app's identity (Azure, where shared keys are off; the
/// identity needs Storage Blob Delegator, or a data role that includes generateUserDelegationKey). The clock is the
/// app's <see cref="TimeProvider"/>: tests sign links in the past to prove expiry.
/// </summary>
public sealed class BlobSas(TimeProvider time)
{
    /// <summary>Tolerates clock skew between this instance and the storage service for the start of validity.</summary>
    public static readonly TimeSpan Skew = TimeSpan.FromMinutes(5);

    public async Task<(Uri Uri, DateTimeOffset ExpiresOn)> SignAsync(BlobClient blob, BlobSasPermissions permissions, TimeSpan lifetime, CancellationToken ct)
    {
        // A SAS states its times in whole seconds: sign from a whole second, so the expiry we report is the link's.
        var now = time.GetUtcNow();
        now = now.AddTicks(-(now.UtcTicks % TimeSpan.TicksPerSecond));
        var builder = new BlobSasBuilder
        {
            BlobContainerName = blob.BlobContainerName,
            BlobName = blob.Name,
            Resource = "b",
            StartsOn = now - Skew,
            ExpiresOn = now + lifetime,
            // Plain http only for the loopback emulator; a link to Azure is https only.
            Protocol = blob.Uri.IsLoopback ? SasProtocol.HttpsAndHttp : SasProtocol.Https,
        };
        builder.SetPermissions(permissions);
        if (blob.CanGenerateSasUri) return (blob.GenerateSasUri(builder), builder.ExpiresOn);

        var service = blob.GetParentBlobContainerClient().GetParentBlobServiceClient();
        // A delegation key is valid at most 7 days; this one covers exactly the link's validity.
        var key = await service.GetUserDelegationKeyAsync(builder.StartsOn, builder.ExpiresOn, ct);
        var uri = new BlobUriBuilder(blob.Uri) { Sas = builder.ToSasQueryParameters(key.Value, service.AccountName) };
        return (uri.ToUri(), builder.ExpiresOn);
    }
}
