using System.Net;
using System.Text.RegularExpressions;
using Marketing.Functions.Hosting;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The readable API reference page (docs/api.md) at /api/reference, outside Production (Azure): the page, the scripts it loads and
/// the document it renders are all served by the app itself, anonymously; nothing is fetched from elsewhere.
/// </summary>
public sealed partial class ApiReferenceTests(TestApp app) : IClassFixture<TestApp>
{
    [Fact]
    public async Task The_page_loads_its_scripts_and_the_document_from_the_app_itself()
    {
        var client = app.Anonymous();
        var page = await client.GetAsync(Platform.ReferencePath);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        var html = await page.Content.ReadAsStringAsync();

        // Relative script addresses resolve against the page's own address (with its trailing slash).
        var at = page.RequestMessage!.RequestUri!;
        var scripts = ScriptSources().Matches(html).Select(m => m.Groups[1].Value).ToArray();
        Assert.Contains("scalar.js", scripts);
        foreach (var script in scripts)
        {
            var response = await client.GetAsync(new Uri(at, script));
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{script}: {(int)response.StatusCode}");
            Assert.Contains("javascript", response.Content.Headers.ContentType?.MediaType);
            Assert.True((await response.Content.ReadAsByteArrayAsync()).Length > 1000, $"{script} is empty");
        }

        // It renders our document, and asks no other host for anything (no CDN, fonts or telemetry).
        Assert.Contains(Platform.OpenApiPath.TrimStart('/'), html);
        Assert.DoesNotMatch("https?://", html);
        Assert.Contains("\"withDefaultFonts\":false", html);
        Assert.Contains("\"telemetry\":false", html);
        var document = await client.GetAsync(Platform.OpenApiPath);
        Assert.Equal(HttpStatusCode.OK, document.StatusCode);
    }

    [Fact]
    public async Task In_production_there_is_no_page_but_the_document_is_served()
    {
        await using var production = await TestApp.StartAsync(customize: b => b.UseEnvironment("Production"));
        var client = production.Anonymous();
        await (await client.GetAsync(Platform.ReferencePath)).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        await (await client.GetAsync(Platform.ReferencePath + "/scalar.js")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(Platform.OpenApiPath)).StatusCode);
    }

    [GeneratedRegex("<script[^>]*src=\"([^\"]+)\"")]
    private static partial Regex ScriptSources();
}
