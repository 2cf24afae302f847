using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Marketing.Functions.Hosting;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>The handler as the Functions host runs it: a process listening on 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT.</summary>
public sealed class HostingTests(TestApp app) : IClassFixture<TestApp>
{
    [Fact]
    public async Task The_handler_process_listens_on_loopback_at_the_port_the_host_gives_it()
    {
        var port = FreePort();
        using var process = HandlerProcess.Start([], new Dictionary<string, string>
        {
            ["FUNCTIONS_CUSTOMHANDLER_PORT"] = port.ToString(),
            ["Cosmos__Database"] = app.Database,
        });
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            HttpResponseMessage? health = null;
            var deadline = Stopwatch.StartNew();
            while (health is null && deadline.Elapsed < TimeSpan.FromSeconds(30))
            {
                try { health = await http.GetAsync("/api/health"); }
                catch (HttpRequestException) { await Task.Delay(100); }
            }
            Assert.NotNull(health);
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);

            // Reached on loopback only: not on the machine's other addresses.
            var external = (await Dns.GetHostAddressesAsync(Dns.GetHostName()))
                .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a));
            if (external is not null)
            {
                using var probe = new TcpClient();
                await Assert.ThrowsAnyAsync<SocketException>(() => probe.ConnectAsync(external, port));
            }
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task The_openapi_document_describes_every_http_function()
    {
        var document = await (await app.Anonymous().GetAsync("/api/openapi.json")).AssertStatusAsync(HttpStatusCode.OK);
        var paths = document["paths"]!.AsObject();
        var endpoints = app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<HttpFunction>() is { Name: not "OpenApi", HostRoute: null });
        foreach (var endpoint in endpoints)
        {
            var path = "/" + endpoint.RoutePattern.RawText!.Trim('/');
            var method = endpoint.Metadata.GetMetadata<HttpMethodMetadata>()!.HttpMethods[0].ToLowerInvariant();
            Assert.True(paths.ContainsKey(path), $"{path} missing from OpenAPI");
            var operation = paths[path]![method];
            Assert.NotNull(operation);
            Assert.Equal(endpoint.Metadata.GetMetadata<HttpFunction>()!.Name, (string?)operation!["operationId"]);
        }
        Assert.DoesNotContain(paths, p => p.Key == "/ReconcileStock"); // the host's address, not a client's
    }

    [Fact]
    public async Task Unknown_routes_are_404_problem_json()
    {
        await (await app.Anonymous().GetAsync("/api/nothing-here")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
