using System.Globalization;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Notifications;

/// <summary>Operator alerts' reads in the partition "operators".</summary>
public sealed partial class NotificationStore
{
    /// <summary>Ids in one query's IN list: a small, fixed bound on the query's text and parameters.</summary>
    public const int IdsPerQuery = 100;

    /// <summary>
    /// Which of <paramref name="ids"/> exist in the operators' partition: one query per <see cref="IdsPerQuery"/> ids,
    /// served by the index on id. Lets a run skip the alerts already raised without a refused create (and its check
    /// read) for each condition that still holds.
    /// </summary>
    public async Task<HashSet<string>> ExistingAlertIdsAsync(IReadOnlyCollection<string> ids, CancellationToken ct)
    {
        var found = new HashSet<string>(StringComparer.Ordinal);
        foreach (var chunk in ids.Distinct(StringComparer.Ordinal).Chunk(IdsPerQuery))
        {
            var names = chunk.Select((_, i) => "@i" + i.ToString(CultureInfo.InvariantCulture)).ToArray();
            var query = new QueryDefinition($"SELECT VALUE c.id FROM c WHERE c.id IN ({string.Join(", ", names)})");
            for (var i = 0; i < chunk.Length; i++) query = query.WithParameter(names[i], chunk[i]);
            using var pages = container.GetItemQueryIterator<string>(query,
                requestOptions: new QueryRequestOptions { PartitionKey = new PartitionKey(NotificationRecord.OperatorsPartition) });
            while (pages.HasMoreResults) found.UnionWith(await pages.ReadNextAsync(ct));
        }
        return found;
    }
}
