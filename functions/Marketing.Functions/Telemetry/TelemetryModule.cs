using System.ComponentModel.DataAnnotations;
using System.Diagnostics;
using Azure.Monitor.OpenTelemetry.AspNetCore;
using Marketing.Functions.Hosting;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Marketing.Functions.Telemetry;

/// <summary>
/// Where telemetry goes (docs/operations.md, docs/configuration.md). Off unless asked for: the claim path pays for
/// spans and the Cosmos SDK's tracing only where someone reads them.
/// </summary>
public sealed class TelemetryOptions
{
    public const string Section = "Telemetry";

    /// <summary>The Application Insights resource (Azure); its presence turns the export on. Not a secret: the resource refuses local (key) auth.</summary>
    public const string ConnectionStringSetting = "APPLICATIONINSIGHTS_CONNECTION_STRING";

    /// <summary>
    /// How the Functions host authenticates to Application Insights ("Authorization=AAD;ClientId=&lt;user-assigned identity&gt;");
    /// the handler reads the client id from the same setting so that both use the one identity.
    /// </summary>
    public const string AuthenticationStringSetting = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING";

    /// <summary>
    /// Collect traces and metrics even with no exporter configured: the tests add an in-memory exporter to it. Never set
    /// in Azure, where the connection string turns collection (and export) on.
    /// </summary>
    [LocalOnly] public bool Enabled { get; set; }

    /// <summary>A local run prints every span and metric to its log (OpenTelemetry's console exporter); implies collection.</summary>
    [LocalOnly] public bool Console { get; set; }

    /// <summary>
    /// Traces exported per second per instance (the Azure Monitor distro's rate-limited sampler; 5 is its default). Raise
    /// it to keep every trace for a while (an incident); metrics and logs are never sampled. The distro's own
    /// OTEL_TRACES_SAMPLER variables are not honoured by UseAzureMonitor in version 1.6.0 (measured: docs/benchmarks.md).
    /// </summary>
    [Range(0.1, 100_000)]
    public double TracesPerSecond { get; set; } = 5;
}

public static class TelemetryModule
{
    /// <summary>The service name of the handler's telemetry: cloud_RoleName in Application Insights.</summary>
    public const string ServiceName = "marketing-handler";

    /// <summary>The Cosmos SDK's ActivitySource: one span per operation, with request charge and status code.</summary>
    public const string CosmosSource = "Azure.Cosmos.Operation";

    /// <summary>The Cosmos spans' attributes an operator queries (the SDK 3.64 names, OpenTelemetry's database conventions).</summary>
    public const string CosmosRequestCharge = "azure.cosmosdb.request.request_charge";
    public const string CosmosStatusCode = "db.response.status_code";
    public const string CosmosSubStatusCode = "azure.cosmosdb.response.sub_status_code";
    public const string CosmosOperation = "db.operation.name";
    public const string CosmosContainer = "db.collection.name";

    /// <summary>
    /// The header the Functions host puts on every call to the handler (HTTP forwarded or an invocation payload), and the
    /// request span's attribute that carries it (OpenTelemetry's FaaS convention): the handler's request row joins the
    /// host's invocation by it even where the trace context does not (docs/operations.md).
    /// </summary>
    public const string InvocationIdHeader = "X-Azure-Functions-InvocationId";
    public const string InvocationIdAttribute = "faas.invocation_id";

    /// <summary>Where the Functions host's own request rows keep the same id (its customDimensions), to join on.</summary>
    public const string HostInvocationIdDimension = "InvocationId";

    /// <summary>Whether the app collects telemetry (the Cosmos client turns its distributed tracing on only then).</summary>
    public sealed record Switch(bool On);

    public static WebApplicationBuilder AddTelemetry(this WebApplicationBuilder builder)
    {
        builder.AddLogLevelDefaults();
        var configuration = builder.Configuration;
        var connectionString = configuration[TelemetryOptions.ConnectionStringSetting];
        var exporting = !string.IsNullOrWhiteSpace(connectionString);
        var console = configuration.GetValue<bool>($"{TelemetryOptions.Section}:{nameof(TelemetryOptions.Console)}");
        var enabled = exporting || console || configuration.GetValue<bool>($"{TelemetryOptions.Section}:{nameof(TelemetryOptions.Enabled)}");
        builder.Services.AddSingleton(new Switch(enabled));
        builder.Services.AddOptions<TelemetryOptions>().BindConfiguration(TelemetryOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        if (!enabled) return builder;

        // Azure SDK clients (Cosmos among them) publish their spans through ActivitySource only behind this switch.
        AppContext.SetSwitch("Azure.Experimental.EnableActivitySource", true);
        var otel = builder.Services.AddOpenTelemetry()
            .WithTracing(tracing => tracing.AddSource(CosmosSource).AddProcessor(new CosmosErrorRedaction()))
            // Before any exporter (UseAzureMonitor's, added below): processors run in the order they are added.
            .WithLogging(logging => logging.AddProcessor(new CosmosDiagnosticsRedaction()))
            .WithMetrics(metrics => metrics.AddMeter(Metrics.MeterName));
        if (console)
            otel.WithTracing(tracing => tracing.AddConsoleExporter()).WithMetrics(metrics => metrics.AddConsoleExporter());
        if (exporting)
        {
            // Identity-based ingestion, exactly as the Functions host does it: with Entra tokens of the identity the
            // authentication string names (the resource refuses keys). Without "Authorization=AAD" the host sends with the
            // connection string's key, and so does the handler (infra/ always sets the string; the load tool's loopback
            // ingestion stand-in does not).
            var authentication = configuration[TelemetryOptions.AuthenticationStringSetting];
            otel.UseAzureMonitor(o =>
            {
                o.ConnectionString = connectionString;
                if (UsesEntra(authentication)) o.Credential = BlobExtensions.Identity(ClientId(authentication));
                // Every log record is kept, whether or not its request's trace was sampled: the handler logs only warnings,
                // errors and one summary per timer run or queue message, and those count runs and outcomes (the distro's
                // default drops the logs of unsampled traces: at 5 traces/s, nearly every timer's summary at peak).
                o.EnableTraceBasedLogsSampler = false;
            });
            builder.Services.AddOptions<AzureMonitorOptions>().Configure<IOptions<TelemetryOptions>>((o, telemetry) => o.TracesPerSecond = telemetry.Value.TracesPerSecond);
        }
        else
        {
            // Without Azure Monitor (which brings its own), requests are traced by the ASP.NET Core instrumentation, and
            // outgoing calls (the provider webhooks) by the HttpClient one, as the distro does: what the tests read is
            // what Azure gets (both redact query strings by default: docs/operations.md, "Logs").
            otel.WithTracing(tracing => tracing.AddAspNetCoreInstrumentation().AddHttpClientInstrumentation());
        }
        // The handler's own role (cloud_RoleName), beside the host's (the site's name): its request rows are HTTP calls,
        // the host's are invocations; one role would count both in the portal's Failures and Performance views. Last, so
        // that it wins over the distro's App Service detector (which names the site).
        // The instance as the host names it (App Service's WEBSITE_INSTANCE_ID), so host and handler rows of one
        // instance match; elsewhere the machine.
        var instance = configuration["WEBSITE_INSTANCE_ID"] is { Length: > 0 } site ? site : Environment.MachineName;
        otel.ConfigureResource(resource => resource.AddService(ServiceName, serviceInstanceId: instance, autoGenerateServiceInstanceId: false));
        return builder;
    }

    /// <summary>Tags each request span with the host's invocation id (a GUID, so never free text); nothing when telemetry is off.</summary>
    public static WebApplication UseTelemetry(this WebApplication app)
    {
        if (!app.Services.GetRequiredService<Switch>().On) return app;
        app.Use((context, next) =>
        {
            if (Activity.Current is { IsAllDataRequested: true } request
                && Guid.TryParse(context.Request.Headers[InvocationIdHeader].ToString(), out var invocation))
                request.SetTag(InvocationIdAttribute, invocation.ToString());
            return next(context);
        });
        return app;
    }

    /// <summary>Whether the authentication string says "Authorization=AAD" (the host's own test for Entra ingestion).</summary>
    public static bool UsesEntra(string? authenticationString)
        => Parts(authenticationString).Any(pair => pair[0].Equals("Authorization", StringComparison.OrdinalIgnoreCase)
            && pair[1].Equals("AAD", StringComparison.OrdinalIgnoreCase));

    /// <summary>The ClientId=... part of "Authorization=AAD;ClientId=...", or null (a system-assigned identity).</summary>
    public static string? ClientId(string? authenticationString)
        => Parts(authenticationString)
            .Where(pair => pair[0].Equals("ClientId", StringComparison.OrdinalIgnoreCase))
            .Select(pair => pair[1])
            .FirstOrDefault(id => id.Length > 0);

    private static IEnumerable<string[]> Parts(string? authenticationString)
        => (authenticationString ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(part => part.Split('=', 2, StringSplitOptions.TrimEntries))
            .Where(pair => pair.Length == 2);
}
