using OpenTelemetry;
using OpenTelemetry.Logs;

namespace Marketing.Functions.Telemetry;

/// <summary>
/// Empties the Cosmos SDK's request-diagnostics log records before any exporter sees them. With distributed tracing on,
/// the SDK writes the whole CosmosDiagnostics JSON to its event source "Azure-Cosmos-Operation-Request-Diagnostics" for
/// every failed operation (Error) and every slow one (Warning): the server's error messages and the request URIs (document
/// ids) included. The Azure Monitor distro forwards Azure event sources at Warning to ILogger, so without this the text
/// would reach Application Insights' traces. A logger filter cannot drop the category without cost: any "Azure.*" rule
/// makes the distro's forwarder listen to every Azure event source at Verbose. So the record stays (a failed or slow
/// Cosmos call is worth a row) and keeps its level, category and event; its body becomes a fixed sentence and its
/// attributes go. The span of the same call keeps the status, sub-status, request charge and activity id.
/// </summary>
public sealed class CosmosDiagnosticsRedaction : BaseProcessor<LogRecord>
{
    /// <summary>The category the distro's forwarder gives the event source (its name with dots).</summary>
    public const string Category = "Azure.Cosmos.Operation.Request.Diagnostics";

    public const string Redacted = "Cosmos DB request diagnostics (redacted: the SDK's text carries the server's answer; its dependency span has the status, sub-status and activity id).";

    public override void OnEnd(LogRecord data)
    {
        if (data.CategoryName != Category) return;
        data.FormattedMessage = Redacted;
        data.Body = Redacted;
        data.Attributes = null;
    }
}
