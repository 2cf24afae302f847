using System.ComponentModel.DataAnnotations;
using System.Text;
using Marketing.Functions.Hosting;

namespace Marketing.Functions.Identity;

/// <summary>
/// Who may sign the API's bearer tokens. Exactly one of two modes (docs/configuration.md, docs/deploy.md):
/// <list type="bullet">
/// <item>Azure: the API's Entra ID app registration (<see cref="TenantId"/>, <see cref="ClientId"/>,
/// <see cref="AppIdUri"/>) and the tenant's <see cref="Authority"/>, whose OpenID Connect metadata supplies the
/// RS256 signing keys. The registration's two token versions are accepted, and nothing else: v1 (the default
/// of a new registration, and what <c>az account get-access-token --resource</c> returns) and v2. The issuers
/// and audiences are derived here rather than listed in settings, so ops copy three values from the
/// registration's overview page and cannot accept one version while forgetting the other.</item>
/// <item>Locally and in tests: a dev issuer (<see cref="Issuer"/>, <see cref="Audience"/>) signing HS256 with
/// <see cref="DevSigningKey"/>, so any tool can mint tokens (scripts/token.mjs).</item>
/// </list>
/// </summary>
public sealed class AuthOptions : IValidatableObject
{
    public const string Section = "Auth";

    /// <summary>Azure: the tenant's OpenID Connect authority, e.g. https://login.microsoftonline.com/&lt;TenantId&gt;/v2.0.</summary>
    public string? Authority { get; set; }

    /// <summary>Azure: the directory (tenant) id; both issuers name it.</summary>
    public string? TenantId { get; set; }

    /// <summary>Azure: the API registration's application (client) id, the audience of v2 tokens.</summary>
    public string? ClientId { get; set; }

    /// <summary>Azure: the API registration's Application ID URI (e.g. api://marketing-platform), the audience of v1 tokens.</summary>
    public string? AppIdUri { get; set; }

    /// <summary>Local: the dev issuer's <c>iss</c>.</summary>
    [LocalOnly] public string? Issuer { get; set; }

    /// <summary>Local: the dev issuer's <c>aud</c>.</summary>
    [LocalOnly] public string? Audience { get; set; }

    /// <summary>Local: the dev issuer's HS256 key (at least 32 bytes). Never set in Azure.</summary>
    [LocalOnly] public string? DevSigningKey { get; set; }

    public bool UsesEntra => Has(Authority);

    /// <summary>The only <c>iss</c> values a token may carry.</summary>
    public string[] AcceptedIssuers() => UsesEntra
        ? [EntraTokens.V1Issuer(Tenant), EntraTokens.V2Issuer(Tenant)]
        : [Issuer!];

    /// <summary>The only <c>aud</c> values a token may carry (v1 tokens name the URI, v2 tokens the client id).</summary>
    public string[] AcceptedAudiences() => UsesEntra
        ? [AppIdUri!, Guid.Parse(ClientId!).ToString("D")]
        : [Audience!];

    // Entra writes GUIDs in lower case; an id pasted in upper case must still match the tokens' strings.
    private string Tenant => Guid.Parse(TenantId!).ToString("D");

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var entra = Has(Authority);
        var local = Has(DevSigningKey);
        if (entra == local)
            yield return Error("Set exactly one of Auth:Authority (Azure: Entra ID) and Auth:DevSigningKey (local dev issuer).",
                nameof(Authority), nameof(DevSigningKey));

        if (entra)
        {
            var tenantOk = Guid.TryParse(TenantId, out var tenant);
            if (!Uri.TryCreate(Authority, UriKind.Absolute, out var authority) || authority.Scheme != Uri.UriSchemeHttps)
                yield return Error("Auth:Authority must be an absolute https URL, e.g. https://login.microsoftonline.com/<TenantId>/v2.0 "
                    + "(signing keys are never fetched over plain http).", nameof(Authority));
            // Keys and issuers must come from the same tenant: the metadata of another tenant's (or of the
            // multi-tenant "common") authority would vouch for tokens this app must refuse.
            else if (tenantOk && !authority.AbsolutePath.Split('/').Contains(tenant.ToString("D"), StringComparer.OrdinalIgnoreCase))
                yield return Error($"Auth:Authority must be the tenant's own authority (.../{tenant:D}/v2.0), not '{Authority}'.", nameof(Authority));
            if (!tenantOk)
                yield return Error("Auth:TenantId must be the directory (tenant) id of the API's app registration, a GUID.", nameof(TenantId));
            if (!Guid.TryParse(ClientId, out _))
                yield return Error("Auth:ClientId must be the application (client) id of the API's app registration, a GUID.", nameof(ClientId));
            if (!Uri.TryCreate(AppIdUri, UriKind.Absolute, out _))
                yield return Error("Auth:AppIdUri must be the Application ID URI of the API's app registration, e.g. api://marketing-platform.", nameof(AppIdUri));
            if (Has(Issuer) || Has(Audience))
                yield return Error("Auth:Issuer and Auth:Audience belong to the local dev issuer; with Auth:Authority the accepted issuers "
                    + "and audiences follow from Auth:TenantId, Auth:ClientId and Auth:AppIdUri. Remove them.", nameof(Issuer), nameof(Audience));
        }

        if (local)
        {
            if (Encoding.UTF8.GetByteCount(DevSigningKey!) < 32)
                yield return Error("Auth:DevSigningKey must be at least 32 bytes for HS256.", nameof(DevSigningKey));
            if (!Has(Issuer))
                yield return Error("Auth:Issuer (the dev issuer's iss) is required with Auth:DevSigningKey.", nameof(Issuer));
            if (!Has(Audience))
                yield return Error("Auth:Audience (the dev issuer's aud) is required with Auth:DevSigningKey.", nameof(Audience));
            if (Has(TenantId) || Has(ClientId) || Has(AppIdUri))
                yield return Error("Auth:TenantId, Auth:ClientId and Auth:AppIdUri belong to Entra ID (with Auth:Authority), "
                    + "not to the local dev issuer. Remove them.", nameof(TenantId), nameof(ClientId), nameof(AppIdUri));
        }
    }

    private static bool Has(string? value) => !string.IsNullOrWhiteSpace(value);

    private static ValidationResult Error(string message, params string[] members) => new(message, members);
}

/// <summary>The shapes of Entra ID access tokens (public Azure cloud).</summary>
public static class EntraTokens
{
    /// <summary><c>iss</c> of v1 tokens ("accessTokenAcceptedVersion": null or 1, the default).</summary>
    public static string V1Issuer(string tenantId) => $"https://sts.windows.net/{tenantId}/";

    /// <summary><c>iss</c> of v2 tokens ("accessTokenAcceptedVersion": 2).</summary>
    public static string V2Issuer(string tenantId) => $"https://login.microsoftonline.com/{tenantId}/v2.0";
}
