using System.Diagnostics;
using System.Text.Json.Nodes;
using Marketing.Functions.Hosting;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>function.json files are generated from the endpoints and stay in sync with them.</summary>
public sealed class FunctionDeclarationTests(TestApp app) : IClassFixture<TestApp>
{
    private RouteEndpoint[] Endpoints => app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>().ToArray();

    [Fact]
    public void Every_endpoint_is_a_declared_function_and_every_api_route_an_http_function()
    {
        var undeclared = Endpoints.Where(e => e.Metadata.GetMetadata<FunctionDeclaration>() is null)
            .Select(e => e.RoutePattern.RawText).ToArray();
        Assert.Empty(undeclared);
        foreach (var endpoint in Endpoints.Where(e => e.RoutePattern.RawText!.TrimStart('/').StartsWith("api/")))
            Assert.IsType<HttpFunction>(endpoint.Metadata.GetMetadata<FunctionDeclaration>());
    }

    [Fact]
    public void Generated_function_json_matches_every_route_and_method_and_nothing_else()
    {
        var functions = FunctionJson.Build(app.Services.GetRequiredService<EndpointDataSource>());
        var routes = Endpoints.Where(e => e.Metadata.GetMetadata<HttpFunction>() is not null)
            .Select(e => (Route: e.Metadata.GetMetadata<HttpFunction>()!.HostRoute ?? FunctionJson.HostRoute(e),
                Method: e.Metadata.GetMetadata<HttpMethodMetadata>()!.HttpMethods.Single().ToLowerInvariant()))
            .Distinct() // one function may front several endpoints under its own host route (the API reference page)
            .OrderBy(x => x.Route).ThenBy(x => x.Method).ToArray();

        var fromJson = functions.Values
            .Select(f => f["bindings"]!.AsArray().SingleOrDefault(b => (string?)b!["type"] == "httpTrigger"))
            .Where(b => b is not null)
            .Select(b => (Route: (string)b!["route"]!, Method: (string)b["methods"]!.AsArray().Single()!))
            .OrderBy(x => x.Route).ThenBy(x => x.Method).ToArray();
        Assert.Equal(routes, fromJson);
    }

    [Fact]
    public void Http_functions_qualify_for_request_proxying_and_timers_name_their_schedule_setting()
    {
        var functions = FunctionJson.Build(app.Services.GetRequiredService<EndpointDataSource>());
        foreach (var (name, json) in functions)
        {
            var bindings = json["bindings"]!.AsArray();
            if (bindings.Any(b => (string?)b!["type"] == "httpTrigger"))
            {
                // Proxying applies only when the bindings are exactly httpTrigger in + http out.
                Assert.Equal(["httpTrigger", "http"], bindings.Select(b => (string)b!["type"]!).ToArray());
                Assert.Equal("anonymous", (string?)bindings[0]!["authLevel"]);
                // host.json's routePrefix is empty: routes are the endpoints' own paths (api/..., and the console's).
                var route = (string)bindings[0]!["route"]!;
                Assert.True(route.StartsWith("api/", StringComparison.Ordinal) || name == Marketing.Functions.OperatorConsole.ConsoleFiles.FunctionName, $"{name}: {route}");
            }
            else
            {
                // A trigger, then only Service Bus output bindings (SendReminders' queue messages).
                var trigger = bindings[0]!;
                Assert.All(bindings.Skip(1), b => Assert.Equal(("serviceBus", "out"), ((string?)b!["type"], (string?)b["direction"])));
                if ((string?)trigger["type"] == "serviceBusTrigger") continue;
                Assert.Equal("timerTrigger", (string?)trigger["type"]);
                Assert.Matches("^%[A-Za-z]+%$", (string)trigger["schedule"]!);
            }
        }
        Assert.Contains("ReconcileStock", functions.Keys);
        Assert.Contains("ClaimCoupon", functions.Keys);
    }

    [Fact]
    public void SettleCommission_is_a_service_bus_trigger_on_the_queue_named_by_a_setting_with_an_identity_connection()
    {
        var functions = FunctionJson.Build(app.Services.GetRequiredService<EndpointDataSource>());
        var binding = Assert.Single(functions["SettleCommission"]["bindings"]!.AsArray())!;
        Assert.Equal("serviceBusTrigger", (string?)binding["type"]);
        Assert.Equal("in", (string?)binding["direction"]);
        Assert.Equal("message", (string?)binding["name"]);
        Assert.Equal("%OrderEventsQueue%", (string?)binding["queueName"]);
        // A connection prefix (ServiceBusConnection__fullyQualifiedNamespace etc.), never a connection string.
        Assert.Equal("ServiceBusConnection", (string?)binding["connection"]);
        Assert.Equal(["connection", "direction", "name", "queueName", "type"], binding.AsObject().Select(p => p.Key).Order().ToArray());
    }

    [Fact]
    public async Task The_functions_json_command_writes_one_folder_per_function()
    {
        var output = Directory.CreateTempSubdirectory("functions-json-");
        try
        {
            // Only the wiring is built; nothing connects.
            using var process = HandlerProcess.Start(["functions-json", output.FullName]);
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
            Assert.Equal(0, process.ExitCode);

            // The command runs as Production (as in Azure), where the API reference page is not mapped.
            var expected = FunctionJson.Build(app.Services.GetRequiredService<EndpointDataSource>())
                .Where(f => f.Key != Platform.ApiReference).ToDictionary();
            var written = output.GetDirectories().Select(d => d.Name).Order().ToArray();
            Assert.Equal(expected.Keys.Order().ToArray(), written);
            foreach (var (name, json) in expected)
            {
                var onDisk = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(output.FullName, name, "function.json")));
                Assert.True(JsonNode.DeepEquals(json, onDisk), name);
            }
        }
        finally
        {
            output.Delete(recursive: true);
        }
    }

    /// <summary>
    /// A timer or queue function's Service Bus output bindings follow its trigger in function.json, as the host reads them;
    /// an HTTP function may have none (the host proxies only functions whose bindings are exactly httpTrigger + http).
    /// </summary>
    [Fact]
    public void Service_bus_outputs_follow_the_trigger_and_http_functions_refuse_them()
    {
        static RouteEndpoint Endpoint(FunctionDeclaration declaration, string method = "POST")
            => new(_ => Task.CompletedTask, Microsoft.AspNetCore.Routing.Patterns.RoutePatternFactory.Parse("/api/" + declaration.Name),
                0, new Microsoft.AspNetCore.Http.EndpointMetadataCollection(declaration, new HttpMethodMetadata([method])), declaration.Name);
        var output = new ServiceBusOutput("notifications", "%NotificationsQueue%", "ServiceBusConnection");

        var functions = FunctionJson.Build(new DefaultEndpointDataSource(
            Endpoint(new TimerFunction("Remind", "%RemindSchedule%") { Outputs = [output] }),
            Endpoint(new ServiceBusQueueFunction("Relay", "%In%", "ServiceBusConnection") { Outputs = [output] })));
        foreach (var name in new[] { "Remind", "Relay" })
        {
            var bindings = functions[name]["bindings"]!.AsArray();
            Assert.Equal(2, bindings.Count);
            Assert.True(JsonNode.DeepEquals(new JsonObject
            {
                ["type"] = "serviceBus", ["direction"] = "out", ["name"] = "notifications",
                ["queueName"] = "%NotificationsQueue%", ["connection"] = "ServiceBusConnection",
            }, bindings[1]), bindings[1]!.ToJsonString());
        }

        var refused = Assert.Throws<InvalidOperationException>(() => FunctionJson.Build(new DefaultEndpointDataSource(
            Endpoint(new HttpFunction("Web") { Outputs = [output] }, "GET"))));
        Assert.Contains("proxying", refused.Message);
    }
}
