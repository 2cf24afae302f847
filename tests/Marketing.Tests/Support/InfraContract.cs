using System.Reflection;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Marketing.Functions.Hosting;

namespace Marketing.Tests.Support;

/// <summary>
/// Checks infra/*.bicep against the code, as text (no Bicep compiler can be installed on our machines):
/// settings, containers and partition keys, queues, role assignments, and the absence of keys.
/// Each check returns its violations; an empty list means infra agrees with the code.
/// </summary>
public static partial class InfraContract
{
    // Built-in roles the app's identity needs, by the file that must assign them.
    public static readonly (string File, string Role, string Name)[] RequiredRoles =
    [
        ("modules/cosmos.bicep", "00000000-0000-0000-0000-000000000002", "Cosmos DB Built-in Data Contributor (sqlRoleAssignments)"),
        ("modules/storage.bicep", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b", "Storage Blob Data Owner"),
        ("modules/servicebus.bicep", "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0", "Azure Service Bus Data Receiver"),
        ("modules/monitoring.bicep", "3913510d-42f4-4e42-8a64-420c390055eb", "Monitoring Metrics Publisher"),
    ];

    /// <summary>Queues the platform declares for the order system even before a function consumes them.</summary>
    public static readonly string[] DeclaredQueues = ["order-events"];

    /// <summary>Settings the handler reads from its options classes ("Section__Property") and timer schedules.</summary>
    public static (List<string> Azure, List<string> LocalOnly) SettingsTheAppReads(IEnumerable<JsonObject> functionJsons)
    {
        var azure = new List<string>();
        var local = new List<string>();
        foreach (var type in typeof(Platform).Assembly.GetTypes())
        {
            if (type.GetField("Section", BindingFlags.Public | BindingFlags.Static) is not { IsLiteral: true } field) continue;
            var section = (string)field.GetValue(null)!;
            foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite))
                (property.GetCustomAttribute<LocalOnlyAttribute>() is null ? azure : local).Add($"{section}__{property.Name}");
        }
        foreach (var function in functionJsons)
            foreach (var binding in function["bindings"]!.AsArray())
                foreach (var property in (string[])["schedule", "queueName"])
                    if ((string?)binding![property] is { } value && PercentSetting().Match(value) is { Success: true } m)
                        azure.Add(m.Groups[1].Value);
        return (azure.Distinct().Order().ToList(), local.Order().ToList());
    }

    public static List<string> CheckSettings(string infraDir, IEnumerable<string> required, IEnumerable<string> localOnly)
    {
        var settings = AppSettingNames(File.ReadAllText(Path.Combine(infraDir, "modules/functionapp.bicep")));
        var violations = required.Where(s => !settings.Contains(s)).Select(s => $"setting {s} is read by the app but not set on the function app").ToList();
        violations.AddRange(localOnly.Where(settings.Contains).Select(s => $"setting {s} is local-only and must not be set in Azure"));
        violations.AddRange(settings.Where(s => s.Contains("ConnectionString", StringComparison.OrdinalIgnoreCase) && s != "APPLICATIONINSIGHTS_CONNECTION_STRING")
            .Select(s => $"setting {s} looks like a connection string; use identity-based settings"));
        return violations;
    }

    public static List<string> CheckContainers(string infraDir, IEnumerable<ContainerSpec> containers)
    {
        var text = File.ReadAllText(Path.Combine(infraDir, "modules/cosmos.bicep"));
        var declared = ContainerBlock().Matches(text).ToDictionary(
            m => m.Groups["name"].Value,
            m => (Key: m.Groups["pk"].Value, Excluded: QuotedStrings(m.Groups["excluded"].Value)));
        var violations = new List<string>();
        foreach (var spec in containers)
        {
            if (!declared.TryGetValue(spec.Name, out var found))
                violations.Add($"container {spec.Name} is used by the code but not declared");
            else if (found.Key != spec.PartitionKeyPath)
                violations.Add($"container {spec.Name}: partition key {found.Key} in infra, {spec.PartitionKeyPath} in code");
            else if (!found.Excluded.Order().SequenceEqual(spec.ExcludedPaths.Order()))
                violations.Add($"container {spec.Name}: excluded index paths differ from the code's");
        }
        return violations;
    }

    /// <summary>
    /// Every queue a function listens on is declared in servicebus.bicep. A queue name given as %Setting% is
    /// resolved with the sample settings (local.settings.sample.json), the value ops deploy by default.
    /// </summary>
    public static List<string> CheckQueues(string infraDir, IEnumerable<JsonObject> functionJsons, IReadOnlyDictionary<string, string> sampleSettings)
    {
        var text = File.ReadAllText(Path.Combine(infraDir, "modules/servicebus.bicep"));
        var queues = QueueResource().Matches(text).Select(m => m.Groups["name"].Value).ToHashSet();
        var named = functionJsons.SelectMany(f => f["bindings"]!.AsArray())
            .Select(b => (string?)b!["queueName"]).OfType<string>()
            .Select(q => PercentSetting().Match(q) is { Success: true } m ? sampleSettings.GetValueOrDefault(m.Groups[1].Value, q) : q)
            .Concat(DeclaredQueues).Distinct();
        return named.Where(q => !queues.Contains(q)).Select(q => $"queue {q} is not declared in servicebus.bicep").ToList();
    }

    public static List<string> CheckRoles(string infraDir)
    {
        var violations = new List<string>();
        foreach (var (file, role, name) in RequiredRoles)
        {
            var text = File.ReadAllText(Path.Combine(infraDir, file));
            // The role may be referenced through a variable holding its GUID.
            var names = new HashSet<string> { $"'{role}'" };
            foreach (Match v in Variable().Matches(text))
                if (v.Groups["value"].Value == role) names.Add(v.Groups["name"].Value);
            // A role assignment resource whose principal is the app's identity and whose role definition names the role.
            var assigned = Resources(text).Any(r => r.Type.Contains("roleAssignments", StringComparison.OrdinalIgnoreCase)
                && Regex.IsMatch(r.Body, @"principalId:\s*appPrincipalId\b")
                && names.Any(n => Regex.IsMatch(r.Body, $@"roleDefinitionId:[^\n]*(?<![\w']){Regex.Escape(n)}(?![\w'])")));
            if (!assigned) violations.Add($"{file}: no role assignment of {name} to the app's identity");
        }
        return violations;
    }

    public static List<string> CheckNoSecrets(string infraDir)
    {
        var violations = new List<string>();
        foreach (var path in Directory.EnumerateFiles(infraDir, "*.*", SearchOption.AllDirectories).Where(p => p.EndsWith(".bicep") || p.EndsWith(".json")))
        {
            var text = File.ReadAllText(path);
            foreach (var pattern in SecretPatterns)
                if (Regex.IsMatch(text, pattern, RegexOptions.IgnoreCase))
                    violations.Add($"{Path.GetRelativePath(infraDir, path)}: uses a key or connection string ({pattern})");
        }
        return violations;
    }

    private static readonly string[] SecretPatterns =
    [
        @"listKeys\s*\(", @"listConnectionStrings\s*\(", @"AccountKey=", @"SharedAccessKey", @"primaryMasterKey",
        @"DefaultEndpointsProtocol=", @"allowSharedKeyAccess:\s*true", @"disableLocalAuth:\s*false", @"Cosmos__Key",
    ];

    public static HashSet<string> AppSettingNames(string functionAppBicep)
    {
        var start = functionAppBicep.IndexOf("appSettings:", StringComparison.Ordinal);
        if (start < 0) return [];
        var open = functionAppBicep.IndexOf('[', start);
        var depth = 0;
        var end = open;
        for (; end < functionAppBicep.Length; end++)
        {
            if (functionAppBicep[end] == '[') depth++;
            else if (functionAppBicep[end] == ']' && --depth == 0) break;
        }
        return SettingName().Matches(functionAppBicep[open..end]).Select(m => m.Groups[1].Value).ToHashSet();
    }

    private static IEnumerable<(string Type, string Body)> Resources(string text)
    {
        var starts = ResourceStart().Matches(text).ToList();
        for (var i = 0; i < starts.Count; i++)
        {
            var end = i + 1 < starts.Count ? starts[i + 1].Index : text.Length;
            yield return (starts[i].Groups["type"].Value, text[starts[i].Index..end]);
        }
    }

    private static List<string> QuotedStrings(string text) => Regex.Matches(text, "'([^']*)'").Select(m => m.Groups[1].Value).ToList();

    [GeneratedRegex(@"^%([A-Za-z0-9_]+)%$")] private static partial Regex PercentSetting();
    [GeneratedRegex(@"\{\s*name:\s*'([^']+)'")] private static partial Regex SettingName();
    [GeneratedRegex(@"name:\s*'(?<name>[^']+)'\s*partitionKeyPath:\s*'(?<pk>[^']+)'\s*excludedPaths:\s*\[(?<excluded>[^\]]*)\]")] private static partial Regex ContainerBlock();
    [GeneratedRegex(@"resource\s+\w+\s+'Microsoft\.ServiceBus/namespaces/queues@[^']+'\s*=\s*\{[^}]*?name:\s*'(?<name>[^']+)'", RegexOptions.Singleline)] private static partial Regex QueueResource();
    [GeneratedRegex(@"var\s+(?<name>\w+)\s*=\s*'(?<value>[^']+)'")] private static partial Regex Variable();
    [GeneratedRegex(@"resource\s+\w+\s+'(?<type>[^'@]+)@")] private static partial Regex ResourceStart();
}
