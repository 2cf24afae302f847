using System.Buffers.Text;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Azure.Cosmos;
using Marketing.Functions.Telemetry;

namespace Marketing.Functions.Hosting;

/// <summary>One page of a list, and the opaque token of the next (null: the list ends here).</summary>
public sealed record Page<T>(List<T> Items, string? ContinuationToken);

/// <summary>A page token this API did not issue for this list, or one Cosmos DB refused.</summary>
public sealed class InvalidPageTokenException(string reason, Exception? inner = null) : Exception(reason, inner);

/// <summary>
/// Paged lists of documents, the same way everywhere.
///
/// Page tokens are opaque: "v1." + base64url(8 bytes naming the query + the Cosmos DB continuation). Clients
/// never see Cosmos JSON, so they cannot build tokens that crash the SDK ({}, [], null, {"token":null} used to
/// answer 500), and a token only fits the list (query, filters, partition) it came from: one from another list
/// or filter is refused here, before Cosmos DB sees it. A token that decodes but that Cosmos DB or the SDK
/// rejects anyway is refused too. Every refusal is <see cref="InvalidPageTokenException"/>, which the error
/// handler answers as 400 invalid-page-token.
///
/// A page is filled: Cosmos DB may answer a page shorter than asked (even empty) while more results exist
/// (its per-page time and size budgets), so the next Cosmos page is read, asking only for what is missing,
/// until the page is full or the results end, or after <see cref="MaxReadsPerPage"/> reads (the client then
/// goes on with the token: only a null token means the end).
///
/// A document that cannot be read (a wrong type, a missing member) is skipped and logged, never a 500 for the
/// whole list: one bad document must not take every operator's list down.
/// </summary>
public static class Paging
{
    /// <summary>The query parameter that carries a page token, on every paged route.</summary>
    public const string TokenParameter = "continuationToken";
    public const string Version = "v1";
    /// <summary>Longer tokens are refused unread (Cosmos DB continuations of our single-partition queries are a few hundred characters).</summary>
    public const int MaxTokenLength = 4096;
    public const int MaxReadsPerPage = 10;
    /// <summary>The cap on a cross-partition Cosmos continuation (KB): base64 of 2 KB plus the scope is ~2.8 K characters.</summary>
    public const int CrossPartitionContinuationKb = 2;

    /// <summary>What every paged route says about paging in the OpenAPI document.</summary>
    public const string Description =
        "Paged: pass the continuationToken of a page, unchanged, to get the next; a null token means the list ends. Tokens are opaque "
        + "and only fit the list and filters they came from; any other value is 400 invalid-page-token. A page may hold fewer than "
        + "limit items (an unreadable item is skipped) while more follow.";
    private const int ScopeLength = 8;

    /// <summary>
    /// The <c>limit</c> query parameter of a paged route, 1 to <paramref name="max"/> (null when not given). Bound as text
    /// and checked here, not as <c>int?</c> by the framework: a binding failure ("limit=ten") would answer alone, before the
    /// handler could name the route's other bad fields, while a route answers every field error at once. An error goes
    /// into <paramref name="errors"/> under "limit".
    /// </summary>
    public static int? Limit(string? text, int max, Dictionary<string, string[]> errors)
    {
        if (text is null) return null;
        if (int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n >= 1 && n <= max)
            return n;
        errors["limit"] = [$"1 to {max}."];
        return null;
    }

    /// <summary>
    /// Reads one page of <paramref name="query"/> in one partition (null: across partitions), starting at <paramref name="pageToken"/>
    /// (null: the first page). Throws <see cref="InvalidPageTokenException"/> for a token that is not one of this list's.
    /// </summary>
    public static async Task<Page<T>> ReadPageAsync<T>(this Container container, QueryDefinition query, PartitionKey? partition,
        int pageSize, string? pageToken, ILogger logger, CancellationToken ct, bool optimisticDirectExecution = false)
    {
        var scope = Scope(container, query, partition);
        var continuation = pageToken is null ? null : Decode(pageToken, scope);
        var items = new List<T>(pageSize);
        for (var reads = 0; ;)
        {
            var fromClient = reads == 0 && continuation is not null;
            // A fresh iterator per read, so each asks Cosmos DB only for what the page still lacks.
            using var iterator = container.GetItemQueryStreamIterator(query, continuation, new QueryRequestOptions
            {
                PartitionKey = partition,
                MaxItemCount = pageSize - items.Count,
                // Across partitions too when asked (the local emulator serves no query plans): in Azure the SDK runs the
                // query directly only while the container has one partition range. A page token taken before a split may
                // then be refused after it (400 invalid-page-token: the client starts the list again), never misread.
                EnableOptimisticDirectExecution = optimisticDirectExecution,
                // A cross-partition continuation names a position in every partition range and can grow to ~16 KB; capped so
                // its token stays within MaxTokenLength (and an approvals token wrapping it, within that plus its prefix).
                ResponseContinuationTokenLimitInKb = partition is null ? CrossPartitionContinuationKb : null,
            });
            ResponseMessage response;
            try
            {
                response = await iterator.ReadNextAsync(ct);
            }
            catch (Exception e) when (fromClient && !Platform.IsTransient(e, ct))
            {
                // The SDK takes some well-formed but foreign continuations for another kind of query and fails
                // building its pipeline (an ArgumentNullException), before any request: still the token's fault.
                // The scope bytes can be copied from a real token, so whatever else a client-made continuation
                // makes the SDK throw is the token's fault too (throttling and timeouts stay 503).
                throw new InvalidPageTokenException("Cosmos DB cannot continue from this token.", e);
            }
            using (response)
            {
                if (fromClient && response.StatusCode == HttpStatusCode.BadRequest)
                    throw new InvalidPageTokenException("Cosmos DB cannot continue from this token.");
                response.EnsureSuccessStatusCode();
                await AddReadableAsync(response.Content, items, container.Id, logger, ct);
                continuation = response.ContinuationToken;
            }
            reads++;
            if (continuation is null || items.Count >= pageSize || reads >= MaxReadsPerPage) break;
        }
        return new Page<T>(items, continuation is null ? null : Encode(scope, continuation));
    }

    /// <summary>
    /// <see cref="ReadPageAsync{T}"/> over every partition (the approvers' queues: a few waiting requests spread over many
    /// partitions). Only for queries an index serves with a selective filter: each page costs a request to every physical partition.
    /// </summary>
    public static Task<Page<T>> ReadCrossPartitionPageAsync<T>(this Container container, QueryDefinition query, int pageSize,
        string? pageToken, ILogger logger, CancellationToken ct)
        => container.ReadPageAsync<T>(query, null, pageSize, pageToken, logger, ct, optimisticDirectExecution: true);

    /// <summary>Every readable result of <paramref name="query"/> in one partition; unreadable documents are skipped and logged.</summary>
    public static async Task<List<T>> ReadAllReadableAsync<T>(this Container container, QueryDefinition query, PartitionKey partition,
        ILogger logger, CancellationToken ct, bool optimisticDirectExecution = false)
    {
        var items = new List<T>();
        using var iterator = container.GetItemQueryStreamIterator(query, requestOptions: new QueryRequestOptions
        {
            PartitionKey = partition,
            EnableOptimisticDirectExecution = optimisticDirectExecution,
        });
        while (iterator.HasMoreResults)
        {
            using var response = await iterator.ReadNextAsync(ct);
            response.EnsureSuccessStatusCode();
            await AddReadableAsync(response.Content, items, container.Id, logger, ct);
        }
        return items;
    }

    /// <summary>The opaque token for a Cosmos DB continuation of the query named by <paramref name="scope"/>.</summary>
    public static string Encode(ReadOnlySpan<byte> scope, string continuation)
    {
        var bytes = new byte[ScopeLength + Encoding.UTF8.GetByteCount(continuation)];
        scope[..ScopeLength].CopyTo(bytes);
        Encoding.UTF8.GetBytes(continuation, bytes.AsSpan(ScopeLength));
        return Version + "." + Base64Url.EncodeToString(bytes);
    }

    /// <summary>The Cosmos DB continuation inside <paramref name="token"/>, if it is a token of the query named by <paramref name="scope"/>.</summary>
    public static string Decode(string token, ReadOnlySpan<byte> scope)
    {
        if (token.Length is 0 or > MaxTokenLength)
            throw new InvalidPageTokenException($"A page token is 1 to {MaxTokenLength} characters, exactly as the previous page returned it.");
        if (!token.StartsWith(Version + ".", StringComparison.Ordinal))
            throw new InvalidPageTokenException("Not a page token of this API: pass the continuationToken of the previous page unchanged.");
        byte[] bytes;
        try
        {
            bytes = Base64Url.DecodeFromChars(token.AsSpan(Version.Length + 1));
        }
        catch (FormatException)
        {
            throw new InvalidPageTokenException("The page token is damaged: pass it unchanged.");
        }
        if (bytes.Length <= ScopeLength || !bytes.AsSpan(0, ScopeLength).SequenceEqual(scope[..ScopeLength]))
            throw new InvalidPageTokenException("This page token belongs to another list or filter: start again without a token.");
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes, ScopeLength, bytes.Length - ScopeLength);
        }
        catch (DecoderFallbackException)
        {
            throw new InvalidPageTokenException("The page token is damaged: pass it unchanged.");
        }
    }

    /// <summary>
    /// Names a query: its container, text, parameter values and partition. Not a secret (a forged token can only
    /// move within the partition the server chose); it keeps a token to the list it came from.
    /// </summary>
    public static byte[] Scope(Container container, QueryDefinition query, PartitionKey? partition)
    {
        var text = new StringBuilder().Append(container.Id).Append('\n').Append(query.QueryText).Append('\n').Append(partition?.ToString() ?? "(all partitions)");
        foreach (var (name, value) in query.GetQueryParameters())
            text.Append('\n').Append(name).Append('=').Append(JsonSerializer.Serialize(value, Json.Storage));
        return SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString()))[..ScopeLength];
    }

    private static async Task AddReadableAsync<T>(Stream content, List<T> items, string containerName, ILogger logger, CancellationToken ct)
    {
        using var page = await JsonDocument.ParseAsync(content, cancellationToken: ct);
        foreach (var document in page.RootElement.GetProperty("Documents").EnumerateArray())
        {
            try
            {
                if (document.Deserialize<T>(Json.Storage) is { } item) items.Add(item);
            }
            catch (JsonException e)
            {
                var id = document.ValueKind == JsonValueKind.Object && document.TryGetProperty("id", out var value) ? value.ToString() : "(no id)";
                logger.UnreadableDocumentSkipped(id, containerName, e);
            }
        }
    }
}
