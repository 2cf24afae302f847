using System.Net;
using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Campaigns;

/// <summary>
/// Container "campaigns", partitioned by /catalog. All campaigns of a catalog share one logical
/// partition, so operator lists and the customers' claimable list are single-partition queries.
/// The hot path (claiming) does not read here on every request: see <see cref="CampaignCache"/>.
/// Lists skip (and log) a campaign that cannot be read rather than failing for every campaign (see <see cref="Paging"/>).
/// </summary>
public sealed class CampaignStore(Database database, ILogger<CampaignStore>? logger = null)
{
    public static readonly ContainerSpec Spec = new("campaigns", "/catalog", ["/terms/categories/*", "/terms/validity/*", "/\"_etag\"/?"]);
    public const string DefaultCatalog = "default";

    private readonly Container container = database.GetContainer(Spec.Name);
    private readonly ILogger log = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger<CampaignStore>.Instance;

    public async Task<Campaign?> FindAsync(string id, CancellationToken ct = default)
    {
        // Ids come from URLs: one that could never be ours is simply not found (and never reaches Cosmos,
        // which rejects some characters with a 400).
        if (!Ids.IsWellFormed(id)) return null;
        try
        {
            var response = await container.ReadItemAsync<Campaign>(id, new PartitionKey(DefaultCatalog), cancellationToken: ct);
            return response.Resource with { ETag = response.ETag };
        }
        catch (CosmosException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    public async Task<Campaign> CreateAsync(Campaign campaign, CancellationToken ct = default)
        // Ids are random: a conflict can only be a clash nobody expects, never a normal outcome.
        => campaign with { ETag = await container.TryWriteAsync(campaign, campaign.Catalog, etag: null, ct)
                                  ?? throw new InvalidOperationException($"Campaign id {campaign.Id} already exists.") };

    /// <summary>Replaces the campaign if nobody changed it since it was read; null when someone did (412).</summary>
    public async Task<Campaign?> ReplaceAsync(Campaign campaign, string etag, CancellationToken ct = default)
        => await container.TryWriteAsync(campaign, campaign.Catalog, etag, ct) is { } stored ? campaign with { ETag = stored } : null;

    /// <summary>
    /// One page of the catalog, optionally filtered by status; <paramref name="pageToken"/> is an opaque token of
    /// an earlier page (<see cref="Paging"/>: throws <see cref="InvalidPageTokenException"/> for any other). Order is not specified.
    /// </summary>
    public Task<Page<Campaign>> ListAsync(CampaignStatus? status, int pageSize, string? pageToken, CancellationToken ct = default)
    {
        var sql = "SELECT * FROM c WHERE c.catalog = @catalog" + (status is null ? "" : " AND c.status = @status");
        var query = new QueryDefinition(sql).WithParameter("@catalog", DefaultCatalog);
        if (status is not null) query = query.WithParameter("@status", Wire(status.Value));
        // A plain paged filter: partition key set, continuation tokens (see docs/local-emulators.md).
        return container.ReadPageAsync<Campaign>(query, new PartitionKey(DefaultCatalog), pageSize, pageToken, log, ct);
    }

    /// <summary>Every published campaign of the catalog (the claimable list filters this by time and channel).</summary>
    public async Task<List<Campaign>> ListPublishedAsync(CancellationToken ct = default)
    {
        var query = new QueryDefinition("SELECT * FROM c WHERE c.catalog = @catalog AND c.status = @status")
            .WithParameter("@catalog", DefaultCatalog).WithParameter("@status", Wire(CampaignStatus.Published));
        return await container.ReadAllReadableAsync<Campaign>(query, new PartitionKey(DefaultCatalog), log, ct);
    }

    /// <summary>Ids of the campaigns whose stock the reconciliation job looks after (everything but drafts).</summary>
    public async Task<List<string>> ListNotDraftIdsAsync(CancellationToken ct = default)
    {
        var query = new QueryDefinition("SELECT VALUE c.id FROM c WHERE c.catalog = @catalog AND c.status != @draft")
            .WithParameter("@catalog", DefaultCatalog).WithParameter("@draft", Wire(CampaignStatus.Draft));
        return await ReadIdsAsync(query, ct);
    }

    private async Task<List<string>> ReadIdsAsync(QueryDefinition query, CancellationToken ct)
    {
        var results = new List<string>();
        using var iterator = container.GetItemQueryIterator<string>(query,
            requestOptions: new QueryRequestOptions { PartitionKey = new PartitionKey(DefaultCatalog) });
        while (iterator.HasMoreResults)
            results.AddRange(await iterator.ReadNextAsync(ct));
        return results;
    }

    /// <summary>Published or paused campaigns whose claim window is over by <paramref name="now"/> (one single-partition query).</summary>
    public async Task<List<string>> ListClaimWindowOverAsync(DateTimeOffset now, CancellationToken ct = default)
    {
        var query = new QueryDefinition("SELECT VALUE c.id FROM c WHERE c.catalog = @catalog AND (c.status = @published OR c.status = @paused) AND c.terms.claimEndsAt <= @now")
            .WithParameter("@catalog", DefaultCatalog).WithParameter("@published", Wire(CampaignStatus.Published))
            .WithParameter("@paused", Wire(CampaignStatus.Paused)).WithParameter("@now", UtcInstantConverter.Text(now));
        return await ReadIdsAsync(query, ct);
    }

    public static string Wire(CampaignStatus status) => status switch
    {
        CampaignStatus.Draft => "draft",
        CampaignStatus.Published => "published",
        CampaignStatus.Paused => "paused",
        CampaignStatus.Ended => "ended",
        _ => throw new ArgumentOutOfRangeException(nameof(status)),
    };
}
