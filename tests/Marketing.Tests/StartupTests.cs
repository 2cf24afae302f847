using Marketing.Tests.Support;
using Microsoft.AspNetCore.DataProtection;
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
        var endpoints = app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>().ToList();
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
}
