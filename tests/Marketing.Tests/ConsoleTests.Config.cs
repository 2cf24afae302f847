using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Media;
using Marketing.Functions.OperatorConsole;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// GET /api/console/config: how the console signs in (local in Development; MSAL with the registration's client id,
/// authority and scope when the API accepts Entra ID tokens), nothing secret; and the CSP, which lets the page connect to
/// the authority's origin only when Entra ID is configured.
/// </summary>
public sealed partial class ConsoleTests
{
    private static async Task<JsonNode> ConfigAsync(TestApp app)
    {
        var response = await app.Anonymous().GetAsync(GetConsoleConfig.Path);
        var config = await response.AssertStatusAsync(HttpStatusCode.OK);
        // Exactly these members (entra left out when null): a new one must be looked at here (is it public?) before it is
        // served to every browser.
        Assert.Equal(config["entra"] is null ? ["currency", "localSignIn", "timeZone"] : ["currency", "entra", "localSignIn", "timeZone"],
            config.AsObject().Select(p => p.Key).Order());
        return config;
    }

    private static MediaOptions MediaOf(TestApp app) => app.Services.GetRequiredService<IOptions<MediaOptions>>().Value;

    private static async Task<string> CspAsync(TestApp app)
        => (await app.CreateClient().GetAsync("/console/")).Headers.GetValues("Content-Security-Policy").Single();

    [Fact]
    public async Task The_config_offers_no_sign_in_but_local_in_Development_and_the_csp_connects_only_to_this_origin()
    {
        var testing = await ConfigAsync(app);
        Assert.Equal((false, "CNY", "Asia/Shanghai"), ((bool)testing["localSignIn"]!, (string)testing["currency"]!, (string)testing["timeZone"]!));
        Assert.Null(testing["entra"]);

        await using var development = await TestApp.StartAsync(customize: b => b.UseEnvironment("Development"));
        var local = await ConfigAsync(development);
        Assert.True((bool)local["localSignIn"]!);
        Assert.Null(local["entra"]);
        var csp = await CspAsync(development);
        var media = MediaOf(development);
        Assert.Equal(ConsoleFiles.ContentSecurityPolicy(media), csp);
        // This origin and the media account's uploads only (no authority without Entra ID).
        Assert.Contains($"connect-src 'self' {ConsoleFiles.MediaSources(media).Upload};", csp);
        // The dev issuer's key is a setting of the app like the others: it must never reach the page.
        var text = local.ToJsonString();
        Assert.DoesNotContain(Settings.Get("Auth__DevSigningKey"), text);
        Assert.DoesNotContain(Settings.Get("Cosmos__Key"), text);
    }

    [Fact]
    public async Task With_Entra_ID_the_config_serves_the_msal_settings_and_the_csp_allows_the_authority_origin_only()
    {
        await using var tenant = await EntraTenant.StartAsync();
        await using (var entra = TestApp.WithEntra(tenant))
        {
            var config = await ConfigAsync(entra);
            Assert.False((bool)config["localSignIn"]!);
            var msal = config["entra"]!;
            Assert.Equal(["authority", "clientId", "scopes"], msal.AsObject().Select(p => p.Key).Order());
            // The API registration is the SPA's client (docs/deploy.md), the authority as MSAL names it (no v2.0), the
            // scope the registration exposes.
            Assert.Equal(tenant.ClientId, (string)msal["clientId"]!);
            Assert.Equal($"{tenant.BaseAddress}/{tenant.TenantId}", (string)msal["authority"]!);
            Assert.Equal([$"api://{tenant.ClientId}/access_as_user"], msal["scopes"]!.AsArray().Select(s => (string)s!));

            var csp = await CspAsync(entra);
            var origin = new Uri(tenant.BaseAddress).GetLeftPart(UriPartial.Authority);
            var media = MediaOf(entra);
            Assert.Contains($"connect-src 'self' {ConsoleFiles.MediaSources(media).Upload} {origin};", csp);
            // Only connect-src changes: scripts, styles, frames and form targets stay this origin's.
            Assert.Equal(ConsoleFiles.ContentSecurityPolicy(media), csp.Replace($" {origin}", ""));
            Assert.Single(csp.Split(' '), part => part.TrimEnd(';') == origin);
        }

        // A separate SPA registration and scope, when ops set them.
        var spa = Guid.NewGuid().ToString("D");
        await using var own = TestApp.WithEntra(tenant, new Dictionary<string, string>
        {
            ["Console:ClientId"] = spa, ["Console:ApiScope"] = "api://marketing/console.use",
        });
        var overridden = (await ConfigAsync(own))["entra"]!;
        Assert.Equal(spa, (string)overridden["clientId"]!);
        Assert.Equal(["api://marketing/console.use"], overridden["scopes"]!.AsArray().Select(s => (string)s!));
    }

    [Theory]
    [InlineData("ClientId", "marketing-console", "Console:ClientId must be an application (client) id")]
    [InlineData("ApiScope", "access_as_user", "Console:ApiScope must be one scope URI")]
    [InlineData("ApiScope", "api://marketing/a api://marketing/b", "Console:ApiScope must be one scope URI")]
    public void Wrong_console_sign_in_settings_stop_the_start(string setting, string value, string message)
    {
        var error = Assert.Throws<OptionsValidationException>(() => ValidateConsoleAtStart(new() { [$"Console:{setting}"] = value }));
        Assert.Contains(error.Failures, f => f.Contains(message));
        // Empty (the defaults) and well-formed values start.
        ValidateConsoleAtStart(new() { ["Console:ClientId"] = "", ["Console:ApiScope"] = "" });
        ValidateConsoleAtStart(new() { ["Console:ClientId"] = Guid.NewGuid().ToString("D"), ["Console:ApiScope"] = "api://marketing/access_as_user" });
    }

    private static void ValidateConsoleAtStart(Dictionary<string, string?> settings)
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        services.AddConsole();
        using var provider = services.BuildServiceProvider();
        provider.GetRequiredService<IStartupValidator>().Validate();
    }
}
