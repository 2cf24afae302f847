using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Media;

/// <summary>
/// Container "media", partitioned by /campaignId: one document per media item, so a campaign's media are listed with
/// one query in its partition and another campaign's route never reaches them (a point read in the wrong partition is
/// simply not found).
/// </summary>
public sealed class MediaStore(Database database)
{
    public static readonly ContainerSpec Spec = new("media", "/campaignId", ["/renditions/*", "/refusal/*", "/\"_etag\"/?"], DefaultTtl: -1);

    /// <summary>A campaign lists at most this many media items (an answer that grows without bound is no answer).</summary>
    public const int MaxListed = 100;

    private readonly Container container = database.GetContainer(Spec.Name);

    public async Task<MediaItem?> FindAsync(string campaignId, string mediaId, CancellationToken ct)
    {
        if (!Ids.IsWellFormed(campaignId) || !Ids.IsWellFormed(mediaId)) return null;
        var response = await container.ReadOrNullAsync<MediaItem>(mediaId, campaignId, ct);
        return response is null ? null : response.Resource with { ETag = response.ETag };
    }

    /// <summary>Creates the pending item (its id is new: nobody else writes it).</summary>
    public Task<bool> TryCreateAsync(MediaItem item, CancellationToken ct) => container.TryCreateAsync(item, item.CampaignId, ct);

    /// <summary>Replaces the item if it is unchanged since read; false when another request changed or deleted it first.</summary>
    public Task<bool> TryReplaceAsync(MediaItem item, CancellationToken ct) => container.TrySaveAsync(item, item.CampaignId, item.ETag, ct);

    /// <summary>Deletes the item; deleting one already gone is done too.</summary>
    public async Task DeleteAsync(string campaignId, string mediaId, CancellationToken ct)
    {
        if (!Ids.IsWellFormed(campaignId) || !Ids.IsWellFormed(mediaId)) return;
        using var response = await container.DeleteItemStreamAsync(mediaId, new PartitionKey(campaignId), cancellationToken: ct);
        if (response.StatusCode != System.Net.HttpStatusCode.NotFound) response.EnsureSuccessStatusCode();
    }

    /// <summary>The campaign's media, newest first (<paramref name="readyOnly"/>: what the app may show); one query in its partition.</summary>
    public async Task<List<MediaItem>> ListAsync(string campaignId, bool readyOnly, CancellationToken ct)
    {
        var results = new List<MediaItem>();
        if (!Ids.IsWellFormed(campaignId)) return results;
        var query = new QueryDefinition("SELECT * FROM c WHERE c.campaignId = @c"
                + (readyOnly ? " AND c.state = @ready" : "") + " ORDER BY c.createdAt DESC")
            .WithParameter("@c", campaignId);
        if (readyOnly) query = query.WithParameter("@ready", MediaItem.Ready);
        // One page of at most MaxListed, executed directly in the one partition (as Azure does for a single-partition
        // query; without it the SDK asks for a query plan the local emulator cannot give, docs/local-emulators.md).
        using var iterator = container.GetItemQueryIterator<MediaItem>(query, requestOptions: new QueryRequestOptions
        {
            PartitionKey = new PartitionKey(campaignId), MaxItemCount = MaxListed, EnableOptimisticDirectExecution = true,
        });
        if (iterator.HasMoreResults)
            results.AddRange(await iterator.ReadNextAsync(ct));
        return results;
    }
}
