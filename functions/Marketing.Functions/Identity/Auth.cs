using System.Security.Claims;
using System.Text;
using Marketing.Functions.Hosting;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Options;
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
    /// <summary>Finance staff: download what payouts paid (Payouts/GetPayoutCsvLink.cs).</summary>
    public const string Finance = "finance";
    /// <summary>Approves (or rejects, or returns) other people's campaigns and budget top-ups: the checker of maker-checker.</summary>
    public const string Approver = "approver";
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
    /// <summary>Finance (or an admin): links to payout files.</summary>
    public const string Finance = "finance";
    /// <summary>Who reads payout batches: operators (who run them), finance (who approve and pay out from them) and admins.</summary>
    public const string PayoutReader = "payout-reader";
    /// <summary>Approvers (or admins): decide campaigns and top-ups, never their own work (docs/approvals.md).</summary>
    public const string Approver = "approver";
    /// <summary>Who reads the approvers' queue: whoever decides some kind of request (approvers, finance) and admins.</summary>
    public const string ApprovalQueue = "approval-queue";
    /// <summary>Who reads the audit trail: admins and approvers.</summary>
    public const string Auditor = "auditor";
}

public static class AuthExtensions
{
    /// <summary>
    /// JWT bearer authentication with the standard JwtBearer handler (docs/decisions/0002), configured from
    /// <see cref="AuthOptions"/> by <see cref="BearerTokenOptions"/>, and the role policies.
    /// </summary>
    public static IServiceCollection AddBearerAuth(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<AuthOptions>().Bind(configuration.GetSection(AuthOptions.Section))
            .ValidateDataAnnotations().ValidateOnStart();
        // Key rollover: by default IdentityModel refetches the authority's keys in the background, so the first
        // tokens signed with a new key are refused until the fetch lands. Blocking mode fetches within the request
        // that met the unknown key (at most once per RefreshInterval, 5 minutes) and then validates it again, so a
        // rollover costs one request a metadata round trip instead of costing callers 401s. Read once per process.
        AppContext.SetSwitch("Switch.Microsoft.IdentityModel.UpdateConfigAsBlocking", true);
        services.AddSingleton<IConfigureOptions<JwtBearerOptions>, BearerTokenOptions>();
        // No default authenticate scheme: nothing validates a token up front. Each policy names the bearer scheme
        // (BearerUser below), so the authorization step validates the token of requests to endpoints that authorize,
        // and only those. Health, the OpenAPI document and the host's timer and queue invocations never read a caller,
        // so they no longer pay for it: on a cold start that is the JwtBearer handler's set-up (~10-20% of a bare app's
        // whole start: docs/benchmarks.md). Challenges and refusals still go to the bearer handler (401/403 problem+json).
        // (With one scheme registered, ASP.NET Core would make it the default by itself; the documented switch stops that.)
        AppContext.SetSwitch("Microsoft.AspNetCore.Authentication.SuppressAutoDefaultScheme", true);
        services.AddAuthentication(o =>
        {
            o.DefaultChallengeScheme = JwtBearerDefaults.AuthenticationScheme;
            o.DefaultForbidScheme = JwtBearerDefaults.AuthenticationScheme;
        }).AddJwtBearer();
        // AddAuthentication also registers ASP.NET Core Data Protection (for cookie and remote sign-in schemes), whose
        // hosted service loads, or creates and writes, a key ring from disk before the app listens: ~15% of a bare app's
        // whole start on every cold start (docs/benchmarks.md). Nothing here protects data:
        // bearer tokens are signed by their issuer. The services stay registered and would load the ring on first use.
        foreach (var eager in services.Where(d => d.ServiceType == typeof(IHostedService)
                     && d.ImplementationType?.Assembly == typeof(DataProtectionOptions).Assembly).ToList())
            services.Remove(eager);
        services.AddAuthorizationBuilder()
            .SetDefaultPolicy(new AuthorizationPolicyBuilder().BearerUser().Build())
            .AddPolicy(Policies.Customer, p => p.BearerUser().RequireRole(Roles.Customer))
            .AddPolicy(Policies.Operator, p => p.BearerUser().RequireRole(Roles.Operator, Roles.Admin))
            .AddPolicy(Policies.CustomerOrOrderSystem, p => p.BearerUser().RequireRole(Roles.Customer, Roles.OrderSystem))
            .AddPolicy(Policies.OrderSystem, p => p.BearerUser().RequireRole(Roles.OrderSystem))
            .AddPolicy(Policies.Finance, p => p.BearerUser().RequireRole(Roles.Finance, Roles.Admin))
            .AddPolicy(Policies.PayoutReader, p => p.BearerUser().RequireRole(Roles.Operator, Roles.Finance, Roles.Admin))
            .AddPolicy(Policies.Approver, p => p.BearerUser().RequireRole(Roles.Approver, Roles.Admin))
            .AddPolicy(Policies.ApprovalQueue, p => p.BearerUser().RequireRole(Roles.Approver, Roles.Finance, Roles.Admin))
            .AddPolicy(Policies.Auditor, p => p.BearerUser().RequireRole(Roles.Approver, Roles.Admin))
            .AddPolicy(Policies.OrderSystemOrOperator, p => p.BearerUser().RequireRole(Roles.OrderSystem, Roles.Operator, Roles.Admin));
        return services;
    }

    /// <summary>
    /// The start of every policy: the caller is the user of a valid bearer token. The policy names the scheme because
    /// there is no default one (see <see cref="AddBearerAuth"/>); a policy without it would see no user and refuse all.
    /// </summary>
    public static AuthorizationPolicyBuilder BearerUser(this AuthorizationPolicyBuilder policy)
        => policy.AddAuthenticationSchemes(JwtBearerDefaults.AuthenticationScheme).RequireAuthenticatedUser();

    /// <summary>The caller's id ("sub"). Endpoints behind a policy always have one.</summary>
    public static string SubjectId(this ClaimsPrincipal user)
        => user.FindFirstValue("sub") ?? throw new InvalidOperationException("Authenticated principal without 'sub'.");
}

/// <summary>
/// What the JwtBearer handler accepts. Claims keep their JWT names: "sub" is the caller's id (a customer's id is
/// their wallet), "roles" their roles (Entra app roles). Only the configured issuers and audiences, only RS256 from
/// the authority's keys (HS256 only with the local dev key), only typ JWT / at+jwt, lifetime on the app's clock
/// (tests move it). 401 and 403 answers are problem+json like every other error.
/// </summary>
public sealed class BearerTokenOptions(IOptions<AuthOptions> options, TimeProvider time) : IConfigureNamedOptions<JwtBearerOptions>
{
    /// <summary>Access tokens: Entra writes "JWT"; RFC 9068 profiles write "at+jwt". Anything else (an ID token
    /// profile, a logout token, a DPoP proof) is not an access token for this API.</summary>
    public static readonly string[] AcceptedTypes = ["JWT", "at+jwt"];

    public void Configure(JwtBearerOptions bearer) => Configure(JwtBearerDefaults.AuthenticationScheme, bearer);

    public void Configure(string? name, JwtBearerOptions bearer)
    {
        if (name != JwtBearerDefaults.AuthenticationScheme) return;
        var auth = options.Value;
        var issuers = auth.AcceptedIssuers();
        bearer.MapInboundClaims = false;
        bearer.RequireHttpsMetadata = true;
        bearer.TokenValidationParameters = new TokenValidationParameters
        {
            ValidIssuers = issuers,
            // Only the registration's issuers: the default validator would also accept whatever issuer the
            // authority's metadata names.
            IssuerValidator = (issuer, _, _) => issuers.Contains(issuer, StringComparer.Ordinal)
                ? issuer
                : throw new SecurityTokenInvalidIssuerException("The token's issuer is not accepted.") { InvalidIssuer = issuer },
            ValidAudiences = auth.AcceptedAudiences(),
            ValidateIssuer = true,
            ValidateAudience = true,
            ValidateLifetime = true,
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ValidateIssuerSigningKey = true,
            ValidTypes = AcceptedTypes,
            NameClaimType = "sub",
            RoleClaimType = "roles",
            ClockSkew = TimeSpan.FromMinutes(1),
            LifetimeValidator = (notBefore, expires, _, p) => ValidateLifetime(notBefore, expires, p.ClockSkew),
        };
        if (auth.UsesEntra)
        {
            // Keys from the authority's OpenID Connect metadata (cached, refreshed on an unknown kid); RS256 only,
            // so a token "signed" with HS256 and the public key as the secret is refused.
            bearer.Authority = auth.Authority;
            bearer.TokenValidationParameters.ValidAlgorithms = [SecurityAlgorithms.RsaSha256];
        }
        else
        {
            bearer.TokenValidationParameters.IssuerSigningKey = new SymmetricSecurityKey(Encoding.UTF8.GetBytes(auth.DevSigningKey!));
            bearer.TokenValidationParameters.ValidAlgorithms = [SecurityAlgorithms.HmacSha256];
        }
        bearer.Events = new JwtBearerEvents
        {
            OnTokenValidated = context =>
            {
                if (!UsableSubject(context.Principal?.FindFirstValue("sub")))
                    context.Fail(new UnusableSubjectException());
                return Task.CompletedTask;
            },
            OnChallenge = context =>
            {
                context.HandleResponse();
                context.Response.Headers.WWWAuthenticate = context.AuthenticateFailure is null ? "Bearer" : "Bearer error=\"invalid_token\"";
                return ProblemResult.WriteAsync(context.HttpContext, Problem.Of(ProblemTypes.Unauthorized, 401,
                    "A valid bearer token is required.", Explain(context)));
            },
            OnForbidden = context => ProblemResult.WriteAsync(context.HttpContext, Problem.Of(ProblemTypes.Forbidden, 403,
                "Your role does not allow this operation.")),
        };
    }

    private bool ValidateLifetime(DateTime? notBefore, DateTime? expires, TimeSpan skew)
    {
        var now = time.GetUtcNow().UtcDateTime;
        if (expires is null)
            throw new SecurityTokenNoExpirationException("The token has no expiry.");
        if (now >= expires.Value + skew)
            throw new SecurityTokenExpiredException("The token has expired.") { Expires = expires.Value };
        if (notBefore is not null && now < notBefore.Value - skew)
            throw new SecurityTokenNotYetValidException("The token is not valid yet.") { NotBefore = notBefore.Value };
        return true;
    }

    /// <summary>The subject becomes a partition key and part of document ids: insist on a sane one. (Entra's
    /// subjects are base64url strings for users and object id GUIDs for app identities.)</summary>
    private static bool UsableSubject(string? subject)
        => subject is { Length: > 0 and <= 128 } && !subject.Any(c => char.IsControl(c) || c is '/' or '\\' or '?' or '#');

    /// <summary>Why the caller's own token was refused (what ops need when an identity setup is off); null when none was sent.</summary>
    private static string? Explain(JwtBearerChallengeContext context) => context.AuthenticateFailure switch
    {
        null => null,
        UnusableSubjectException e => e.Message,
        SecurityTokenInvalidIssuerException e => $"The token's issuer (iss) '{e.InvalidIssuer}' is not one this API accepts.",
        SecurityTokenInvalidAudienceException => "The token's audience (aud) is not this API.",
        SecurityTokenInvalidTypeException => "The token's type (typ) is not an access token type this API accepts.",
        SecurityTokenInvalidAlgorithmException => "The token's signing algorithm (alg) is not accepted.",
        // JwtBearer's own descriptions: lifetime, signature and key failures.
        _ => context.ErrorDescription is { Length: > 0 } description ? description + "." : "The token is not valid.",
    };

    private sealed class UnusableSubjectException() : Exception("The token has no usable subject (sub).");
}
