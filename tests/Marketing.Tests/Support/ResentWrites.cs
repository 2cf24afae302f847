using Microsoft.Azure.Cosmos;

namespace Marketing.Tests.Support;

/// <summary>
/// Fault injection for "the SDK may send a write twice". Against a real account (endpoint discovery on), the
/// SDK re-sends a write after a connection failure even when the first attempt was applied: the app then sees
/// only the second attempt's answer (a 409 for a create, a 412 for a conditional write, a second effect for
/// a bare one). While <see cref="Armed"/>, this handler does exactly that to every document write: it sends
/// it, drops the answer, sends the identical request again and returns that second answer.
/// </summary>
public sealed class ResentWrites : RequestHandler
{
    private int armed;
    private long resent;

    public bool Armed
    {
        get => Volatile.Read(ref armed) == 1;
        set => Volatile.Write(ref armed, value ? 1 : 0);
    }

    /// <summary>How many writes were sent twice (so a test can prove the injection happened).</summary>
    public long Resent => Interlocked.Read(ref resent);

    public override async Task<ResponseMessage> SendAsync(RequestMessage request, CancellationToken cancellationToken)
    {
        if (!Armed || !IsDocumentWrite(request))
            return await base.SendAsync(request, cancellationToken);

        byte[]? body = null;
        if (request.Content is { } content)
        {
            using var buffer = new MemoryStream();
            await content.CopyToAsync(buffer, cancellationToken);
            body = buffer.ToArray();
            request.Content = new MemoryStream(body, writable: false);
        }
        var first = await base.SendAsync(request, cancellationToken);
        // A first attempt that failed outright is not the case we inject (nothing was applied).
        if (!first.IsSuccessStatusCode) return first;
        // Its answer is lost (not disposed: that would dispose the request we are about to send again).
        Interlocked.Increment(ref resent);
        if (body is not null) request.Content = new MemoryStream(body, writable: false);
        return await base.SendAsync(request, cancellationToken);
    }

    private static bool IsDocumentWrite(RequestMessage request)
    {
        var uri = request.RequestUri?.OriginalString ?? "";
        if (!uri.Contains("/docs", StringComparison.Ordinal)) return false;
        if (request.Method == HttpMethod.Post)
            return request.Headers["x-ms-documentdb-isquery"] is null && request.Headers["x-ms-cosmos-is-query-plan-request"] is null;
        return request.Method == HttpMethod.Put || request.Method == HttpMethod.Patch || request.Method == HttpMethod.Delete;
    }
}
