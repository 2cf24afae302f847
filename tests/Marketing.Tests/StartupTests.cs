using Marketing.Functions.Hosting;
using System.Net;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// What the handler does before its first answer stays small (cold start: docs/benchmarks.md, scripts/coldstart.sh).
/// Timing is not tested here; the work that made the start slow is.
/// </summary>
public sealed class StartupTests(TestApp app) : IClassFixture<TestApp>
{
    /// <summary>
    /// Every endpoint's request delegate was written at compile time by the request delegate generator, so the
    /// start does not reflect over ~40 handlers and compile an expression tree for each (it did: ~40 % of the
    /// function app's time to listen).
    /// </summary>
    [Fact]
    public void Every_endpoint_is_compiled_ahead_of_time_not_generated_at_start()
    {
        // The API reference page's endpoints are the package's own and are not mapped in Production (Azure).
        var endpoints = app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<HttpFunction>()?.Name != Platform.ApiReference).ToList();
        Assert.True(endpoints.Count > 30, $"only {endpoints.Count} endpoints found");
        var generatedAtRunTime = endpoints
            .Where(e => e.RequestDelegate?.Method.DeclaringType?.FullName?.StartsWith("Microsoft.AspNetCore.Http.Generated.", StringComparison.Ordinal) != true)
            .Select(e => $"{e.DisplayName} ({e.RequestDelegate?.Method.DeclaringType?.FullName})")
            .ToList();
        Assert.True(generatedAtRunTime.Count == 0, "built by RequestDelegateFactory at run time: " + string.Join(", ", generatedAtRunTime));
    }

    /// <summary>
    /// Authentication brings ASP.NET Core Data Protection along, whose hosted service loads (or creates and writes)
    /// a key ring before the app listens. Bearer tokens need no key ring, so nothing may load one at start.
    /// </summary>
    [Fact]
    public void No_hosted_service_loads_a_data_protection_key_ring_at_start()
    {
        var dataProtection = typeof(DataProtectionOptions).Assembly;
        var hosted = app.Services.GetServices<IHostedService>().Select(s => s.GetType()).ToList();
        Assert.NotEmpty(hosted); // the web host's own service at least: the list is real
        Assert.DoesNotContain(hosted, type => type.Assembly == dataProtection);
    }

    /// <summary>
    /// Tokens are validated by the authorization step, for endpoints that authorize, and only there: every policy an
    /// endpoint uses names the bearer scheme (there is no default scheme that would do it for them).
    /// </summary>
    [Fact]
    public async Task Every_endpoint_that_authorizes_validates_the_bearer_token()
    {
        var policies = app.Services.GetRequiredService<IAuthorizationPolicyProvider>();
        var endpoints = app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetOrderedMetadata<IAuthorizeData>().Count > 0 && e.Metadata.GetMetadata<IAllowAnonymous>() is null)
            .ToList();
        Assert.True(endpoints.Count > 20, $"only {endpoints.Count} endpoints authorize");
        foreach (var endpoint in endpoints)
        {
            var policy = await AuthorizationPolicy.CombineAsync(policies, endpoint.Metadata.GetOrderedMetadata<IAuthorizeData>(),
                endpoint.Metadata.GetOrderedMetadata<AuthorizationPolicy>());
            Assert.True(policy?.AuthenticationSchemes.Contains(JwtBearerDefaults.AuthenticationScheme) == true,
                $"{endpoint.DisplayName}: its policy does not authenticate the bearer token, so it would refuse every caller");
        }
    }

    /// <summary>
    /// Health, the OpenAPI document and the host's invocations read no caller, so a token sent to them is not even
    /// looked at (on a cold start the JwtBearer handler's set-up is the largest single cost of the first answer).
    /// </summary>
    [Fact]
    public async Task Endpoints_that_authorize_nobody_never_validate_a_token()
    {
        var looked = 0;
        await using var counted = await TestApp.StartAsync(customize: builder => builder.ConfigureServices(services =>
            services.PostConfigure<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme, o =>
            {
                var received = o.Events.OnMessageReceived;
                o.Events.OnMessageReceived = context =>
                {
                    Interlocked.Increment(ref looked);
                    return received(context);
                };
            })));
        var customer = counted.Customer("startup-" + Guid.NewGuid().ToString("N")[..8]);

        Assert.Equal(HttpStatusCode.OK, (await customer.GetAsync("/api/health")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await customer.GetAsync("/api/openapi.json")).StatusCode);
        Assert.Equal(0, Volatile.Read(ref looked));

        Assert.Equal(HttpStatusCode.OK, (await customer.GetAsync("/api/campaigns/claimable")).StatusCode);
        Assert.Equal(1, Volatile.Read(ref looked));
        Assert.Equal(HttpStatusCode.Unauthorized, (await counted.Bearer("not-a-token").GetAsync("/api/campaigns/claimable")).StatusCode);
        Assert.Equal(2, Volatile.Read(ref looked));
    }
}
