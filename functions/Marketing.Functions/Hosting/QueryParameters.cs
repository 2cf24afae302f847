using System.Globalization;

namespace Marketing.Functions.Hosting;

/// <summary>Query parameters read the same way on every list route; each error is added to the request's field errors.</summary>
public static class QueryParameters
{
    /// <summary>
    /// An instant (null when absent). The same rule as instants in bodies: ISO 8601 with an explicit offset, so that no
    /// server's time zone is assumed.
    /// </summary>
    public static DateTimeOffset? Instant(string? text, string field, Dictionary<string, string[]> errors)
    {
        if (text is null) return null;
        var t = text.IndexOf('T');
        if (t > 0 && text.Length <= 64 && (text.EndsWith('Z') || text.AsSpan(t).Contains('+') || text.AsSpan(t).Contains('-'))
            && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var value))
            return value.ToUniversalTime();
        errors[field] = ["An ISO 8601 instant with an explicit offset, like 2026-11-21T08:00:00Z."];
        return null;
    }
}
