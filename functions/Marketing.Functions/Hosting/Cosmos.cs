using System.ComponentModel.DataAnnotations;
using System.Runtime.CompilerServices;
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
    /// <summary>
    /// Longest any one Cosmos call (with the SDK's own retries) may take before it is cancelled. In Gateway mode
    /// the SDK's HTTP timeout is at least 65 s whatever RequestTimeout says, so this is the real bound.
    /// </summary>
    [Range(1, 60)] public int CallTimeoutSeconds { get; set; } = 10;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!Uri.TryCreate(Endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != "https" && uri.Scheme != "http"))
            yield return new ValidationResult("Cosmos:Endpoint must be an absolute http(s) URL.", [nameof(Endpoint)]);
    }
}

/// <summary>
/// A container the app uses, with its partition key path. Stores declare theirs here; provisioning
/// (scripts, tests) and the infra contract tests read this list, so it is the single source of truth.
/// <paramref name="DefaultTtl"/> is the container's Cosmos "defaultTtl": null = time to live off (an item's
/// "ttl" is ignored), -1 = on with no default (only items that carry a "ttl" expire, that many seconds after
/// their last write). A store that writes "ttl" on its items must declare -1, or they never expire.
/// </summary>
public sealed record ContainerSpec(string Name, string PartitionKeyPath, string[] ExcludedPaths, int? DefaultTtl = null);

/// <summary>
/// Counts Cosmos requests; the load tool reports round trips per claim from it. A job can also count its own requests
/// alone, while others run beside it (<see cref="CountOwn"/>): a timer run reports what it cost.
/// </summary>
public sealed class CosmosRequestCounter : RequestHandler
{
    private static readonly AsyncLocal<StrongBox<long>?> Own = new();
    private long count;
    public long Count => Interlocked.Read(ref count);

    /// <summary>From here on, requests sent by this async flow (and the flows it starts) also count in the box returned.</summary>
    public static StrongBox<long> CountOwn() => Own.Value = new StrongBox<long>();

    public override Task<ResponseMessage> SendAsync(RequestMessage request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref count);
        if (Own.Value is { } own) Interlocked.Increment(ref own.Value);
        return base.SendAsync(request, cancellationToken);
    }
}

/// <summary>
/// Bounds every Cosmos call, whatever token its caller passed (steps that must not stop when the client goes
/// away pass none). Outermost handler, so the bound covers the SDK's retries; a call past it fails with an
/// OperationCanceledException, which the HTTP layer answers 503 and every write path is safe to retry.
/// </summary>
public sealed class CosmosCallDeadline(TimeSpan timeout) : RequestHandler
{
    public override async Task<ResponseMessage> SendAsync(RequestMessage request, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        return await base.SendAsync(request, deadline.Token);
    }
}

/// <summary>
/// Cosmos documents use the same System.Text.Json settings as the API (lenient on unknown members). Nothing
/// is written that could not be read back: an integer beyond 2^53 − 1 is refused here (see <see cref="Limits"/>).
/// </summary>
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
        Limits.CheckStorable(stream.GetBuffer().AsSpan(0, (int)stream.Length));
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
                // Direct mode's per-request timeout; in Gateway mode the HTTP timeout is at least 65 s whatever this
                // says, so CosmosCallDeadline below is what really bounds a call (docs/claiming.md: a claim stuck
                // between "stock taken" and "coupon written" must end well within the reconciliation quiet period).
                RequestTimeout = TimeSpan.FromSeconds(options.CallTimeoutSeconds),
                MaxRetryAttemptsOnRateLimitedRequests = 5,
                MaxRetryWaitTimeOnRateLimitedRequests = TimeSpan.FromSeconds(5),
                CustomHandlers = { new CosmosCallDeadline(TimeSpan.FromSeconds(options.CallTimeoutSeconds)), sp.GetRequiredService<CosmosRequestCounter>() },
                // Per-operation spans (ActivitySource Azure.Cosmos.Operation, with request charge and status) only when the
                // app collects telemetry (Telemetry/TelemetryModule.cs): they cost CPU on the hot path. Service-side
                // metrics are never sent.
                CosmosClientTelemetryOptions = new CosmosClientTelemetryOptions
                {
                    DisableDistributedTracing = sp.GetService<Marketing.Functions.Telemetry.TelemetryModule.Switch>()?.On != true,
                    DisableSendingMetricsToService = true,
                },
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
            properties.DefaultTimeToLive = spec.DefaultTtl;
            await db.CreateContainerIfNotExistsAsync(properties, cancellationToken: cancellationToken);
        }
    }
}

public static class ContainerExtensions
{
    /// <summary>
    /// A fresh value written into every whole-document write, so that a 409 or 412 can be told apart:
    /// against a real account the SDK may re-send a write whose first attempt was applied, and the second
    /// attempt then fails on the first one's result. Only the stamp says "we did" rather than "someone else
    /// got there first" (their document may even hold the same content). Readers ignore it.
    /// </summary>
    public const string WriteStamp = "writeStamp";

    /// <summary>Creates the document unless one with its id exists in the partition; false then.</summary>
    public static async Task<bool> TryCreateAsync<T>(this Container container, T document, string partitionKey, CancellationToken ct)
        => await container.TryWriteAsync(document, partitionKey, etag: null, ct) is not null;

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
    public static async Task<bool> TrySaveAsync<T>(this Container container, T document, string partitionKey, string? etag, CancellationToken ct)
        => await container.TryWriteAsync(document, partitionKey, etag, ct) is not null;

    /// <summary>
    /// Creates the document (<paramref name="etag"/> null) or replaces it if unchanged since read, with a fresh
    /// <see cref="WriteStamp"/>. Returns the new etag, or null when someone else's write refused ours (409, 412,
    /// or 404 for a replace); a refusal caused by our own earlier attempt counts as success. Safe to send twice.
    /// </summary>
    public static async Task<string?> TryWriteAsync<T>(this Container container, T document, string partitionKey, string? etag, CancellationToken ct)
    {
        var body = JsonSerializer.SerializeToNode(document, Json.Storage)!.AsObject();
        body.Remove("_etag");
        var stamp = Guid.NewGuid().ToString("N");
        body[WriteStamp] = stamp;
        var id = (string)body["id"]!;
        var key = new PartitionKey(partitionKey);
        var options = new ItemRequestOptions { EnableContentResponseOnWrite = false, IfMatchEtag = etag };
        var bytes = JsonSerializer.SerializeToUtf8Bytes(body, Json.Storage);
        Limits.CheckStorable(bytes); // written as a stream, so not through StorageSerializer: the same check here
        using var stream = new MemoryStream(bytes);
        using var response = etag is null
            ? await container.CreateItemStreamAsync(stream, key, options, ct)
            : await container.ReplaceItemStreamAsync(stream, id, key, options, ct);
        if (response.IsSuccessStatusCode) return response.Headers.ETag;
        // Someone else's write refuses ours: 409 for a create, 412 (or 404, deleted) for a replace. Anything else,
        // a missing container for one, is an error, never a race lost.
        var refused = etag is null
            ? response.StatusCode == System.Net.HttpStatusCode.Conflict
            : response.StatusCode is System.Net.HttpStatusCode.PreconditionFailed or System.Net.HttpStatusCode.NotFound;
        if (!refused) response.EnsureSuccessStatusCode(); // throws the CosmosException callers already handle

        return await container.ETagIfStampedAsync(id, key, stamp, ct);
    }

    /// <summary>
    /// A patch filtered on <paramref name="filter"/> (the part after WHERE), stamped like <see cref="TryWriteAsync"/>.
    /// True when applied, also when the SDK re-sent it and the second attempt was refused by the first one's
    /// effect; false when the filter refused it or the document is missing. For documents few writers share (a
    /// ledger entry, a customer's wallet): on a hot document another write may replace the stamp before the
    /// check reads it, so there the filter itself must make a repeat harmless.
    /// </summary>
    public static async Task<bool> TryPatchAsync<T>(this Container container, string id, string partitionKey, IReadOnlyList<PatchOperation> operations,
        string filter, CancellationToken ct)
    {
        var stamp = Guid.NewGuid().ToString("N");
        var key = new PartitionKey(partitionKey);
        try
        {
            await container.PatchItemAsync<T>(id, key, [.. operations, PatchOperation.Set("/" + WriteStamp, stamp)],
                new PatchItemRequestOptions { FilterPredicate = "FROM c WHERE " + filter, EnableContentResponseOnWrite = false }, ct);
            return true;
        }
        catch (CosmosException e) when (e.StatusCode == System.Net.HttpStatusCode.PreconditionFailed)
        {
            return await container.ETagIfStampedAsync(id, key, stamp, ct) is not null;
        }
        catch (CosmosException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return false;
        }
    }

    /// <summary>The document's etag when its <see cref="WriteStamp"/> is <paramref name="stamp"/> (our write landed), else null.</summary>
    private static async Task<string?> ETagIfStampedAsync(this Container container, string id, PartitionKey key, string stamp, CancellationToken ct)
    {
        using var stored = await container.ReadItemStreamAsync(id, key, cancellationToken: ct);
        if (stored.StatusCode == System.Net.HttpStatusCode.NotFound) return null;
        stored.EnsureSuccessStatusCode(); // a failed read says nothing about whose write landed: an error, not "not ours"
        using var json = await JsonDocument.ParseAsync(stored.Content, cancellationToken: ct);
        return json.RootElement.TryGetProperty(WriteStamp, out var found) && found.ValueKind == JsonValueKind.String && found.GetString() == stamp
            ? stored.Headers.ETag : null;
    }
}
