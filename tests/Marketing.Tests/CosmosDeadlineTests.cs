using System.Net;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// In Gateway mode the SDK's HTTP timeout is at least 65 s whatever RequestTimeout says, and some steps pass
/// no token on purpose (they must not stop when the client goes away). Every Cosmos call must still end:
/// these tests make the database never answer and prove the request ends, as a 503 the client may retry.
/// </summary>
public sealed class CosmosDeadlineTests
{
    /// <summary>While armed, every document patch hangs until its token is cancelled, like a connection that never answers.</summary>
    private sealed class Stall : RequestHandler
    {
        private int armed;
        private int cancelled;
        public bool Armed { set => Volatile.Write(ref armed, value ? 1 : 0); }
        public int Cancelled => Volatile.Read(ref cancelled);

        public override async Task<ResponseMessage> SendAsync(RequestMessage request, CancellationToken cancellationToken)
        {
            if (Volatile.Read(ref armed) == 1 && request.Method == HttpMethod.Patch)
            {
                try
                {
                    await Task.Delay(Timeout.Infinite, cancellationToken);
                }
                finally
                {
                    Interlocked.Increment(ref cancelled);
                }
            }
            return await base.SendAsync(request, cancellationToken);
        }
    }

    [Fact]
    public async Task A_lock_whose_database_stops_answering_mid_way_ends_with_503_and_a_retry_then_completes_it()
    {
        var stall = new Stall();
        await using var app = await TestApp.StartAsync(customize: b =>
        {
            b.UseSetting("Cosmos:CallTimeoutSeconds", "1");
            b.ConfigureServices(s => s.AddSingleton<RequestHandler>(stall));
        });
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
        var orders = app.OrderSystem();
        // Without a bound on each call the request below would never end; fail the test instead of hanging.
        orders.Timeout = TimeSpan.FromSeconds(60);
        var order = Api.NewId("o");

        // The lock's coupon write is one of the steps that passes no token of its own.
        stall.Armed = true;
        var stalled = await orders.LockAsync(order, customer, coupon);

        await stalled.AssertProblemAsync(HttpStatusCode.ServiceUnavailable, "busy");
        Assert.True(stall.Cancelled > 0);
        stall.Armed = false;
        // The interrupted lock is resumed by a retry once its attempt can no longer be in flight.
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        await (await orders.LockAsync(order, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
        Assert.Equal("locked", await app.CouponStatusAsync(customer, coupon));
    }
}
