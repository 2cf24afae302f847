using System.ComponentModel.DataAnnotations;

namespace Marketing.Functions.OperatorConsole;

/// <summary>
/// How the operator console signs people in with Entra ID (docs/console.md, "Sign-in"; docs/deploy.md). Read only when
/// Auth:Authority is set: the console then uses MSAL (authorization code + PKCE) with this client id, for this scope of the
/// API registration. Neither is a secret: a SPA is a public client, and both are served to every browser.
/// </summary>
public sealed class ConsoleOptions : IValidatableObject
{
    public const string Section = "Console";

    /// <summary>
    /// The application (client) id of the registration holding the console's SPA redirect URI (https://&lt;app&gt;/console/).
    /// Empty: the API registration itself (Auth:ClientId), the setup docs/deploy.md describes.
    /// </summary>
    public string? ClientId { get; set; }

    /// <summary>The delegated scope the console asks for. Empty: &lt;Auth:AppIdUri&gt;/access_as_user, the scope docs/deploy.md exposes.</summary>
    public string? ApiScope { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!string.IsNullOrWhiteSpace(ClientId) && !Guid.TryParse(ClientId, out _))
            yield return new ValidationResult("Console:ClientId must be an application (client) id, a GUID, or empty for Auth:ClientId.", [nameof(ClientId)]);
        if (!string.IsNullOrWhiteSpace(ApiScope) && (!Uri.TryCreate(ApiScope, UriKind.Absolute, out _) || ApiScope.Any(char.IsWhiteSpace)))
            yield return new ValidationResult("Console:ApiScope must be one scope URI such as api://<client id>/access_as_user, or empty.", [nameof(ApiScope)]);
    }
}
