using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Stats;

/// <summary>
/// One day of one campaign (in the campaign's time zone): its figures per hour and channel. Bounded by construction:
/// at most 24 hours (25 on a day the clocks go back share 24 keys) × 5 channels cells of eighteen numbers, under ~70 KB even at 2^53 each.
/// </summary>
public sealed record CampaignDay
{
    public const string DocumentId = "day";
    public const string Kind = "day";

    public string Id { get; init; } = DocumentId;
    public required string Pk { get; init; }
    public string Type { get; init; } = Kind;
    public required string CampaignId { get; init; }
    /// <summary>yyyy-MM-dd, the campaign's local date.</summary>
    public required string Day { get; init; }
    /// <summary>Figures by cell key "HH|channel" (<see cref="Cell.Key"/>).</summary>
    public required Dictionary<string, Figures> Cells { get; init; }

    [JsonPropertyName("_etag")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ETag { get; init; }

    public DateOnly Date => DateOnly.ParseExact(Day, StatsStore.DayFormat, CultureInfo.InvariantCulture);
}

/// <summary>A fact, the cell it counts in, and how long its mark must be kept (seconds).</summary>
public readonly record struct PlacedFact(StatsFact Fact, Cell Cell, int MarkTtl);

/// <summary>
/// The days a run has just written, with their etags, so its next batch into the same day need not read it first. Only an
/// optimisation: a day someone else changed since fails the batch on its etag (412) and is read again.
/// </summary>
public sealed class DayCache
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, CampaignDay> days = new(StringComparer.Ordinal);
    public CampaignDay? Find(string pk) => days.TryGetValue(pk, out var day) ? day : null;
    public void Keep(CampaignDay day) => days[day.Pk] = day;
    public void Forget(string pk) => days.TryRemove(pk, out _);
}

/// <summary>A fact once counted: only its id matters (and its time to live). Stored beside the day it was counted in.</summary>
public sealed record FactMark(string Id, string Pk, int Ttl)
{
    public string Type { get; init; } = "fact";
}

/// <summary>
/// Where the fold of one source container's change feed got to, for one feed range: the SDK's continuation token, and
/// when a read last found nothing newer (every change written before that instant is counted).
/// </summary>
public sealed record FeedCursor
{
    public const string Partition = "feeds";
    public const string Kind = "cursor";

    public required string Id { get; init; }
    public string Pk { get; init; } = Partition;
    public string Type { get; init; } = Kind;
    public required string Source { get; init; }
    /// <summary>The feed range (FeedRange.ToJsonString()) this cursor reads.</summary>
    public required string Range { get; init; }
    /// <summary>The SDK's continuation token after the last page folded; null = from the beginning.</summary>
    public string? Continuation { get; init; }
    /// <summary>When a read of this range, sent at that instant, last found no change newer than the continuation.</summary>
    public DateTimeOffset? CaughtUpAt { get; init; }
    public DateTimeOffset? UpdatedAt { get; init; }

    [JsonPropertyName("_etag")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ETag { get; init; }
}

/// <summary>
/// Container "stats", partitioned by /pk: a campaign's day ("{campaignId}|{yyyy-MM-dd}") holds that day's figures
/// (<see cref="CampaignDay"/>) and the marks of the facts counted in it (<see cref="FactMark"/>, with a time to live);
/// "feeds" holds the change feed cursors (<see cref="FeedCursor"/>). A fact and the day it counts in share a partition,
/// so one transactional batch writes both: the fact's mark is created exactly when its figures are added.
/// </summary>
public sealed class StatsStore(Database database)
{
    public const string DayFormat = "yyyy-MM-dd";

    /// <summary>
    /// Azure refuses a transactional batch of more than 100 operations: a chunk of facts is at most 99 marks and the day.
    /// </summary>
    public const int FactsPerBatch = 99;

    public static readonly ContainerSpec Spec = new("stats", "/pk", ["/cells/*", "/\"_etag\"/?"], DefaultTtl: -1);

    private readonly Container container = database.GetContainer(Spec.Name);

    public static string DayPartition(string campaignId, DateOnly day) => $"{campaignId}|{day.ToString(DayFormat, CultureInfo.InvariantCulture)}";

    /// <summary>Transactional batches sent (round trips): the fold's report and the benchmarks read it.</summary>
    public long Batches => Interlocked.Read(ref batches);
    private long batches;

    /// <summary>
    /// Counts <paramref name="facts"/> (all in the partition of one campaign day) into that day, each exactly once: facts
    /// whose mark exists are skipped, the rest are added to the day's cells and their marks created in the same batch.
    /// Two round trips per chunk of <see cref="FactsPerBatch"/> when its facts are new (a point read of the day, one
    /// batch); a batch refused because some facts were counted before (409: a change read again, another run) or the day
    /// changed (412) is recomputed from one query of the day and the chunk's marks. Safe to run twice at once and to
    /// re-send. Returns how many facts were new.
    /// </summary>
    public async Task<int> CountAsync(Cell day, IReadOnlyList<PlacedFact> facts, DayCache? known, CancellationToken ct)
    {
        var pk = DayPartition(day.CampaignId, day.Day);
        var counted = 0;
        foreach (var chunk in facts.DistinctBy(f => f.Fact.Id).Chunk(FactsPerBatch))
            counted += await CountChunkAsync(pk, day, chunk, known, ct);
        return counted;
    }

    private async Task<int> CountChunkAsync(string pk, Cell day, PlacedFact[] chunk, DayCache? known, CancellationToken ct)
    {
        // Optimistic first: most facts are new, so take the day as this run last wrote it (else a point read) and let the
        // batch's creates say whether a mark exists (409) and its etag whether the day changed since (412). Only after a
        // refusal read which marks exist (a query), and count the rest.
        var lookForMarks = false;
        for (var attempt = 0; ; attempt++)
        {
            var (current, marked) = lookForMarks
                ? await ReadDayAndMarksAsync(pk, [.. chunk.Select(f => MarkId(f.Fact.Id))], ct)
                : (known?.Find(pk) ?? (await container.ReadOrNullAsync<CampaignDay>(CampaignDay.DocumentId, pk, ct))?.Resource,
                    new HashSet<string>(StringComparer.Ordinal));
            var fresh = chunk.Where(f => !marked.Contains(MarkId(f.Fact.Id))).ToArray();
            if (fresh.Length == 0) return 0;

            var cells = current?.Cells is { } existing ? new Dictionary<string, Figures>(existing, StringComparer.Ordinal) : new(StringComparer.Ordinal);
            foreach (var (fact, cell, _) in fresh)
                cells[cell.Key] = cells.TryGetValue(cell.Key, out var figures) ? figures.Plus(fact.Delta) : fact.Delta;
            var updated = new CampaignDay
            {
                Pk = pk, CampaignId = day.CampaignId, Day = day.Day.ToString(DayFormat, CultureInfo.InvariantCulture), Cells = cells,
            };

            var batch = container.CreateTransactionalBatch(new PartitionKey(pk));
            foreach (var (fact, _, markTtl) in fresh)
                batch.CreateItem(new FactMark(MarkId(fact.Id), pk, markTtl), NoContent);
            if (current is null) batch.CreateItem(updated, NoContent);
            else batch.ReplaceItem(CampaignDay.DocumentId, updated, new TransactionalBatchItemRequestOptions { IfMatchEtag = current.ETag, EnableContentResponseOnWrite = false });

            Interlocked.Increment(ref batches);
            using var response = await batch.ExecuteAsync(ct);
            if (response.IsSuccessStatusCode)
            {
                // The day's new etag comes back with the batch; without one (never so in Azure) the next batch reads the day.
                if (response[response.Count - 1].ETag is { } etag) known?.Keep(updated with { ETag = etag });
                else known?.Forget(pk);
                return fresh.Length;
            }
            known?.Forget(pk);
            // Another run (or the SDK re-sending this very batch after it was applied) counted some of these facts or
            // changed the day first: nothing of ours was written; read again and count what is still new.
            if (response.StatusCode is not (HttpStatusCode.Conflict or HttpStatusCode.PreconditionFailed) || attempt >= 20)
                throw new CosmosException($"Counting facts into {pk} failed: {response.ErrorMessage}", response.StatusCode, 0, response.ActivityId, response.RequestCharge);
            lookForMarks = true;
        }
    }

    /// <summary>
    /// A query over several partitions is sent as the repo's other cross-partition queries are: with optimistic direct
    /// execution (no query plan; the emulator can give none and refuses such a query without it, docs/local-emulators.md).
    /// </summary>
    private static QueryRequestOptions CrossPartition => new() { EnableOptimisticDirectExecution = true };

    /// <summary>
    /// The id of a fact's mark: the fact's id, unless Cosmos DB could not take it as an id (a customer id from a token may
    /// hold "/", and ids stop at 255 characters): then a hash of it, the same every time.
    /// </summary>
    public static string MarkId(string factId)
        => factId.Length <= 200 && factId.IndexOfAny(['/', '\\', '?', '#']) < 0
            ? factId
            : "h:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(factId)));

    private static readonly TransactionalBatchItemRequestOptions NoContent = new() { EnableContentResponseOnWrite = false };

    /// <summary>The day's document (null if nothing was counted yet) and which of <paramref name="factIds"/> are marked: one query.</summary>
    private Task<(CampaignDay? Day, HashSet<string> Marked)> ReadDayAndMarksAsync(string pk, string[] factIds, CancellationToken ct)
        => ReadDayAndMarksAsync(pk, IdsIn([CampaignDay.DocumentId, .. factIds]), ct);

    /// <summary>"c.id IN (@i0, @i1, ...)": served by the index on id (an OR with ARRAY_CONTAINS may not be).</summary>
    private static QueryDefinition IdsIn(string[] ids)
    {
        var names = ids.Select((_, i) => "@i" + i.ToString(CultureInfo.InvariantCulture)).ToArray();
        var query = new QueryDefinition($"SELECT * FROM c WHERE c.id IN ({string.Join(", ", names)})");
        for (var i = 0; i < ids.Length; i++) query = query.WithParameter(names[i], ids[i]);
        return query;
    }

    /// <summary>The day's document and the ids of the marks among the documents <paramref name="query"/> finds in the day's partition.</summary>
    private async Task<(CampaignDay? Day, HashSet<string> Marked)> ReadDayAndMarksAsync(string pk, QueryDefinition query, CancellationToken ct)
    {
        CampaignDay? day = null;
        var marked = new HashSet<string>(StringComparer.Ordinal);
        using var iterator = container.GetItemQueryIterator<JsonElement>(query, requestOptions: new QueryRequestOptions { PartitionKey = new PartitionKey(pk) });
        while (iterator.HasMoreResults)
        {
            foreach (var item in await iterator.ReadNextAsync(ct))
            {
                var id = item.GetProperty("id").GetString()!;
                if (id == CampaignDay.DocumentId) day = item.Deserialize<CampaignDay>(Json.Storage);
                else marked.Add(id);
            }
        }
        return (day, marked);
    }

    /// <summary>Up to this many days are read with point reads (all at once), more with one query.</summary>
    public const int PointReadDays = 40;

    /// <summary>The days of a campaign between two local dates (inclusive) that have figures.</summary>
    public Task<List<CampaignDay>> ReadDaysAsync(string campaignId, DateOnly from, DateOnly to, CancellationToken ct)
        => ReadDaysAsync(campaignId, [.. Enumerable.Range(0, Math.Max(0, to.DayNumber - from.DayNumber + 1)).Select(from.AddDays)], ct);

    /// <summary>
    /// The given days of a campaign that have figures: point reads, sent together, for up to <see cref="PointReadDays"/>
    /// days (the cheapest reads there are), else one query naming their partitions.
    /// </summary>
    public async Task<List<CampaignDay>> ReadDaysAsync(string campaignId, IReadOnlyCollection<DateOnly> dates, CancellationToken ct)
    {
        if (dates.Count <= PointReadDays)
        {
            var reads = await Task.WhenAll(dates.Select(d => FindDayAsync(campaignId, d, ct)));
            return [.. reads.Where(r => r is not null).Select(r => r!.Resource).OrderBy(d => d.Day, StringComparer.Ordinal)];
        }
        var partitions = dates.Select(d => DayPartition(campaignId, d)).ToList();
        var days = new List<CampaignDay>();
        // "pk IN (...)" lets the query go only to the partitions it names.
        foreach (var group in partitions.Chunk(200))
        {
            var names = group.Select((_, i) => "@p" + i.ToString(CultureInfo.InvariantCulture)).ToArray();
            var query = new QueryDefinition($"SELECT * FROM c WHERE c.pk IN ({string.Join(", ", names)}) AND c.id = @day")
                .WithParameter("@day", CampaignDay.DocumentId);
            for (var i = 0; i < group.Length; i++) query = query.WithParameter(names[i], group[i]);
            using var iterator = container.GetItemQueryIterator<CampaignDay>(query, requestOptions: CrossPartition);
            while (iterator.HasMoreResults) days.AddRange(await iterator.ReadNextAsync(ct));
        }
        return [.. days.OrderBy(d => d.Day, StringComparer.Ordinal)];
    }

    /// <summary>Every campaign's days between two local dates (the overview): one query across their partitions.</summary>
    public async Task<List<CampaignDay>> ReadDaysBetweenAsync(DateOnly from, DateOnly to, CancellationToken ct)
    {
        var days = new List<CampaignDay>();
        using var iterator = container.GetItemQueryIterator<CampaignDay>(new QueryDefinition("SELECT * FROM c WHERE c.type = @type AND c.day >= @from AND c.day <= @to")
            .WithParameter("@type", CampaignDay.Kind)
            .WithParameter("@from", from.ToString(DayFormat, CultureInfo.InvariantCulture)).WithParameter("@to", to.ToString(DayFormat, CultureInfo.InvariantCulture)),
            requestOptions: CrossPartition);
        while (iterator.HasMoreResults) days.AddRange(await iterator.ReadNextAsync(ct));
        return days;
    }

    public async Task<Overview?> FindOverviewAsync(CancellationToken ct)
        => (await container.ReadOrNullAsync<Overview>(Overview.DocumentId, Overview.DocumentId, ct))?.Resource;

    /// <summary>Writes the overview whole (the newest computation wins; writing the same one twice is harmless).</summary>
    public Task SaveOverviewAsync(Overview overview, CancellationToken ct)
        => container.UpsertItemAsync(overview with { ETag = null }, new PartitionKey(Overview.DocumentId),
            new ItemRequestOptions { EnableContentResponseOnWrite = false }, ct);

    /// <summary>Every day of a campaign that has figures (recount-stats): a query across the campaign's day partitions.</summary>
    public async Task<List<CampaignDay>> ReadAllDaysAsync(string campaignId, CancellationToken ct)
    {
        var days = new List<CampaignDay>();
        using var iterator = container.GetItemQueryIterator<CampaignDay>(new QueryDefinition("SELECT * FROM c WHERE c.type = @type AND c.campaignId = @campaign")
            .WithParameter("@type", CampaignDay.Kind).WithParameter("@campaign", campaignId), requestOptions: CrossPartition);
        while (iterator.HasMoreResults) days.AddRange(await iterator.ReadNextAsync(ct));
        return days;
    }

    /// <summary>Every cursor (a few per source container): one single-partition query.</summary>
    public async Task<List<FeedCursor>> ListCursorsAsync(CancellationToken ct)
    {
        var cursors = new List<FeedCursor>();
        using var iterator = container.GetItemQueryIterator<FeedCursor>(new QueryDefinition("SELECT * FROM c WHERE c.type = @type").WithParameter("@type", FeedCursor.Kind),
            requestOptions: new QueryRequestOptions { PartitionKey = new PartitionKey(FeedCursor.Partition) });
        while (iterator.HasMoreResults) cursors.AddRange(await iterator.ReadNextAsync(ct));
        return cursors;
    }

    /// <summary>
    /// Creates a source's cursors (one per feed range) all at once or not at all: one transactional batch. False when
    /// they exist already (another run created them first, or this very batch was sent twice: 409, nothing written by
    /// this one). A source with more than <see cref="StatsStore.FactsPerBatch"/> + 1 feed ranges (physical partitions)
    /// is beyond one batch and refused here (docs/stats.md).
    /// </summary>
    public async Task<bool> TryCreateCursorsAsync(IReadOnlyList<FeedCursor> cursors, CancellationToken ct)
    {
        var batch = container.CreateTransactionalBatch(new PartitionKey(FeedCursor.Partition));
        foreach (var cursor in cursors) batch.CreateItem(cursor, NoContent);
        using var response = await batch.ExecuteAsync(ct);
        if (response.IsSuccessStatusCode) return true;
        if (response.StatusCode == HttpStatusCode.Conflict) return false;
        throw new CosmosException($"Creating the feed cursors failed: {response.ErrorMessage}", response.StatusCode, 0, response.ActivityId, response.RequestCharge);
    }

    /// <summary>Moves a cursor on if nobody else has since it was read; the new cursor (with its etag), or null when another run moved it.</summary>
    public async Task<FeedCursor?> TryMoveCursorAsync(FeedCursor cursor, CancellationToken ct)
        => await container.TryWriteAsync(cursor, FeedCursor.Partition, cursor.ETag, ct) is { } etag ? cursor with { ETag = etag } : null;

    /// <summary>Replaces a day's figures outright (recount-stats --write): conditional on the day as read.</summary>
    public Task<bool> TryReplaceDayAsync(CampaignDay day, CancellationToken ct) => container.TrySaveAsync(day, day.Pk, day.ETag, ct);

    /// <summary>A day's document (null if none) and the id of every fact counted in it (recount-stats --write): one single-partition query.</summary>
    public Task<(CampaignDay? Day, HashSet<string> Marked)> ReadDayAndMarksAsync(string campaignId, DateOnly day, CancellationToken ct)
        => ReadDayAndMarksAsync(DayPartition(campaignId, day), new QueryDefinition("SELECT * FROM c"), ct);

    public Task<ItemResponse<CampaignDay>?> FindDayAsync(string campaignId, DateOnly day, CancellationToken ct)
        => container.ReadOrNullAsync<CampaignDay>(CampaignDay.DocumentId, DayPartition(campaignId, day), ct);
}
