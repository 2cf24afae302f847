using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Hosting;

/// <summary>Counting the documents a filter matches, in one partition or across them.</summary>
public static class CosmosCount
{
    /// <summary>
    /// How many documents <paramref name="query"/> (a <c>SELECT VALUE 1 FROM c WHERE ...</c>) matches, in
    /// <paramref name="partition"/> or across partitions when null. It counts the rows of a projection (one small number
    /// each, up to 1,000 a page) rather than asking for <c>COUNT(1)</c>: a cross-partition aggregate needs the SDK's query
    /// plan, which the local emulator cannot serve (docs/local-emulators.md), while a projection runs with optimistic
    /// direct execution here and through the full pipeline on a multi-partition Azure container. For what is counted
    /// (queues of pending approvals: tens of documents) the cost is the same, one page, served by the index on the filter.
    /// </summary>
    public static async Task<long> CountAsync(this Container container, QueryDefinition query, PartitionKey? partition, CancellationToken ct)
    {
        long count = 0;
        using var iterator = container.GetItemQueryIterator<int>(query, requestOptions: new QueryRequestOptions
        {
            PartitionKey = partition, MaxItemCount = 1000, EnableOptimisticDirectExecution = true,
        });
        while (iterator.HasMoreResults)
            count += (await iterator.ReadNextAsync(ct)).Count;
        return count;
    }
}
