using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Marketing.Functions.Hosting;

/// <summary>One set of JSON options for the API and for Cosmos documents, so a value reads the same everywhere.</summary>
public static class Json
{
    /// <summary>
    /// API bodies: unknown members are an error, never silently dropped (no mass assignment). Read-only from the
    /// start, so its contract can be inspected (JsonBody checks bodies against it) before anything is serialized.
    /// </summary>
    public static readonly JsonSerializerOptions Options = ReadOnly(Configure(new JsonSerializerOptions(JsonSerializerDefaults.Web), strict: true));

    /// <summary>
    /// Stored documents: Cosmos adds system properties (_rid, _etag, _ts...), and a newer version of the
    /// app may add fields while an older instance is still running, so unknown members are skipped.
    /// </summary>
    public static readonly JsonSerializerOptions Storage = Configure(new JsonSerializerOptions(JsonSerializerDefaults.Web), strict: false);

    /// <summary>
    /// Messages from other systems: every member we need must be present and well-typed, but members we do not
    /// know are skipped, so the sender can add fields without every message being rejected.
    /// </summary>
    public static readonly JsonSerializerOptions Messages = new(Options) { UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip };

    private static JsonSerializerOptions ReadOnly(JsonSerializerOptions options)
    {
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }

    public static JsonSerializerOptions Configure(JsonSerializerOptions options, bool strict)
    {
        options.PropertyNamingPolicy = JsonNamingPolicy.CamelCase;
        options.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
        options.UnmappedMemberHandling = strict ? JsonUnmappedMemberHandling.Disallow : JsonUnmappedMemberHandling.Skip;
        // A missing constructor argument or a null where the contract says non-null is the caller's error,
        // not a silent default (e.g. a claim without "channel" must not become a claim on channel 0).
        options.RespectRequiredConstructorParameters = strict;
        options.RespectNullableAnnotations = strict;
        options.NumberHandling = JsonNumberHandling.Strict;
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false));
        options.Converters.Add(new UtcInstantConverter());
        return options;
    }
}

/// <summary>
/// Instants are written in one fixed-width UTC form ("2026-11-21T08:00:00.000Z") so that they sort
/// as strings in Cosmos queries; on input any ISO 8601 instant with an explicit offset is accepted.
/// </summary>
public sealed class UtcInstantConverter : JsonConverter<DateTimeOffset>
{
    public const string Format = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";

    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var text = reader.GetString();
        if (text is null || !HasExplicitOffset(text) ||
            !DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var value))
            throw new JsonException("Expected an ISO 8601 instant with an explicit offset (like 2026-11-21T08:00:00Z).");
        return value.ToUniversalTime();
    }

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options)
        => writer.WriteStringValue(Text(value));

    public static string Text(DateTimeOffset value) => value.UtcDateTime.ToString(Format, CultureInfo.InvariantCulture);

    private static bool HasExplicitOffset(string text)
    {
        var t = text.IndexOf('T');
        if (t < 0) return false;
        var time = text.AsSpan(t);
        return time.EndsWith("Z", StringComparison.OrdinalIgnoreCase) || time.Contains('+') || time.Contains('-');
    }
}
