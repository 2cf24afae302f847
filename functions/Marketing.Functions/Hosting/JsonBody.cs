using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Marketing.Functions.Hosting;

/// <summary>
/// Reads a JSON request body strictly: size-capped (413), JSON media type (415), well-formed (400
/// malformed-json), and then every error of the body at once (400 validation-failed, keyed by JSON path):
/// missing, unknown (at any depth), repeated, null or mistyped members, text holding control characters, and
/// the endpoint's own value rules. A client fixes a body in one round trip, not one layer per request.
/// Endpoints read bodies through this instead of implicit binding so every failure is a problem+json
/// with a stable type, never an exception that turns into a 500.
/// </summary>
public static class JsonBody
{
    public const int MaxBytes = 64 * 1024;

    /// <summary>The field error of text holding a control character (see <see cref="IsPrintable"/>).</summary>
    public const string ControlCharacters = "Control characters (NUL, CR, LF, TAB and the like) are not allowed.";

    /// <summary>An endpoint's value rules: field errors keyed by JSON path, empty when the body is consistent.</summary>
    public delegate IReadOnlyDictionary<string, string[]> Rules<in T>(T body);

    public static Task<(T? Value, Problem? Problem)> ReadAsync<T>(HttpRequest request, Rules<T>? rules = null) where T : class
        => ReadAsync(request, rules, optional: false);

    /// <summary>
    /// Like <see cref="ReadAsync{T}"/>, for bodies that may be left out: no body (no bytes, whatever the headers say)
    /// gives null and no problem; a body that is there is read as above, so it must be a JSON object.
    /// </summary>
    public static Task<(T? Value, Problem? Problem)> ReadOptionalAsync<T>(HttpRequest request, Rules<T>? rules = null) where T : class
        => ReadAsync(request, rules, optional: true);

    private static async Task<(T? Value, Problem? Problem)> ReadAsync<T>(HttpRequest request, Rules<T>? rules, bool optional) where T : class
    {
        if (request.ContentLength > MaxBytes)
            return (null, TooLarge());
        if (optional && request.ContentLength == 0)
            return (null, null);
        var json = request.ContentType is { } contentType &&
            (contentType.StartsWith("application/json", StringComparison.OrdinalIgnoreCase) ||
             contentType.Contains("+json", StringComparison.OrdinalIgnoreCase));
        // An optional body of unknown length may still be empty (a chunked request with no chunks): look before refusing.
        if (!json && !(optional && request.ContentLength is null))
            return (null, UnsupportedMediaType());

        var buffer = new ArrayBufferWriter<byte>(4096);
        var chunk = new byte[8192];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, request.HttpContext.RequestAborted)) > 0)
        {
            if (buffer.WrittenCount + read > MaxBytes)
                return (null, TooLarge());
            buffer.Write(chunk.AsSpan(0, read));
        }
        if (optional && buffer.WrittenCount == 0)
            return (null, null);
        if (!json)
            return (null, UnsupportedMediaType());

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
            return Bind(document.RootElement, rules);
    }

    private static Problem UnsupportedMediaType() => Problem.Of(ProblemTypes.UnsupportedMediaType, 415, "The body must be application/json.");

    /// <summary>Whether text holds no control character (Unicode Cc: NUL, CR, LF, TAB, DEL, C1) and no line or paragraph separator.</summary>
    public static bool IsPrintable(string text)
    {
        foreach (var c in text)
            if (char.IsControl(c) || c is '\u2028' or '\u2029')
                return false;
        return true;
    }

    private static (T? Value, Problem? Problem) Bind<T>(JsonElement root, Rules<T>? rules) where T : class
    {
        if (root.ValueKind != JsonValueKind.Object)
            return (null, Problem.Validation("$", "The body must be a JSON object."));

        // 1. The shape, all of it: every member checked against the contract, errors collected, not thrown at the first.
        var errors = new FieldErrors();
        var clean = Check(root, typeof(T), "", errors);
        if (errors.Count > 0)
        {
            // 2. The value rules too, on what was well-formed (bad members left out), so a missing field and an
            // out-of-range one come back together. A rule about a field that already has an error, or about a part or
            // the whole of one, is left out: that field's own error says what to fix.
            var shape = errors.Keys.ToList();
            if (rules is not null && Lenient(clean, rules) is { } more)
                foreach (var (field, messages) in more)
                    if (!shape.Any(known => Related(known, field)))
                        errors.Add(field, messages);
            return (null, Problem.Validation(errors.ToDictionary()));
        }

        // The shape is right: the strict serializer still decides (the check above mirrors it; should they ever
        // disagree, its error is reported rather than a body half-bound).
        T? value;
        try
        {
            value = root.Deserialize<T>(Json.Options);
        }
        catch (JsonException e)
        {
            return (null, Problem.Validation(Describe(e)));
        }
        if (value is null) return (null, Problem.Validation("$", "The body must be a JSON object."));
        var broken = rules?.Invoke(value);
        return broken is { Count: > 0 } ? (null, Problem.Validation(broken)) : (value, null);
    }

    /// <summary>
    /// Checks <paramref name="value"/> against <paramref name="type"/> as <see cref="Json.Options"/> binds it, adding every
    /// error under its path; returns the value with the bad parts left out (null: leave this value out).
    /// </summary>
    private static JsonNode? Check(JsonElement value, Type type, string path, FieldErrors errors)
    {
        var info = Json.Options.GetTypeInfo(type);
        if (value.ValueKind == JsonValueKind.String && !CheckText(value, path, errors))
            return null;
        switch (info.Kind)
        {
            case JsonTypeInfoKind.Object: // a type bound member by member (one with a converter of its own is None)
                return CheckObject(value, info, path, errors);
            case JsonTypeInfoKind.Enumerable when info.ElementType is { } elementType:
            {
                if (value.ValueKind == JsonValueKind.Null) return Scalar(value, type, path, errors);
                if (value.ValueKind != JsonValueKind.Array)
                {
                    errors.Add(Key(path), "Must be a JSON array.");
                    return null;
                }
                var array = new JsonArray();
                var whole = true;
                var i = 0;
                foreach (var item in value.EnumerateArray())
                {
                    var checkedItem = Check(item, elementType, $"{path}[{i++}]", errors);
                    if (checkedItem is null && item.ValueKind != JsonValueKind.Null) whole = false;
                    array.Add(checkedItem);
                }
                // An element left out would shift the indexes the value rules name: leave the whole array out instead.
                return whole ? array : null;
            }
            case JsonTypeInfoKind.Dictionary when info.KeyType == typeof(string) && info.ElementType is { } elementType:
            {
                if (value.ValueKind == JsonValueKind.Null) return Scalar(value, type, path, errors);
                if (value.ValueKind != JsonValueKind.Object)
                {
                    errors.Add(Key(path), "Must be a JSON object.");
                    return null;
                }
                var map = new JsonObject();
                var whole = true;
                foreach (var member in value.EnumerateObject())
                {
                    var at = Join(path, member.Name);
                    if (!IsPrintable(member.Name))
                    {
                        errors.Add(at, ControlCharacters);
                        whole = false;
                        continue;
                    }
                    if (map.ContainsKey(member.Name))
                    {
                        errors.Add(at, "Given more than once.");
                        whole = false;
                        continue;
                    }
                    var checkedItem = Check(member.Value, elementType, at, errors);
                    if (checkedItem is null && member.Value.ValueKind != JsonValueKind.Null) whole = false;
                    map[member.Name] = checkedItem;
                }
                return whole ? map : null;
            }
            default:
                return Scalar(value, type, path, errors);
        }
    }

    private static JsonNode? CheckObject(JsonElement value, JsonTypeInfo info, string path, FieldErrors errors)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            errors.Add(Key(path), value.ValueKind == JsonValueKind.Null ? "Required." : "Must be a JSON object.");
            return null;
        }
        var comparison = Json.Options.PropertyNameCaseInsensitive ? StringComparer.OrdinalIgnoreCase : StringComparer.Ordinal;
        var seen = new HashSet<string>(comparison);
        var result = new JsonObject();
        foreach (var member in value.EnumerateObject())
        {
            var property = info.Properties.FirstOrDefault(p => comparison.Equals(p.Name, member.Name));
            var at = Join(path, property?.Name ?? member.Name);
            if (property is null || (property.Set is null && property.AssociatedParameter is null))
            {
                errors.Add(at, "Unknown field.");
                continue;
            }
            // {"name": "a", "Name": "b"}: which one counts would be the serializer's accident.
            if (!seen.Add(property.Name))
            {
                errors.Add(at, "Given more than once.");
                continue;
            }
            if (member.Value.ValueKind == JsonValueKind.Null && !AcceptsNull(property))
            {
                errors.Add(at, IsRequired(property) ? "Required." : "Must not be null; leave it out instead.");
                continue;
            }
            var checkedValue = Check(member.Value, property.PropertyType, at, errors);
            if (checkedValue is not null || member.Value.ValueKind == JsonValueKind.Null)
                result[property.Name] = checkedValue;
        }
        foreach (var property in info.Properties)
            if (IsRequired(property) && !seen.Contains(property.Name))
                errors.Add(Join(path, property.Name), "Required.");
        return result;
    }

    /// <summary>A `required` member, or a constructor parameter without a default (<see cref="Json.Options"/> enforces both).</summary>
    private static bool IsRequired(JsonPropertyInfo property)
        => property.IsRequired || (Json.Options.RespectRequiredConstructorParameters
            && property.AssociatedParameter is { HasDefaultValue: false, IsMemberInitializer: false });

    private static bool AcceptsNull(JsonPropertyInfo property)
        => property.AssociatedParameter is { } parameter ? parameter.IsNullable : property.IsSetNullable;

    /// <summary>A value bound by a converter (numbers, text, instants, enums): bound alone, as the serializer would.</summary>
    private static JsonNode? Scalar(JsonElement value, Type type, string path, FieldErrors errors)
    {
        try
        {
            value.Deserialize(type, Json.Options);
            return JsonNode.Parse(value.GetRawText());
        }
        catch (JsonException e)
        {
            errors.Add(Key(path), Message(e, type));
            return null;
        }
    }

    private static bool CheckText(JsonElement value, string path, FieldErrors errors)
    {
        string text;
        try
        {
            text = value.GetString()!;
        }
        catch (InvalidOperationException)
        {
            // An escaped lone surrogate ("\ud800"): not text any store or client can hold.
            errors.Add(Key(path), "Not valid Unicode text.");
            return false;
        }
        if (IsPrintable(text)) return true;
        errors.Add(Key(path), ControlCharacters);
        return false;
    }

    /// <summary>The value rules run on the well-formed part of the body (missing members at their defaults).</summary>
    private static IReadOnlyDictionary<string, string[]>? Lenient<T>(JsonNode? clean, Rules<T> rules) where T : class
    {
        try
        {
            return clean.Deserialize<T>(LenientOptions) is { } partial ? rules(partial) : null;
        }
        catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException or ArgumentException)
        {
            // A rule that cannot judge a body with members missing: the errors found so far still answer (and still
            // say what to fix first); the rest come with the next attempt.
            return null;
        }
    }

    /// <summary>The API's options without the checks already reported: every member optional, nulls and unknowns let through.</summary>
    private static readonly JsonSerializerOptions LenientOptions = new(Json.Options)
    {
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,
        RespectRequiredConstructorParameters = false,
        RespectNullableAnnotations = false,
        TypeInfoResolver = new DefaultJsonTypeInfoResolver
        {
            Modifiers = { info => { foreach (var property in info.Properties) property.IsRequired = false; } },
        },
    };

    /// <summary>Whether two field paths name the same value, or one a part of the other ("lines" and "lines[2].sku").</summary>
    private static bool Related(string a, string b) => a == b || IsPart(a, b) || IsPart(b, a);

    private static bool IsPart(string part, string whole) => part.Length > whole.Length && part.StartsWith(whole, StringComparison.Ordinal)
        && part[whole.Length] is '.' or '[';

    private static string Join(string path, string name) => path.Length == 0 ? name : path + "." + name;

    private static string Key(string path) => path.Length == 0 ? "$" : path;

    private static Dictionary<string, string[]> Describe(JsonException e)
    {
        var path = e.Path ?? "$";
        return new Dictionary<string, string[]> { [path.TrimStart('$', '.') is { Length: > 0 } p ? p : "$"] = [Message(e)] };
    }

    /// <summary>System.Text.Json messages name CLR types, which mean nothing to an API client: the cases we know, in the API's words.</summary>
    private static string Message(JsonException e, Type? type = null)
    {
        var message = e.Message;
        if (message.Contains("could not be mapped", StringComparison.Ordinal)) return "Unknown field.";
        if (message.Contains("missing required properties", StringComparison.Ordinal)) return "Required.";
        if (message.StartsWith("Expected ", StringComparison.Ordinal))
            return message[..(message.IndexOf(").", StringComparison.Ordinal) is var i and > 0 ? i + 2 : message.Length)];
        var expected = type is null ? null : Nullable.GetUnderlyingType(type) ?? type;
        if (expected == typeof(int) || expected == typeof(long)) return "A whole number (no fraction or exponent) within range.";
        if (expected == typeof(bool)) return "true or false.";
        if (expected == typeof(string)) return "A string.";
        if (expected is { IsEnum: true })
            return "One of: " + string.Join(", ", Enum.GetNames(expected).Select(JsonNamingPolicy.SnakeCaseLower.ConvertName)) + ".";
        return "Value has the wrong type or format.";
    }

    private static Problem TooLarge() => Problem.Of(ProblemTypes.PayloadTooLarge, 413,
        "The body is too large.", $"At most {MaxBytes} bytes are accepted.");

    /// <summary>Field errors in the order found, several per field.</summary>
    private sealed class FieldErrors
    {
        private readonly Dictionary<string, List<string>> errors = new(StringComparer.Ordinal);

        public int Count => errors.Count;
        public IEnumerable<string> Keys => errors.Keys;

        public void Add(string field, params IEnumerable<string> messages)
        {
            if (!errors.TryGetValue(field, out var list)) errors[field] = list = [];
            list.AddRange(messages);
        }

        public Dictionary<string, string[]> ToDictionary() => errors.ToDictionary(e => e.Key, e => e.Value.ToArray(), StringComparer.Ordinal);
    }
}
