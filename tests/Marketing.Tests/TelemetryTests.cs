using System.Diagnostics;
using System.Net;
using Marketing.Functions.Telemetry;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// Runs alone: the meter is process-wide, and order events carry no tag a test could own, so another test settling
/// events at the same time would be counted too. Exact counts need the process to itself.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TelemetryCollection
{
    public const string Name = "Telemetry (alone)";
}

/// <summary>
/// The app's own telemetry (Telemetry/, docs/operations.md), read back from OpenTelemetry's in-memory exporters added
/// to the app as it is wired in Program.cs (Telemetry:Enabled collects without an Azure Monitor exporter).
/// </summary>
[Collection(TelemetryCollection.Name)]
public sealed class TelemetryTests
{
    private sealed class Captured
    {
        public List<Metric> Metrics { get; } = [];
        public List<Activity> Spans { get; } = [];
    }

    private static Task<TestApp> StartAsync(Captured captured)
        => TestApp.StartAsync(customize: builder =>
        {
            builder.UseSetting("Telemetry:Enabled", "true");
            builder.ConfigureServices(services => services
                .ConfigureOpenTelemetryMeterProvider(m => m.AddInMemoryExporter(captured.Metrics))
                .ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(captured.Spans)));
        });

    /// <summary>Every counter point of <paramref name="instrument"/> whose tags include <paramref name="where"/>, summed by outcome.</summary>
    private static Dictionary<string, long> ByOutcome(TestApp app, Captured captured, string instrument, params (string Key, string Value)[] where)
    {
        captured.Metrics.Clear();
        // No waiting: the provider exports everything it holds now (cumulative counters: the totals so far).
        Assert.True(app.Services.GetRequiredService<MeterProvider>().ForceFlush(30_000));
        var totals = new Dictionary<string, long>();
        foreach (var metric in captured.Metrics.Where(m => m.MeterName == Metrics.MeterName && m.Name == instrument))
            foreach (ref readonly var point in metric.GetMetricPoints())
            {
                var tags = new Dictionary<string, object?>();
                foreach (var tag in point.Tags) tags[tag.Key] = tag.Value;
                if (where.Any(w => !Equals(tags.GetValueOrDefault(w.Key), w.Value))) continue;
                var outcome = (string)tags[Metrics.OutcomeTag]!;
                totals[outcome] = totals.GetValueOrDefault(outcome) + point.GetSumLong();
            }
        return totals;
    }

    [Fact]
    public async Task Claims_are_counted_by_outcome_and_campaign_and_Cosmos_calls_are_spans_with_their_request_charge()
    {
        var captured = new Captured();
        await using var app = await StartAsync(captured);
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t =>
        {
            t["totalQuantity"] = 2;
            t["perCustomerLimit"] = 1;
            t["channels"] = new System.Text.Json.Nodes.JsonArray("app");
        }));
        var alice = app.Customer(Api.NewId("alice"));
        var key = Guid.NewGuid().ToString();
        await (await alice.ClaimAsync(campaign, key)).AssertStatusAsync(HttpStatusCode.Created);
        await (await alice.ClaimAsync(campaign, key)).AssertStatusAsync(HttpStatusCode.Created); // the same key: a replay
        await (await alice.ClaimAsync(campaign)).AssertProblemAsync(HttpStatusCode.Conflict, "limit-reached");
        await (await alice.ClaimAsync(campaign, channel: "h5")).AssertProblemAsync(HttpStatusCode.Forbidden, "not-eligible");
        await (await app.Customer(Api.NewId("bob")).ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created);
        await (await app.Customer(Api.NewId("carol")).ClaimAsync(campaign)).AssertProblemAsync(HttpStatusCode.Conflict, "sold-out");

        var claims = ByOutcome(app, captured, Metrics.Claims, (Metrics.CampaignTag, campaign));
        Assert.Equal(new Dictionary<string, long>
        {
            [Metrics.ClaimOutcomes.Issued] = 2,
            [Metrics.ClaimOutcomes.Replayed] = 1,
            [Metrics.ClaimOutcomes.Limit] = 1,
            [Metrics.ClaimOutcomes.NotEligible] = 1,
            [Metrics.ClaimOutcomes.SoldOut] = 1,
        }, claims);

        // The Cosmos SDK's own spans: one per operation, with what it cost and how it ended.
        Assert.True(app.Services.GetRequiredService<TracerProvider>().ForceFlush(30_000));
        var cosmos = captured.Spans.Where(s => s.Source.Name == TelemetryModule.CosmosSource).ToList();
        Assert.NotEmpty(cosmos);
        // The claim's stock take: a patch on the stock container that succeeded, with its request charge.
        Assert.Contains(cosmos, s => Equals(s.GetTagItem(TelemetryModule.CosmosOperation), "patch_item")
            && Equals(s.GetTagItem(TelemetryModule.CosmosContainer), "stock")
            && Convert.ToString(s.GetTagItem(TelemetryModule.CosmosStatusCode), System.Globalization.CultureInfo.InvariantCulture) == "200"
            && Convert.ToDouble(s.GetTagItem(TelemetryModule.CosmosRequestCharge), System.Globalization.CultureInfo.InvariantCulture) > 0
            && s.GetTagItem(TelemetryModule.CosmosSubStatusCode) is not null);
        // And the requests themselves, which the Cosmos spans belong to.
        var claimRequests = captured.Spans.Where(s => s.Kind == ActivityKind.Server && s.DisplayName.Contains("claims")).ToList();
        Assert.NotEmpty(claimRequests);
        Assert.Contains(cosmos, s => claimRequests.Any(r => r.TraceId == s.TraceId));
    }

    [Fact]
    public async Task Order_events_are_counted_by_outcome()
    {
        var captured = new Captured();
        await using var app = await StartAsync(captured);
        var before = ByOutcome(app, captured, Metrics.OrderEvents);
        var now = app.Clock.GetUtcNow();
        var buyer = Api.NewId("b");
        var paid = Distribution.OrderEvent("paid", Api.NewId("o"), buyer, now.AddMinutes(1), Distribution.Line("l1", "toys", 5999));
        Assert.Equal("applied", await app.SettleAsync(paid, "m-paid"));
        Assert.Equal("duplicate", await app.SettleAsync(paid, "m-paid", deliveryCount: 2));
        Assert.Equal("parked", await app.SettleAsync(
            Distribution.OrderEvent("refunded", Api.NewId("o"), buyer, now.AddMinutes(2), Distribution.Line("l1", "toys", 100))));
        await (await app.DeliverAsync("not an order event")).AssertStatusAsync(HttpStatusCode.OK);

        var after = ByOutcome(app, captured, Metrics.OrderEvents);
        long Delta(string outcome) => after.GetValueOrDefault(outcome) - before.GetValueOrDefault(outcome);
        Assert.Equal(1, Delta(Metrics.OrderEventOutcomes.Applied));
        Assert.Equal(1, Delta(Metrics.OrderEventOutcomes.Duplicate));
        Assert.Equal(1, Delta(Metrics.OrderEventOutcomes.Parked));
        Assert.Equal(1, Delta(Metrics.OrderEventOutcomes.Quarantined));
        Assert.Equal(0, Delta(Metrics.OrderEventOutcomes.Retry));
    }

    [Fact]
    public void The_operations_guide_names_every_instrument_tag_and_outcome_the_code_emits()
    {
        var guide = File.ReadAllText(Path.Combine(Repo.Root, "docs", "operations.md"));
        string[] names =
        [
            Metrics.MeterName, Metrics.Claims, Metrics.OrderEvents, Metrics.OutcomeTag, Metrics.CampaignTag, TelemetryModule.CosmosSource,
            TelemetryModule.CosmosRequestCharge, TelemetryModule.CosmosStatusCode, TelemetryModule.CosmosSubStatusCode,
            TelemetryModule.CosmosOperation, TelemetryModule.CosmosContainer,
            .. Constants(typeof(Metrics.ClaimOutcomes)), .. Constants(typeof(Metrics.OrderEventOutcomes)),
        ];
        foreach (var name in names)
            Assert.True(guide.Contains($"`{name}`", StringComparison.Ordinal), $"docs/operations.md does not name `{name}`");
    }

    private static IEnumerable<string> Constants(Type type)
        => type.GetFields().Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!);

    [Fact]
    public async Task With_a_connection_string_the_app_exports_to_Azure_Monitor_with_the_identity_the_authentication_string_names()
    {
        const string clientId = "0b9c1e2a-0000-4000-8000-000000000001";
        await using var app = await TestApp.StartAsync(customize: builder =>
        {
            // A resource that is not there: nothing is exported, the wiring is what is checked.
            builder.UseSetting(TelemetryOptions.ConnectionStringSetting,
                "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9/");
            builder.UseSetting(TelemetryOptions.AuthenticationStringSetting, $"ClientId={clientId};Authorization=AAD");
        });
        await (await app.Anonymous().GetAsync("/api/health")).AssertStatusAsync(HttpStatusCode.OK);
        var monitor = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptionsMonitor<Azure.Monitor.OpenTelemetry.AspNetCore.AzureMonitorOptions>>()
            .Get(Microsoft.Extensions.Options.Options.DefaultName);
        Assert.StartsWith("InstrumentationKey=00000000-", monitor.ConnectionString);
        Assert.IsType<Azure.Identity.ManagedIdentityCredential>(monitor.Credential);
        Assert.True(app.Services.GetRequiredService<TelemetryModule.Switch>().On); // and so the Cosmos client traces
    }

    [Fact]
    public async Task Without_a_connection_string_or_Telemetry_Enabled_nothing_is_collected()
    {
        await using var app = await TestApp.StartAsync();
        Assert.False(app.Services.GetRequiredService<TelemetryModule.Switch>().On);
        Assert.Null(app.Services.GetService<MeterProvider>());
        Assert.Null(app.Services.GetService<TracerProvider>());
    }

    [Fact]
    public async Task Telemetry_Console_alone_turns_collection_on()
    {
        await using var app = await TestApp.StartAsync(customize: builder => builder.UseSetting("Telemetry:Console", "true"));
        Assert.True(app.Services.GetRequiredService<TelemetryModule.Switch>().On);
        Assert.NotNull(app.Services.GetService<MeterProvider>());
        Assert.NotNull(app.Services.GetService<TracerProvider>());
    }

    [Theory]
    [InlineData("Authorization=AAD;ClientId=0b9c1e2a-0000-4000-8000-000000000001", "0b9c1e2a-0000-4000-8000-000000000001")]
    [InlineData("Authorization=AAD", null)]
    [InlineData(" Authorization = AAD ; clientid = abc ", "abc")]
    [InlineData(null, null)]
    public void The_exporter_uses_the_identity_the_hosts_authentication_string_names(string? authentication, string? clientId)
        => Assert.Equal(clientId, TelemetryModule.ClientId(authentication));

    [Theory]
    [InlineData("ClientId=abc;Authorization=AAD", true)]
    [InlineData("authorization = aad", true)]
    [InlineData("ClientId=abc", false)]
    [InlineData("Authorization=Key", false)]
    [InlineData(null, false)]
    public void Entra_ingestion_only_where_the_authentication_string_asks_for_it_as_the_host_does(string? authentication, bool entra)
        => Assert.Equal(entra, TelemetryModule.UsesEntra(authentication));
}
