using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Marketing.Tests.Support;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The OpenAPI document is usable as it is served: a mainstream generator (@hey-api/openapi-ts, from package.json)
/// turns it into a client, and one flow runs through the generated functions against a real handler process.
/// </summary>
public sealed class GeneratedClientTests(TestApp app) : IClassFixture<TestApp>
{
    [Fact]
    public async Task A_client_generated_from_the_served_document_creates_publishes_and_claims()
    {
        var document = await (await app.Anonymous().GetAsync("/api/openapi.json")).AssertStatusAsync(HttpStatusCode.OK);
        var work = Directory.CreateTempSubdirectory("generated-client-");
        var spec = Path.Combine(work.FullName, "openapi.json");
        await File.WriteAllTextAsync(spec, document.ToJsonString());

        var port = HandlerProcess.FreePort();
        using var handler = HandlerProcess.Start([], new Dictionary<string, string>
        {
            ["FUNCTIONS_CUSTOMHANDLER_PORT"] = port.ToString(),
            ["Cosmos__Database"] = app.Database,
        });
        try
        {
            var baseUrl = $"http://127.0.0.1:{port}";
            await HandlerProcess.WaitUntilHealthyAsync(baseUrl);
            // The handler runs on the real clock, so the claim window is open around now.
            var terms = Api.Terms(DateTimeOffset.UtcNow);
            var run = await Scripts.RunAsync("node",
            [
                Repo.PathOf("tests", "Marketing.Tests", "GeneratedClient", "flow.mjs"), spec, work.FullName, baseUrl,
                await TokenAsync("generated-operator", "operator"), await TokenAsync("generated-customer", "customer"),
                terms.ToJsonString(), await TokenAsync("generated-approver", "approver"),
            ], timeout: TimeSpan.FromMinutes(3));
            Assert.True(run.ExitCode == 0, run.ToString());

            var result = JsonNode.Parse(run.Output.Trim().Split('\n')[^1])!;
            var claim = result["claim"]!;
            Assert.Equal((string)result["campaignId"]!, (string)claim["campaignId"]!);
            Assert.False(string.IsNullOrEmpty((string?)claim["id"]), run.Output);
        }
        finally
        {
            handler.Kill(entireProcessTree: true);
            await handler.WaitForExitAsync();
            work.Delete(recursive: true);
        }
    }

    private static async Task<string> TokenAsync(string subject, string role)
    {
        var token = await Scripts.RunAsync("node", [Repo.PathOf("scripts", "token.mjs"), "--sub", subject, "--role", role]);
        Assert.True(token.ExitCode == 0, token.ToString());
        return token.Output.Trim();
    }
}
