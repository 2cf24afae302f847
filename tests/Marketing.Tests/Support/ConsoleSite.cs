using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Marketing.Functions.Media;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests.Support;

/// <summary>
/// The platform as the console's browser tests see it (docs/console.md, "Tests"): the built handler as its own process on
/// a loopback port in Development (where the local sign-in exists), over the database of <paramref name="app"/>; the
/// scripts under console/e2e drive Debian's chromium against it.
/// </summary>
public sealed class ConsoleSite : IAsyncDisposable
{
    public static string ArtifactsFolder => Repo.PathOf("artifacts", "test-artifacts", "console");

    private readonly Process _handler;

    private ConsoleSite(Process handler, string baseUrl) => (_handler, BaseUrl) = (handler, baseUrl);

    public string BaseUrl { get; }

    /// <summary>Starts the handler; <paramref name="settings"/> adds or overrides its environment.</summary>
    public static async Task<ConsoleSite> StartAsync(TestApp app, IDictionary<string, string>? settings = null)
    {
        var port = HandlerProcess.FreePort();
        var environment = new Dictionary<string, string>
        {
            ["FUNCTIONS_CUSTOMHANDLER_PORT"] = port.ToString(CultureInfo.InvariantCulture),
            ["Cosmos__Database"] = app.Database,
            ["ASPNETCORE_ENVIRONMENT"] = "Development", // the local sign-in exists only there
        };
        foreach (var (name, value) in settings ?? new Dictionary<string, string>())
            environment[name] = value;
        var handler = HandlerProcess.Start([], environment);
        var site = new ConsoleSite(handler, $"http://127.0.0.1:{port}");
        try
        {
            await HandlerProcess.WaitUntilHealthyAsync(site.BaseUrl);
            // The campaign page PUTs media uploads from this origin straight to Azurite: a CORS rule, set with the Blob SDK
            // as the provision command does for a local run (in Azure the Bicep declares it).
            await app.Services.GetRequiredService<MediaBlobs>().AllowBrowserUploadsAsync(site.BaseUrl, CancellationToken.None);
        }
        catch
        {
            await site.DisposeAsync();
            throw;
        }
        Directory.CreateDirectory(ArtifactsFolder);
        return site;
    }

    /// <summary>
    /// Runs console/e2e/<paramref name="script"/> with the base URL, the artifacts folder and <paramref name="args"/>; it
    /// must exit 0, and its last line of output is its JSON report.
    /// </summary>
    public async Task<JsonNode> RunAsync(string script, params string[] args)
    {
        var run = await Scripts.RunAsync("node", [Repo.PathOf("console", "e2e", script), BaseUrl, ArtifactsFolder, .. args],
            timeout: TimeSpan.FromMinutes(3));
        Assert.True(run.ExitCode == 0, run.ToString());
        return JsonNode.Parse(run.Output.Trim().Split('\n')[^1])!;
    }

    /// <summary>
    /// What every walk checks on every page it visits: no serious or critical axe-core violation, no sideways scrolling at
    /// 375 px, no error in the browser's console, and its screenshots written.
    /// </summary>
    public static void AssertAccessible(JsonNode report, int screenshots)
    {
        foreach (var (page, violations) in report["axe"]!.AsObject())
            Assert.True(!violations!.AsArray().Any(v => (string?)v!["impact"] is "serious" or "critical"), $"{page}: {violations!.ToJsonString()}");
        foreach (var (page, overflowed) in report["overflowsAt375"]!.AsObject())
            Assert.False((bool)overflowed!, $"{page} scrolls sideways at 375 px: {report["overflowing"]?[page]?.ToJsonString()}");
        Assert.Empty(report["problems"]!.AsArray());
        Assert.Equal(screenshots, report["screenshots"]!.AsArray().Count(s => File.Exists((string)s!)));
    }

    public static string[] Strings(JsonNode? array) => [.. array!.AsArray().Select(n => (string)n!)];

    public async ValueTask DisposeAsync()
    {
        _handler.Kill(entireProcessTree: true);
        await _handler.WaitForExitAsync();
        _handler.Dispose();
    }
}
