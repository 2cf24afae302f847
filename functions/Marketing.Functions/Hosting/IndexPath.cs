using System.Text.RegularExpressions;

namespace Marketing.Functions.Hosting;

/// <summary>
/// The grammar of a Cosmos DB indexing-policy path (included or excluded), as Azure enforces it: the local
/// emulator accepts paths Azure refuses (e.g. "/coupons/*/response/?"), so provisioning and the infra tests
/// check paths here instead of learning about them when a container fails to deploy.
/// A path starts at the root "/", names properties one segment at a time, addresses every element of an
/// array with "[]" (never "*" or an index), and ends with "?" (the scalar at that path) or "*" (everything
/// below it); "*" only ever ends a path. A property name is plain (letters, digits, underscore) or quoted
/// ("_etag" may be either; "order-id" must be quoted). Examples: "/status/?", "/terms/categories/*",
/// "/coupons/[]/response/?", "/\"_etag\"/?", "/*".
/// </summary>
public static partial class IndexPath
{
    /// <summary>Why <paramref name="path"/> is not a valid index path, or null when it is.</summary>
    public static string? Problem(string path)
    {
        if (!path.StartsWith('/')) return "must start with /";
        var segments = path[1..].Split('/');
        var end = segments[^1];
        if (end is not ("?" or "*")) return "must end with /? (a scalar) or /* (everything below)";
        for (var i = 0; i < segments.Length - 1; i++)
        {
            var segment = segments[i];
            if (segment is "*") return "* may only end a path (address array elements with [])";
            if (segment is "[]")
            {
                if (i == 0) return "the root is an object, not an array";
                continue;
            }
            if (segment.Length == 0) return "has an empty segment";
            if (!PlainName().IsMatch(segment) && !QuotedName().IsMatch(segment))
                return $"segment {segment} must be a plain name (letters, digits, _), a quoted name (\"...\") or []";
        }
        // "/?" would be the root as a scalar; the root is always an object.
        return segments.Length == 1 && end == "?" ? "the root is an object, not a scalar" : null;
    }

    [GeneratedRegex(@"^[A-Za-z0-9_]+$")] private static partial Regex PlainName();
    [GeneratedRegex("^\"[^\"]+\"$")] private static partial Regex QuotedName();
}
