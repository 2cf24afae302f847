using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using Azure.Core;
using Azure.Identity;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Hosting;

public sealed class CosmosOptions : IValidatableObject
{
    public const string Section = "Cosmos";

    /// <summary>Account endpoint, e.g. https://acct.documents.azure.com:443/ or the local emulator's http URL.</summary>
    [Required] public string Endpoint { get; set; } = "";
    [Required] public string Database { get; set; } = "marketing";
    /// <summary>Account key: only for the local emulator. In Azure local auth is off and the app uses its managed identity.</summary>
    [LocalOnly] public string? Key { get; set; }
    /// <summary>Client id of the user-assigned managed identity (Azure); empty = DefaultAzureCredential.</summary>
    public string? ClientId { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!Uri.TryCreate(Endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != "https" && uri.Scheme != "http"))
            yield return new ValidationResult("Cosmos:Endpoint must be an absolute http(s) URL.", [nameof(Endpoint)]);
    }
}

/// <summary>
/// A container the app uses, with its partition key path. Stores declare theirs here; provisioning
/// (scripts, tests) and the infra contract tests read this list, so it is the single source of truth.
/// </summary>
public sealed record ContainerSpec(string Name, string PartitionKeyPath, string[] ExcludedPaths);

/// <summary>Counts Cosmos requests; the load tool reports round trips per claim from it.</summary>
public sealed class CosmosRequestCounter : RequestHandler
{
    private long count;
    public long Count => Interlocked.Read(ref count);

    public override Task<ResponseMessage> SendAsync(RequestMessage request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref count);
        return base.SendAsync(request, cancellationToken);
    }
}

/// <summary>Cosmos documents use the same System.Text.Json settings as the API (lenient on unknown members).</summary>
public sealed class StorageSerializer : CosmosSerializer
{
    public override T FromStream<T>(Stream stream)
    {
        using (stream)
        {
            if (typeof(Stream).IsAssignableFrom(typeof(T))) return (T)(object)stream;
            return JsonSerializer.Deserialize<T>(stream, Json.Storage)!;
        }
    }

    public override Stream ToStream<T>(T input)
    {
        var stream = new MemoryStream();
        JsonSerializer.Serialize(stream, input, Json.Storage);
        stream.Position = 0;
        return stream;
    }
}

public static class CosmosExtensions
{
    public static IServiceCollection AddCosmos(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<CosmosOptions>().Bind(configuration.GetSection(CosmosOptions.Section))
            .ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<CosmosRequestCounter>();
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<CosmosOptions>>().Value;
            var clientOptions = new CosmosClientOptions
            {
                Serializer = new StorageSerializer(),
                ApplicationName = "marketing-functions",
                // Gateway mode: one HTTPS endpoint, friendly to Flex Consumption networking and to the emulator.
                ConnectionMode = ConnectionMode.Gateway,
                // Bounded so that a request stuck between "stock taken" and "coupon written" ends well within
                // the reconciliation quiet period (see docs/claiming.md).
                RequestTimeout = TimeSpan.FromSeconds(10),
                MaxRetryAttemptsOnRateLimitedRequests = 5,
                MaxRetryWaitTimeOnRateLimitedRequests = TimeSpan.FromSeconds(5),
                CustomHandlers = { sp.GetRequiredService<CosmosRequestCounter>() },
                // Per-request tracing and service-side metrics cost CPU on the hot path; Application Insights
                // sees requests through the Functions host instead.
                CosmosClientTelemetryOptions = new CosmosClientTelemetryOptions { DisableDistributedTracing = true, DisableSendingMetricsToService = true },
            };
            // Further handlers registered as RequestHandler (the test rig adds its Azure-strictness checks and
            // fault injection this way), after the counter so that it counts what the app asked for.
            foreach (var handler in sp.GetServices<RequestHandler>())
                clientOptions.CustomHandlers.Add(handler);
            var endpoint = new Uri(options.Endpoint);
            if (endpoint.IsLoopback)
            {
                // The local emulator has a single endpoint and no regional replicas to discover.
                clientOptions.LimitToEndpoint = true;
            }
            if (!string.IsNullOrEmpty(options.Key))
                return new CosmosClient(options.Endpoint, options.Key, clientOptions);
            TokenCredential credential = string.IsNullOrEmpty(options.ClientId)
                ? new DefaultAzureCredential()
                : new ManagedIdentityCredential(ManagedIdentityId.FromUserAssignedClientId(options.ClientId));
            return new CosmosClient(options.Endpoint, credential, clientOptions);
        });
        services.AddSingleton(sp => sp.GetRequiredService<CosmosClient>()
            .GetDatabase(sp.GetRequiredService<IOptions<CosmosOptions>>().Value.Database));
        return services;
    }

    /// <summary>
    /// Creates the database and every container if missing (local emulators and tests; Azure uses infra/).
    /// Refuses index paths Azure would refuse, before creating anything: the emulator would accept them.
    /// </summary>
    public static async Task ProvisionAsync(CosmosClient client, string database, IEnumerable<ContainerSpec> containers,
        CancellationToken cancellationToken = default)
    {
        containers = containers.ToList();
        var invalid = containers.SelectMany(spec => spec.ExcludedPaths
                .Select(path => (path, problem: IndexPath.Problem(path)))
                .Where(p => p.problem is not null)
                .Select(p => $"{spec.Name}: {p.path} {p.problem}"))
            .ToList();
        if (invalid.Count > 0)
            throw new ArgumentException("Invalid index paths (Azure would refuse these containers): " + string.Join("; ", invalid), nameof(containers));
        var db = (await client.CreateDatabaseIfNotExistsAsync(database, cancellationToken: cancellationToken)).Database;
        foreach (var spec in containers)
        {
            var properties = new ContainerProperties(spec.Name, spec.PartitionKeyPath);
            foreach (var path in spec.ExcludedPaths)
                properties.IndexingPolicy.ExcludedPaths.Add(new ExcludedPath { Path = path });
            await db.CreateContainerIfNotExistsAsync(properties, cancellationToken: cancellationToken);
        }
    }
}

public static class ContainerExtensions
{
    /// <summary>Creates the document unless one with its id exists in the partition; false then.</summary>
    public static async Task<bool> TryCreateAsync<T>(this Container container, T document, string partitionKey, CancellationToken ct)
    {
        try
        {
            await container.CreateItemAsync(document, new PartitionKey(partitionKey), new ItemRequestOptions { EnableContentResponseOnWrite = false }, ct);
            return true;
        }
        catch (CosmosException e) when (e.StatusCode == System.Net.HttpStatusCode.Conflict)
        {
            return false;
        }
    }

    /// <summary>A point read; null when the document does not exist.</summary>
    public static async Task<ItemResponse<T>?> ReadOrNullAsync<T>(this Container container, string id, string partitionKey, CancellationToken ct)
    {
        try
        {
            return await container.ReadItemAsync<T>(id, new PartitionKey(partitionKey), cancellationToken: ct);
        }
        catch (CosmosException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>
    /// Optimistic write of a whole document: creates it when <paramref name="etag"/> is null (nothing was read),
    /// else replaces it only if it is unchanged since it was read. False when someone else wrote first: read again and retry.
    /// </summary>
    public static async Task<bool> TrySaveAsync<T>(this Container container, T document, string id, string partitionKey, string? etag,
        CancellationToken ct)
    {
        var options = new ItemRequestOptions { EnableContentResponseOnWrite = false };
        try
        {
            if (etag is null)
                await container.CreateItemAsync(document, new PartitionKey(partitionKey), options, ct);
            else
            {
                options.IfMatchEtag = etag;
                await container.ReplaceItemAsync(document, id, new PartitionKey(partitionKey), options, ct);
            }
            return true;
        }
        catch (CosmosException e) when (e.StatusCode is System.Net.HttpStatusCode.Conflict or System.Net.HttpStatusCode.PreconditionFailed)
        {
            return false;
        }
    }
}
