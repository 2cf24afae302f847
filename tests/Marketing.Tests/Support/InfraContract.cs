using System.Reflection;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Marketing.Functions.Hosting;

namespace Marketing.Tests.Support;

/// <summary>
/// Checks infra/ against the code, on the ARM template the real Bicep compiler makes of it (what Azure
/// deploys): settings, containers with partition keys and valid index paths, queues, role assignments to
/// the app's identity, and the absence of keys. Each check returns its violations; none means infra agrees.
/// </summary>
public static partial class InfraContract
{
    /// <summary>Built-in roles the app's identity needs on the data planes, by role definition id.</summary>
    /// <summary>
    /// Built-in roles the app's identity needs on the data planes, by role definition id, and on how many resources
    /// (the delegator twice: the host account signs payout CSV links, the media account upload links).
    /// </summary>
    public static readonly (string Role, string Name, int Count)[] RequiredRoles =
    [
        ("00000000-0000-0000-0000-000000000002", "Cosmos DB Built-in Data Contributor", 1),
        // The host's account, and the media account (infra/modules/media-storage.bicep: writing renditions, reading
        // Defender's verdict tags, which only the Owner role may).
        ("b7e6dc6d-f1e8-4753-8033-0f276bb0955b", "Storage Blob Data Owner", 2),
        ("db58b8e5-c6ad-4a2a-8342-4190687cbf4a", "Storage Blob Delegator", 2),
        ("4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0", "Azure Service Bus Data Receiver", 1),
        // SendReminders' Service Bus output binding puts the notifications on their queue.
        ("69a216fc-b8fb-44d8-bc22-1f3c2552a1b9", "Azure Service Bus Data Sender", 1),
        ("3913510d-42f4-4e42-8a64-420c390055eb", "Monitoring Metrics Publisher", 1),
    ];


    /// <summary>Queues the platform declares for the order system even before a function consumes them.</summary>
    public static readonly string[] DeclaredQueues = ["order-events"];

    /// <summary>infra/ as compiled: the folder, the ARM JSON the compiler wrote, and that template read.</summary>
    public sealed record Compiled(string Dir, string Json, ArmDeployment Template);

    /// <summary>Compiles infra/main.bicep with the real compiler (which must be clean) and reads the result.</summary>
    public static Compiled Compile(string infraDir) => Read(infraDir, Bicep.Compile(Path.Combine(infraDir, "main.bicep")));

    /// <summary>Reads <paramref name="json"/>, the ARM template compiled from <paramref name="infraDir"/>.</summary>
    public static Compiled Read(string infraDir, string json) => new(infraDir, json, new ArmDeployment(JsonNode.Parse(json)!.AsObject()));

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

    /// <summary>The function app: the one Microsoft.Web/sites resource of kind functionapp.</summary>
    public static ArmResource? FunctionApp(ArmDeployment infra)
        => infra.OfType("Microsoft.Web/sites").SingleOrDefault(s => s.Text("kind")?.Contains("functionapp", StringComparison.OrdinalIgnoreCase) == true);

    /// <summary>Names in the function app's siteConfig.appSettings.</summary>
    public static HashSet<string> AppSettingNames(ArmDeployment infra)
        => (FunctionApp(infra)?.At("properties.siteConfig.appSettings") as JsonArray ?? [])
            .Select(s => (string?)s?["name"]).OfType<string>().ToHashSet();

    public static List<string> CheckSettings(ArmDeployment infra, IEnumerable<string> required, IEnumerable<string> localOnly)
    {
        if (FunctionApp(infra) is null) return ["no function app (Microsoft.Web/sites of kind functionapp) in infra"];
        var settings = AppSettingNames(infra);
        var violations = required.Where(s => !settings.Contains(s)).Select(s => $"setting {s} is read by the app but not set on the function app").ToList();
        violations.AddRange(localOnly.Where(settings.Contains).Select(s => $"setting {s} is local-only and must not be set in Azure"));
        violations.AddRange(settings.Where(s => s.Contains("ConnectionString", StringComparison.OrdinalIgnoreCase) && s != "APPLICATIONINSIGHTS_CONNECTION_STRING")
            .Select(s => $"setting {s} looks like a connection string; use identity-based settings"));
        return violations;
    }

    /// <summary>
    /// A Cosmos container as infra declares it. <paramref name="DefaultTtl"/>: the JSON of its defaultTtl ("-1"),
    /// null when absent or null (time to live off), or an expression the reader could not evaluate, as written.
    /// </summary>
    public sealed record DeclaredContainer(string Name, string? PartitionKeyPath, List<string> IncludedPaths, List<string> ExcludedPaths,
        string? DefaultTtl = null);

    public static List<DeclaredContainer> Containers(ArmDeployment infra)
        => infra.OfType("Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers").Select(c => new DeclaredContainer(
                c.Text("properties.resource.id") ?? c.Name,
                (c.At("properties.resource.partitionKey.paths") as JsonArray)?.SingleOrDefault()?.GetValue<string>(),
                Paths(c.At("properties.resource.indexingPolicy.includedPaths")),
                Paths(c.At("properties.resource.indexingPolicy.excludedPaths")),
                c.At("properties.resource.defaultTtl")?.ToJsonString()))
            .ToList();

    private static List<string> Paths(JsonNode? paths) => (paths as JsonArray ?? []).Select(p => p?["path"]?.GetValue<string>() ?? "").ToList();

    public static List<string> CheckContainers(ArmDeployment infra, IEnumerable<ContainerSpec> containers)
    {
        var declared = Containers(infra);
        var violations = new List<string>();
        foreach (var spec in containers)
        {
            if (declared.FirstOrDefault(c => c.Name == spec.Name) is not { } found)
                violations.Add($"container {spec.Name} is used by the code but not declared");
            else if (found.PartitionKeyPath != spec.PartitionKeyPath)
                violations.Add($"container {spec.Name}: partition key {found.PartitionKeyPath} in infra, {spec.PartitionKeyPath} in code");
            else if (!found.ExcludedPaths.Order().SequenceEqual(spec.ExcludedPaths.Order()))
                violations.Add($"container {spec.Name}: excluded index paths differ from the code's ([{string.Join(", ", found.ExcludedPaths)}] in infra)");
            // Without the container's defaultTtl Cosmos ignores every item's "ttl": finished data would never go.
            else if (found.DefaultTtl != spec.DefaultTtl?.ToString(System.Globalization.CultureInfo.InvariantCulture))
                violations.Add($"container {spec.Name}: defaultTtl {found.DefaultTtl ?? "absent (TTL off)"} in infra, {spec.DefaultTtl?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none (TTL off)"} in code");
        }
        // Whatever the code says, Azure refuses a container with a malformed index path.
        foreach (var container in declared)
            foreach (var path in container.IncludedPaths.Concat(container.ExcludedPaths))
                if (IndexPath.Problem(path) is { } problem)
                    violations.Add($"container {container.Name}: index path {path} {problem}");
        return violations;
    }

    /// <summary>
    /// Every queue a function listens on is declared on the Service Bus namespace. A queue name given as
    /// %Setting% is resolved with the sample settings (local.settings.sample.json), the value ops deploy by default.
    /// </summary>
    public static List<string> CheckQueues(ArmDeployment infra, IEnumerable<JsonObject> functionJsons, IReadOnlyDictionary<string, string> sampleSettings)
    {
        // A child resource's name is "namespace/queue".
        var queues = infra.OfType("Microsoft.ServiceBus/namespaces/queues").Select(q => q.Name.Split('/')[^1]).ToHashSet();
        var named = functionJsons.SelectMany(f => f["bindings"]!.AsArray())
            .Select(b => (string?)b!["queueName"]).OfType<string>()
            .Select(q => PercentSetting().Match(q) is { Success: true } m ? sampleSettings.GetValueOrDefault(m.Groups[1].Value, q) : q)
            .Concat(DeclaredQueues).Distinct();
        return named.Where(q => !queues.Contains(q)).Select(q => $"queue {q} is not declared on the Service Bus namespace").ToList();
    }

    /// <summary>
    /// The app runs as the user-assigned identity that infra creates, and that identity (its principal id, the
    /// identity module's output) holds each required role through an unconditional role assignment.
    /// </summary>
    public static List<string> CheckRoles(ArmDeployment infra)
    {
        var identityModule = infra.All.FirstOrDefault(d => d.Resources.Any(r => r.Type == "Microsoft.ManagedIdentity/userAssignedIdentities"));
        if (identityModule is null) return ["no user-assigned identity module in infra"];
        var violations = new List<string>();
        var identityId = $"<{identityModule.Name}.outputs.id>";
        if (FunctionApp(infra)?.At("identity.userAssignedIdentities") is not JsonObject assigned || !assigned.ContainsKey(identityId))
            violations.Add($"the function app does not run as the identity of module {identityModule.Name}");
        var principal = $"<{identityModule.Name}.outputs.principalId>";
        var assignments = infra.AllResources.Where(r => r.Type.EndsWith("/roleAssignments", StringComparison.OrdinalIgnoreCase)
            || r.Type.EndsWith("/sqlRoleAssignments", StringComparison.OrdinalIgnoreCase)).ToList();
        foreach (var (role, name, count) in RequiredRoles)
        {
            var found = assignments.Count(a => !a.Conditional && a.Text("properties.principalId") == principal
                && a.Text("properties.roleDefinitionId")?.EndsWith("/" + role, StringComparison.OrdinalIgnoreCase) == true);
            if (found == 0) violations.Add($"no role assignment of {name} to the app's identity");
            else if (found < count) violations.Add($"{found} role assignment(s) of {name} to the app's identity, {count} needed");
        }
        return violations;
    }

    /// <summary>No keys, connection strings or local (key) auth anywhere: in the compiled template or infra's JSON files.</summary>
    public static List<string> CheckNoSecrets(Compiled compiled)
    {
        var (infraDir, json, infra) = compiled;
        var sources = Directory.EnumerateFiles(infraDir, "*.json", SearchOption.AllDirectories)
            .Select(p => (Name: Path.GetRelativePath(infraDir, p), Text: File.ReadAllText(p)))
            .Append((Name: "main.bicep (compiled)", Text: json));
        var violations = (from source in sources
                          from pattern in SecretPatterns
                          where Regex.IsMatch(source.Text, pattern, RegexOptions.IgnoreCase)
                          select $"{source.Name}: uses a key or connection string ({pattern})").ToList();
        // Every switch that turns key-based access on must be set, and set to "off".
        foreach (var resource in infra.AllResources)
            foreach (var (property, safe) in (ReadOnlySpan<(string, bool)>)[("disableLocalAuth", true), ("allowSharedKeyAccess", false)])
                foreach (var value in Find(resource.Body, property))
                    if (!(value is JsonValue v && v.TryGetValue<bool>(out var b) && b == safe))
                        violations.Add($"{resource.Type} {resource.Name}: uses a key ({property} is {value?.ToJsonString()}, must be {safe.ToString().ToLowerInvariant()})");
        return violations;
    }

    private static IEnumerable<JsonNode?> Find(JsonNode? node, string property) => node switch
    {
        JsonObject o => o.SelectMany(p => string.Equals(p.Key, property, StringComparison.OrdinalIgnoreCase) ? [p.Value] : Find(p.Value, property)),
        JsonArray a => a.SelectMany(item => Find(item, property)),
        _ => [],
    };

    private static readonly string[] SecretPatterns =
    [
        @"listKeys\s*\(", @"listConnectionStrings\s*\(", @"listAccountSas\s*\(", @"listServiceSas\s*\(", @"AccountKey=",
        @"SharedAccessKey", @"primaryMasterKey", @"DefaultEndpointsProtocol=", @"Cosmos__Key",
    ];

    [GeneratedRegex(@"^%([A-Za-z0-9_]+)%$")] private static partial Regex PercentSetting();
}
