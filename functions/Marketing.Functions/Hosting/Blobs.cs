using System.ComponentModel.DataAnnotations;
using Azure.Core;
using Azure.Identity;
using Azure.Storage.Blobs;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Hosting;

/// <summary>
/// Where the app's blobs live. In Azure the account has shared keys off: the app reaches it with its managed
/// identity at <see cref="ServiceUri"/> (and signs links with user-delegation keys). Locally Azurite is reached
/// with its connection string (the well-known dev account key), which also signs links.
/// </summary>
public sealed class BlobOptions : IValidatableObject
{
    public const string Section = "Blobs";

    /// <summary>The account's blob endpoint, e.g. https://stxyz.blob.core.windows.net/ (Azure). Ignored when a connection string is set.</summary>
    public string ServiceUri { get; set; } = "";
    /// <summary>Client id of the user-assigned managed identity (Azure); empty = DefaultAzureCredential.</summary>
    public string? ClientId { get; set; }
    /// <summary>Azurite's connection string: only for the local emulator (it carries the account key).</summary>
    [LocalOnly] public string? ConnectionString { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!string.IsNullOrEmpty(ConnectionString)) yield break;
        if (!Uri.TryCreate(ServiceUri, UriKind.Absolute, out var uri) || (uri.Scheme != "https" && uri.Scheme != "http"))
            yield return new ValidationResult("Blobs:ServiceUri must be an absolute http(s) URL (or Blobs:ConnectionString set, locally).", [nameof(ServiceUri)]);
    }
}

public static class BlobExtensions
{
    public static IServiceCollection AddBlobs(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<BlobOptions>().Bind(configuration.GetSection(BlobOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<BlobOptions>>().Value;
            if (!string.IsNullOrEmpty(options.ConnectionString)) return new BlobServiceClient(options.ConnectionString, ClientOptions());
            return new BlobServiceClient(new Uri(options.ServiceUri), Identity(options.ClientId), ClientOptions());
        });
        services.AddSingleton<Media.BlobSas>();
        return services;
    }

    /// <summary>Bounded retries: a request waiting on storage gives up in seconds rather than the SDK's default minutes.</summary>
    public static BlobClientOptions ClientOptions() => new() { Retry = { MaxRetries = 3, NetworkTimeout = TimeSpan.FromSeconds(30) } };

    /// <summary>The app's managed identity in Azure: the user-assigned one named by <paramref name="clientId"/>, else DefaultAzureCredential.</summary>
    public static TokenCredential Identity(string? clientId) => string.IsNullOrEmpty(clientId)
        ? new DefaultAzureCredential()
        : new ManagedIdentityCredential(ManagedIdentityId.FromUserAssignedClientId(clientId));
}
