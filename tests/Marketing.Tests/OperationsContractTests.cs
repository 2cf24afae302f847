using System.Reflection;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Marketing.Functions.Telemetry;
using Marketing.Tests.Support;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The operations side of infra/ (modules/alerts.bicep, modules/workbook.bicep, workbook.json) and docs/operations.md
/// against the code: every alert rule is deployed with its threshold and window bound to a parameter of main.bicep,
/// the action group notifies whom the parameters say, the workbook is the JSON in infra/, and every metric name, tag
/// and outcome a query uses (alert rules, workbook, the runbook's KQL) is one Telemetry/Metrics.cs emits. Read from
/// the ARM template the real compiler makes (as InfraContractTests does).
/// </summary>
public sealed partial class OperationsContractTests
{
    private static readonly string Infra = Repo.PathOf("infra");
    private static readonly Lazy<InfraContract.Compiled> Compiled = new(() => InfraContract.Compile(Infra));

    /// <summary>
    /// Each rule (its name without the deployment's suffix), the main.bicep parameter its threshold comes from and that
    /// parameter's default, and the window's parameter and default where the window is one.
    /// </summary>
    public static readonly (string Rule, string Type, string Threshold, long Default, string? Window, string? WindowDefault)[] Rules =
    [
        ("order-events-dead-letters", MetricAlert, "alertOrderEventsDeadLetters", 0, null, null),
        ("notifications-dead-letters", MetricAlert, "alertNotificationsDeadLetters", 0, null, null),
        ("http-5xx", LogAlert, "alertHttp5xxPercent", 5, "alertHttp5xxWindow", "PT15M"),
        ("cosmos-throttling", LogAlert, "alertCosmosThrottledPercent", 1, "alertCosmosWindow", "PT15M"),
        ("timer-failing", LogAlert, "alertTimerFailuresInARow", 2, "alertTimerFailuresWindow", "PT1H"),
        ("timer-backlog", LogAlert, "alertTimerBacklogAgeSeconds", 3600, null, null),
        ("timer-silent", LogAlert, "alertTimerSilentMinutes", 30, null, null),
        ("stats-lag", LogAlert, "alertStatsLagSeconds", 900, null, null),
        ("webhook-failures", LogAlert, "alertWebhookFailurePercent", 20, "alertWebhookWindow", "PT30M"),
    ];

    private const string MetricAlert = "Microsoft.Insights/metricAlerts";
    private const string LogAlert = "Microsoft.Insights/scheduledQueryRules";

    /// <summary>The compiled template with some of main.bicep's parameter defaults changed (no recompile: the JSON is edited).</summary>
    private static ArmDeployment WithDefaults(params (string Parameter, JsonNode Value)[] defaults)
    {
        var template = JsonNode.Parse(Compiled.Value.Json)!.AsObject();
        foreach (var (parameter, value) in defaults)
        {
            var declared = template["parameters"]?[parameter] as JsonObject;
            Assert.True(declared is not null, $"main.bicep has no parameter {parameter}");
            declared["defaultValue"] = value;
        }
        return new ArmDeployment(template);
    }

    private static ArmResource Rule(ArmDeployment infra, string rule, string type)
        => Assert.Single(infra.OfType(type), r => r.Name.StartsWith(rule + "-", StringComparison.Ordinal) && r.Name.Length > rule.Length + 1
            && !r.Name[(rule.Length + 1)..].Contains('-'));

    private static JsonNode? ParameterDefault(string parameter)
        => JsonNode.Parse(Compiled.Value.Json)!["parameters"]?[parameter]?["defaultValue"];

    [Fact]
    public void Every_alert_rule_is_deployed_with_its_threshold_and_window_bound_to_a_parameter_of_main()
    {
        var infra = Compiled.Value.Template;
        Assert.Equal(Rules.Length, infra.OfType(MetricAlert).Count() + infra.OfType(LogAlert).Count());
        // Each default moved by 7 (and each window to another allowed value): the rule must move with it.
        var moved = WithDefaults([
            .. Rules.Select(r => (r.Threshold, (JsonNode)JsonValue.Create(r.Default + 7))),
            .. Rules.Where(r => r.Window is not null).Select(r => (r.Window!, (JsonNode)JsonValue.Create("PT5M"))),
        ]);
        foreach (var (rule, type, threshold, @default, window, windowDefault) in Rules)
        {
            Assert.Equal(@default, ParameterDefault(threshold)?.GetValue<long>());
            Assert.Equal(@default, Threshold(Rule(infra, rule, type)));
            Assert.Equal(@default + 7, Threshold(Rule(moved, rule, type)));
            if (window is null) continue;
            Assert.Equal(windowDefault, ParameterDefault(window)?.GetValue<string>());
            Assert.Equal(windowDefault, Rule(infra, rule, type).Text("properties.windowSize"));
            Assert.Equal("PT5M", Rule(moved, rule, type).Text("properties.windowSize"));
        }
    }

    private static long? Threshold(ArmResource rule)
        => (rule.At("properties.criteria.allOf") as JsonArray)?.Single()?["threshold"]?.GetValue<long>();

    [Fact]
    public void Every_parameter_of_the_alerts_is_described()
    {
        var parameters = JsonNode.Parse(Compiled.Value.Json)!["parameters"]!.AsObject();
        var alertParameters = parameters.Where(p => p.Key.StartsWith("alert", StringComparison.Ordinal)).ToList();
        Assert.True(alertParameters.Count >= Rules.Length + 2);
        foreach (var (name, declared) in alertParameters)
            Assert.False(string.IsNullOrWhiteSpace((string?)declared?["metadata"]?["description"]), $"{name} has no @description");
    }

    [Fact]
    public void Dead_letters_are_watched_on_both_queues_by_the_queue_name()
    {
        var infra = Compiled.Value.Template;
        foreach (var (rule, queue) in (ReadOnlySpan<(string, string)>)[("order-events-dead-letters", "order-events"), ("notifications-dead-letters", "notifications")])
        {
            var criterion = (Rule(infra, rule, MetricAlert).At("properties.criteria.allOf") as JsonArray)!.Single()!;
            Assert.Equal("DeadletteredMessages", (string?)criterion["metricName"]);
            Assert.Equal("Microsoft.ServiceBus/namespaces", (string?)criterion["metricNamespace"]);
            Assert.Equal("GreaterThan", (string?)criterion["operator"]);
            var dimension = criterion["dimensions"]!.AsArray().Single()!;
            Assert.Equal("EntityName", (string?)dimension["name"]);
            Assert.Equal(["<servicebus.outputs." + (queue == "order-events" ? "queueName" : "notificationsQueueName") + ">"],
                dimension["values"]!.AsArray().Select(v => (string?)v));
            Assert.EndsWith("/providers/Microsoft.ServiceBus/namespaces/<servicebus.outputs.name>",
                (Rule(infra, rule, MetricAlert).At("properties.scopes") as JsonArray)!.Single()!.GetValue<string>());
        }
        // The queue names the module is given are the queues servicebus.bicep declares.
        var queues = infra.OfType("Microsoft.ServiceBus/namespaces/queues").Select(q => q.Name.Split('/')[^1]).ToList();
        Assert.Equal(["order-events", "notifications"], queues);
        Assert.Contains("output queueName string = orderEvents.name", File.ReadAllText(Path.Combine(Infra, "modules", "servicebus.bicep")));
    }

    [Fact]
    public void Log_rules_query_Application_Insights_with_the_alerts_identity_which_may_read_the_component_and_its_workspace()
    {
        var infra = Compiled.Value.Template;
        Assert.Empty(LogReadViolations(infra));
        foreach (var rule in infra.OfType(LogAlert))
            Assert.Equal("Maximum", (string?)(rule.At("properties.criteria.allOf") as JsonArray)!.Single()!["timeAggregation"]);
        // The workspace the alerts module is given is the one monitoring.bicep declares.
        Assert.Contains("output logAnalyticsName string = workspace.name", File.ReadAllText(Path.Combine(Infra, "modules", "monitoring.bicep")));
    }

    /// <summary>Damage to a copy of infra/ that must make <see cref="LogReadViolations"/> complain, and what it must say.</summary>
    public static readonly TheoryData<string, string, string, string> LogReadDamages = new()
    {
        { "modules/alerts.bicep", "resource alertsReadWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = {", "resource alertsReadWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (false) {", "no Log Analytics Reader on the workspace" },
        { "modules/alerts.bicep", "resource alertsReadInsights 'Microsoft.Authorization/roleAssignments@2022-04-01' = {", "resource alertsReadInsights 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (false) {", "no Reader on the component" },
        { "modules/alerts.bicep", "type: 'UserAssigned'", "type: 'SystemAssigned, UserAssigned'", "identity type" },
        { "modules/monitoring.bicep", ", enableLogAccessUsingOnlyResourcePermissions: true", "", "enableLogAccessUsingOnlyResourcePermissions" },
    };

    [Theory]
    [MemberData(nameof(LogReadDamages))]
    public void A_log_rule_identity_missing_a_read_is_caught(string file, string find, string replace, string expected)
    {
        using var copy = InfraCopy.Of(Infra);
        copy.Edit(file, find, replace);
        // Not Compile: the damage may earn a warning (a condition always false), and the contract must catch it anyway.
        var build = Bicep.Build(copy.File("main.bicep"));
        Assert.True(build.ExitCode == 0, build.ToString());
        var violations = LogReadViolations(InfraContract.Read(copy.Dir, build.Output).Template);
        Assert.True(violations.Any(v => v.Contains(expected, StringComparison.Ordinal)), $"expected \"{expected}\" among [{string.Join("; ", violations)}]");
    }

    /// <summary>
    /// What keeps a log rule from reading its data: every rule must run as the one id-alerts-* identity, which holds
    /// Reader on the Application Insights component and Log Analytics Reader on its workspace, and the workspace lets a
    /// query scoped to the component be authorized by the component's permissions.
    /// </summary>
    public static List<string> LogReadViolations(ArmDeployment infra)
    {
        const string reader = "/acdd72a7-3385-48ef-bd42-f606fba81ae7", logAnalyticsReader = "/73c42c96-874c-492b-b04d-ab87d138a893";
        const string insights = "/providers/Microsoft.Insights/components/<monitoring.outputs.appInsightsName>";
        const string workspace = "/providers/Microsoft.OperationalInsights/workspaces/<monitoring.outputs.logAnalyticsName>";
        var violations = new List<string>();
        var identities = infra.OfType("Microsoft.ManagedIdentity/userAssignedIdentities").Where(i => i.Name.StartsWith("id-alerts-", StringComparison.Ordinal)).ToList();
        if (identities.Count != 1) return [$"{identities.Count} id-alerts-* identities, not one"];
        var identityId = "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + identities[0].Name;

        var rules = infra.OfType(LogAlert).ToList();
        if (rules.Count == 0) violations.Add("no log rule");
        foreach (var rule in rules)
        {
            if (rule.Text("identity.type") != "UserAssigned") violations.Add($"{rule.Name}: identity type {rule.Text("identity.type")}, not UserAssigned");
            var assigned = (rule.At("identity.userAssignedIdentities") as JsonObject)?.Select(p => p.Key).ToList() ?? [];
            if (assigned.Count != 1 || !assigned[0].EndsWith(identityId, StringComparison.Ordinal))
                violations.Add($"{rule.Name}: runs as [{string.Join(", ", assigned)}], not {identityId}");
            if ((rule.At("properties.scopes") as JsonArray)?.SingleOrDefault()?.GetValue<string>().EndsWith(insights, StringComparison.Ordinal) != true)
                violations.Add($"{rule.Name}: not scoped to the Application Insights component");
        }

        // The assignments' principal is the identity's: a reference() to it (resolved by ARM at deployment, left as
        // written here), which is why an assignment waits for the identity.
        var held = infra.OfType("Microsoft.Authorization/roleAssignments")
            .Where(a => a.Text("properties.principalId") is { } p && p.StartsWith("[reference(", StringComparison.Ordinal)
                && p.Contains("'Microsoft.ManagedIdentity/userAssignedIdentities'", StringComparison.Ordinal) && p.Contains("'id-alerts-", StringComparison.Ordinal)
                && p.EndsWith(".principalId]", StringComparison.Ordinal))
            .Select(a => (Scope: a.Text("scope") ?? "", Role: a.Text("properties.roleDefinitionId") ?? ""))
            .ToList();
        if (held.Count(h => h.Scope.EndsWith(insights, StringComparison.Ordinal) && h.Role.EndsWith(reader, StringComparison.Ordinal)) != 1)
            violations.Add("the alerts identity has no Reader on the component");
        if (held.Count(h => h.Scope.EndsWith(workspace, StringComparison.Ordinal) && h.Role.EndsWith(logAnalyticsReader, StringComparison.Ordinal)) != 1)
            violations.Add("the alerts identity has no Log Analytics Reader on the workspace");
        if (held.Count != 2) violations.Add($"the alerts identity holds {held.Count} roles, not 2: [{string.Join("; ", held)}]");

        var workspaces = infra.OfType("Microsoft.OperationalInsights/workspaces").ToList();
        if (workspaces.Count != 1 || workspaces[0].At("properties.features.enableLogAccessUsingOnlyResourcePermissions") is not JsonValue flag
            || !flag.TryGetValue<bool>(out var on) || !on)
            violations.Add("the workspace does not set enableLogAccessUsingOnlyResourcePermissions");
        return violations;
    }

    [Fact]
    public void The_silent_timer_rule_lists_every_timer_function_and_looks_back_further_than_its_threshold_may_go()
    {
        var rule = Rule(Compiled.Value.Template, "timer-silent", LogAlert);
        var query = (string)(rule.At("properties.criteria.allOf") as JsonArray)!.Single()!["query"]!;
        var listed = TimerList().Match(query);
        Assert.True(listed.Success, query);
        // The timer functions: the features mapped with MapTimerFunction, each with its schedule setting.
        var timers = typeof(Marketing.Functions.Hosting.Platform).Assembly.GetTypes()
            .Where(t => t.GetField("ScheduleSetting", BindingFlags.Public | BindingFlags.Static) is { IsLiteral: true })
            .Select(t => (string)t.GetField("FunctionName", BindingFlags.Public | BindingFlags.Static)!.GetRawConstantValue()!)
            .Order().ToList();
        Assert.NotEmpty(timers);
        Assert.Equal(timers, listed.Groups["name"].Captures.Select(c => c.Value).Order());
        // A timer with no run in the window counts as silent for the whole window, which the threshold may not exceed.
        Assert.Equal("PT6H", rule.Text("properties.windowSize"));
        Assert.Contains(", 360)", query);
        var declared = JsonNode.Parse(Compiled.Value.Json)!["parameters"]!["alertTimerSilentMinutes"]!;
        Assert.True((long?)declared["maxValue"] < 360);
    }

    [GeneratedRegex(@"datatable\(function: string\) \[(?:\s*""(?<name>[A-Za-z]+)"",?)+\s*\]")]
    private static partial Regex TimerList();

    [Fact]
    public void Every_rule_notifies_the_action_group_whose_receivers_are_the_parameters()
    {
        var infra = Compiled.Value.Template;
        var group = Assert.Single(infra.OfType("Microsoft.Insights/actionGroups"));
        Assert.False(group.Conditional);
        foreach (var rule in infra.OfType(MetricAlert))
            Assert.EndsWith("/" + group.Name, (rule.At("properties.actions") as JsonArray)!.Single()!["actionGroupId"]!.GetValue<string>());
        foreach (var rule in infra.OfType(LogAlert))
            Assert.EndsWith("/" + group.Name, (rule.At("properties.actions.actionGroups") as JsonArray)!.Single()!.GetValue<string>());

        // By default nobody is notified: no receiver at all (not one with an empty address, which Azure refuses).
        Assert.Equal("", ParameterDefault("alertEmail")?.GetValue<string>());
        Assert.Equal("", ParameterDefault("alertWebhookUrl")?.GetValue<string>());
        Assert.Equal("securestring", (string?)JsonNode.Parse(Compiled.Value.Json)!["parameters"]!["alertWebhookUrl"]!["type"]);
        Assert.Empty(group.At("properties.emailReceivers")!.AsArray());
        Assert.Empty(group.At("properties.webhookReceivers")!.AsArray());

        var given = Assert.Single(WithDefaults(("alertEmail", JsonValue.Create("oncall@example.com")), ("alertWebhookUrl", JsonValue.Create("https://oncall.example.com/hook")))
            .OfType("Microsoft.Insights/actionGroups"));
        var email = given.At("properties.emailReceivers")!.AsArray().Single()!;
        Assert.Equal("oncall@example.com", (string?)email["emailAddress"]);
        Assert.True((bool)email["useCommonAlertSchema"]!);
        var webhook = given.At("properties.webhookReceivers")!.AsArray().Single()!;
        Assert.Equal("https://oncall.example.com/hook", (string?)webhook["serviceUri"]);
        Assert.True((bool)webhook["useCommonAlertSchema"]!);
    }

    [Fact]
    public void The_workbook_is_deployed_from_infra_workbook_json_and_shows_every_metric_with_a_campaign_parameter()
    {
        var workbook = Assert.Single(Compiled.Value.Template.OfType("Microsoft.Insights/workbooks"));
        Assert.Equal("shared", workbook.Text("kind"));
        Assert.EndsWith("/providers/Microsoft.Insights/components/<monitoring.outputs.appInsightsName>", workbook.Text("properties.sourceId"));
        var deployed = JsonNode.Parse(workbook.Text("properties.serializedData")!)!;
        // The JSON in infra/ plus the component as the queries' resource wherever the workbook is opened.
        var fallback = Assert.Single(deployed["fallbackResourceIds"]!.AsArray())!.GetValue<string>();
        Assert.EndsWith("/providers/Microsoft.Insights/components/<monitoring.outputs.appInsightsName>", fallback);
        // The file names no deployment's resource (the portal's Advanced Editor writes an empty list).
        var file = JsonNode.Parse(File.ReadAllText(Path.Combine(Infra, "workbook.json")))!.AsObject();
        Assert.Empty(file["fallbackResourceIds"]?.AsArray() ?? []);
        file.Remove("fallbackResourceIds");
        var asInInfra = deployed.DeepClone().AsObject();
        asInInfra.Remove("fallbackResourceIds");
        Assert.True(JsonNode.DeepEquals(file, asInInfra), "the workbook deployed is not infra/workbook.json");
        Assert.Equal("Notebook/1.0", (string?)deployed["version"]);

        var queries = WorkbookQueries(deployed);
        foreach (var instrument in Instruments)
            Assert.True(queries.Any(q => q.Contains($"\"{instrument}\"", StringComparison.Ordinal)), $"the workbook shows nothing of {instrument}");
        var parameters = deployed["items"]!.AsArray().Single(i => (int?)i!["type"] == 9)!["content"]!["parameters"]!.AsArray();
        Assert.Contains(parameters, p => (string?)p!["name"] == "TimeRange");
        Assert.Contains(parameters, p => (string?)p!["name"] == "Campaign");
        // Each per-campaign metric is shown filtered by the campaign chosen.
        foreach (var instrument in (string[])[Metrics.Claims, Metrics.Redemptions, Metrics.BudgetExhausted])
            Assert.Contains(queries, q => q.Contains($"\"{instrument}\"", StringComparison.Ordinal) && q.Contains("in ({Campaign})", StringComparison.Ordinal));
        // Cosmos request units and throttling, and the API's 5xx.
        Assert.Contains(queries, q => q.Contains(TelemetryModule.CosmosRequestCharge, StringComparison.Ordinal));
        Assert.Contains(queries, q => q.Contains("\"429\"", StringComparison.Ordinal));
        Assert.Contains(queries, q => q.StartsWith("requests", StringComparison.Ordinal) && q.Contains(">= 500", StringComparison.Ordinal));
    }

    [Fact]
    public void Every_alert_has_a_runbook_in_the_operations_guide()
    {
        var guide = File.ReadAllText(Repo.PathOf("docs", "operations.md"));
        foreach (var (rule, _, threshold, _, window, _) in Rules)
        {
            Assert.Matches(new Regex($"^### `{Regex.Escape(rule)}`", RegexOptions.Multiline), guide);
            Assert.Contains($"`{threshold}`", guide);
            if (window is not null) Assert.Contains($"`{window}`", guide);
        }
        Assert.Contains("`alertEmail`", guide);
        Assert.Contains("`alertWebhookUrl`", guide);
    }

    // --- Names, tags and outcomes ----------------------------------------------------------------------------------

    private static IEnumerable<string> Constants(Type type)
        => type.GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!);

    /// <summary>The instruments' names: Metrics' constants that name a marketing.* metric.</summary>
    private static readonly string[] Instruments = [.. Constants(typeof(Metrics)).Where(c => c.StartsWith("marketing.", StringComparison.Ordinal))];

    /// <summary>Every outcome of every instrument (the nested *Outcomes classes).</summary>
    private static readonly string[] Outcomes = [.. typeof(Metrics).GetNestedTypes().Where(t => t.Name.EndsWith("Outcomes", StringComparison.Ordinal)).SelectMany(Constants)];

    /// <summary>
    /// What may be read from customDimensions: the metrics' tags, the Cosmos spans' attributes, and the invocation id on
    /// the handler's request spans and the host's request rows (their join).
    /// </summary>
    private static readonly string[] Dimensions =
    [
        .. typeof(Metrics).GetFields().Where(f => f.IsLiteral && f.Name.EndsWith("Tag", StringComparison.Ordinal)).Select(f => (string)f.GetRawConstantValue()!),
        TelemetryModule.CosmosRequestCharge, TelemetryModule.CosmosStatusCode, TelemetryModule.CosmosSubStatusCode,
        TelemetryModule.CosmosOperation, TelemetryModule.CosmosContainer,
        TelemetryModule.InvocationIdAttribute, TelemetryModule.HostInvocationIdDimension,
    ];

    private static List<string> WorkbookQueries(JsonNode workbook)
    {
        var queries = new List<string>();
        void Walk(JsonNode? node)
        {
            switch (node)
            {
                case JsonObject o:
                    foreach (var (key, value) in o)
                        if (key == "query" && value is JsonValue v && v.TryGetValue<string>(out var q)) queries.Add(q);
                        else Walk(value);
                    break;
                case JsonArray a:
                    foreach (var item in a) Walk(item);
                    break;
            }
        }
        Walk(workbook);
        return queries;
    }

    /// <summary>The KQL the platform ships: alert rule queries (as deployed), the workbook's, and the runbook's kusto blocks.</summary>
    private static List<(string Where, string Kql)> ShippedKql()
    {
        var infra = Compiled.Value.Template;
        var kql = infra.OfType(LogAlert).Select(r => ($"alert {r.Name}", (string)(r.At("properties.criteria.allOf") as JsonArray)!.Single()!["query"]!)).ToList();
        var workbook = JsonNode.Parse(Assert.Single(infra.OfType("Microsoft.Insights/workbooks")).Text("properties.serializedData")!)!;
        kql.AddRange(WorkbookQueries(workbook).Select(q => ("workbook", q)));
        var guide = File.ReadAllText(Repo.PathOf("docs", "operations.md"));
        kql.AddRange(KustoBlock().Matches(guide).Select(m => ("docs/operations.md", m.Groups[1].Value)));
        return kql;
    }

    /// <summary>What in <paramref name="kql"/> names a metric, a dimension or an outcome the code does not emit.</summary>
    public static List<string> Violations(string kql)
    {
        var violations = new List<string>();
        foreach (Match name in MetricName().Matches(kql))
            if (!Instruments.Contains(name.Value)) violations.Add($"metric {name.Value} is not a constant of Telemetry/Metrics.cs");
        // Tags are checked where the dimensions are the code's: metrics and Cosmos spans (a log's are the logger's).
        foreach (var dimension in ReadsLogs().IsMatch(kql) ? [] : Dimension().Matches(kql).ToList())
        {
            var key = dimension.Groups["quoted"].Success ? dimension.Groups["quoted"].Value : dimension.Groups["dotted"].Value;
            if (!Dimensions.Contains(key)) violations.Add($"dimension {key} is neither a metric tag nor a Cosmos span attribute");
        }
        foreach (Match comparison in OutcomeComparison().Matches(kql))
            foreach (Capture literal in comparison.Groups["literal"].Captures)
                if (!Outcomes.Contains(literal.Value)) violations.Add($"outcome \"{literal.Value}\" is not a constant of Telemetry/Metrics.cs");
        return violations;
    }

    /// <summary>The outcomes <paramref name="kql"/> compares with (to prove the reader finds them).</summary>
    private static IEnumerable<string> OutcomesIn(string kql)
        => OutcomeComparison().Matches(kql).SelectMany(m => m.Groups["literal"].Captures.Select(c => c.Value));

    [Fact]
    public void Every_metric_dimension_and_outcome_the_queries_use_is_one_the_code_emits()
    {
        var kql = ShippedKql();
        Assert.All(kql, k => Assert.True(Violations(k.Kql).Count == 0, $"{k.Where}: {string.Join("; ", Violations(k.Kql))}\n{k.Kql}"));

        // The reader finds what is there: the alert queries name the metrics they alert on and the outcomes they count.
        var alerts = string.Join("\n", kql.Where(k => k.Where.StartsWith("alert ", StringComparison.Ordinal)).Select(k => k.Kql));
        foreach (var instrument in (string[])[Metrics.TimerRuns, Metrics.TimerBacklogAge, Metrics.StatsLag, Metrics.WebhookDuration])
            Assert.Contains(instrument, MetricName().Matches(alerts).Select(m => m.Value));
        Assert.Equal(
            new HashSet<string> { Metrics.TimerOutcomes.Failed, Metrics.WebhookOutcomes.Rejected, Metrics.WebhookOutcomes.Unavailable, Metrics.WebhookOutcomes.NotAllowed },
            OutcomesIn(alerts).ToHashSet());
        Assert.Contains(kql, k => k.Where == "docs/operations.md" && MetricName().IsMatch(k.Kql));
    }

    /// <summary>
    /// Runs scripts/kql-check.mjs (Kusto's own language service) over <paramref name="queries"/>: parsed and analysed
    /// against the Application Insights tables, as Azure Monitor does before it accepts a rule or runs a tile.
    /// </summary>
    private static async Task<Scripts.Result> CheckKqlAsync(IEnumerable<(string Where, string Kql)> queries)
    {
        var input = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(input, new JsonArray([.. queries.Select(q => (JsonNode)new JsonArray(q.Where, q.Kql))]).ToJsonString());
            return await Scripts.RunAsync("node", [Repo.PathOf("scripts", "kql-check.mjs"), input]);
        }
        finally
        {
            File.Delete(input);
        }
    }

    /// <summary>A workbook query as the workbook runs it: its parameters replaced by values of their kind.</summary>
    private static string AsRun(string kql) => kql.Replace("{TimeRange:grain}", "1h").Replace("{Campaign}", "'*'");

    [Fact]
    public async Task Every_shipped_query_is_valid_KQL_over_the_Application_Insights_tables()
    {
        var queries = ShippedKql().Select(k => (k.Where, Kql: AsRun(k.Kql))).ToList();
        Assert.All(queries, q => Assert.DoesNotMatch(@"\{[A-Za-z]+(:[a-z]+)?\}", q.Kql)); // no workbook parameter left unreplaced
        var check = await CheckKqlAsync(queries);
        Assert.True(check.ExitCode == 0, $"KQL with errors:\n{check}");

        // The check sees what Azure would refuse: a misspelt column, a column the table does not have, a let left out.
        var broken = await CheckKqlAsync([
            ("misspelt", "customMetrics | where nme == \"marketing.claims\""),
            ("no such column", "customMetrics | summarize sum(itemCount)"),
            ("let left out", "requests | summarize total = sum(itemCount) | where total >= minRequests"),
            ("fine", "customMetrics | summarize sum(valueSum) by bin(timestamp, 5m)"),
        ]);
        Assert.Equal(1, broken.ExitCode);
        foreach (var where in (string[])["misspelt", "no such column", "let left out"])
            Assert.Contains($"{where}: line 1: Error", broken.Output);
        Assert.DoesNotContain("fine:", broken.Output);
    }

    [Theory]
    [InlineData("customMetrics | where name == \"marketing.claim\"", "metric marketing.claim")]
    [InlineData("customMetrics | where name == \"marketing.timer.run\" | summarize sum(valueSum)", "metric marketing.timer.run")]
    [InlineData("customMetrics | where tostring(customDimensions.outcome) == \"issueed\"", "outcome \"issueed\"")]
    [InlineData("customMetrics | extend outcome = tostring(customDimensions[\"outcome\"]) | where outcome in (\"rejected\", \"timeout\")", "outcome \"timeout\"")]
    [InlineData("customMetrics | where outcome != \"error\"", "outcome \"error\"")]
    [InlineData("customMetrics | summarize by campaign = tostring(customDimensions[\"campaign\"])", "dimension campaign")]
    [InlineData("AppMetrics | summarize by customer = tostring(Properties.customer_id)", "dimension customer_id")]
    public void A_name_tag_or_outcome_the_code_does_not_emit_is_caught(string kql, string expected)
    {
        Assert.Contains(Violations(kql), v => v.Contains(expected, StringComparison.Ordinal));
        // ...and the same query with the code's names passes.
        var fixedKql = kql.Replace("marketing.claim\"", "marketing.claims\"").Replace("marketing.timer.run\"", "marketing.timer.runs\"")
            .Replace("issueed", "issued").Replace("timeout", "unavailable").Replace("\"error\"", "\"failed\"")
            .Replace("[\"campaign\"]", "[\"campaign_id\"]").Replace("Properties.customer_id", "Properties.campaign_id");
        Assert.Empty(Violations(fixedKql));
    }

    [Fact]
    public void A_logs_dimensions_are_the_loggers_and_are_not_held_to_the_metrics_tags()
    {
        Assert.Empty(Violations("traces | where tostring(customDimensions[\"EventId\"]) == \"1001\""));
        Assert.Empty(Violations("AppTraces | summarize by category = tostring(Properties.CategoryName)"));
        Assert.Contains(Violations("customMetrics | summarize by tostring(customDimensions[\"EventId\"])"), v => v.Contains("dimension EventId", StringComparison.Ordinal));
        // A metric name or an outcome is held to the code's wherever it appears.
        Assert.NotEmpty(Violations("traces | where message has \"marketing.claim\""));
    }

    [GeneratedRegex(@"marketing\.[a-z_]+(?:\.[a-z_]+)*")]
    private static partial Regex MetricName();

    /// <summary>customDimensions["x"], customDimensions.x, Properties["x"] or Properties.x (workspace tables).</summary>
    [GeneratedRegex(@"\b(?:customDimensions|Properties)(?:\[""(?<quoted>[^""]+)""\]|\.(?<dotted>[A-Za-z_][A-Za-z0-9_]*))")]
    private static partial Regex Dimension();

    /// <summary>A query over logs (traces, exceptions), whose dimensions are the logger's, not the metrics' tags.</summary>
    [GeneratedRegex(@"\b(?:traces|AppTraces|exceptions|AppExceptions)\b")]
    private static partial Regex ReadsLogs();

    /// <summary>outcome (a column or a dimension) compared with ==, !=, =~, in (...) or !in (...): the literals compared.</summary>
    [GeneratedRegex(@"\boutcome""?\]?\)?\s*(?:(?:==|!=|=~)\s*""(?<literal>[^""]*)""|!?in\s*\(\s*""(?<literal>[^""]*)""(?:\s*,\s*""(?<literal>[^""]*)"")*\s*\))")]
    private static partial Regex OutcomeComparison();

    [GeneratedRegex(@"```kusto\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex KustoBlock();
}
