using Microsoft.Azure.Cosmos;

namespace Marketing.Tests.Support;

/// <summary>
/// Counts the document requests (reads, writes, queries; not the SDK's metadata reads) an app's Cosmos client
/// sends to one container, and the documents its queries return (the x-ms-item-count of each answer).
/// Register it as a RequestHandler of one app: it measures what a code path costs, not how long it takes.
/// </summary>
public sealed class ContainerTraffic(string container) : RequestHandler
{
    private readonly string collection = $"/colls/{container}";
    private long requests;
    private long documents;
    private long queryAnswers;
    private long largestAnswer;

    public long Requests => Interlocked.Read(ref requests);
    public long DocumentsReturned => Interlocked.Read(ref documents);
    /// <summary>Query answers (pages) received, and the most documents one of them held.</summary>
    public long QueryAnswers => Interlocked.Read(ref queryAnswers);
    public long LargestAnswer => Interlocked.Read(ref largestAnswer);

    public void Reset()
    {
        Interlocked.Exchange(ref requests, 0);
        Interlocked.Exchange(ref documents, 0);
        Interlocked.Exchange(ref queryAnswers, 0);
        Interlocked.Exchange(ref largestAnswer, 0);
    }

    public override async Task<ResponseMessage> SendAsync(RequestMessage request, CancellationToken cancellationToken)
    {
        // Document requests name the container's link ("dbs/d/colls/c": queries, creates, upserts are POSTs to it)
        // or a document under it ("dbs/d/colls/c/docs/id"); a GET of the link itself is the SDK reading metadata.
        var uri = "/" + request.RequestUri.OriginalString.Trim('/');
        var ours = uri.Contains(collection + "/docs", StringComparison.Ordinal)
                   || (uri.EndsWith(collection, StringComparison.Ordinal) && request.Method != HttpMethod.Get);
        if (ours) Interlocked.Increment(ref requests);
        var response = await base.SendAsync(request, cancellationToken);
        if (ours && response.Headers["x-ms-item-count"] is { } count && long.TryParse(count, out var n))
        {
            Interlocked.Add(ref documents, n);
            if (request.Headers["x-ms-documentdb-isquery"] is not null)
            {
                Interlocked.Increment(ref queryAnswers);
                lock (this) largestAnswer = Math.Max(largestAnswer, n);
            }
        }
        return response;
    }
}
