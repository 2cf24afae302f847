using System.Net.Http.Headers;
using System.Text;
using Marketing.Functions.Hosting;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Xunit;

namespace Marketing.Tests.Support;

/// <summary>
/// The function app in-process (TestServer) against the real Cosmos DB emulator started by
/// scripts/test.sh, with a clock the test controls. Each instance is a separate "function instance"
/// with its own caches, so several TestApps over one database behave like a scaled-out app.
/// Tests that move the clock get their own TestApp (and, when a job scans everything, their own database),
/// because a moved clock would otherwise leak into tests running in parallel.
/// </summary>
public sealed class TestApp : WebApplicationFactory<Program>, IAsyncLifetime
{
    public TestClock Clock { get; } = new(new DateTimeOffset(2026, 11, 21, 2, 0, 0, TimeSpan.Zero));
    public string Database { get; }

    private static readonly SemaphoreSlim ProvisionLock = new(1, 1);
    private static readonly HashSet<string> Provisioned = [];

    /// <summary>A test's own settings and services, applied after the common ones.</summary>
    private readonly Action<IWebHostBuilder>? customize;
    private readonly EntraTenant? entra;
    private readonly IReadOnlyDictionary<string, string> overrides = new Dictionary<string, string>();

    public TestApp() => Database = Settings.Get("Cosmos__Database");

    /// <summary>An app over another database (tests whose jobs scan everything).</summary>
    public static TestApp Over(string database) => new(database);

    private TestApp(string database, Action<IWebHostBuilder>? customize = null)
    {
        Database = database;
        this.customize = customize;
    }

    /// <summary>
    /// An app in Azure mode: tokens come from <paramref name="tenant"/> (Auth:Authority, TenantId, ClientId, AppIdUri
    /// as docs/deploy.md sets them), whose certificate it trusts through the JwtBearer backchannel alone.
    /// <paramref name="overrides"/> ("Auth:..." = value) change settings after that, to test start-up validation.
    /// </summary>
    public static TestApp WithEntra(EntraTenant tenant, IReadOnlyDictionary<string, string>? overrides = null)
        => new(Settings.Get("Cosmos__Database"), tenant, overrides ?? new Dictionary<string, string>());

    private TestApp(string database, EntraTenant entra, IReadOnlyDictionary<string, string> overrides)
        : this(database)
    {
        this.entra = entra;
        this.overrides = overrides;
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.UseSetting("Cosmos:Endpoint", Settings.Get("Cosmos__Endpoint"));
        builder.UseSetting("Cosmos:Key", Settings.Get("Cosmos__Key"));
        builder.UseSetting("Cosmos:Database", Database);
        // The per-call deadline is a production safety net (10 s); on a 2-core machine running many tests against
        // one emulator process a call can legitimately take longer, and a test must not fail on machine load.
        // Tests of the deadline itself set their own.
        builder.UseSetting("Cosmos:CallTimeoutSeconds", "30");
        if (entra is null)
        {
            builder.UseSetting("Auth:Issuer", Settings.Get("Auth__Issuer"));
            builder.UseSetting("Auth:Audience", Settings.Get("Auth__Audience"));
            builder.UseSetting("Auth:DevSigningKey", Settings.Get("Auth__DevSigningKey"));
        }
        else
        {
            // The dev issuer's settings are in the environment (scripts/test.sh exports the sample): blank them.
            builder.UseSetting("Auth:Issuer", "");
            builder.UseSetting("Auth:Audience", "");
            builder.UseSetting("Auth:DevSigningKey", "");
            builder.UseSetting("Auth:Authority", entra.Authority);
            builder.UseSetting("Auth:TenantId", entra.TenantId);
            builder.UseSetting("Auth:ClientId", entra.ClientId);
            builder.UseSetting("Auth:AppIdUri", entra.AppIdUri);
        }
        foreach (var (key, value) in overrides)
            builder.UseSetting(key, value);
        builder.ConfigureServices(services =>
        {
            services.RemoveAll<TimeProvider>();
            services.AddSingleton<TimeProvider>(Clock);
            // Every test app refuses what Azure Cosmos DB refuses (the app's client adds every RequestHandler).
            services.AddSingleton<RequestHandler>(_ => new AzureStrictness());
            if (entra is not null)
                services.Configure<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme, o => o.BackchannelHttpHandler = entra.Backchannel());
        });
        customize?.Invoke(builder);
    }

    /// <summary>Creates the database and containers once per database per test run.</summary>
    public async Task EnsureProvisionedAsync()
    {
        await ProvisionLock.WaitAsync();
        try
        {
            if (Provisioned.Add(Database))
                await CosmosExtensions.ProvisionAsync(Services.GetRequiredService<CosmosClient>(), Database, Platform.Containers);
        }
        finally
        {
            ProvisionLock.Release();
        }
    }

    Task IAsyncLifetime.InitializeAsync() => EnsureProvisionedAsync();
    Task IAsyncLifetime.DisposeAsync() => DisposeAsync().AsTask();

    /// <summary>A provisioned app for a test that needs its own clock, database, settings or services.</summary>
    public static async Task<TestApp> StartAsync(string? database = null, Action<IWebHostBuilder>? customize = null)
    {
        var app = new TestApp(database ?? Settings.Get("Cosmos__Database"), customize);
        await app.EnsureProvisionedAsync();
        return app;
    }

    public HttpClient Anonymous() => CreateClient();

    /// <summary>A client presenting <paramref name="token"/> as its bearer token.</summary>
    public HttpClient Bearer(string token)
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    public HttpClient As(string subject, params string[] roles)
        => Bearer(Token(subject, roles));

    public HttpClient Customer(string id) => As(id, "customer");
    public HttpClient Operator(string id = "olivia") => As(id, "operator");

    /// <summary>A token from the local dev issuer, valid for an hour of the test clock.</summary>
    public string Token(string subject, string[] roles, TimeSpan? lifetime = null, string? signingKey = null, string? audience = null)
    {
        var now = Clock.GetUtcNow().UtcDateTime;
        var claims = new Dictionary<string, object> { ["sub"] = subject, ["roles"] = roles };
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Settings.Get("Auth__Issuer"),
            Audience = audience ?? Settings.Get("Auth__Audience"),
            Claims = claims,
            IssuedAt = now,
            NotBefore = now,
            Expires = now + (lifetime ?? TimeSpan.FromHours(1)),
            SigningCredentials = new SigningCredentials(
                new SymmetricSecurityKey(Encoding.UTF8.GetBytes(signingKey ?? Settings.Get("Auth__DevSigningKey"))),
                SecurityAlgorithms.HmacSha256),
        });
    }
}

/// <summary>
/// A clock that stands still until a test moves it. Its timestamps (what durations are measured with) are its ticks, so
/// a duration the app measures is exactly what the test moved the clock by meanwhile.
/// </summary>
public sealed class TestClock(DateTimeOffset start) : TimeProvider
{
    private long ticks = start.UtcTicks;
    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref ticks), TimeSpan.Zero);
    public override long GetTimestamp() => Interlocked.Read(ref ticks);
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;
    public void Advance(TimeSpan by) => Interlocked.Add(ref ticks, by.Ticks);
    public void Set(DateTimeOffset to) => Interlocked.Exchange(ref ticks, to.UtcTicks);
}

/// <summary>Settings exported by scripts/test.sh (from local.settings.sample.json plus emulator ports).</summary>
public static class Settings
{
    public static string Get(string name) => Environment.GetEnvironmentVariable(name)
        ?? throw new InvalidOperationException($"{name} is not set: run the tests with `bash scripts/test.sh`, which starts the emulators.");
}
