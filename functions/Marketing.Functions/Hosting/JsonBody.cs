using System.Buffers;
using System.Text.Json;

namespace Marketing.Functions.Hosting;

/// <summary>
/// Reads a JSON request body strictly: size-capped (413), JSON media type (415), well-formed (400
/// malformed-json), no unknown or mistyped members (400 validation-failed with the JSON path).
/// Endpoints read bodies through this instead of implicit binding so every failure is a problem+json
/// with a stable type, never an exception that turns into a 500.
/// </summary>
public static class JsonBody
{
    public const int MaxBytes = 64 * 1024;

    public static async Task<(T? Value, Problem? Problem)> ReadAsync<T>(HttpRequest request) where T : class
    {
        if (request.ContentLength > MaxBytes)
            return (null, TooLarge());
        if (request.ContentType is not { } contentType ||
            !(contentType.StartsWith("application/json", StringComparison.OrdinalIgnoreCase) ||
              contentType.Contains("+json", StringComparison.OrdinalIgnoreCase)))
            return (null, Problem.Of(ProblemTypes.UnsupportedMediaType, 415, "The body must be application/json."));

        var buffer = new ArrayBufferWriter<byte>(4096);
        var chunk = new byte[8192];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, request.HttpContext.RequestAborted)) > 0)
        {
            if (buffer.WrittenCount + read > MaxBytes)
                return (null, TooLarge());
            buffer.Write(chunk.AsSpan(0, read));
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(buffer.WrittenMemory);
        }
        catch (JsonException e)
        {
            return (null, Problem.Of(ProblemTypes.MalformedJson, 400, "The body is not well-formed JSON.",
                $"Line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}."));
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                return (null, Problem.Validation("$", "The body must be a JSON object."));
            try
            {
                var value = document.RootElement.Deserialize<T>(Json.Options);
                return value is null ? (null, Problem.Validation("$", "The body must be a JSON object.")) : (value, null);
            }
            catch (JsonException e)
            {
                var missing = MissingRequired<T>(document.RootElement);
                return (null, Problem.Validation(missing.Count > 0 ? missing : Describe(e)));
            }
        }
    }

    /// <summary>Like <see cref="ReadAsync{T}"/>, for bodies that may be left out entirely (no content: null, no problem).</summary>
    public static Task<(T? Value, Problem? Problem)> ReadOptionalAsync<T>(HttpRequest request) where T : class
        => request.ContentLength == 0 || (request.ContentLength is null && request.ContentType is null)
            ? Task.FromResult<(T?, Problem?)>((null, null))
            : ReadAsync<T>(request);

    /// <summary>Every required top-level member absent from the body (System.Text.Json names only some).</summary>
    private static Dictionary<string, string[]> MissingRequired<T>(JsonElement root)
        => Json.Options.GetTypeInfo(typeof(T)).Properties
            .Where(p => p.IsRequired && !root.TryGetProperty(p.Name, out _))
            .ToDictionary(p => p.Name, _ => new[] { "Required." });

    private static Dictionary<string, string[]> Describe(JsonException e)
    {
        // System.Text.Json messages name CLR types, which mean nothing to an API client: translate the
        // cases we know into field errors keyed by JSON path.
        var path = e.Path ?? "$";
        var message = e.Message;
        const string missing = "missing required properties including: ";
        var at = message.IndexOf(missing, StringComparison.Ordinal);
        if (at >= 0)
        {
            var names = message[(at + missing.Length)..].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(n => n.Trim('\'', '.', ' '));
            var prefix = path == "$" ? "" : path.TrimStart('$', '.') + ".";
            return names.ToDictionary(n => prefix + n, _ => new[] { "Required." });
        }
        string text;
        if (message.Contains("could not be mapped", StringComparison.Ordinal)) text = "Unknown field.";
        else if (message.StartsWith("Expected ", StringComparison.Ordinal)) text = message[..(message.IndexOf(").", StringComparison.Ordinal) is var i and > 0 ? i + 2 : message.Length)];
        else text = "Value has the wrong type or format.";
        return new Dictionary<string, string[]> { [path.TrimStart('$', '.') is { Length: > 0 } p ? p : "$"] = [text] };
    }

    private static Problem TooLarge() => Problem.Of(ProblemTypes.PayloadTooLarge, 413,
        "The body is too large.", $"At most {MaxBytes} bytes are accepted.");
}
