using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Marketing.Functions.Identity;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Marketing.Tests.Support;

public enum EntraVersion { V1, V2 }

/// <summary>
/// A stand-in for one Entra ID tenant and the API's app registration: it serves a real OpenID Connect discovery
/// document and JWKS over HTTPS on 127.0.0.1 (Kestrel, with a self-signed certificate made here), and mints
/// RS256 access tokens in Entra's v1 and v2 shapes with its own RSA keys. The app under test is told to trust
/// this certificate only through <see cref="Backchannel"/>; its production settings keep RequireHttpsMetadata.
/// </summary>
public sealed class EntraTenant : IAsyncDisposable
{
    private readonly X509Certificate2 certificate;
    private WebApplication server = null!;
    private readonly List<RsaSecurityKey> published = [];
    private readonly Lock gate = new();
    private int keySetRequests;

    public string TenantId { get; } = Guid.NewGuid().ToString("D");
    public string ClientId { get; } = Guid.NewGuid().ToString("D");
    /// <summary>The form docs/deploy.md sets (api://&lt;client id&gt;, allowed by every tenant's identifier-URI policy).</summary>
    public string AppIdUri => $"api://{ClientId}";
    public string BaseAddress { get; private set; } = "";

    /// <summary>What Auth:Authority is in Azure (https://login.microsoftonline.com/&lt;tenant&gt;/v2.0), here on loopback.</summary>
    public string Authority => $"{BaseAddress}/{TenantId}/v2.0";

    /// <summary>How many times the app fetched the signing keys.</summary>
    public int KeySetRequests => Volatile.Read(ref keySetRequests);

    /// <summary>The key Entra currently signs with (the newest published).</summary>
    public RsaSecurityKey SigningKey { get { lock (gate) return published[^1]; } }

    private EntraTenant(X509Certificate2 certificate) => this.certificate = certificate;

    public static async Task<EntraTenant> StartAsync()
    {
        var tenant = new EntraTenant(SelfSignedLoopbackCertificate());
        tenant.PublishNewKey();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(tenant.certificate)));
        var server = builder.Build();
        // The paths Entra uses, for this tenant only.
        server.MapGet($"/{tenant.TenantId}/v2.0/.well-known/openid-configuration", () => Results.Json(new Dictionary<string, object>
        {
            ["issuer"] = EntraTokens.V2Issuer(tenant.TenantId),
            ["jwks_uri"] = $"{tenant.BaseAddress}/{tenant.TenantId}/discovery/v2.0/keys",
            ["authorization_endpoint"] = $"{tenant.BaseAddress}/{tenant.TenantId}/oauth2/v2.0/authorize",
            ["token_endpoint"] = $"{tenant.BaseAddress}/{tenant.TenantId}/oauth2/v2.0/token",
            ["response_types_supported"] = new[] { "code", "id_token", "code id_token", "id_token token" },
            ["subject_types_supported"] = new[] { "pairwise" },
            ["id_token_signing_alg_values_supported"] = new[] { "RS256" },
            ["tenant_region_scope"] = "AS",
        }));
        server.MapGet($"/{tenant.TenantId}/discovery/v2.0/keys", () =>
        {
            Interlocked.Increment(ref tenant.keySetRequests);
            return Results.Json(new { keys = tenant.PublicKeys() });
        });
        await server.StartAsync();
        tenant.server = server;
        tenant.BaseAddress = server.Services.GetRequiredService<IServer>().Features
            .GetRequiredFeature<IServerAddressesFeature>().Addresses.Single().TrimEnd('/');
        return tenant;
    }

    /// <summary>Key rollover: a new key joins the key set (the old one stays, as in Entra) and signs from now on.</summary>
    public RsaSecurityKey PublishNewKey()
    {
        var key = new RsaSecurityKey(RSA.Create(2048)) { KeyId = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(20)) };
        lock (gate) published.Add(key);
        return key;
    }

    /// <summary>A key Entra never published (a forger's).</summary>
    public static RsaSecurityKey UnpublishedKey()
        => new(RSA.Create(2048)) { KeyId = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(20)) };

    /// <summary>The backchannel the app fetches metadata with: it trusts this tenant's certificate and nothing else.</summary>
    public HttpMessageHandler Backchannel() => new SocketsHttpHandler
    {
        SslOptions = new SslClientAuthenticationOptions
        {
            RemoteCertificateValidationCallback = (_, presented, _, _) =>
                presented is not null && presented.GetCertHashString() == certificate.GetCertHashString(),
        },
    };

    /// <summary>
    /// The certificate (public part, PEM) the tenant serves: a process of the app started with SSL_CERT_FILE naming a file
    /// of it trusts this tenant (and only it) as .NET on Linux trusts its roots (the console's browser test).
    /// </summary>
    public string CertificatePem() => certificate.ExportCertificatePem();

    /// <summary>An Entra-like subject: users get a pairwise base64url id per application.</summary>
    public static string NewSubject() => Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));

    /// <summary>
    /// An access token as Entra issues it for this registration: v1 (iss https://sts.windows.net/&lt;tenant&gt;/,
    /// aud = the Application ID URI) or v2 (iss https://login.microsoftonline.com/&lt;tenant&gt;/v2.0, aud = the client id).
    /// <paramref name="change"/> edits the claims; <paramref name="signing"/> replaces the tenant's current key.
    /// </summary>
    public string Token(EntraVersion version, string subject, string[] roles, DateTimeOffset now,
        Action<Dictionary<string, object>>? change = null, SigningCredentials? signing = null, string type = "JWT", TimeSpan? lifetime = null)
    {
        var claims = new Dictionary<string, object>
        {
            ["tid"] = TenantId,
            ["oid"] = Guid.NewGuid().ToString("D"),
            ["sub"] = subject,
            ["roles"] = roles,
            ["uti"] = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(16)),
            ["rh"] = "0.AAAA" + Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(24)),
        };
        var caller = Guid.NewGuid().ToString("D");
        if (version == EntraVersion.V1)
        {
            claims["iss"] = EntraTokens.V1Issuer(TenantId);
            claims["aud"] = AppIdUri;
            claims["ver"] = "1.0";
            claims["appid"] = caller;
            claims["appidacr"] = "0";
        }
        else
        {
            claims["iss"] = EntraTokens.V2Issuer(TenantId);
            claims["aud"] = ClientId;
            claims["ver"] = "2.0";
            claims["azp"] = caller;
            claims["azpacr"] = "0";
        }
        change?.Invoke(claims);
        var at = now.UtcDateTime;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Claims = claims,
            IssuedAt = at,
            NotBefore = at,
            Expires = at + (lifetime ?? TimeSpan.FromMinutes(75)),
            TokenType = type,
            SigningCredentials = signing ?? new SigningCredentials(SigningKey, SecurityAlgorithms.RsaSha256),
        });
    }

    /// <summary>The "alg confusion" forgery: HS256 with the tenant's public key (which anyone can read) as the secret.</summary>
    public SigningCredentials PublicKeyAsHmacSecret()
    {
        var key = SigningKey;
        var pem = key.Rsa.ExportSubjectPublicKeyInfoPem();
        return new SigningCredentials(new SymmetricSecurityKey(Encoding.ASCII.GetBytes(pem)) { KeyId = key.KeyId }, SecurityAlgorithms.HmacSha256);
    }

    private object[] PublicKeys()
    {
        lock (gate)
            return published.Select(k =>
            {
                var p = k.Rsa.ExportParameters(includePrivateParameters: false);
                return (object)new { kty = "RSA", use = "sig", kid = k.KeyId, n = Base64UrlEncoder.Encode(p.Modulus), e = Base64UrlEncoder.Encode(p.Exponent) };
            }).ToArray();
    }

    private static X509Certificate2 SelfSignedLoopbackCertificate()
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        // TLS checks validity against the real clock, not the app's.
        var now = DateTimeOffset.UtcNow;
        using var created = request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));
        // A PFX round trip gives Kestrel a key it can use on every platform (ephemeral keys are not everywhere).
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pfx), password: null);
    }

    public async ValueTask DisposeAsync()
    {
        await server.DisposeAsync();
        certificate.Dispose();
    }
}
