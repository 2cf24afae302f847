using System.Text.Json.Nodes;
using Marketing.Functions.Hosting;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// infra/ must match the code: every setting the app reads is set on the function app, every container
/// with its partition key and valid index paths, every queue, a role for each data plane, and no keys.
/// infra/ is compiled by the real Bicep compiler, which must have nothing to say (build and lint); the
/// checks read the ARM template it makes. Each check is also run on a damaged, recompiled copy of infra/
/// to prove it can fail.
/// </summary>
public sealed class InfraContractTests(TestApp app, DamagedInfra damaged) : IClassFixture<TestApp>, IClassFixture<DamagedInfra>
{
    private static readonly string Infra = Repo.PathOf("infra");
    private static readonly Lazy<InfraContract.Compiled> Compiled = new(() => InfraContract.Compile(Infra));

    private List<JsonObject> FunctionJsons
        => FunctionJson.Build(app.Services.GetRequiredService<EndpointDataSource>()).Values.ToList();

    private List<string> AllViolations(InfraContract.Compiled infra)
    {
        var (azure, local) = InfraContract.SettingsTheAppReads(FunctionJsons);
        return
        [
            .. InfraContract.CheckSettings(infra.Template, azure, local),
            .. InfraContract.CheckContainers(infra.Template, Platform.Containers),
            .. InfraContract.CheckQueues(infra.Template, FunctionJsons, SampleSettings),
            .. InfraContract.CheckRoles(infra.Template),
            .. InfraContract.CheckNoSecrets(infra),
        ];
    }

    private static Dictionary<string, string> SampleSettings
        => JsonNode.Parse(File.ReadAllText(Repo.PathOf("local.settings.sample.json")))!["Values"]!.AsObject()
            .ToDictionary(p => p.Key, p => (string?)p.Value ?? "");

    [Fact]
    public void The_pinned_bicep_compiler_runs()
    {
        Assert.StartsWith("Bicep CLI version 0.49.2 ", Bicep.Version);
    }

    [Fact]
    public void Infra_builds_and_lints_with_no_error_or_warning()
    {
        var build = Bicep.Build(Path.Combine(Infra, "main.bicep"));
        Assert.True(build.Clean, $"bicep build: {build}");
        Assert.NotNull(JsonNode.Parse(build.Output)?["resources"]);
        var lint = Bicep.Lint(Path.Combine(Infra, "main.bicep"));
        Assert.True(lint.Clean, $"bicep lint: {lint}");
    }

    [Fact]
    public void A_warning_or_an_error_from_the_compiler_fails_the_build_check()
    {
        using var copy = InfraCopy.Of(Infra);
        copy.Edit("main.bicep", "targetScope = 'subscription'", "targetScope = 'subscription'\nparam neverUsed string = 'x'");
        var lint = Bicep.Lint(copy.File("main.bicep"));
        Assert.False(lint.Clean);
        Assert.Contains("no-unused-params", lint.Diagnostics);
        Assert.False(Bicep.Build(copy.File("main.bicep")).Clean); // exit code 0: only the warning tells

        copy.Edit("modules/cosmos.bicep", "param location string", "param location strin");
        var broken = Bicep.Build(copy.File("main.bicep"));
        Assert.NotEqual(0, broken.ExitCode);
        Assert.Contains("Error", broken.Diagnostics);
    }

    [Fact]
    public void Infra_agrees_with_the_code()
    {
        Assert.Empty(AllViolations(Compiled.Value));
    }

    [Fact]
    public void The_contract_reads_what_the_compiled_template_declares()
    {
        // Guards against a reader that finds nothing and so reports nothing.
        var infra = Compiled.Value.Template;
        Assert.Contains("Cosmos__Endpoint", InfraContract.AppSettingNames(infra));
        var wallets = Assert.Single(InfraContract.Containers(infra), c => c.Name == "wallets");
        Assert.Equal("/customerId", wallets.PartitionKeyPath);
        Assert.Contains("/coupons/[]/response/?", wallets.ExcludedPaths);
        Assert.Null(wallets.DefaultTtl); // no defaultTtl: time to live off
        Assert.Equal("-1", Assert.Single(InfraContract.Containers(infra), c => c.Name == "due").DefaultTtl);
        Assert.Equal(Platform.Containers.Count(), InfraContract.Containers(infra).Count);
        Assert.Equal(["order-events", "notifications"], infra.OfType("Microsoft.ServiceBus/namespaces/queues").Select(q => q.Name.Split('/')[^1]));
        Assert.Equal(InfraContract.RequiredRoles.Sum(r => r.Count),
            infra.AllResources.Count(r => r.Type.EndsWith("roleAssignments", StringComparison.OrdinalIgnoreCase) && r.Text("properties.principalId") == "<identity.outputs.principalId>"));
    }

    private static IEnumerable<JsonObject> AllTemplateResources(JsonNode template)
    {
        var resources = template["resources"] switch
        {
            JsonArray a => a.OfType<JsonObject>(),
            JsonObject o => o.Select(p => p.Value).OfType<JsonObject>(),
            _ => [],
        };
        foreach (var resource in resources)
        {
            yield return resource;
            if (resource["properties"]?["template"] is JsonNode nested)
                foreach (var inner in AllTemplateResources(nested)) yield return inner;
        }
    }

    [Fact]
    public void Application_Insights_is_workspace_based_refuses_keys_and_the_handler_exports_to_it_by_identity()
    {
        var infra = Compiled.Value.Template;
        var insights = Assert.Single(infra.OfType("Microsoft.Insights/components"));
        Assert.True((bool?)insights.At("properties.DisableLocalAuth"), "Application Insights must refuse instrumentation-key ingestion");
        Assert.Contains("Microsoft.OperationalInsights/workspaces", insights.Text("properties.WorkspaceResourceId"));
        var workspace = Assert.Single(infra.OfType("Microsoft.OperationalInsights/workspaces"));
        Assert.True((bool?)workspace.At("properties.features.disableLocalAuth"));
        // The two settings the handler's exporter reads (Telemetry/TelemetryModule.cs): the resource, and the identity.
        var settings = (InfraContract.FunctionApp(infra)!.At("properties.siteConfig.appSettings") as JsonArray)!
            .ToDictionary(x => (string)x!["name"]!, x => x!["value"]?.ToJsonString() ?? "");
        Assert.Contains(Marketing.Functions.Telemetry.TelemetryOptions.ConnectionStringSetting, settings.Keys);
        var authentication = settings[Marketing.Functions.Telemetry.TelemetryOptions.AuthenticationStringSetting];
        Assert.Contains("Authorization=AAD", authentication);
        Assert.Contains("ClientId=", authentication);
    }

    [Fact]
    public void The_payouts_blob_container_is_private_and_malware_scanning_is_one_switch_off_by_default()
    {
        var infra = Compiled.Value.Template;
        var payouts = Assert.Single(infra.OfType("Microsoft.Storage/storageAccounts/blobServices/containers"),
            c => c.Name.Split('/')[^1] == Marketing.Functions.Payouts.PayoutFiles.ContainerName);
        Assert.Equal("None", payouts.Text("properties.publicAccess"));
        // Off by default: with the default parameters the resource is not deployed at all...
        Assert.Empty(infra.OfType("Microsoft.Security/defenderForStorageSettings"));
        // ...and as compiled it is deployed on the parameter alone, with on-upload scanning and a monthly cap.
        var defender = Assert.Single(AllTemplateResources(JsonNode.Parse(Compiled.Value.Json)!),
            r => (string?)r["type"] == "Microsoft.Security/defenderForStorageSettings");
        Assert.Equal(("[parameters('malwareScanning')]", "current", "2022-12-01-preview"),
            ((string?)defender["condition"], (string?)defender["name"], (string?)defender["apiVersion"]));
        Assert.True((bool)defender["properties"]!["isEnabled"]!);
        Assert.True((bool)defender["properties"]!["malwareScanning"]!["onUpload"]!["isEnabled"]!);
        Assert.Equal("[parameters('malwareScanningCapGBPerMonth')]", (string?)defender["properties"]!["malwareScanning"]!["onUpload"]!["capGBPerMonth"]);
        Assert.Contains("Media__ScanUploads", InfraContract.AppSettingNames(infra));
        var main = File.ReadAllText(Path.Combine(Infra, "main.bicep"));
        Assert.Contains("param mediaMalwareScanning bool = false", main);
    }

    [Fact]
    public void The_settings_the_app_reads_are_found_from_its_options_and_timers()
    {
        var (azure, local) = InfraContract.SettingsTheAppReads(FunctionJsons);
        Assert.Contains("Cosmos__Endpoint", azure);
        Assert.Contains("Auth__ClientId", azure);
        Assert.Contains("Stock__QuietMinutes", azure);
        Assert.Contains("ReconcileStockSchedule", azure);
        Assert.Contains("OrderEventsQueue", azure);
        Assert.Equal(["Auth__Audience", "Auth__DevSigningKey", "Auth__Issuer", "Blobs__ConnectionString", "Cosmos__Key", "Media__AccountKey", "NotificationDelivery__AllowLoopback", "Telemetry__Console", "Telemetry__Enabled"], local);
    }

    /// <summary>Damage done to a copy of infra/ (file, text replaced, replacement) and the violation it must cause.</summary>
    public static readonly (string File, string Find, string Replace, string Expected)[] Damages =
    [
        ("modules/functionapp.bicep", "{ name: 'Cosmos__Endpoint', value: cosmosEndpoint }", "", "setting Cosmos__Endpoint"),
        ("modules/functionapp.bicep", "{ name: 'ReconcileStockSchedule', value: reconcileStockSchedule }", "", "setting ReconcileStockSchedule"),
        ("modules/functionapp.bicep", "{ name: 'Campaigns__CacheSeconds', value: '5' }", "{ name: 'Cosmos__Key', value: 'x' }", "Cosmos__Key"),
        ("modules/functionapp.bicep", "{ name: 'OrderEventsQueue', value: orderEventsQueueName }", "", "setting OrderEventsQueue"),
        ("modules/functionapp.bicep", "{ name: 'NotificationsQueue', value: notificationsQueueName }", "", "setting NotificationsQueue"),
        ("modules/functionapp.bicep", "{ name: 'NotificationDelivery__WebhookSecret', value: notificationWebhookSecret }", "", "setting NotificationDelivery__WebhookSecret"),
        ("modules/servicebus.bicep", "resource appSendsNotifications 'Microsoft.Authorization/roleAssignments@2022-04-01' = {", "resource appSendsNotifications 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(appPrincipalId)) {", "Service Bus Data Sender"),
        ("modules/cosmos.bicep", "partitionKeyPath: '/customerId'", "partitionKeyPath: '/id'", "container wallets: partition key"),
        ("modules/cosmos.bicep", "partitionKeyPath: '/promoterId'", "partitionKeyPath: '/id'", "container ledger: partition key"),
        ("modules/cosmos.bicep", "name: 'stock'", "name: 'stocks'", "container stock is used"),
        ("modules/media-storage.bicep", "principalId: appPrincipalId", "principalId: 'someone'", "Storage Blob Delegator"),
        ("modules/cosmos.bicep", "'/coupons/[]/response/?'", "'/coupons/*/response/?'", "container wallets: index path /coupons/*/response/? * may only end a path"),
        ("modules/cosmos.bicep", "'/orders/*'", "'/orders'", "container stock: index path /orders must end with"),
        ("modules/cosmos.bicep", "'/items/*', ", "", "container due: excluded index paths differ"),
        ("modules/cosmos.bicep", "excludedPaths: ['/items/*', '/reminders/*', '/\"_etag\"/?']\n    defaultTtl: -1", "excludedPaths: ['/items/*', '/reminders/*', '/\"_etag\"/?']", "container due: defaultTtl absent (TTL off) in infra, -1 in code"),
        ("modules/cosmos.bicep", "defaultTtl: c.?defaultTtl", "", "container quarantine: defaultTtl absent"),
        ("modules/functionapp.bicep", "{ name: 'DueIndex__DoneRetentionDays', value: '3' }", "", "setting DueIndex__DoneRetentionDays"),
        ("modules/servicebus.bicep", "name: 'order-events'", "name: 'orders'", "queue order-events"),
        ("modules/storage.bicep", "principalId: appPrincipalId", "principalId: 'someone'", "Storage Blob Data Owner"),
        ("modules/cosmos.bicep", "principalId: appPrincipalId", "principalId: deployerPrincipalId", "Cosmos DB Built-in Data Contributor"),
        ("modules/cosmos.bicep", "resource appDataAccess", "resource appDataAccessRemoved", ""),
        ("modules/servicebus.bicep", "roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataReceiver)", "roleDefinitionId: ''", "Service Bus Data Receiver"),
        ("modules/servicebus.bicep", "resource appReceives 'Microsoft.Authorization/roleAssignments@2022-04-01' = {", "resource appReceives 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(appPrincipalId)) {", "Service Bus Data Receiver"),
        ("main.bicep", "identityId: identity.outputs.id", "identityId: '/some/other/identity'", "does not run as the identity"),
        ("modules/storage.bicep", "allowSharedKeyAccess: false", "allowSharedKeyAccess: true", "uses a key"),
        ("modules/functionapp.bicep", "{ name: 'Media__ScanUploads', value: string(mediaMalwareScanning) }", "", "setting Media__ScanUploads"),
        ("modules/functionapp.bicep", "{ name: 'Blobs__ServiceUri', value: storageBlobEndpoint }", "", "setting Blobs__ServiceUri"),
        ("modules/storage.bicep", "roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDelegator)", "roleDefinitionId: ''", "Storage Blob Delegator"),
        ("modules/cosmos.bicep", "disableLocalAuth: true", "disableLocalAuth: capacityMode == 'autoscale'", "uses a key"),
        ("modules/functionapp.bicep", "value: storageAccountName }", "value: listKeys(storageAccountName, '2023-05-01').keys[0].value }", "uses a key"),
    ];

    public static TheoryData<int, string, string> Damage()
    {
        var data = new TheoryData<int, string, string>();
        for (var i = 0; i < Damages.Length; i++) data.Add(i, $"{Damages[i].File}: {Damages[i].Find}", Damages[i].Expected);
        return data;
    }

    [Theory]
    [MemberData(nameof(Damage))]
    public void A_damaged_copy_of_infra_fails_the_contract(int damage, string what, string expected)
    {
        // The compiler may warn about the damage (e.g. a parameter left unused); the contract must catch it anyway.
        var violations = AllViolations(damaged.Compiled(damage));

        if (expected.Length == 0)
            Assert.Empty(violations); // renaming a resource symbol is not damage
        else
            Assert.True(violations.Any(v => v.Contains(expected)), $"{what}: expected \"{expected}\" among [{string.Join("; ", violations)}]");
    }

    [Fact]
    public void The_sample_local_settings_list_every_setting_and_the_docs_explain_each()
    {
        var (azure, local) = InfraContract.SettingsTheAppReads(FunctionJsons);
        var sample = JsonNode.Parse(File.ReadAllText(Repo.PathOf("local.settings.sample.json")))!["Values"]!.AsObject();
        var docs = File.ReadAllText(Repo.PathOf("docs", "configuration.md"));
        foreach (var setting in azure.Concat(local))
        {
            Assert.True(sample.ContainsKey(setting), $"{setting} missing from local.settings.sample.json");
            Assert.Contains($"`{setting}`", docs);
        }
        // Every value is an example, except the Azure-only ones, which are deliberately empty locally (Media__PublicBaseUrl
        // too: locally the media are read from Azurite's own URL).
        string[] azureOnly = ["Auth__Authority", "Auth__TenantId", "Auth__ClientId", "Auth__AppIdUri", "Cosmos__ClientId", "Blobs__ServiceUri", "Blobs__ClientId", "Media__ClientId", "Media__PublicBaseUrl",
            "Console__ClientId", "Console__ApiScope"];
        foreach (var (name, value) in sample)
            Assert.True(azureOnly.Contains(name) != !string.IsNullOrWhiteSpace((string?)value), $"{name}: unexpected example value '{value}'");
    }
}
