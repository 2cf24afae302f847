using Marketing.Functions.Commissions;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Stats;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.OperatorConsole;

/// <summary>MSAL's settings for the console: a public client's, nothing secret.</summary>
public sealed record EntraSignIn(string ClientId, string Authority, string[] Scopes);

/// <summary>How the console signs in, and the platform's currency (commissions, payouts) and time zone.</summary>
public sealed record ConsoleConfig(bool LocalSignIn, EntraSignIn? Entra, string Currency, string TimeZone);

/// <summary>
/// GET /api/console/config — anonymous: the console reads it before anyone is signed in, to know which sign-in to offer.
/// Everything in it is public by nature (a SPA's client id, the tenant's authority and the scope are in every browser's
/// address bar during sign-in; the currency and time zone show on every page); it carries no key, secret or user data.
/// </summary>
public static class GetConsoleConfig
{
    public const string Path = "/api/console/config";

    public static IEndpointRouteBuilder MapConsoleConfig(this IEndpointRouteBuilder routes)
    {
        routes.MapGet(Path, (IOptions<AuthOptions> auth, IOptions<ConsoleOptions> console, IOptions<CommissionOptions> commissions,
                IOptions<StatsOptions> stats, IHostEnvironment environment, HttpContext context) =>
            {
                var a = auth.Value;
                context.Response.Headers.CacheControl = "no-cache";
                return TypedResults.Ok(new ConsoleConfig(DevSignIn.IsAvailable(environment, a.Authority, a.DevSigningKey), Entra(a, console.Value),
                    commissions.Value.Currency, stats.Value.TimeZone));
            })
            .AsFunction("GetConsoleConfig")
            .AllowAnonymous()
            .WithTags("Platform")
            .Produces<ConsoleConfig>()
            .WithSummary("The console's sign-in settings (local, or Entra ID for MSAL), the platform's currency and time zone. Nothing secret.");
        return routes;
    }

    /// <summary>
    /// MSAL's settings when the API accepts Entra ID tokens: the client, the tenant's authority as MSAL names it (the v2.0
    /// suffix of the token issuer's metadata address dropped: MSAL adds its own path), and the API scope.
    /// </summary>
    public static EntraSignIn? Entra(AuthOptions auth, ConsoleOptions console)
    {
        if (!auth.UsesEntra) return null;
        var authority = auth.Authority!.TrimEnd('/');
        if (authority.EndsWith("/v2.0", StringComparison.OrdinalIgnoreCase)) authority = authority[..^"/v2.0".Length];
        var clientId = string.IsNullOrWhiteSpace(console.ClientId) ? auth.ClientId! : console.ClientId;
        var scope = string.IsNullOrWhiteSpace(console.ApiScope) ? auth.AppIdUri!.TrimEnd('/') + "/access_as_user" : console.ApiScope;
        return new EntraSignIn(clientId, authority, [scope]);
    }

    /// <summary>The origin MSAL talks to (discovery, keys, the token endpoint): what the console's CSP must allow to connect to.</summary>
    public static string? AuthorityOrigin(AuthOptions auth)
        => auth.UsesEntra && Uri.TryCreate(auth.Authority, UriKind.Absolute, out var uri) ? uri.GetLeftPart(UriPartial.Authority) : null;
}
