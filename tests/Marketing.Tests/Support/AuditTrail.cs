using System.Net;
using System.Text.Json.Nodes;
using Xunit;

namespace Marketing.Tests.Support;

/// <summary>Reading the audit trail the way auditors do: GET /api/audit, every page.</summary>
public static class AuditTrailReader
{
    public static HttpClient Auditor(this TestApp app) => app.As("audrey", "approver");

    /// <summary>Every entry of <paramref name="target"/> ("campaign/cmp_…"), newest first, read page by page.</summary>
    public static async Task<List<JsonNode>> AuditEntriesAsync(this TestApp app, string target, string? actor = null)
    {
        var query = "target=" + Uri.EscapeDataString(target) + (actor is null ? "" : "&actor=" + Uri.EscapeDataString(actor));
        return await app.AuditPagesAsync(query);
    }

    public static async Task<List<JsonNode>> AuditPagesAsync(this TestApp app, string query, int limit = 200)
    {
        var entries = new List<JsonNode>();
        string? token = null;
        var auditor = app.Auditor();
        do
        {
            var url = $"/api/audit?{query}&limit={limit}" + (token is null ? "" : "&continuationToken=" + Uri.EscapeDataString(token));
            var page = await (await auditor.GetAsync(url)).AssertStatusAsync(HttpStatusCode.OK);
            entries.AddRange(page["items"]!.AsArray().Select(e => e!));
            token = (string?)page["continuationToken"];
        } while (token is not null);
        return entries;
    }

    /// <summary>The changes of an entry as path → (before, after) JSON text.</summary>
    public static Dictionary<string, (string? Before, string? After)> Changes(JsonNode entry)
        => (entry["changes"]?.AsArray() ?? []).ToDictionary(c => (string)c!["path"]!,
            c => (c!["before"]?.ToJsonString(), c["after"]?.ToJsonString()));

    public static void AssertNoIntentLeft(IEnumerable<JsonNode> entries)
        => Assert.All(entries, e => Assert.NotEqual("intent", (string?)e["state"]));
}
