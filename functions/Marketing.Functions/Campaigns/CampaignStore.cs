using System.Net;
using System.Text.Json;
using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;
using Marketing.Functions.Telemetry;

namespace Marketing.Functions.Campaigns;

/// <summary>
/// What a page of the catalog is filtered by (all optional): status, a piece of the name (any case), and a range of the
/// claim end (from inclusive, before exclusive).
/// </summary>
public sealed record CampaignListFilter(CampaignStatus? Status, string? NameContains = null, DateTimeOffset? ClaimEndsFrom = null,
    DateTimeOffset? ClaimEndsBefore = null);

/// <summary>What the catalog holds about one campaign as of its last write (<c>_ts</c>, seconds); Campaign null when unreadable.</summary>
public sealed record CampaignChange(string Id, long Ts, Campaign? Campaign);

/// <summary>
/// Container "campaigns", partitioned by /catalog. All campaigns of a catalog share one logical
/// partition, so operator lists and the customers' claimable list are single-partition queries.
/// The hot path (claiming) does not read here on every request: see <see cref="CampaignCache"/>.
/// Lists skip (and log) a campaign that cannot be read rather than failing for every campaign (see <see cref="Paging"/>).
///
/// Besides the campaigns, the partition holds one small document, <see cref="ChangesId"/>, rewritten after every
/// campaign write: instances read it (one read unit) to learn whether anything changed since they last looked,
/// instead of reading the catalog (<see cref="CampaignCache"/>).
/// </summary>
public sealed class CampaignStore(Database database, ILogger<CampaignStore>? logger = null)
{
    public static readonly ContainerSpec Spec = new("campaigns", "/catalog", ["/terms/categories/*", "/terms/validity/*", "/\"_etag\"/?"]);
    public const string DefaultCatalog = "default";
    /// <summary>Id of the catalog's change marker; never a campaign's (a dot is not allowed in our ids: <see cref="Ids.IsWellFormed"/>).</summary>
    public const string ChangesId = "catalog.changes";

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
    {
        // Ids are random: a conflict can only be a clash nobody expects, never a normal outcome.
        var stored = campaign with { ETag = await container.TryWriteAsync(campaign, campaign.Catalog, etag: null, ct)
                                            ?? throw new InvalidOperationException($"Campaign id {campaign.Id} already exists.") };
        await NoteChangeAsync(campaign.Catalog, ct);
        return stored;
    }

    /// <summary>Replaces the campaign if nobody changed it since it was read; null when someone did (412).</summary>
    public async Task<Campaign?> ReplaceAsync(Campaign campaign, string etag, CancellationToken ct = default)
    {
        if (await container.TryWriteAsync(campaign, campaign.Catalog, etag, ct) is not { } stored) return null;
        await NoteChangeAsync(campaign.Catalog, ct);
        return campaign with { ETag = stored };
    }

    /// <summary>
    /// Rewrites the catalog's change marker, after the campaign write (so whoever sees the new marker finds the
    /// write too: one logical partition, read in one session). Sent twice, it writes the same content twice.
    /// A failure does not undo or fail the campaign write: instances also look for changes once a minute
    /// whatever the marker says (<see cref="CampaignCache"/>), so a lost marker only delays what they see.
    /// </summary>
    private async Task NoteChangeAsync(string catalog, CancellationToken ct)
    {
        try
        {
            await container.UpsertItemAsync(new Dictionary<string, string> { ["id"] = ChangesId, ["catalog"] = catalog, ["change"] = Guid.NewGuid().ToString("N") },
                new PartitionKey(catalog), new ItemRequestOptions { EnableContentResponseOnWrite = false }, ct);
        }
        catch (Exception e) when (e is CosmosException || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            log.CatalogMarkerNotWritten(e);
        }
    }

    /// <summary>The etag of the catalog's change marker (null: nothing written since it exists): one read unit, whatever the catalog holds.</summary>
    public async Task<string?> ChangesETagAsync(CancellationToken ct)
    {
        using var response = await container.ReadItemStreamAsync(ChangesId, new PartitionKey(DefaultCatalog), cancellationToken: ct);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        response.EnsureSuccessStatusCode();
        return response.Headers.ETag;
    }

    /// <summary>The newest write time (<c>_ts</c>) in the catalog, 0 when empty: where an instance starts watching.</summary>
    public async Task<long> LatestChangeAsync(CancellationToken ct)
    {
        var query = new QueryDefinition("SELECT TOP 1 VALUE c._ts FROM c WHERE c.catalog = @catalog ORDER BY c._ts DESC")
            .WithParameter("@catalog", DefaultCatalog);
        using var iterator = container.GetItemQueryIterator<long>(query, requestOptions: new QueryRequestOptions
        {
            PartitionKey = new PartitionKey(DefaultCatalog), EnableOptimisticDirectExecution = true,
        });
        while (iterator.HasMoreResults)
            foreach (var ts in await iterator.ReadNextAsync(ct))
                return ts;
        return 0;
    }

    /// <summary>Every published campaign of the catalog, with its write time.</summary>
    public Task<List<CampaignChange>> ListPublishedChangesAsync(CancellationToken ct)
        => ReadChangesAsync(new QueryDefinition("SELECT * FROM c WHERE c.catalog = @catalog AND c.status = @status")
            .WithParameter("@catalog", DefaultCatalog).WithParameter("@status", Wire(CampaignStatus.Published)), ct);

    /// <summary>
    /// Every campaign written at or after <paramref name="since"/> (<c>_ts</c>, whole seconds: a later write in
    /// the same second must not be missed, so that second is read again), whatever its status.
    /// </summary>
    public Task<List<CampaignChange>> ListChangedSinceAsync(long since, CancellationToken ct)
        => ReadChangesAsync(new QueryDefinition("SELECT * FROM c WHERE c.catalog = @catalog AND c._ts >= @since")
            .WithParameter("@catalog", DefaultCatalog).WithParameter("@since", since), ct);

    /// <summary>A point read with the write time; null when not found.</summary>
    public async Task<CampaignChange?> FindChangeAsync(string id, CancellationToken ct)
    {
        if (!Ids.IsWellFormed(id)) return null;
        using var response = await container.ReadItemStreamAsync(id, new PartitionKey(DefaultCatalog), cancellationToken: ct);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        response.EnsureSuccessStatusCode();
        using var json = await JsonDocument.ParseAsync(response.Content, cancellationToken: ct);
        return Change(json.RootElement);
    }

    private async Task<List<CampaignChange>> ReadChangesAsync(QueryDefinition query, CancellationToken ct)
    {
        var changes = new List<CampaignChange>();
        using var iterator = container.GetItemQueryStreamIterator(query, requestOptions: new QueryRequestOptions { PartitionKey = new PartitionKey(DefaultCatalog) });
        while (iterator.HasMoreResults)
        {
            using var response = await iterator.ReadNextAsync(ct);
            response.EnsureSuccessStatusCode();
            using var page = await JsonDocument.ParseAsync(response.Content, cancellationToken: ct);
            foreach (var document in page.RootElement.GetProperty("Documents").EnumerateArray())
                if (Change(document) is { } change) changes.Add(change);
        }
        return changes;
    }

    /// <summary>A stored document as a change; null for the change marker. An unreadable campaign is logged and has no Campaign.</summary>
    private CampaignChange? Change(JsonElement document)
    {
        var id = document.TryGetProperty("id", out var idValue) && idValue.ValueKind == JsonValueKind.String ? idValue.GetString()! : "";
        if (id == ChangesId) return null;
        var ts = document.TryGetProperty("_ts", out var tsValue) && tsValue.TryGetInt64(out var seconds) ? seconds : 0;
        try
        {
            return new CampaignChange(id, ts, document.Deserialize<Campaign>(Json.Storage));
        }
        catch (JsonException e)
        {
            log.UnreadableDocumentSkipped(id, Spec.Name, e);
            return new CampaignChange(id, ts, null);
        }
    }

    /// <summary>
    /// One page of the catalog, optionally filtered by status; <paramref name="pageToken"/> is an opaque token of
    /// an earlier page (<see cref="Paging"/>: throws <see cref="InvalidPageTokenException"/> for any other). Order is not specified.
    /// </summary>
    public Task<Page<Campaign>> ListAsync(CampaignStatus? status, int pageSize, string? pageToken, CancellationToken ct = default)
        => ListAsync(new CampaignListFilter(status), pageSize, pageToken, ct);

    /// <summary>
    /// A page of the catalog by <paramref name="filter"/>. Status and the claim end's range are served by the index (instants
    /// are fixed-width UTC text, so they compare as strings); a name filter (case-insensitive, anywhere in the name) is not
    /// and reads the catalog's partition until the page is full: operators' campaigns number in the thousands at most, and
    /// a page stops at its limit.
    /// </summary>
    public Task<Page<Campaign>> ListAsync(CampaignListFilter filter, int pageSize, string? pageToken, CancellationToken ct = default)
    {
        // The change marker shares the partition and is not a campaign.
        var sql = "SELECT * FROM c WHERE c.catalog = @catalog AND c.id != @changes"
            + (filter.Status is null ? "" : " AND c.status = @status")
            + (filter.NameContains is null ? "" : " AND CONTAINS(LOWER(c.terms.name), @name)")
            + (filter.ClaimEndsFrom is null ? "" : " AND c.terms.claimEndsAt >= @endsFrom")
            + (filter.ClaimEndsBefore is null ? "" : " AND c.terms.claimEndsAt < @endsBefore");
        var query = new QueryDefinition(sql).WithParameter("@catalog", DefaultCatalog).WithParameter("@changes", ChangesId);
        if (filter.Status is { } status) query = query.WithParameter("@status", Wire(status));
        if (filter.NameContains is { } name) query = query.WithParameter("@name", name.ToLowerInvariant());
        if (filter.ClaimEndsFrom is { } from) query = query.WithParameter("@endsFrom", UtcInstantConverter.Text(from));
        if (filter.ClaimEndsBefore is { } before) query = query.WithParameter("@endsBefore", UtcInstantConverter.Text(before));
        // A plain paged filter: partition key set, continuation tokens (see docs/local-emulators.md).
        return container.ReadPageAsync<Campaign>(query, new PartitionKey(DefaultCatalog), pageSize, pageToken, log, ct);
    }

    /// <summary>How many campaigns of the catalog are in <paramref name="status"/> (one single-partition query, index-served).</summary>
    public Task<long> CountAsync(CampaignStatus status, CancellationToken ct)
        => container.CountAsync(new QueryDefinition("SELECT VALUE 1 FROM c WHERE c.catalog = @catalog AND c.status = @status")
            .WithParameter("@catalog", DefaultCatalog).WithParameter("@status", Wire(status)), new PartitionKey(DefaultCatalog), ct);

    /// <summary>
    /// Every launched campaign (published, paused, ended; one single-partition query): the reminder timer's campaigns, whose
    /// coupons may still be valid. Drafts and campaigns in review or approved have no coupons yet.
    /// </summary>
    public async Task<List<Campaign>> ListLaunchedAsync(CancellationToken ct)
        => [.. (await ReadChangesAsync(Launched("SELECT * FROM c"), ct)).Select(c => c.Campaign).OfType<Campaign>()];

    /// <summary>
    /// Ids of the campaigns whose stock the reconciliation job looks after: the launched ones. A campaign not launched has
    /// no stock, or only the closed counters of a publish that stopped half-way, which its next publish takes over.
    /// </summary>
    public Task<List<string>> ListLaunchedIdsAsync(CancellationToken ct = default)
        => ReadIdsAsync(Launched("SELECT VALUE c.id FROM c"), ct);

    /// <summary>A query over the launched campaigns of the catalog, by the statuses that are (not by "not draft": the unlaunched statuses grow).</summary>
    private static QueryDefinition Launched(string select)
        => new QueryDefinition(select + " WHERE c.catalog = @catalog AND c.status IN (@published, @paused, @ended)")
            .WithParameter("@catalog", DefaultCatalog).WithParameter("@published", Wire(CampaignStatus.Published))
            .WithParameter("@paused", Wire(CampaignStatus.Paused)).WithParameter("@ended", Wire(CampaignStatus.Ended));

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
        CampaignStatus.Submitted => "submitted",
        CampaignStatus.Approved => "approved",
        CampaignStatus.Published => "published",
        CampaignStatus.Paused => "paused",
        CampaignStatus.Ended => "ended",
        _ => throw new ArgumentOutOfRangeException(nameof(status)),
    };
}
