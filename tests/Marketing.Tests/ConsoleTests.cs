using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Media;
using Marketing.Functions.OperatorConsole;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The operator console's files as the function app serves them (docs/console.md): one function for everything under
/// /console, the single-page app's fallback to index.html, caching by kind of file, a CSP; and the local sign-in that
/// exists only in Development.
/// </summary>
public sealed partial class ConsoleTests(TestApp app) : IClassFixture<TestApp>
{
    private HttpClient Browser() => app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

    [Fact]
    public async Task The_page_and_its_hashed_assets_are_served_with_a_csp_and_caching_by_kind()
    {
        var client = Browser();
        var page = await client.GetAsync("/console/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        // As strict as ever, plus the one media origin the settings name (Azurite's locally): uploads are PUT there from
        // the campaign page, and renditions shown from there (no CDN set in the tests).
        var media = new Uri(app.Services.GetRequiredService<IOptions<MediaOptions>>().Value.BlobEndpoint).GetLeftPart(UriPartial.Authority);
        Assert.StartsWith("http://127.0.0.1:", media);
        Assert.Equal($"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: {media}; connect-src 'self' {media}; "
            + "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
            page.Headers.GetValues("Content-Security-Policy").Single());
        Assert.Equal("nosniff", page.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.True(page.Headers.CacheControl?.NoCache, "index.html must be revalidated, or a deployment would not show");
        var html = await page.Content.ReadAsStringAsync();
        Assert.DoesNotMatch("https?://", html); // nothing from elsewhere: no CDN, no fonts

        var assets = AssetAddresses().Matches(html).Select(m => m.Groups[1].Value).ToArray();
        Assert.Contains(assets, a => a.EndsWith(".js", StringComparison.Ordinal));
        foreach (var asset in assets)
        {
            var response = await client.GetAsync(asset);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{asset}: {(int)response.StatusCode}");
            Assert.True(response.Headers.CacheControl is { Public: true, MaxAge.TotalDays: >= 365 }, $"{asset}: {response.Headers.CacheControl}");
            Assert.Contains("immutable", response.Headers.CacheControl!.Extensions.Select(e => e.Name));
            Assert.Matches(asset.EndsWith(".js", StringComparison.Ordinal) ? "javascript" : "css", response.Content.Headers.ContentType!.MediaType!);
        }
    }

    [Fact]
    public void The_csp_names_the_media_origins_only_the_upload_account_and_the_cdn_when_one_serves_renditions()
    {
        var account = new MediaOptions { BlobEndpoint = "https://stmdabc.blob.core.windows.net/" };
        Assert.Equal(("https://stmdabc.blob.core.windows.net", "https://stmdabc.blob.core.windows.net"), ConsoleFiles.MediaSources(account));
        var withCdn = new MediaOptions { BlobEndpoint = "https://stmdabc.blob.core.windows.net/", PublicBaseUrl = "https://media.example.com/media" };
        Assert.Equal(("https://stmdabc.blob.core.windows.net", "https://media.example.com"), ConsoleFiles.MediaSources(withCdn));
        var policy = ConsoleFiles.ContentSecurityPolicy(withCdn);
        Assert.Contains("img-src 'self' data: blob: https://media.example.com;", policy);
        Assert.Contains("connect-src 'self' https://stmdabc.blob.core.windows.net;", policy);
        Assert.Contains("script-src 'self';", policy); // scripts stay this origin's only
        // Azurite's path-style endpoint: the origin only, never the account's path (a path would allow what follows it).
        Assert.Equal("http://127.0.0.1:10000", ConsoleFiles.MediaSources(new MediaOptions { BlobEndpoint = "http://127.0.0.1:10000/devstoreaccount1" }).Upload);
    }

    [Fact]
    public async Task Pages_of_the_app_fall_back_to_index_html_and_missing_files_are_404()
    {
        var client = Browser();
        var index = await (await client.GetAsync("/console/")).Content.ReadAsStringAsync();

        // A deep link (a page the app routes in the browser) gets the app.
        var deep = await client.GetAsync("/console/campaigns/cmp_x?tab=audit");
        Assert.Equal(HttpStatusCode.OK, deep.StatusCode);
        Assert.Equal(index, await deep.Content.ReadAsStringAsync());
        Assert.True(deep.Headers.CacheControl?.NoCache);

        // The bare /console goes to /console/ (the app's base), keeping the query.
        var bare = await client.GetAsync("/console?lang=en");
        Assert.Equal(HttpStatusCode.Redirect, bare.StatusCode);
        Assert.Equal("/console/?lang=en", bare.Headers.Location?.OriginalString);

        // A file that is not there is a 404 problem, never the app (a stale script would otherwise parse HTML as JS);
        // and nothing outside the console's folder is reachable.
        await (await client.GetAsync("/console/assets/index-gone.js")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        await (await client.GetAsync("/console/missing.png")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        await (await client.GetAsync("/console/..%2Fhost.json")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        await (await client.GetAsync("/console/%2E%2E/Marketing.Functions.dll")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
    }

    [Fact]
    public void One_function_fronts_the_console_under_its_own_host_route_and_every_other_route_is_under_api()
    {
        var functions = FunctionJson.Build(app.Services.GetRequiredService<EndpointDataSource>());
        var trigger = functions[ConsoleFiles.FunctionName]["bindings"]![0]!;
        Assert.Equal(ConsoleFiles.HostRoute, (string?)trigger["route"]);
        Assert.Equal(["get"], trigger["methods"]!.AsArray().Select(m => (string)m!).ToArray());
        var host = JsonNode.Parse(File.ReadAllText(Repo.PathOf("functions", "Marketing.Functions", "host.json")))!;
        Assert.Equal("", (string?)host["extensions"]!["http"]!["routePrefix"]);
        foreach (var (name, json) in functions.Where(f => f.Key != ConsoleFiles.FunctionName))
            if (json["bindings"]![0]!["route"] is { } route)
                Assert.StartsWith("api/", (string)route!);
    }

    [Theory]
    [InlineData("Testing")]
    [InlineData("Production")]
    [InlineData("Staging")]
    public async Task The_local_sign_in_does_not_exist_outside_Development(string environment)
    {
        await using var other = await TestApp.StartAsync(customize: b => b.UseEnvironment(environment));
        var response = await other.Anonymous().PostAsync(DevSignIn.Path, Api.JsonContent(new { sub = "ops", role = "operator" }));
        await response.AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        Assert.DoesNotContain(FunctionJson.Build(other.Services.GetRequiredService<EndpointDataSource>()).Keys, k => k == DevSignIn.FunctionName);
    }

    [Fact]
    public async Task In_Development_the_local_sign_in_mints_a_token_the_api_accepts_for_that_role_only()
    {
        await using var development = await TestApp.StartAsync(customize: b => b.UseEnvironment("Development"));
        var client = development.Anonymous();

        // Every field error at once.
        var refused = await (await client.PostAsync(DevSignIn.Path, Api.JsonContent(new { sub = "", role = "root" })))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(refused["errors"]!["sub"]);
        Assert.NotNull(refused["errors"]!["role"]);

        var signedIn = await (await client.PostAsync(DevSignIn.Path, Api.JsonContent(new { sub = "ops-ada", role = "operator" })))
            .AssertStatusAsync(HttpStatusCode.OK);
        var expiresAt = DateTimeOffset.Parse((string)signedIn["expiresAt"]!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(development.Clock.GetUtcNow() + DevSignIn.Lifetime, expiresAt);
        var operatorClient = development.Bearer((string)signedIn["token"]!);
        await (await operatorClient.GetAsync("/api/stats/overview")).AssertStatusAsync(HttpStatusCode.OK);

        var customer = await (await client.PostAsync(DevSignIn.Path, Api.JsonContent(new { sub = "ops-ada", role = "customer" })))
            .AssertStatusAsync(HttpStatusCode.OK);
        var customerClient = development.Bearer((string)customer["token"]!);
        await (await customerClient.GetAsync("/api/stats/overview")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
    }

    [GeneratedRegex("(?:src|href)=\"(/console/assets/[^\"]+)\"")]
    private static partial Regex AssetAddresses();
}
