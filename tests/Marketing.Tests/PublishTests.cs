using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json.Nodes;
using Marketing.Functions.Hosting;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>scripts/publish.sh produces a folder and zip the Functions host can run as they are (Linux).</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
[Collection(ReleaseBuilds.Name)]
public sealed class PublishTests(TestApp app) : IClassFixture<TestApp>
{
    [Fact]
    public async Task The_publish_script_produces_a_complete_runnable_package()
    {
        var output = Path.Combine(Path.GetTempPath(), "publish-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var publish = Process.Start(new ProcessStartInfo("bash", [Repo.PathOf("scripts", "publish.sh"), output])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            })!;
            var stdout = publish.StandardOutput.ReadToEndAsync();
            var stderr = publish.StandardError.ReadToEndAsync();
            await publish.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5));
            Assert.True(publish.ExitCode == 0, await stdout + await stderr);

            // host.json: a custom handler with request proxying, pointing at an executable that exists.
            var host = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(output, "host.json")))!;
            Assert.Equal("2.0", (string?)host["version"]);
            Assert.Equal("Microsoft.Azure.Functions.ExtensionBundle", (string?)host["extensionBundle"]!["id"]);
            Assert.True((bool)host["customHandler"]!["enableProxyingHttpRequest"]!);
            // No route prefix: the host routes /api/... and the console's /console/... as the handler does (docs/console.md).
            Assert.Equal("", (string?)host["extensions"]!["http"]!["routePrefix"]);
            var executable = Path.Combine(output, (string)host["customHandler"]!["description"]!["defaultExecutablePath"]!);
            Assert.True(File.Exists(executable), executable);
            Assert.True(File.GetUnixFileMode(executable).HasFlag(UnixFileMode.UserExecute));
            // A timer run stops taking work at Timers:RunSeconds; the host kills it at functionTimeout. The longest
            // allowed run must leave room for the work in hand (a page of items, each a few bounded Cosmos calls).
            Assert.Equal(TimerOptions.FunctionTimeout, TimeSpan.Parse((string)host["functionTimeout"]!, CultureInfo.InvariantCulture));
            var longestRun = typeof(TimerOptions).GetProperty(nameof(TimerOptions.RunSeconds))!
                .GetCustomAttributes(typeof(RangeAttribute), false).Cast<RangeAttribute>().Single().Maximum;
            Assert.True(TimeSpan.FromSeconds((int)longestRun) <= TimerOptions.FunctionTimeout - TimeSpan.FromMinutes(1));
            // The audit repair completes only intents of calls that can no longer run: its shortest grace outlasts any invocation.
            var shortestGrace = typeof(Marketing.Functions.Audit.AuditOptions).GetProperty(nameof(Marketing.Functions.Audit.AuditOptions.RepairGraceMinutes))!
                .GetCustomAttributes(typeof(RangeAttribute), false).Cast<RangeAttribute>().Single().Minimum;
            Assert.True(TimeSpan.FromMinutes((int)shortestGrace) > TimerOptions.FunctionTimeout);

            // One folder per declared function, each function.json exactly the declaration.
            // Published for Azure (Production): the API reference page is not mapped there, so it has no function.
            var declared = FunctionJson.Build(app.Services.GetRequiredService<EndpointDataSource>()).Where(f => f.Key != Platform.ApiReference).ToDictionary();
            Assert.False(Directory.Exists(Path.Combine(output, Platform.ApiReference)));
            foreach (var (name, expected) in declared)
            {
                var path = Path.Combine(output, name, "function.json");
                Assert.True(File.Exists(path), $"{name}/function.json missing");
                var json = JsonNode.Parse(await File.ReadAllTextAsync(path))!;
                Assert.True(JsonNode.DeepEquals(expected, json), name);
                var trigger = json["bindings"]!.AsArray()[0]!;
                switch ((string?)trigger["type"])
                {
                    case "httpTrigger":
                        Assert.NotEmpty(trigger["methods"]!.AsArray());
                        Assert.False(string.IsNullOrEmpty((string?)trigger["route"]));
                        Assert.Equal("http", (string?)json["bindings"]![1]!["type"]);
                        break;
                    case "timerTrigger":
                        Assert.False(string.IsNullOrEmpty((string?)trigger["schedule"]));
                        break;
                    case "serviceBusTrigger":
                        Assert.False(string.IsNullOrEmpty((string?)trigger["queueName"]));
                        Assert.False(string.IsNullOrEmpty((string?)trigger["connection"]));
                        break;
                    default:
                        Assert.Fail($"{name}: unexpected trigger {trigger["type"]}");
                        break;
                }
            }
            // The reminders' pipeline as the host will bind it: a timer whose answer's Outputs.notifications go to the
            // notifications queue, and the Service Bus trigger reading that queue.
            var remind = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(output, "SendReminders", "function.json")))!["bindings"]!.AsArray();
            Assert.Equal(("timerTrigger", "%SendRemindersSchedule%"), ((string?)remind[0]!["type"], (string?)remind[0]!["schedule"]));
            var queueOut = Assert.Single(remind, b => (string?)b!["direction"] == "out")!;
            Assert.Equal(("serviceBus", "notifications", "%NotificationsQueue%", "ServiceBusConnection"),
                ((string?)queueOut["type"], (string?)queueOut["name"], (string?)queueOut["queueName"], (string?)queueOut["connection"]));
            var deliver = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(output, "DeliverNotifications", "function.json")))!["bindings"]!.AsArray();
            Assert.Equal(("serviceBusTrigger", "%NotificationsQueue%", "ServiceBusConnection"),
                ((string?)deliver[0]!["type"], (string?)deliver[0]!["queueName"], (string?)deliver[0]!["connection"]));

            var folders = Directory.GetDirectories(output).Select(Path.GetFileName)
                .Where(d => File.Exists(Path.Combine(output, d!, "function.json"))).Order().ToArray();
            Assert.Equal(declared.Keys.Order().ToArray(), folders);
            Assert.False(File.Exists(Path.Combine(output, "local.settings.json")));

            // The zip holds the same files, with the executable bit kept.
            using var zip = ZipFile.OpenRead(output + ".zip");
            var entry = zip.GetEntry("Marketing.Functions")!;
            Assert.NotNull(entry);
            Assert.True(((entry.ExternalAttributes >> 16) & 0x40) != 0, "executable bit lost in the zip");
            Assert.NotNull(zip.GetEntry("host.json"));
            // The operator console ships in the same deployable, built by publish.sh (never committed).
            Assert.NotNull(zip.GetEntry("console/index.html"));
            Assert.Contains(zip.Entries, e => e.FullName.StartsWith("console/assets/", StringComparison.Ordinal) && e.FullName.EndsWith(".js", StringComparison.Ordinal));
            foreach (var name in declared.Keys)
                Assert.NotNull(zip.GetEntry($"{name}/function.json"));
        }
        finally
        {
            if (Directory.Exists(output)) Directory.Delete(output, recursive: true);
            File.Delete(output + ".zip");
        }
    }
}
