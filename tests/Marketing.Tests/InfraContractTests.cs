using System.Text.Json.Nodes;
using Marketing.Functions.Hosting;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// infra/ must match the code: every setting the app reads is set on the function app, every container
/// with its partition key, every queue, a role for each data plane, and no keys. Each check is also
/// run on a damaged copy of infra/ to prove it can fail.
/// </summary>
public sealed class InfraContractTests(TestApp app) : IClassFixture<TestApp>
{
    private static readonly string Infra = Repo.PathOf("infra");

    private List<JsonObject> FunctionJsons
        => FunctionJson.Build(app.Services.GetRequiredService<EndpointDataSource>()).Values.ToList();

    private List<string> AllViolations(string infraDir)
    {
        var (azure, local) = InfraContract.SettingsTheAppReads(FunctionJsons);
        return
        [
            .. InfraContract.CheckSettings(infraDir, azure, local),
            .. InfraContract.CheckContainers(infraDir, Platform.Containers),
            .. InfraContract.CheckQueues(infraDir, FunctionJsons, SampleSettings),
            .. InfraContract.CheckRoles(infraDir),
            .. InfraContract.CheckNoSecrets(infraDir),
        ];
    }

    private static Dictionary<string, string> SampleSettings
        => JsonNode.Parse(File.ReadAllText(Repo.PathOf("local.settings.sample.json")))!["Values"]!.AsObject()
            .ToDictionary(p => p.Key, p => (string?)p.Value ?? "");

    [Fact]
    public void Infra_agrees_with_the_code()
    {
        Assert.Empty(AllViolations(Infra));
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
        Assert.Equal(["Auth__Audience", "Auth__DevSigningKey", "Auth__Issuer", "Cosmos__Key"], local);
    }

    public static TheoryData<string, string, string, string> Damage() => new()
    {
        // file, text to replace, replacement, expected violation
        { "modules/functionapp.bicep", "{ name: 'Cosmos__Endpoint', value: cosmosEndpoint }", "", "setting Cosmos__Endpoint" },
        { "modules/functionapp.bicep", "{ name: 'ReconcileStockSchedule', value: reconcileStockSchedule }", "", "setting ReconcileStockSchedule" },
        { "modules/functionapp.bicep", "{ name: 'Campaigns__CacheSeconds', value: '5' }", "{ name: 'Cosmos__Key', value: 'x' }", "Cosmos__Key" },
        { "modules/cosmos.bicep", "partitionKeyPath: '/customerId'", "partitionKeyPath: '/id'", "container wallets: partition key" },
        { "modules/cosmos.bicep", "name: 'stock'", "name: 'stocks'", "container stock is used" },
        { "modules/servicebus.bicep", "name: 'order-events'", "name: 'orders'", "queue order-events" },
        { "modules/functionapp.bicep", "{ name: 'OrderEventsQueue', value: orderEventsQueueName }", "", "setting OrderEventsQueue" },
        { "modules/cosmos.bicep", "partitionKeyPath: '/promoterId'", "partitionKeyPath: '/id'", "container ledger: partition key" },
        { "modules/storage.bicep", "principalId: appPrincipalId", "principalId: 'someone'", "Storage Blob Data Owner" },
        { "modules/cosmos.bicep", "resource appDataAccess", "resource appDataAccessRemoved", "" },
        { "modules/servicebus.bicep", "roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataReceiver)", "roleDefinitionId: ''", "Service Bus Data Receiver" },
        { "modules/storage.bicep", "allowSharedKeyAccess: false", "allowSharedKeyAccess: true", "uses a key" },
        { "modules/functionapp.bicep", "value: storageAccountName }", "value: listKeys(storageAccountName, '2023-05-01').keys[0].value }", "uses a key" },
    };

    [Theory]
    [MemberData(nameof(Damage))]
    public void A_damaged_copy_of_infra_fails_the_contract(string file, string find, string replace, string expected)
    {
        var copy = Directory.CreateTempSubdirectory("infra-");
        try
        {
            foreach (var path in Directory.EnumerateFiles(Infra, "*", SearchOption.AllDirectories))
            {
                var target = Path.Combine(copy.FullName, Path.GetRelativePath(Infra, path));
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(path, target);
            }
            var damaged = Path.Combine(copy.FullName, file);
            var text = File.ReadAllText(damaged);
            Assert.Contains(find, text); // the damage must apply, or the test proves nothing
            File.WriteAllText(damaged, text.Replace(find, replace));

            var violations = AllViolations(copy.FullName);

            if (expected.Length == 0)
                Assert.Empty(violations); // renaming a resource symbol is not damage
            else
                Assert.Contains(violations, v => v.Contains(expected));
        }
        finally
        {
            copy.Delete(recursive: true);
        }
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
        // Every value is an example, except the Azure-only ones, which are deliberately empty locally.
        string[] azureOnly = ["Auth__Authority", "Auth__TenantId", "Auth__ClientId", "Auth__AppIdUri", "Cosmos__ClientId"];
        foreach (var (name, value) in sample)
            Assert.True(azureOnly.Contains(name) != !string.IsNullOrWhiteSpace((string?)value), $"{name}: unexpected example value '{value}'");
    }
}
