using System.Text.Json;
using System.Text.Json.Nodes;

namespace Marketing.Functions.Hosting;

/// <summary>One changed field: its JSON path (members joined with ".", array items as [i]), and its value before and after (null: absent).</summary>
public sealed record FieldChange(string Path, JsonNode? Before, JsonNode? After);

/// <summary>
/// A field-level diff of two JSON documents, shared by the audit trail (before/after of an update) and the approvers'
/// queue (a submitted revision against the last approved one). Objects are compared member by member; arrays and
/// scalars as whole values (an array is one field: "categories" changed, not "categories[3]").
/// </summary>
public static class JsonDiff
{
    public static List<FieldChange> Of(JsonNode? before, JsonNode? after, int maxChanges = 200)
    {
        var changes = new List<FieldChange>();
        Walk("", before, after, changes, maxChanges);
        return changes;
    }

    public static List<FieldChange> Of<T>(T? before, T? after, JsonSerializerOptions options, int maxChanges = 200)
        => Of(before is null ? null : JsonSerializer.SerializeToNode(before, options), after is null ? null : JsonSerializer.SerializeToNode(after, options), maxChanges);

    private static void Walk(string path, JsonNode? before, JsonNode? after, List<FieldChange> changes, int max)
    {
        if (changes.Count >= max) return;
        if (before is JsonObject a && after is JsonObject b)
        {
            foreach (var (name, value) in a)
                Walk(Join(path, name), value, b.TryGetPropertyValue(name, out var other) ? other : null, changes, max);
            foreach (var (name, value) in b)
                if (!a.ContainsKey(name)) Walk(Join(path, name), null, value, changes, max);
            return;
        }
        if (!JsonNode.DeepEquals(before, after))
            changes.Add(new FieldChange(path.Length == 0 ? "$" : path, before?.DeepClone(), after?.DeepClone()));
    }

    private static string Join(string path, string name) => path.Length == 0 ? name : path + "." + name;
}
