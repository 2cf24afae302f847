using Microsoft.Extensions.Configuration.Memory;

namespace Marketing.Functions.Telemetry;

/// <summary>
/// The handler's default log levels (docs/operations.md, "Logs"). In Azure every ILogger record at these levels is
/// exported to Application Insights (the Azure Monitor distro), so the frameworks' per-request and per-call chatter stays
/// out: ASP.NET Core's request lines carry each URL with its query string, HttpClient's carry the provider webhooks'
/// URLs, the Azure SDKs' (forwarded from their event sources) every storage request. Their warnings and errors still
/// come through. Lowest precedence: any Logging__LogLevel__&lt;category&gt; setting (local.settings.json, an app setting)
/// overrides one of these keys, e.g. Logging__LogLevel__Microsoft=Information brings the request lines back.
/// </summary>
public static class LogLevels
{
    public static readonly IReadOnlyDictionary<string, string?> Defaults = new Dictionary<string, string?>
    {
        ["Logging:LogLevel:Default"] = "Information",
        // ASP.NET Core (request lines with query strings, routing, authentication), and everything else of Microsoft's.
        ["Logging:LogLevel:Microsoft"] = "Warning",
        // HttpClientFactory's request lines: the provider webhooks' URLs (their query strings are redacted, the path is not).
        ["Logging:LogLevel:System.Net.Http"] = "Warning",
        // The Azure SDKs' event sources as the distro forwards them: one line per storage request (URLs and headers redacted).
        ["Logging:LogLevel:Azure"] = "Warning",
        // The webhook resilience pipeline: each attempt at Debug/Information, retries at Warning with the exception's
        // message (an address refused names the host's addresses). A call that fails after its retries is counted by
        // marketing.webhook.duration and recorded on the notification; Polly's own errors still come through.
        ["Logging:LogLevel:Polly"] = "Error",
    };

    /// <summary>Puts <see cref="Defaults"/> under every other configuration source.</summary>
    public static WebApplicationBuilder AddLogLevelDefaults(this WebApplicationBuilder builder)
    {
        builder.Configuration.Sources.Insert(0, new MemoryConfigurationSource { InitialData = Defaults });
        // The console (a local run's handler.log, the process output in Azure): one line per record, so a timer run's
        // summary is one line and a log file reads with grep.
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        return builder;
    }
}
