using System.Security.Claims;
using System.Text;
using Marketing.Functions.Audit;
using Marketing.Functions.Hosting;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Marketing.Functions.Identity;

/// <summary>The local sign-in's request: who to be, and as which role.</summary>
public sealed record DevSignInRequest(string Sub, string Role);

/// <summary>A dev token and when it stops being accepted.</summary>
public sealed record DevSignInResult(string Token, DateTimeOffset ExpiresAt);

/// <summary>
/// POST /api/dev/sign-in: the console's local sign-in (docs/console.md). Mints the same HS256 token scripts/token.mjs mints
/// (dev issuer, Auth:DevSigningKey) for a chosen sub and role. Mapped only in Development with the dev issuer configured:
/// anywhere else (Testing, Production in Azure, or Entra ID mode) the route does not exist, has no function.json, and
/// answers 404. It writes nothing, so calling it twice is harmless.
/// </summary>
public static class DevSignIn
{
    public const string FunctionName = "DevSignIn", Path = "/api/dev/sign-in";
    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(8);
    public const int MaxSubLength = 64;

    /// <summary>The roles Auth.cs knows; a token with any other would be useless.</summary>
    public static readonly string[] KnownRoles =
        [Roles.Customer, Roles.Operator, Roles.Admin, Roles.OrderSystem, Roles.Promoter, Roles.Finance, Roles.Approver];

    public static IEndpointRouteBuilder MapDevSignIn(this IEndpointRouteBuilder routes)
    {
        // Read from configuration, not IOptions<AuthOptions>: invalid auth settings are reported by the start-up validation
        // (with the other settings' errors), not thrown from here while the routes are mapped.
        var environment = routes.ServiceProvider.GetRequiredService<IHostEnvironment>();
        var auth = routes.ServiceProvider.GetRequiredService<IConfiguration>().GetSection(AuthOptions.Section);
        if (!IsAvailable(environment, auth[nameof(AuthOptions.Authority)], auth[nameof(AuthOptions.DevSigningKey)])) return routes;
        routes.MapPost(Path, HandleAsync)
            .AsFunction(FunctionName)
            .NotAudited("Local runs only: mints a dev token and writes nothing.")
            .AllowAnonymous()
            .WithTags("Local")
            .AcceptsJson(new DevSignInRequest("ops-local", Roles.Operator))
            .Produces<DevSignInResult>()
            .WithSummary("Local runs only (Development): a dev token for a chosen user and role, for the console's local sign-in.");
        return routes;
    }

    /// <summary>Development, and the dev issuer (never Entra ID, whose tokens only Entra can sign).</summary>
    public static bool IsAvailable(IHostEnvironment environment, string? authority, string? devSigningKey)
        => environment.IsDevelopment() && string.IsNullOrWhiteSpace(authority) && !string.IsNullOrWhiteSpace(devSigningKey);

    private static async Task<IResult> HandleAsync(HttpContext context, IOptions<AuthOptions> options, TimeProvider time)
    {
        var (request, problem) = await JsonBody.ReadAsync<DevSignInRequest>(context.Request, Rules);
        if (problem is not null) return problem.ToResult();
        var auth = options.Value;
        var now = time.GetUtcNow();
        var expires = now + Lifetime;
        var token = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = auth.Issuer,
            Audience = auth.Audience,
            IssuedAt = now.UtcDateTime,
            NotBefore = now.UtcDateTime,
            Expires = expires.UtcDateTime,
            Subject = new ClaimsIdentity([new Claim("sub", request!.Sub), new Claim("roles", request.Role)]),
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(auth.DevSigningKey!)), SecurityAlgorithms.HmacSha256),
        });
        return TypedResults.Ok(new DevSignInResult(token, expires));
    }

    private static IReadOnlyDictionary<string, string[]> Rules(DevSignInRequest body)
    {
        var errors = new Dictionary<string, string[]>();
        if (body.Sub.Length is 0 or > MaxSubLength || !body.Sub.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '@'))
            errors["sub"] = [$"1 to {MaxSubLength} characters of A-Z, a-z, 0-9, '-', '_', '.' and '@'."];
        if (!KnownRoles.Contains(body.Role, StringComparer.Ordinal))
            errors["role"] = [$"One of {string.Join(", ", KnownRoles)}."];
        return errors;
    }
}
