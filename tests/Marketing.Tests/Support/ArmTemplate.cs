using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Marketing.Tests.Support;

/// <summary>A resource as ARM would deploy it: copy loops expanded, expressions evaluated where they can be.</summary>
/// <param name="Conditional">It has a condition that is not known to hold (e.g. it depends on a parameter).</param>
public sealed record ArmResource(ArmDeployment Deployment, string Type, string Name, bool Conditional, JsonObject Body)
{
    /// <summary>The value at a dotted path, e.g. "properties.siteConfig.appSettings"; null when absent.</summary>
    public JsonNode? At(string path) => path.Split('.').Aggregate<string, JsonNode?>(Body, (node, key) => node is JsonObject o ? Property(o, key) : null);

    /// <summary>A string at <paramref name="path"/>, or null.</summary>
    public string? Text(string path) => At(path) is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    internal static JsonNode? Property(JsonObject o, string key)
        => o.FirstOrDefault(p => string.Equals(p.Key, key, StringComparison.OrdinalIgnoreCase)).Value;
}

/// <summary>
/// A compiled ARM template (the output of `bicep build`), read as far as the infra contract needs: Bicep
/// modules are nested deployments, which are followed; Bicep `for` loops are copy loops, which are expanded;
/// and the template expressions infra writes are evaluated (variables, parameters, copyIndex, length, format,
/// resource ids, conditions, module outputs...). What only exists at deployment time stays symbolic: a
/// parameter without a value reads "&lt;name&gt;", a module's output "&lt;module.outputs.name&gt;", a unique
/// string "&lt;unique&gt;"; symbolic values are carried into strings but never decided on (a condition on one
/// is unknown). An expression using anything else, or deciding on a symbolic value, is left as written, "[...]".
/// </summary>
public sealed class ArmDeployment
{
    private readonly JsonObject template;
    private readonly Func<string, JsonNode?> parameterValue;
    private readonly Dictionary<string, JsonNode?> variables = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<ArmResource> resources = [];
    private readonly List<ArmDeployment> modules = [];
    private readonly Dictionary<string, JsonObject> moduleTemplates = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The top-level template; its parameters take their default values, or stay symbolic.</summary>
    public ArmDeployment(JsonObject template) : this("main", template, name => null) { }

    private ArmDeployment(string name, JsonObject template, Func<string, JsonNode?> givenParameter)
    {
        Name = name;
        this.template = template;
        parameterValue = p => givenParameter(p) ?? DefaultOf(p) ?? JsonValue.Create($"<{p}>");
        foreach (var raw in RawResources())
            if (raw["type"]?.GetValue<string>() == "Microsoft.Resources/deployments" && raw["properties"]?["template"] is JsonObject t)
                moduleTemplates[EvaluateString(raw["name"], new Scope()) ?? ""] = t;
        foreach (var raw in RawResources())
            Expand(raw);
    }

    /// <summary>"main", or the module's deployment name (e.g. "cosmos").</summary>
    public string Name { get; }
    public IReadOnlyList<ArmResource> Resources => resources;
    public IReadOnlyList<ArmDeployment> Modules => modules;

    /// <summary>This deployment and every module below it.</summary>
    public IEnumerable<ArmDeployment> All => [this, .. modules.SelectMany(m => m.All)];

    /// <summary>Every resource of this deployment and its modules (the deployments themselves included).</summary>
    public IEnumerable<ArmResource> AllResources => All.SelectMany(d => d.Resources);

    public IEnumerable<ArmResource> OfType(string type) => AllResources.Where(r => string.Equals(r.Type, type, StringComparison.OrdinalIgnoreCase));

    private IEnumerable<JsonObject> RawResources() => template["resources"] switch
    {
        JsonArray a => a.OfType<JsonObject>(),
        JsonObject o => o.Select(p => p.Value).OfType<JsonObject>(), // languageVersion 2.0: resources by symbolic name
        _ => [],
    };

    private JsonNode? DefaultOf(string parameter)
        => template["parameters"]?[parameter]?["defaultValue"] is { } d ? Evaluate(d.DeepClone(), new Scope()) : null;

    private void Expand(JsonObject raw)
    {
        var loop = raw["copy"] as JsonObject;
        var count = loop is null ? 1 : (int)(Evaluate(loop["count"]!.DeepClone(), new Scope())?.GetValue<long>() ?? 0);
        for (var i = 0; i < count; i++)
        {
            var scope = loop is null ? new Scope() : new Scope { Copy = i, Loops = { [loop["name"]!.GetValue<string>()] = i } };
            var body = raw.DeepClone().AsObject();
            body.Remove("copy");
            // A module's template is evaluated in its own scope, below; here only what the parent passes it.
            var moduleTemplate = body["properties"]?["template"] as JsonObject;
            moduleTemplate?.Parent!.AsObject().Remove("template");
            var condition = body["condition"] is { } c ? Evaluate(c.DeepClone(), scope) : null;
            body.Remove("condition");
            if (condition is JsonValue cv && cv.TryGetValue<bool>(out var holds) && !holds) continue;
            body = Evaluate(body, scope)!.AsObject();
            var resource = new ArmResource(this, body["type"]!.GetValue<string>(), (string?)body["name"] ?? "",
                condition is not null && !(condition is JsonValue v && v.TryGetValue<bool>(out var b) && b), body);
            resources.Add(resource);
            if (moduleTemplate is not null)
            {
                var given = body["properties"]?["parameters"] as JsonObject;
                modules.Add(new ArmDeployment(resource.Name, moduleTemplate.DeepClone().AsObject(),
                    p => given?[p]?["value"]?.DeepClone()));
            }
        }
    }

    private sealed class Scope
    {
        public int? Copy { get; init; }
        public Dictionary<string, int> Loops { get; init; } = new(StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>Evaluates every expression in <paramref name="node"/> (property names too) and expands property copy loops.</summary>
    private JsonNode? Evaluate(JsonNode? node, Scope scope)
    {
        switch (node)
        {
            case JsonObject o:
                var result = new JsonObject();
                foreach (var (key, value) in o.ToList())
                {
                    if (key == "copy" && value is JsonArray propertyLoops)
                    {
                        foreach (var l in propertyLoops.OfType<JsonObject>())
                        {
                            var name = l["name"]!.GetValue<string>();
                            var n = Evaluate(l["count"]!.DeepClone(), scope)!.GetValue<long>();
                            var items = new JsonArray();
                            for (var j = 0; j < n; j++)
                            {
                                var inner = new Scope { Copy = scope.Copy, Loops = new(scope.Loops, StringComparer.OrdinalIgnoreCase) { [name] = j } };
                                items.Add(Evaluate(l["input"]!.DeepClone(), inner));
                            }
                            result[name] = items;
                        }
                        continue;
                    }
                    var evaluatedKey = IsExpression(key) ? EvaluateString(JsonValue.Create(key), scope) ?? key : key;
                    result[evaluatedKey] = Evaluate(value?.DeepClone(), scope);
                }
                return result;
            case JsonArray a:
                return new JsonArray([.. a.Select(item => Evaluate(item?.DeepClone(), scope))]);
            case JsonValue v when v.TryGetValue<string>(out var text):
                if (text.StartsWith("[[", StringComparison.Ordinal)) return JsonValue.Create(text[1..]);
                if (!IsExpression(text)) return v;
                try
                {
                    return new Parser(this, scope, text[1..^1]).ParseWhole();
                }
                catch (NotSupportedException)
                {
                    return JsonValue.Create(text);
                }
            default:
                return node;
        }
    }

    private string? EvaluateString(JsonNode? node, Scope scope) => Evaluate(node?.DeepClone(), scope) is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    private static bool IsExpression(string text) => text.StartsWith('[') && text.EndsWith(']') && !text.StartsWith("[[", StringComparison.Ordinal);

    private JsonNode? Variable(string name)
    {
        if (variables.TryGetValue(name, out var known)) return known?.DeepClone();
        var raw = ArmResource.Property(template["variables"] as JsonObject ?? [], name)
            ?? throw new NotSupportedException($"variable {name}");
        var value = Evaluate(raw.DeepClone(), new Scope());
        variables[name] = value;
        return value?.DeepClone();
    }

    /// <summary>reference() of a module's deployment: its outputs, symbolically.</summary>
    private JsonNode Reference(string resourceId)
    {
        const string deployments = "/providers/Microsoft.Resources/deployments/";
        var at = resourceId.LastIndexOf(deployments, StringComparison.OrdinalIgnoreCase);
        var name = at < 0 ? null : resourceId[(at + deployments.Length)..];
        if (name is null || !moduleTemplates.TryGetValue(name, out var module)) throw new NotSupportedException($"reference({resourceId})");
        var outputs = new JsonObject();
        foreach (var (output, _) in module["outputs"] as JsonObject ?? [])
            outputs[output] = new JsonObject { ["value"] = $"<{name}.outputs.{output}>" };
        return new JsonObject { ["outputs"] = outputs };
    }

    /// <summary>Recursive descent over ARM's expression language, evaluating as it goes.</summary>
    private sealed class Parser(ArmDeployment deployment, Scope scope, string text)
    {
        private int at;

        public JsonNode? ParseWhole()
        {
            var value = Expression();
            Skip();
            if (at != text.Length) throw new NotSupportedException($"unexpected {text[at..]}");
            return value;
        }

        private JsonNode? Expression()
        {
            var value = Primary();
            while (true)
            {
                Skip();
                if (Take('.')) value = Member(value, Identifier());
                else if (Take('['))
                {
                    var index = Expression();
                    Expect(']');
                    value = index is JsonValue iv && iv.TryGetValue<long>(out var i)
                        ? (value as JsonArray ?? throw new NotSupportedException("index of a non-array"))[(int)i]?.DeepClone()
                        : Member(value, index!.GetValue<string>());
                }
                else return value;
            }
        }

        private static JsonNode? Member(JsonNode? value, string name)
            => value is JsonObject o ? ArmResource.Property(o, name)?.DeepClone() : throw new NotSupportedException($"property {name} of a non-object");

        private JsonNode? Primary()
        {
            Skip();
            if (Take('\''))
            {
                var s = new StringBuilder();
                while (true)
                {
                    if (at >= text.Length) throw new NotSupportedException("unterminated string");
                    if (text[at] == '\'' && at + 1 < text.Length && text[at + 1] == '\'') { s.Append('\''); at += 2; }
                    else if (text[at] == '\'') { at++; return JsonValue.Create(s.ToString()); }
                    else s.Append(text[at++]);
                }
            }
            if (at < text.Length && (char.IsAsciiDigit(text[at]) || text[at] == '-'))
            {
                var start = at++;
                while (at < text.Length && char.IsAsciiDigit(text[at])) at++;
                return JsonValue.Create(long.Parse(text[start..at], CultureInfo.InvariantCulture));
            }
            var name = Identifier();
            Skip();
            Expect('(');
            var args = new List<JsonNode?>();
            Skip();
            if (!Take(')'))
            {
                do args.Add(Expression()); while (Take(','));
                Expect(')');
            }
            return Call(name, args);
        }

        private JsonNode? Call(string name, List<JsonNode?> args)
        {
            string Str(int i) => args[i] is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new NotSupportedException($"{name}: argument {i} is not a string");
            bool Bool(int i) => args[i] is JsonValue v && v.TryGetValue<bool>(out var b) ? b : throw new NotSupportedException($"{name}: argument {i} is not a bool");
            string Text(JsonNode? n) => n is JsonValue v && v.TryGetValue<string>(out var s) ? s : n?.ToJsonString() ?? "";
            // A symbolic value may be carried into a name or a string, but nothing is decided on it.
            // The length of an array or object is known even when its items are not (a loop over rules naming a queue).
            if (name.ToLowerInvariant() is "empty" or "equals" or "length" or "greater" or "less" or "contains" && args.Any(Symbolic)
                && !(name.Equals("length", StringComparison.OrdinalIgnoreCase) && args[0] is JsonArray or JsonObject))
                throw new NotSupportedException($"{name} of a value known only at deployment");
            switch (name.ToLowerInvariant())
            {
                case "parameters": return deployment.parameterValue(Str(0));
                case "variables": return deployment.Variable(Str(0));
                case "copyindex":
                    var offset = args.Count > 0 && args[^1] is JsonValue o && o.TryGetValue<long>(out var off) ? off : 0;
                    var loop = args.Count > 0 && args[0] is JsonValue l && l.TryGetValue<string>(out var ln) ? ln : null;
                    var index = loop is null ? scope.Copy : scope.Loops.TryGetValue(loop, out var li) ? li : null;
                    return JsonValue.Create((index ?? throw new NotSupportedException("copyIndex outside a loop")) + offset);
                case "length":
                    return JsonValue.Create((long)(args[0] switch
                    {
                        JsonArray a => a.Count,
                        JsonObject ob => ob.Count,
                        _ => Str(0).Length,
                    }));
                case "format":
                    return JsonValue.Create(string.Format(CultureInfo.InvariantCulture, Str(0), [.. args.Skip(1).Select(Text)]));
                case "concat":
                    return args.All(a => a is JsonArray)
                        ? new JsonArray([.. args.SelectMany(a => a!.AsArray().Select(x => x?.DeepClone()))])
                        : JsonValue.Create(string.Concat(args.Select(Text)));
                case "string": return JsonValue.Create(Text(args[0]));
                case "tolower": return JsonValue.Create(Str(0).ToLowerInvariant());
                case "toupper": return JsonValue.Create(Str(0).ToUpperInvariant());
                case "empty":
                    return JsonValue.Create(args[0] switch
                    {
                        null => true,
                        JsonArray a => a.Count == 0,
                        JsonObject ob => ob.Count == 0,
                        _ => Str(0).Length == 0,
                    });
                case "equals": return JsonValue.Create(JsonNode.DeepEquals(args[0], args[1]));
                case "not": return JsonValue.Create(!Bool(0));
                case "and": return JsonValue.Create(args.Select((_, i) => Bool(i)).All(b => b));
                case "or": return JsonValue.Create(args.Select((_, i) => Bool(i)).Any(b => b));
                case "greater": return JsonValue.Create(args[0]!.GetValue<long>() > args[1]!.GetValue<long>());
                case "less": return JsonValue.Create(args[0]!.GetValue<long>() < args[1]!.GetValue<long>());
                case "if": return Bool(0) ? args[1] : args[2];
                case "true": return JsonValue.Create(true);
                case "false": return JsonValue.Create(false);
                case "null": return null;
                case "createarray": return new JsonArray([.. args]);
                case "createobject":
                    var created = new JsonObject();
                    for (var i = 0; i + 1 < args.Count; i += 2) created[Str(i)] = args[i + 1];
                    return created;
                case "tryget": // Bicep's safe dereference (c.?name): the member, or null when it is absent
                    return args[0] switch
                    {
                        JsonObject ob => ArmResource.Property(ob, Str(1))?.DeepClone(),
                        JsonArray a when args[1] is JsonValue iv && iv.TryGetValue<long>(out var i) => i >= 0 && i < a.Count ? a[(int)i]?.DeepClone() : null,
                        _ => null,
                    };
                case "union" when args.All(a => a is JsonObject):
                    var merged = new JsonObject();
                    foreach (var a in args) foreach (var (k, v) in a!.AsObject()) merged[k] = v?.DeepClone();
                    return merged;
                // Known only at deployment time: kept symbolic.
                case "subscription": return new JsonObject { ["subscriptionId"] = "<subscriptionId>", ["id"] = "/subscriptions/<subscriptionId>", ["tenantId"] = "<tenantId>" };
                case "resourcegroup": return new JsonObject { ["name"] = "<resourceGroup>", ["id"] = "/subscriptions/<subscriptionId>/resourceGroups/<resourceGroup>", ["location"] = "<location>" };
                case "uniquestring": return JsonValue.Create("<unique>");
                case "guid": return JsonValue.Create("<guid>");
                case "resourceid":
                    return JsonValue.Create($"/subscriptions/<subscriptionId>/resourceGroups/<resourceGroup>/providers/{Str(0)}/{string.Join('/', args.Skip(1).Select(Text))}");
                case "subscriptionresourceid":
                    return JsonValue.Create($"/subscriptions/<subscriptionId>/providers/{Str(0)}/{string.Join('/', args.Skip(1).Select(Text))}");
                case "extensionresourceid":
                    return JsonValue.Create($"{Str(0)}/providers/{Str(1)}/{string.Join('/', args.Skip(2).Select(Text))}");
                case "reference": return deployment.Reference(Str(0));
                default: throw new NotSupportedException(name);
            }
        }

        private static bool Symbolic(JsonNode? node) => node switch
        {
            JsonObject o => o.Any(p => Symbolic(p.Value)),
            JsonArray a => a.Any(Symbolic),
            JsonValue v => v.TryGetValue<string>(out var s) && s.Contains('<'),
            _ => false,
        };

        private string Identifier()
        {
            Skip();
            var start = at;
            while (at < text.Length && (char.IsAsciiLetterOrDigit(text[at]) || text[at] is '_' or '$' or '#')) at++;
            if (at == start) throw new NotSupportedException($"expected a name at {text[start..]}");
            return text[start..at];
        }

        private void Skip()
        {
            while (at < text.Length && char.IsWhiteSpace(text[at])) at++;
        }

        private bool Take(char c)
        {
            Skip();
            if (at < text.Length && text[at] == c) { at++; return true; }
            return false;
        }

        private void Expect(char c)
        {
            if (!Take(c)) throw new NotSupportedException($"expected {c} at {at} in {text}");
        }
    }

    /// <summary>The evaluated document as indented JSON (for failure messages and debugging).</summary>
    public override string ToString()
        => JsonSerializer.Serialize(new JsonArray([.. AllResources.Select(r => (JsonNode)new JsonObject { ["deployment"] = r.Deployment.Name, ["resource"] = r.Body.DeepClone() })]),
            new JsonSerializerOptions { WriteIndented = true });
}
