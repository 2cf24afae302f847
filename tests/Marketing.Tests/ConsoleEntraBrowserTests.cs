using System.Text.Json.Nodes;
using Marketing.Tests.Support;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The console's Entra ID sign-in in a real browser, without the internet (docs/console.md, "Sign-in"): the platform runs
/// as its own process with Entra settings naming a stand-in tenant (<see cref="EntraTenant"/>: a real discovery document
/// and keys over HTTPS on loopback, trusted by that process alone through SSL_CERT_FILE), and console/e2e/entra.mjs
/// answers the browser's requests to the tenant itself. "Sign in with Microsoft" sends the browser to the authority's
/// /authorize with an authorization code + PKCE request; back with a code, MSAL redeems it with the verifier; the console
/// then holds a real access token of the tenant, which the API accepts.
/// </summary>
public sealed class ConsoleEntraBrowserTests
{
    [Fact]
    public async Task Sign_in_with_Microsoft_is_an_authorization_code_request_with_pkce_and_its_access_token_signs_the_console_in()
    {
        await using var tenant = await EntraTenant.StartAsync();
        await using var app = await StatsRig.StartAsync("entra");
        var certificate = Path.Combine(Path.GetTempPath(), $"entra-tenant-{Guid.NewGuid():N}.pem");
        await File.WriteAllTextAsync(certificate, tenant.CertificatePem());
        try
        {
            await using var site = await ConsoleSite.StartAsync(app, new Dictionary<string, string>
            {
                // Azure's settings (docs/deploy.md), the dev issuer's blanked; Development, where the local sign-in would
                // exist with the dev issuer: with Entra ID it must not.
                ["Auth__Issuer"] = "", ["Auth__Audience"] = "", ["Auth__DevSigningKey"] = "",
                ["Auth__Authority"] = tenant.Authority, ["Auth__TenantId"] = tenant.TenantId,
                ["Auth__ClientId"] = tenant.ClientId, ["Auth__AppIdUri"] = tenant.AppIdUri,
                ["SSL_CERT_FILE"] = certificate,
            });
            var subject = EntraTenant.NewSubject();
            var token = tenant.Token(EntraVersion.V1, subject, ["operator", "finance"], DateTimeOffset.UtcNow, lifetime: TimeSpan.FromHours(1));
            var walk = await site.RunAsync("entra.mjs", tenant.Authority, tenant.TenantId, token);

            // Only the Microsoft sign-in is offered.
            Assert.Equal(0, (int)walk["localSignIn"]!);
            Assert.Equal(["登录"], ConsoleSite.Strings(walk["headings"]));

            // The request to the authority: authorization code with PKCE (S256), for the registration's client, back to
            // the console's base address, asking for the API's scope.
            var authorize = walk["authorize"]!;
            Assert.Equal("code", (string)authorize["response_type"]!);
            Assert.Equal("S256", (string)authorize["code_challenge_method"]!);
            Assert.Matches("^[A-Za-z0-9_-]{43}$", (string)authorize["code_challenge"]!);
            Assert.Equal(tenant.ClientId, (string)authorize["client_id"]!);
            Assert.Equal(site.BaseUrl + "/console/", (string)authorize["redirect_uri"]!);
            Assert.Contains($"api://{tenant.ClientId}/access_as_user", ((string)authorize["scope"]!).Split(' '));
            Assert.False(string.IsNullOrEmpty((string?)authorize["state"]));

            // The code redeemed by the public client with the PKCE verifier (no secret), at the tenant's token endpoint.
            var redeemed = walk["tokenRequest"]!;
            Assert.Equal(("authorization_code", "code-from-the-tenant", tenant.ClientId), ((string)redeemed["grant_type"]!, (string)redeemed["code"]!, (string)redeemed["client_id"]!));
            Assert.Equal(site.BaseUrl + "/console/", (string)redeemed["redirect_uri"]!);
            Assert.True((bool)redeemed["verifierMatches"]!, "the code_verifier must hash (S256) to the code_challenge");
            Assert.False((bool)redeemed["has_secret"]!);
            var requests = ConsoleSite.Strings(walk["authorityRequests"]);
            Assert.Contains($"GET /{tenant.TenantId}/v2.0/.well-known/openid-configuration", requests);
            Assert.Contains($"POST /{tenant.TenantId}/oauth2/v2.0/token", requests);
            Assert.Empty(walk["cspViolations"]!.AsArray());
            // Back in the tab with no usable token: the sign-in button at once, and no hidden iframe to the authority
            // (which the CSP would block: no frame-src violation, no silent /authorize request).
            Assert.Empty(walk["silentCspViolations"]!.AsArray());
            Assert.DoesNotContain(ConsoleSite.Strings(walk["silentRequests"]), r => r.Contains("/authorize", StringComparison.Ordinal));
            // Signed out, the tab reloaded: still signed out (MSAL's cache went with the sign-out).
            Assert.False((bool)walk["signedInAfterSignOutAndReload"]!);

            // Signed in as the API sees the caller: the access token's sub (not the ID token's) and its app roles; the home
            // page's figures came from the API with that token.
            var session = walk["session"]!;
            Assert.Equal((subject, token, "operator"), ((string)session["sub"]!, (string)session["token"]!, (string)session["role"]!));
            Assert.Equal(["operator", "finance"], ConsoleSite.Strings(session["roles"]));
            Assert.Contains(subject, (string)walk["signedInAs"]!);
            Assert.DoesNotContain("code=", (string)walk["finalUrl"]!);
            ConsoleSite.AssertAccessible(walk, screenshots: 1);
        }
        finally
        {
            File.Delete(certificate);
        }
    }
}
