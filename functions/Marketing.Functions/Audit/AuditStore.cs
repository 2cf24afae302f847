using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Audit;

/// <summary>
/// Container "audit", partitioned by /target ("{kind}/{targetId}"): one target's history is one logical partition, read
/// with a single-partition query; lists by actor or time alone fan out over the partitions (auditors, low volume).
/// Only what queries filter or sort on is indexed: the states and the diff (the bulk of an entry) are not.
/// No method deletes an entry or changes a completed one: the only write after the intent is its completion, once.
/// </summary>
public sealed class AuditStore(Database database, ILogger<AuditStore>? logger = null)
{
    public static readonly ContainerSpec Spec = new("audit", "/target",
        ["/before/*", "/after/*", "/changes/*", "/actor/roles/*", "/reason/?", "/beforeHash/?", "/statesOmitted/?", "/\"_etag\"/?"]);

    private readonly Container container = database.GetContainer(Spec.Name);
    private readonly ILogger log = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger<AuditStore>.Instance;

    /// <summary>Writes the intent (a new random id: only a resend of this very write can meet it); its etag, for the completion.</summary>
    public async Task<string> WriteIntentAsync(AuditEntry intent, CancellationToken ct)
        => await container.TryWriteAsync(intent, intent.Target, etag: null, ct)
           ?? throw new InvalidOperationException($"Audit entry id {intent.Id} already exists.");

    /// <summary>
    /// Completes an intent if it is still the intent read (<paramref name="etag"/>): false when someone else completed it
    /// first (the request and a repair, or two repairs). Sent twice, the second attempt is recognised as ours.
    /// </summary>
    public async Task<bool> TryCompleteAsync(AuditEntry completed, string etag, CancellationToken ct)
        => await container.TryWriteAsync(completed with { ETag = null }, completed.Target, etag, ct) is not null;

    /// <summary>A completed entry with no intent before it: a call refused before it named its target (a create's bad body).</summary>
    public Task<bool> WriteCompletedAsync(AuditEntry entry, CancellationToken ct) => container.TryCreateAsync(entry, entry.Target, ct);

    public async Task<AuditEntry?> FindAsync(string target, string id, CancellationToken ct)
        => await container.ReadOrNullAsync<AuditEntry>(id, target, ct) is { } response ? response.Resource with { ETag = response.ETag } : null;

    /// <summary>
    /// Intents older than <paramref name="before"/>, at most <paramref name="max"/>: across partitions (AuditRepair only;
    /// few, since every call completes its own), served by the index on state and occurredAt.
    /// </summary>
    public async Task<List<AuditEntry>> ListStaleIntentsAsync(DateTimeOffset before, int max, CancellationToken ct)
    {
        var query = new QueryDefinition($"SELECT TOP {max} * FROM c WHERE c.state = @intent AND c.occurredAt < @before")
            .WithParameter("@intent", AuditEntry.States.Intent).WithParameter("@before", UtcInstantConverter.Text(before));
        var found = new List<AuditEntry>();
        using var iterator = container.GetItemQueryIterator<AuditEntry>(query, requestOptions: new QueryRequestOptions
        {
            EnableOptimisticDirectExecution = true, MaxItemCount = max,
        });
        while (iterator.HasMoreResults && found.Count < max)
            found.AddRange(await iterator.ReadNextAsync(ct));
        return found;
    }

    /// <summary>
    /// The first entry of <paramref name="target"/> that began at or after <paramref name="from"/>: its "before" is the target
    /// as it was once an earlier call could no longer be running (AuditRepair). One query in the target's partition.
    /// </summary>
    public async Task<AuditEntry?> FirstFromAsync(string target, DateTimeOffset from, CancellationToken ct)
    {
        var query = new QueryDefinition("SELECT TOP 1 * FROM c WHERE c.target = @target AND c.occurredAt >= @from ORDER BY c.occurredAt ASC")
            .WithParameter("@target", target).WithParameter("@from", UtcInstantConverter.Text(from));
        using var iterator = container.GetItemQueryIterator<AuditEntry>(query, requestOptions: new QueryRequestOptions
        {
            PartitionKey = new PartitionKey(target), EnableOptimisticDirectExecution = true, MaxItemCount = 1,
        });
        while (iterator.HasMoreResults)
            foreach (var entry in await iterator.ReadNextAsync(ct))
                return entry;
        return null;
    }

    /// <summary>
    /// A page of entries, newest first, filtered by target (one partition), actor and time (<paramref name="from"/> inclusive,
    /// <paramref name="to"/> exclusive). Without a target the query runs across partitions.
    /// </summary>
    public Task<Page<AuditEntry>> ListAsync(string? target, string? actor, DateTimeOffset? from, DateTimeOffset? to, int pageSize,
        string? pageToken, CancellationToken ct)
    {
        var where = new List<string>();
        if (target is not null) where.Add("c.target = @target");
        if (actor is not null) where.Add("c.actor.sub = @actor");
        if (from is not null) where.Add("c.occurredAt >= @from");
        if (to is not null) where.Add("c.occurredAt < @to");
        var query = new QueryDefinition("SELECT * FROM c" + (where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : "") + " ORDER BY c.occurredAt DESC");
        if (target is not null) query = query.WithParameter("@target", target);
        if (actor is not null) query = query.WithParameter("@actor", actor);
        if (from is not null) query = query.WithParameter("@from", UtcInstantConverter.Text(from.Value));
        if (to is not null) query = query.WithParameter("@to", UtcInstantConverter.Text(to.Value));
        // Across partitions too, direct execution: in Azure the SDK falls back to its full (query plan) pipeline when the
        // container has more than one partition range, and ORDER BY continues across partitions there; the emulator has one.
        // A token taken before a split may be refused after it (400 invalid-page-token), never misread (docs/audit.md).
        return container.ReadPageAsync<AuditEntry>(query, target is null ? null : new PartitionKey(target), pageSize, pageToken, log, ct,
            optimisticDirectExecution: true);
    }
}
