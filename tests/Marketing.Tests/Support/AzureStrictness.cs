using System.Net;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;

namespace Marketing.Tests.Support;

/// <summary>
/// Refuses, as Azure Cosmos DB does, the SQL the npm emulator lets through: every query text and every patch
/// filter predicate the app sends is parsed with the Cosmos SDK's own query grammar, property names that are
/// reserved words must use bracket notation (<c>c["left"]</c>, not <c>c.left</c>), and a patch filter must
/// start with <c>FROM</c>. A refused request never reaches the emulator: it answers 400 BadRequest with Cosmos
/// DB's syntax-error shape (code SC1001), so the SDK throws the same <see cref="CosmosException"/> it would in
/// Azure. Every Cosmos client of the test suite carries it (see <see cref="TestCosmos"/>, <see cref="TestApp"/>).
/// The size, patch-length, id and number limits are enforced by the launcher (scripts/cosmos-emulator.js),
/// so process-based tests and the load tool get them too. See docs/local-emulators.md and docs/cosmos-limits.md.
/// </summary>
public sealed class AzureStrictness : RequestHandler
{
    /// <summary>
    /// Words Cosmos DB's query language reserves: the keywords of the SDK grammar (sql.g4, which mirrors the
    /// service's) that it does not accept as identifiers, with the keywords the documentation lists. A property
    /// with one of these names must be written <c>c["name"]</c>. Compared case-insensitively.
    /// </summary>
    public static readonly IReadOnlySet<string> ReservedWords = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "AND", "ARRAY", "AS", "ASC", "BETWEEN", "BY", "DESC", "DISTINCT", "ESCAPE", "EXISTS", "FALSE", "FROM", "GROUP",
        "IN", "JOIN", "LEFT", "LIKE", "LIMIT", "NOT", "NULL", "OFFSET", "OR", "ORDER", "RANK", "RIGHT", "SELECT", "TOP",
        "TRUE", "UDF", "UNDEFINED", "VALUE", "WHERE",
    };

    public override async Task<ResponseMessage> SendAsync(RequestMessage request, CancellationToken cancellationToken)
    {
        var contentType = request.Headers.ContentType ?? "";
        string? refusal = null;
        if (request.Content is not null && contentType.StartsWith("application/query+json", StringComparison.OrdinalIgnoreCase))
        {
            var body = await ReadBodyAsync(request, cancellationToken);
            if (body is JsonObject spec && spec["query"]?.GetValue<string>() is { } query)
                refusal = CheckQuery(query);
        }
        else if (request.Content is not null && request.Method == HttpMethod.Patch)
        {
            var body = await ReadBodyAsync(request, cancellationToken);
            if (body is JsonObject patch && patch["condition"]?.GetValue<string>() is { } condition)
                refusal = CheckFilterPredicate(condition);
        }
        else if (request.Content is not null && request.Headers["x-ms-cosmos-is-batch-request"] is not null)
        {
            // A transactional batch's patches carry their filters inside the batch body (HybridRow, not JSON).
            foreach (var condition in BatchPatchFilters.Read(await ReadBytesAsync(request, cancellationToken)))
                refusal ??= CheckFilterPredicate(condition);
        }
        if (refusal is not null)
            return Refuse(request, refusal);
        return await base.SendAsync(request, cancellationToken);
    }

    /// <summary>Null when Cosmos DB accepts the query text, else the reason it answers 400.</summary>
    public static string? CheckQuery(string query) => CheckReservedWords(query) ?? Parser.Check(query);

    /// <summary>
    /// Null when Cosmos DB accepts the patch filter predicate (PatchItemRequestOptions.FilterPredicate), else why not.
    /// Cosmos DB takes it as the FROM clause onward of a query ("FROM c WHERE ..."), nothing else.
    /// </summary>
    public static string? CheckFilterPredicate(string predicate)
    {
        var text = predicate.TrimStart();
        if (!text.StartsWith("FROM", StringComparison.OrdinalIgnoreCase) || (text.Length > 4 && !char.IsWhiteSpace(text[4])))
            return $"A patch filter predicate must start with FROM (\"FROM c WHERE ...\"): '{predicate}'.";
        return CheckQuery("SELECT * " + text);
    }

    /// <summary>
    /// A property access <c>.word</c> where word is reserved (outside string literals). The SDK grammar refuses
    /// these too; this check stands on its own so the rule holds even if a later SDK grammar relaxed it, and it
    /// names the fix.
    /// </summary>
    private static string? CheckReservedWords(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            var ch = text[i];
            if (ch is '"' or '\'')
            {
                // Skip the literal, honouring backslash escapes.
                for (i++; i < text.Length && text[i] != ch; i++)
                    if (text[i] == '\\') i++;
                continue;
            }
            if (ch != '.') continue;
            var start = i + 1;
            while (start < text.Length && char.IsWhiteSpace(text[start])) start++;
            var end = start;
            while (end < text.Length && (char.IsLetterOrDigit(text[end]) || text[end] == '_')) end++;
            if (end == start || char.IsDigit(text[start])) continue;
            var word = text[start..end];
            if (ReservedWords.Contains(word))
                return SyntaxError(start, end, word, $" '{word}' is a reserved word: write [\"{word}\"] instead of .{word}.");
        }
        return null;
    }

    private static string SyntaxError(int start, int end, string near, string hint = "")
        => JsonSerializer.Serialize(new
        {
            errors = new[]
            {
                new { severity = "Error", location = new { start, end }, code = "SC1001", message = $"Syntax error, incorrect syntax near '{near}'.{hint}" },
            },
        });

    private static async Task<JsonNode> ReadBodyAsync(RequestMessage request, CancellationToken ct)
    {
        // The content is read again by the layers below: buffer it when it cannot rewind.
        var content = request.Content;
        if (!content.CanSeek)
        {
            var buffer = new MemoryStream();
            await content.CopyToAsync(buffer, ct);
            request.Content = content = buffer;
        }
        content.Position = 0;
        var node = await JsonNode.ParseAsync(content, cancellationToken: ct);
        content.Position = 0;
        return node ?? new JsonObject();
    }

    private static async Task<byte[]> ReadBytesAsync(RequestMessage request, CancellationToken ct)
    {
        var content = request.Content;
        if (!content.CanSeek)
        {
            var buffer = new MemoryStream();
            await content.CopyToAsync(buffer, ct);
            request.Content = content = buffer;
        }
        content.Position = 0;
        var bytes = new byte[content.Length];
        await content.ReadExactlyAsync(bytes, ct);
        content.Position = 0;
        return bytes;
    }

    /// <summary>
    /// The filter predicates of the patch operations in a transactional batch request as the .NET SDK sends it:
    /// HybridRow RecordIO (a segment row, then per operation a record header and a BatchOperation row; schemas in
    /// the SDK's Batch/HybridRowBatchSchemas.json). scripts/cosmos-emulator.js reads the same layout. A body of
    /// another shape fails the test loudly rather than going unchecked.
    /// </summary>
    private static class BatchPatchFilters
    {
        private const byte Version = 0x81;
        private const int SegmentSchema = 2147473648, RecordSchema = 2147473649, OperationSchema = 2145473648;
        private const int PatchOperationType = 1;

        public static List<string> Read(byte[] body)
        {
            var filters = new List<string>();
            var pos = 0;
            while (pos < body.Length)
            {
                if (body[pos] != Version) throw new InvalidDataException("A batch request that is not HybridRow.");
                var schema = BitConverter.ToInt32(body, pos + 1);
                if (schema == SegmentSchema)
                {
                    pos += BitConverter.ToInt32(body, pos + 6);
                    continue;
                }
                if (schema != RecordSchema) throw new InvalidDataException($"Unexpected HybridRow schema {schema} in a batch request.");
                var length = BitConverter.ToInt32(body, pos + 5);
                var row = body.AsSpan(pos + 13, length);
                pos += 13 + length;
                if (BitConverter.ToInt32(row[1..5]) != OperationSchema) throw new InvalidDataException("A batch record that is not a BatchOperation.");
                var bits = row[5];
                if ((bits & 1) == 0 || BitConverter.ToInt32(row[6..10]) != PatchOperationType || (bits & (1 << 6)) == 0) continue;
                // Variable columns in schema order (partitionKey, effectivePartitionKey, id, binaryId, resourceBody),
                // each present one as a 7-bit length and its bytes; resourceBody is the last.
                var at = 14;
                for (var column = 0; column < 5; column++)
                {
                    if ((bits & (1 << (column + 2))) == 0) continue;
                    var size = 0;
                    for (var shift = 0; ; shift += 7)
                    {
                        var b = row[at++];
                        size |= (b & 0x7f) << shift;
                        if ((b & 0x80) == 0) break;
                    }
                    if (column == 4 && JsonNode.Parse(row.Slice(at, size)) is JsonObject patch && patch["condition"]?.GetValue<string>() is { } condition)
                        filters.Add(condition);
                    at += size;
                }
            }
            return filters;
        }
    }

    private static ResponseMessage Refuse(RequestMessage request, string errors)
    {
        // The shape Cosmos DB answers a syntax error with: a 400 whose message carries the parser's errors.
        var message = $"Message: {errors}\r\n(refused by the test rig: Azure Cosmos DB would answer 400 here)";
        var response = new ResponseMessage(HttpStatusCode.BadRequest, request, message)
        {
            Content = new MemoryStream(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { code = "BadRequest", message }))),
        };
        response.Headers.Set("x-ms-substatus", "0");
        return response;
    }

    /// <summary>
    /// The SDK's internal ANTLR parser for Cosmos DB SQL (Microsoft.Azure.Cosmos.Query.Core.Parser.SqlQueryParser),
    /// reached by reflection: it is internal, and the grammar is the same one the SDK uses to plan queries.
    /// Missing or changed in a later SDK, the rig fails loudly instead of silently checking less.
    /// </summary>
    private static class Parser
    {
        private static readonly MethodInfo Parse;
        private static readonly PropertyInfo Failed;
        private static readonly PropertyInfo Exception;

        static Parser()
        {
            var assembly = typeof(CosmosClient).Assembly;
            var monadic = assembly.GetType("Microsoft.Azure.Cosmos.Query.Core.Parser.SqlQueryParser+Monadic", throwOnError: true)!;
            Parse = monadic.GetMethod("Parse", BindingFlags.Public | BindingFlags.Static, [typeof(string)])
                ?? throw new InvalidOperationException("SqlQueryParser.Monadic.Parse(string) not found in the Cosmos SDK.");
            Failed = Parse.ReturnType.GetProperty("Failed") ?? throw new InvalidOperationException("TryCatch.Failed not found.");
            Exception = Parse.ReturnType.GetProperty("Exception") ?? throw new InvalidOperationException("TryCatch.Exception not found.");
        }

        public static string? Check(string query)
        {
            var result = Parse.Invoke(null, [query])!;
            if (!(bool)Failed.GetValue(result)!)
                return null;
            // ANTLR names the token it could not take (a RecognitionException's OffendingToken): report it as
            // Cosmos DB does ("incorrect syntax near ..."), else the whole text.
            var error = (System.Exception?)Exception.GetValue(result);
            while (error?.InnerException is not null && error.GetType().GetProperty("OffendingToken") is null)
                error = error.InnerException;
            var token = error?.GetType().GetProperty("OffendingToken")?.GetValue(error);
            if (token?.GetType() is { } type && type.GetProperty("Text")?.GetValue(token) is string text
                && type.GetProperty("StartIndex")?.GetValue(token) is int start && start >= 0)
                return SyntaxError(start, start + text.Length, text);
            return SyntaxError(0, query.Length, query, $" ({error?.Message ?? "unparsable"})");
        }
    }
}

/// <summary>Cosmos clients that tests build by hand get the same settings and the same strictness as the app's.</summary>
public static class TestCosmos
{
    /// <summary>Client options over the emulator: the app's serializer, gateway mode, <see cref="AzureStrictness"/>
    /// first, then <paramref name="handlers"/> (fault injection and the like). Fresh handler instances per client:
    /// the SDK links each handler into one client's pipeline.</summary>
    public static CosmosClientOptions Options(params RequestHandler[] handlers)
    {
        var options = new CosmosClientOptions
        {
            Serializer = new StorageSerializer(),
            ConnectionMode = ConnectionMode.Gateway,
            LimitToEndpoint = true,
            CustomHandlers = { new AzureStrictness() },
        };
        foreach (var handler in handlers)
            options.CustomHandlers.Add(handler);
        return options;
    }

    /// <summary>A client over the emulator the test run started.</summary>
    public static CosmosClient Client(params RequestHandler[] handlers)
        => new(Settings.Get("Cosmos__Endpoint"), Settings.Get("Cosmos__Key"), Options(handlers));
}
