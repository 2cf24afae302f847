using System.Net;
using Marketing.Functions.Identity;
using Marketing.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using Xunit;

namespace Marketing.Tests;

/// <summary>One Entra tenant (a real discovery document and key set over HTTPS) and the app in Azure mode.</summary>
public sealed class EntraApp : IAsyncLifetime
{
    public EntraTenant Tenant { get; private set; } = null!;
    public TestApp App { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Tenant = await EntraTenant.StartAsync();
        App = TestApp.WithEntra(Tenant);
        await App.EnsureProvisionedAsync();
    }

    public async Task DisposeAsync()
    {
        await App.DisposeAsync();
        await Tenant.DisposeAsync();
    }
}

/// <summary>
/// With the settings docs/deploy.md gives (Auth:Authority, TenantId, ClientId, AppIdUri), the app accepts the
/// registration's v1 and v2 access tokens, as Entra ID shapes and signs them, and nothing else.
/// </summary>
public sealed class EntraTokenTests(EntraApp entra) : IClassFixture<EntraApp>
{
    private EntraTenant Tenant => entra.Tenant;
    private TestApp App => entra.App;

    private string Token(EntraVersion version, string[] roles, Action<Dictionary<string, object>>? change = null,
        SigningCredentials? signing = null, string type = "JWT", string? subject = null)
        => Tenant.Token(version, subject ?? EntraTenant.NewSubject(), roles, App.Clock.GetUtcNow(), change, signing, type);

    [Theory]
    [InlineData(EntraVersion.V1)]
    [InlineData(EntraVersion.V2)]
    public async Task The_registrations_tokens_of_either_version_are_accepted(EntraVersion version)
    {
        // v1: iss https://sts.windows.net/<tenant>/ and aud = the Application ID URI (az account get-access-token --resource);
        // v2: iss https://login.microsoftonline.com/<tenant>/v2.0 and aud = the client id.
        await (await App.Bearer(Token(version, ["operator"])).GetAsync("/api/campaigns?limit=1")).AssertStatusAsync(HttpStatusCode.OK);
        await (await App.Bearer(Token(version, ["customer"])).GetAsync("/api/me/coupons")).AssertStatusAsync(HttpStatusCode.OK);
    }

    [Theory]
    [InlineData(EntraVersion.V1)]
    [InlineData(EntraVersion.V2)]
    public async Task A_customer_known_by_an_entra_subject_registers_and_passes_the_promoter_policy(EntraVersion version)
    {
        var customer = App.Bearer(Token(version, ["customer"], subject: EntraTenant.NewSubject()));
        await (await customer.GetAsync("/api/promoters/me")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await customer.PostAsync("/api/promoters", Api.JsonContent(new { }))).AssertStatusAsync(HttpStatusCode.Created);
        await (await customer.GetAsync("/api/promoters/me")).AssertStatusAsync(HttpStatusCode.OK);
    }

    public static TheoryData<string, EntraVersion, string> Strangers() => new()
    {
        // kind, version, what the 401's detail names
        { "issuer of another provider", EntraVersion.V2, "issuer" },
        { "v1 issuer of another tenant", EntraVersion.V1, "issuer" },
        { "v2 issuer of another tenant", EntraVersion.V2, "issuer" },
        { "v2 issuer with the v1 audience's host", EntraVersion.V2, "issuer" },
        { "audience of another app", EntraVersion.V2, "audience" },
        { "another application id uri", EntraVersion.V1, "audience" },
    };

    [Theory]
    [MemberData(nameof(Strangers))]
    public async Task Tokens_not_issued_for_this_registration_are_401_problem(string kind, EntraVersion version, string reason)
    {
        var otherTenant = Guid.NewGuid().ToString("D");
        // Entra signs every tenant's tokens with the same keys: only iss tells tenants apart.
        var token = Token(version, ["operator"], claims =>
        {
            switch (kind)
            {
                case "issuer of another provider": claims["iss"] = "https://accounts.example.com/"; break;
                case "v1 issuer of another tenant": claims["iss"] = EntraTokens.V1Issuer(otherTenant); claims["tid"] = otherTenant; break;
                case "v2 issuer of another tenant": claims["iss"] = EntraTokens.V2Issuer(otherTenant); claims["tid"] = otherTenant; break;
                case "v2 issuer with the v1 audience's host": claims["iss"] = $"https://sts.windows.net/{Tenant.TenantId}/v2.0"; break;
                case "audience of another app": claims["aud"] = Guid.NewGuid().ToString("D"); break;
                case "another application id uri": claims["aud"] = "api://another-platform"; break;
            }
        });
        var response = await App.Bearer(token).GetAsync("/api/campaigns?limit=1");
        var problem = await response.AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
        Assert.Contains(reason, (string?)problem["detail"]);
        Assert.Equal("Bearer error=\"invalid_token\"", response.Headers.WwwAuthenticate.ToString());
    }

    [Fact]
    public async Task An_HS256_token_signed_with_the_public_key_is_401()
    {
        var forged = Token(EntraVersion.V2, ["admin"], signing: Tenant.PublicKeyAsHmacSecret());
        var problem = await (await App.Bearer(forged).GetAsync("/api/campaigns?limit=1")).AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
        Assert.Contains("signature", (string?)problem["detail"]);
    }

    [Fact]
    public async Task A_token_signed_by_an_unpublished_key_is_401()
    {
        var forged = Token(EntraVersion.V1, ["admin"], signing: new SigningCredentials(EntraTenant.UnpublishedKey(), SecurityAlgorithms.RsaSha256));
        var problem = await (await App.Bearer(forged).GetAsync("/api/campaigns?limit=1")).AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
        Assert.Contains("signature", (string?)problem["detail"]);
    }

    [Theory]
    [InlineData("logout+jwt")]
    [InlineData("dpop+jwt")]
    public async Task A_token_that_is_not_an_access_token_is_401(string type)
    {
        var token = Token(EntraVersion.V2, ["operator"], type: type);
        var problem = await (await App.Bearer(token).GetAsync("/api/campaigns?limit=1")).AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
        Assert.Contains("typ", (string?)problem["detail"]);
    }

    [Fact]
    public async Task An_RFC_9068_at_jwt_token_is_accepted()
    {
        var token = Token(EntraVersion.V2, ["operator"], type: "at+jwt");
        await (await App.Bearer(token).GetAsync("/api/campaigns?limit=1")).AssertStatusAsync(HttpStatusCode.OK);
    }

    [Theory]
    [InlineData("a/b")]
    [InlineData("")]
    public async Task A_token_without_a_usable_subject_is_401(string subject)
    {
        var token = Token(EntraVersion.V1, ["customer"], subject: subject);
        var problem = await (await App.Bearer(token).GetAsync("/api/me/coupons")).AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
        Assert.Contains("sub", (string?)problem["detail"]);
    }

    [Theory]
    [InlineData(EntraVersion.V1)]
    [InlineData(EntraVersion.V2)]
    public async Task Roles_still_decide_403_problem(EntraVersion version)
    {
        await (await App.Bearer(Token(version, ["customer"])).GetAsync("/api/campaigns?limit=1")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await App.Bearer(Token(version, ["order_system"])).GetAsync("/api/me/coupons")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await App.Bearer(Token(version, ["operator"])).StepAsync("o-1", "confirm")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await App.Bearer(Token(version, [])).GetAsync("/api/campaigns?limit=1")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
    }
}

/// <summary>Tests that move an app's clock or its tenant's keys get their own app and tenant.</summary>
public sealed class EntraTokenLifecycleTests
{
    [Fact]
    public async Task A_token_expired_by_the_apps_clock_is_401()
    {
        await using var tenant = await EntraTenant.StartAsync();
        await using var app = TestApp.WithEntra(tenant);
        await app.EnsureProvisionedAsync();
        var client = app.Bearer(tenant.Token(EntraVersion.V1, EntraTenant.NewSubject(), ["customer"], app.Clock.GetUtcNow(), lifetime: TimeSpan.FromMinutes(60)));
        await (await client.GetAsync("/api/me/coupons")).AssertStatusAsync(HttpStatusCode.OK);

        app.Clock.Advance(TimeSpan.FromMinutes(62)); // past expiry plus the one-minute skew
        var problem = await (await client.GetAsync("/api/me/coupons")).AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
        Assert.Contains("expired", (string?)problem["detail"]);
    }

    [Fact]
    public async Task After_a_key_rollover_tokens_signed_with_the_new_key_are_accepted()
    {
        await using var tenant = await EntraTenant.StartAsync();
        await using var app = TestApp.WithEntra(tenant);
        await app.EnsureProvisionedAsync();
        string TokenNow() => tenant.Token(EntraVersion.V2, EntraTenant.NewSubject(), ["customer"], app.Clock.GetUtcNow());

        var before = TokenNow();
        await (await app.Bearer(before).GetAsync("/api/me/coupons")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(1, tenant.KeySetRequests);

        tenant.PublishNewKey();
        var after = TokenNow(); // signed with the new kid, which the app has not seen
        // The unknown kid makes the app refetch the metadata (IdentityModel honours the first refresh request at once)
        // and validate again in the same request.
        await (await app.Bearer(after).GetAsync("/api/me/coupons")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(2, tenant.KeySetRequests);
        // The old key stays published, so tokens signed before the rollover keep working until they expire.
        await (await app.Bearer(before).GetAsync("/api/me/coupons")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(2, tenant.KeySetRequests);
    }
}

/// <summary>A tenant alone, for tests that start their own apps.</summary>
public sealed class EntraTenantOnly : IAsyncLifetime
{
    public EntraTenant Tenant { get; private set; } = null!;
    public async Task InitializeAsync() => Tenant = await EntraTenant.StartAsync();
    public async Task DisposeAsync() => await Tenant.DisposeAsync();
}

/// <summary>
/// Wrong Azure settings stop the start with a message naming the setting. Checked through the start-up validator
/// that ValidateOnStart registers and the host runs when it starts (starting a whole app that fails is racy in
/// WebApplicationFactory: the failure can surface as the host's disposal instead).
/// </summary>
public sealed class EntraSettingsTests(EntraTenantOnly entra) : IClassFixture<EntraTenantOnly>
{
    private static readonly string TenantId = Guid.NewGuid().ToString("D");
    private static readonly string ClientId = Guid.NewGuid().ToString("D");

    /// <summary>docs/deploy.md's settings.</summary>
    private static Dictionary<string, string?> Documented() => new()
    {
        ["Auth:Authority"] = $"https://login.microsoftonline.com/{TenantId}/v2.0",
        ["Auth:TenantId"] = TenantId,
        ["Auth:ClientId"] = ClientId,
        ["Auth:AppIdUri"] = $"api://{ClientId}",
    };

    private static void ValidateAtStart(Dictionary<string, string?> settings)
    {
        var services = new ServiceCollection().AddSingleton(TimeProvider.System);
        services.AddBearerAuth(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        using var provider = services.BuildServiceProvider();
        provider.GetRequiredService<IStartupValidator>().Validate();
    }

    [Fact]
    public void The_documented_settings_start()
    {
        ValidateAtStart(Documented());
        var options = new AuthOptions { Authority = "x", TenantId = TenantId, ClientId = ClientId, AppIdUri = $"api://{ClientId}" };
        Assert.Equal([$"https://sts.windows.net/{TenantId}/", $"https://login.microsoftonline.com/{TenantId}/v2.0"], options.AcceptedIssuers());
        Assert.Equal([$"api://{ClientId}", ClientId], options.AcceptedAudiences());
    }

    public static TheoryData<string, string, string> Wrong() => new()
    {
        // setting, value, part of the message
        { "Auth:Authority", $"http://login.microsoftonline.com/{TenantId}/v2.0", "Auth:Authority must be an absolute https URL" },
        { "Auth:Authority", "https://login.microsoftonline.com/common/v2.0", "Auth:Authority must be the tenant's own authority" },
        { "Auth:Authority", $"https://login.microsoftonline.com/{Guid.NewGuid():D}/v2.0", "Auth:Authority must be the tenant's own authority" },
        { "Auth:DevSigningKey", "local-dev-signing-key-NOT-A-SECRET-never-use-in-azure", "Set exactly one of Auth:Authority" },
        { "Auth:TenantId", "contoso.onmicrosoft.com", "Auth:TenantId must be the directory (tenant) id" },
        { "Auth:ClientId", "api://marketing-platform", "Auth:ClientId must be the application (client) id" },
        { "Auth:AppIdUri", "", "Auth:AppIdUri must be the Application ID URI" },
        { "Auth:Audience", "api://marketing-platform", "Auth:Issuer and Auth:Audience belong to the local dev issuer" },
        { "Auth:Authority", "", "Set exactly one of Auth:Authority" },
    };

    [Theory]
    [MemberData(nameof(Wrong))]
    public void Wrong_entra_settings_stop_the_start(string setting, string value, string message)
    {
        var settings = Documented();
        settings[setting] = value;
        var error = Assert.Throws<OptionsValidationException>(() => ValidateAtStart(settings));
        Assert.Contains(error.Failures, f => f.Contains(message));
    }

    [Fact]
    public async Task Upper_case_ids_from_the_portal_still_match_the_tokens()
    {
        await using var app = TestApp.WithEntra(entra.Tenant, new Dictionary<string, string>
        {
            ["Auth:TenantId"] = entra.Tenant.TenantId.ToUpperInvariant(),
            ["Auth:ClientId"] = entra.Tenant.ClientId.ToUpperInvariant(),
        });
        await app.EnsureProvisionedAsync();
        var token = entra.Tenant.Token(EntraVersion.V2, EntraTenant.NewSubject(), ["customer"], app.Clock.GetUtcNow());
        await (await app.Bearer(token).GetAsync("/api/me/coupons")).AssertStatusAsync(HttpStatusCode.OK);
    }
}
