using System.ComponentModel.DataAnnotations;
using System.Security.Claims;
using System.Text;
using System.Text.Encodings.Web;
using Marketing.Functions.Hosting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace Marketing.Functions.Identity;

public static class Roles
{
    public const string Customer = "customer";
    public const string Operator = "operator";
    public const string Admin = "admin";
    /// <summary>The order/trade system, calling server to server with its own identity.</summary>
    public const string OrderSystem = "order_system";
    /// <summary>A customer registered in the distribution programme (see Promoters/PromoterAccess.cs).</summary>
    public const string Promoter = "promoter";
}

public static class Policies
{
    public const string Customer = "customer";
    /// <summary>Operators run campaigns; admins may do everything operators do.</summary>
    public const string Operator = "operator";
    /// <summary>A customer acting on their own cart, or the order system acting for any customer.</summary>
    public const string CustomerOrOrderSystem = "customer-or-order-system";
    /// <summary>The order/trade system, which locks and settles coupons on orders.</summary>
    public const string OrderSystem = "order-system";
    /// <summary>Reading redemptions: the order system, and operators answering customers.</summary>
    public const string OrderSystemOrOperator = "order-system-or-operator";
    /// <summary>A registered promoter, acting on their own account only (policy added by AddPromoters).</summary>
    public const string Promoter = "promoter";
}

/// <summary>
/// JWT bearer settings. In Azure: Issuer, Audience and Authority (OpenID Connect metadata supplies the
/// signing keys). Locally and in tests: a dev HS256 signing key instead of an authority, so any tool
/// can mint tokens (scripts/token.mjs). Exactly one of Authority and DevSigningKey must be set.
/// </summary>
public sealed class AuthOptions : IValidatableObject
{
    public const string Section = "Auth";

    [Required] public string Issuer { get; set; } = "";
    [Required] public string Audience { get; set; } = "";
    public string? Authority { get; set; }
    [LocalOnly] public string? DevSigningKey { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var hasAuthority = !string.IsNullOrWhiteSpace(Authority);
        var hasDevKey = !string.IsNullOrWhiteSpace(DevSigningKey);
        if (hasAuthority == hasDevKey)
            yield return new ValidationResult("Set exactly one of Auth:Authority (Azure) and Auth:DevSigningKey (local).",
                [nameof(Authority), nameof(DevSigningKey)]);
        if (hasDevKey && Encoding.UTF8.GetByteCount(DevSigningKey!) < 32)
            yield return new ValidationResult("Auth:DevSigningKey must be at least 32 bytes for HS256.", [nameof(DevSigningKey)]);
        if (hasAuthority && !Uri.TryCreate(Authority, UriKind.Absolute, out _))
            yield return new ValidationResult("Auth:Authority must be an absolute https URL.", [nameof(Authority)]);
    }
}

/// <summary>
/// Validates bearer tokens with Microsoft.IdentityModel directly. (The JwtBearer package needs a newer
/// Microsoft.IdentityModel than our package source holds; see docs/decisions/0001-jwt-validation-without-jwtbearer.md.)
/// Claims: "sub" is the caller's id (a customer's id is their wallet), "roles" their roles.
/// 401 and 403 answers are problem+json like every other error.
/// </summary>
public sealed class BearerTokenHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> schemeOptions,
    ILoggerFactory logger,
    UrlEncoder encoder,
    TokenValidation validation) : AuthenticationHandler<AuthenticationSchemeOptions>(schemeOptions, logger, encoder)
{
    public const string SchemeName = "Bearer";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers.Authorization;
        if (string.IsNullOrEmpty(header) || !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            return AuthenticateResult.NoResult();

        var result = await validation.ValidateAsync(header["Bearer ".Length..].Trim(), Context.RequestAborted);
        if (!result.IsValid)
            return AuthenticateResult.Fail(result.Exception?.Message ?? "invalid token");

        // The subject becomes a partition key and part of document ids: insist on a sane one.
        var subject = result.ClaimsIdentity.FindFirst("sub")?.Value;
        if (subject is null || subject.Length is 0 or > 128 || subject.Any(c => char.IsControl(c) || c is '/' or '\\' or '?' or '#'))
            return AuthenticateResult.Fail("token has no usable 'sub' claim");

        var principal = new ClaimsPrincipal(result.ClaimsIdentity);
        return AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.Headers.WWWAuthenticate = "Bearer";
        return ProblemResult.WriteAsync(Context, Problem.Of(ProblemTypes.Unauthorized, 401,
            "A valid bearer token is required."));
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties)
        => ProblemResult.WriteAsync(Context, Problem.Of(ProblemTypes.Forbidden, 403,
            "Your role does not allow this operation."));
}

/// <summary>Token validation parameters built once from <see cref="AuthOptions"/>.</summary>
public sealed class TokenValidation
{
    private readonly JsonWebTokenHandler handler = new() { MapInboundClaims = false };
    private readonly TokenValidationParameters parameters;

    public TokenValidation(IOptions<AuthOptions> options, TimeProvider time)
    {
        var auth = options.Value;
        parameters = new TokenValidationParameters
        {
            ValidIssuer = auth.Issuer,
            ValidAudience = auth.Audience,
            ValidateIssuer = true,
            ValidateAudience = true,
            ValidateLifetime = true,
            RequireExpirationTime = true,
            ValidateIssuerSigningKey = true,
            NameClaimType = "sub",
            RoleClaimType = "roles",
            ClockSkew = TimeSpan.FromMinutes(1),
            // Lifetime follows the app's clock, so tests that move time move token expiry with it.
            LifetimeValidator = (notBefore, expires, _, p) =>
            {
                var now = time.GetUtcNow().UtcDateTime;
                return (notBefore is null || notBefore.Value - p.ClockSkew <= now) &&
                       expires is not null && now < expires.Value + p.ClockSkew;
            },
        };
        if (!string.IsNullOrWhiteSpace(auth.DevSigningKey))
        {
            parameters.IssuerSigningKey = new SymmetricSecurityKey(Encoding.UTF8.GetBytes(auth.DevSigningKey));
            parameters.ValidAlgorithms = [SecurityAlgorithms.HmacSha256];
        }
        else
        {
            var metadata = auth.Authority!.TrimEnd('/') + "/.well-known/openid-configuration";
            parameters.ConfigurationManager = new ConfigurationManager<OpenIdConnectConfiguration>(
                metadata, new OpenIdConnectConfigurationRetriever(), new HttpDocumentRetriever { RequireHttps = true });
            parameters.ValidAlgorithms = [SecurityAlgorithms.RsaSha256, SecurityAlgorithms.EcdsaSha256];
        }
    }

    public Task<TokenValidationResult> ValidateAsync(string token, CancellationToken cancellationToken)
        => handler.ValidateTokenAsync(token, parameters);
}

public static class AuthExtensions
{
    public static IServiceCollection AddBearerAuth(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<AuthOptions>().Bind(configuration.GetSection(AuthOptions.Section))
            .ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<TokenValidation>();
        services.AddAuthentication(BearerTokenHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, BearerTokenHandler>(BearerTokenHandler.SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(Policies.Customer, p => p.RequireAuthenticatedUser().RequireRole(Roles.Customer))
            .AddPolicy(Policies.Operator, p => p.RequireAuthenticatedUser().RequireRole(Roles.Operator, Roles.Admin))
            .AddPolicy(Policies.CustomerOrOrderSystem, p => p.RequireAuthenticatedUser().RequireRole(Roles.Customer, Roles.OrderSystem))
            .AddPolicy(Policies.OrderSystem, p => p.RequireAuthenticatedUser().RequireRole(Roles.OrderSystem))
            .AddPolicy(Policies.OrderSystemOrOperator, p => p.RequireAuthenticatedUser().RequireRole(Roles.OrderSystem, Roles.Operator, Roles.Admin));
        return services;
    }

    /// <summary>The caller's id ("sub"). Endpoints behind a policy always have one.</summary>
    public static string SubjectId(this ClaimsPrincipal user)
        => user.FindFirstValue("sub") ?? throw new InvalidOperationException("Authenticated principal without 'sub'.");
}
