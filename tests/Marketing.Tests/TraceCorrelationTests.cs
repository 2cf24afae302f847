using System.Diagnostics;
using System.Net;
using Marketing.Functions.Stats;
using Marketing.Functions.Telemetry;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Trace;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The handler's side of the correlation with the Functions host (docs/operations.md): the host calls the handler over
/// HTTP with the W3C trace context of its invocation (its HttpClient propagates it) and the header
/// X-Azure-Functions-InvocationId on every call; the handler's request span must continue that trace, carry the
/// invocation id, and its Cosmos spans must sit under it.
/// </summary>
[Collection(TelemetryCollection.Name)]
public sealed class TraceCorrelationTests
{
    [Fact]
    public async Task A_request_and_a_timer_invocation_continue_the_hosts_trace_and_carry_its_invocation_id()
    {
        var exported = new List<Activity>();
        await using var app = await TestApp.StartAsync(customize: builder =>
        {
            builder.UseSetting("Telemetry:Enabled", "true");
            builder.ConfigureServices(services => services.ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(exported)));
        });
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));

        // As the host forwards a client's claim: its invocation's trace context and id on the request.
        var (claimTrace, claimParent, claimInvocation) = (ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), Guid.NewGuid());
        var customer = app.Customer(Api.NewId("tess"));
        customer.DefaultRequestHeaders.Add("traceparent", $"00-{claimTrace}-{claimParent}-01");
        customer.DefaultRequestHeaders.Add(TelemetryModule.InvocationIdHeader, claimInvocation.ToString());
        await (await customer.ClaimAsync(campaign)).AssertStatusAsync(HttpStatusCode.Created);

        // As the host invokes a timer: the payload POSTed with the invocation's trace context and id.
        var (timerTrace, timerParent, timerInvocation) = (ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), Guid.NewGuid());
        var host = app.Anonymous();
        host.DefaultRequestHeaders.Add("traceparent", $"00-{timerTrace}-{timerParent}-01");
        host.DefaultRequestHeaders.Add(TelemetryModule.InvocationIdHeader, timerInvocation.ToString());
        await app.InvokeTimerAsync(AggregateStats.FunctionName, host);

        Assert.True(app.Services.GetRequiredService<TracerProvider>().ForceFlush(30_000));
        // A copy: the app's background work may still end spans into the exporter's list while we read.
        var spans = exported.ToArray();
        foreach (var (trace, parent, invocation, path) in new[] { (claimTrace, claimParent, claimInvocation, "claims"), (timerTrace, timerParent, timerInvocation, AggregateStats.FunctionName) })
        {
            var request = Assert.Single(spans, s => s.Kind == ActivityKind.Server && s.TraceId == trace);
            Assert.Contains(path, request.DisplayName);
            Assert.Equal(parent, request.ParentSpanId);
            Assert.Equal(invocation.ToString(), request.GetTagItem(TelemetryModule.InvocationIdAttribute));
            // The Cosmos calls it made are children of that request, in the host's trace.
            Assert.Contains(spans, s => s.Source.Name == TelemetryModule.CosmosSource && s.TraceId == trace);
        }
        // A request without the host's header (a test calling the handler directly) carries no invocation id.
        Assert.Contains(spans, s => s.Kind == ActivityKind.Server && s.TraceId != claimTrace && s.TraceId != timerTrace
            && s.GetTagItem(TelemetryModule.InvocationIdAttribute) is null);
    }

    /// <summary>
    /// In Azure the handler exports as its own role (marketing-handler) on the host's instance id, not as the site (the
    /// distro's App Service detector would name the site, the host's role): the portal then shows host and handler apart.
    /// </summary>
    [Fact]
    public async Task Exporting_in_App_Service_the_handler_is_its_own_role_on_the_hosts_instance_and_keeps_every_log()
    {
        // The detector reads the process environment; this collection runs alone, and nothing else reads these.
        Environment.SetEnvironmentVariable("WEBSITE_SITE_NAME", "func-marketing-test");
        try
        {
            await using var app = await TestApp.StartAsync(customize: builder =>
            {
                // Nothing listens there: no span is ever exported (the app makes none here), and nothing is stored offline.
                builder.UseSetting("APPLICATIONINSIGHTS_CONNECTION_STRING", "InstrumentationKey=00000000-0000-4000-8000-000000000000;IngestionEndpoint=http://127.0.0.1:9/");
                builder.UseSetting("AzureMonitor:DisableOfflineStorage", "true");
                builder.UseSetting("WEBSITE_INSTANCE_ID", "instance-7");
                builder.UseSetting("Telemetry:TracesPerSecond", "250");
            });
            // Exported as configured: no Entra token without Authorization=AAD (as the host), and every log record kept.
            var exporter = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptionsMonitor<Azure.Monitor.OpenTelemetry.AspNetCore.AzureMonitorOptions>>()
                .Get(Microsoft.Extensions.Options.Options.DefaultName);
            Assert.Null(exporter.Credential);
            Assert.False(exporter.EnableTraceBasedLogsSampler);
            Assert.Equal(250, exporter.TracesPerSecond); // Telemetry__TracesPerSecond, not the distro's 5
            foreach (var provider in new OpenTelemetry.BaseProvider[] { app.Services.GetRequiredService<TracerProvider>(), app.Services.GetRequiredService<OpenTelemetry.Metrics.MeterProvider>() })
            {
                var attributes = provider.GetResource().Attributes.ToDictionary(a => a.Key, a => a.Value);
                Assert.Equal(TelemetryModule.ServiceName, attributes["service.name"]);
                Assert.Equal("instance-7", attributes["service.instance.id"]);
            }
        }
        finally
        {
            Environment.SetEnvironmentVariable("WEBSITE_SITE_NAME", null);
        }
    }

    [Theory]
    [InlineData("0")]
    [InlineData("fast")]
    public void A_trace_rate_that_is_not_a_positive_number_stops_the_start_with_the_settings_name(string rate)
    {
        var error = Assert.ThrowsAny<Exception>(() => ValidateTelemetryAtStart(rate));
        Assert.Contains("TracesPerSecond", error.ToString());
        ValidateTelemetryAtStart("5");
        ValidateTelemetryAtStart("1000");
    }

    private static void ValidateTelemetryAtStart(string rate)
    {
        var builder = WebApplication.CreateBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Telemetry:TracesPerSecond"] = rate });
        builder.AddTelemetry();
        using var provider = builder.Services.BuildServiceProvider();
        provider.GetRequiredService<IStartupValidator>().Validate();
    }
}
