using Microsoft.Azure.Cosmos;

namespace Marketing.Tests.Support;

/// <summary>
/// Fault injection for "the process dies here": once armed with a count, lets that many Cosmos requests through and
/// fails every one after, so nothing after that point reaches the database. Disarmed, it passes everything.
/// Crash tests arm it at 0, 1, 2, ... requests into a flow, then replay the flow or run a timer and check it converges.
/// </summary>
public sealed class Crash : RequestHandler
{
    private const int Disarmed = int.MaxValue;
    private int left = Disarmed;

    public void Arm(int requests) => Interlocked.Exchange(ref left, requests);
    public void Disarm() => Interlocked.Exchange(ref left, Disarmed);

    public override Task<ResponseMessage> SendAsync(RequestMessage request, CancellationToken cancellationToken)
        => Volatile.Read(ref left) != Disarmed && Interlocked.Decrement(ref left) < 0
            ? throw new InvalidOperationException("Injected crash: this request never reaches the database.")
            : base.SendAsync(request, cancellationToken);
}
