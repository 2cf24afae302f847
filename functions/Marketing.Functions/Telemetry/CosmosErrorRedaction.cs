using System.Diagnostics;
using OpenTelemetry;

namespace Marketing.Functions.Telemetry;

/// <summary>
/// Drops the Cosmos SDK's <c>exception.message</c> attribute from its spans before any exporter sees them: the SDK
/// copies the whole CosmosException message there, which is the server's answer in its own words (docs/operations.md,
/// "Logs": no exception message is logged). What an operator needs stays: <c>exception.type</c>, the status and
/// sub-status codes, the activity id (in the span's other attributes) and the stack trace.
/// </summary>
public sealed class CosmosErrorRedaction : BaseProcessor<Activity>
{
    public const string ExceptionMessage = "exception.message";

    public override void OnEnd(Activity data)
    {
        if (data.Source.Name == TelemetryModule.CosmosSource && data.GetTagItem(ExceptionMessage) is not null)
            data.SetTag(ExceptionMessage, null);
    }
}
