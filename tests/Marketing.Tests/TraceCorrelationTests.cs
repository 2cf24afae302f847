using System.Diagnostics;
using System.Net;
using Marketing.Functions.Stats;
using Marketing.Functions.Telemetry;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
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
        var spans = new List<Activity>();
        await using var app = await TestApp.StartAsync(customize: builder =>
        {
            builder.UseSetting("Telemetry:Enabled", "true");
            builder.ConfigureServices(services => services.ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(spans)));
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
}
