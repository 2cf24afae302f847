using Azure.Storage.Blobs;

namespace Marketing.Tests.Support;

/// <summary>The Azurite blob service started by scripts/test.sh (Blobs__ConnectionString, exported by scripts/lib.sh).</summary>
public static class Blobs
{
    public static readonly BlobServiceClient Service = new(Settings.Get("Blobs__ConnectionString"));

    /// <summary>A container of the test's own, created if absent.</summary>
    public static BlobContainerClient Container(string name)
    {
        var container = Service.GetBlobContainerClient(name);
        container.CreateIfNotExists();
        return container;
    }
}
