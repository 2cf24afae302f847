using System.Collections.Immutable;
using System.Globalization;
using System.Net;
using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;
using Marketing.Functions.Telemetry;

namespace Marketing.Functions.Commissions;

/// <summary>
/// Rates of one level in basis points (1 bp = 0.01 %; 1000 = 10 %): a default, and overrides per product
/// category. Integers, so a rate means the same to every reader and the arithmetic is exact.
/// </summary>
public sealed record RateTable(int DefaultBps, IReadOnlyDictionary<string, int> CategoryBps)
{
    public int For(string category) => CategoryBps.TryGetValue(category, out var bps) ? bps : DefaultBps;
}

/// <summary>
/// The rates in force from <see cref="EffectiveFrom"/> until the next version's. A payment uses the version
/// in force at the payment's time, whenever its event is processed; that is why a version may only take
/// effect from now on (SetCommissionRules refuses the past), so a late event never meets rates that did not
/// exist when the order was paid, and a version in force never changes again.
/// </summary>
public sealed record RuleVersion(DateTimeOffset EffectiveFrom, RateTable Level1, RateTable Level2, string SetBy, DateTimeOffset SetAt)
{
    /// <summary>Versions are stored to the millisecond (<see cref="UtcInstantConverter"/>): the instant as it will be read back.</summary>
    public static DateTimeOffset Stored(DateTimeOffset instant)
        => new(instant.UtcTicks - instant.UtcTicks % TimeSpan.TicksPerMillisecond, TimeSpan.Zero);

    /// <summary>The last of <paramref name="versions"/> (ascending by EffectiveFrom) in force at <paramref name="instant"/>.</summary>
    public static RuleVersion? InForceAt(IReadOnlyList<RuleVersion> versions, DateTimeOffset instant)
    {
        for (var i = versions.Count - 1; i >= 0; i--)
            if (versions[i].EffectiveFrom <= instant) return versions[i];
        return null;
    }
}

/// <summary>
/// One version as stored: its own small document (a few KB at most: 2 × 200 categories), never a list that
/// grows. The id is the effectiveFrom instant, so setting the same version twice writes the same document.
/// </summary>
public sealed record RuleVersionDocument
{
    public required string Id { get; init; }
    public required string Programme { get; init; }
    public required DateTimeOffset EffectiveFrom { get; init; }
    public required RateTable Level1 { get; init; }
    public required RateTable Level2 { get; init; }
    public required string SetBy { get; init; }
    public required DateTimeOffset SetAt { get; init; }

    public static string IdFor(DateTimeOffset effectiveFrom)
        => "v" + RuleVersion.Stored(effectiveFrom).UtcDateTime.ToString("yyyyMMdd'T'HHmmssfff'Z'", CultureInfo.InvariantCulture);

    public static RuleVersionDocument Of(RuleVersion v) => new()
    {
        Id = IdFor(v.EffectiveFrom), Programme = CommissionRulesStore.Programme, EffectiveFrom = RuleVersion.Stored(v.EffectiveFrom),
        Level1 = v.Level1, Level2 = v.Level2, SetBy = v.SetBy, SetAt = v.SetAt,
    };

    public RuleVersion ToVersion() => new(EffectiveFrom, Level1, Level2, SetBy, SetAt);
}

/// <summary>
/// The shape before issue 11: one document (id "commission-rules", container "commission-rules", partitioned
/// by /id) holding every version. Read once per instance to copy its versions into their own documents.
/// </summary>
public sealed record LegacyCommissionRules
{
    public const string Container = "commission-rules";
    public const string DocumentId = "commission-rules";

    public IReadOnlyList<RuleVersion> Versions { get; init; } = [];
    /// <summary>Set once its versions are copied: later instances skip the copy.</summary>
    public DateTimeOffset? MigratedAt { get; init; }
}

/// <summary>
/// Container "commission-rule-versions", partitioned by /programme: one document per version, all in the
/// programme's one logical partition (a version is a few KB: millions fit in its 20 GB), so "the version in
/// force at t" is a query in one partition.
///
/// Settlement asks on every attributed payment, so the answer is held per instance (<see cref="InForceAtAsync"/>):
/// versions in force are immutable, and a new version can only take effect from the moment it is set, so
/// what an instance read at time q is exact, for good, for every payment made before q. A payment made
/// after the instance last looked costs one small query (the versions that take effect from q on: usually
/// none); every other payment none. Under load one look answers every payment made before it, so the rules
/// cost nothing per payment; nothing read per payment grows with the number of versions.
/// </summary>
public sealed class CommissionRulesStore(Database database, TimeProvider time, ILogger<CommissionRulesStore>? logger = null)
{
    public static readonly ContainerSpec Spec = new("commission-rule-versions", "/programme", ["/level1/*", "/level2/*", "/\"_etag\"/?"]);
    /// <summary>The distribution programme: one today. Every version lives in its partition.</summary>
    public const string Programme = "default";
    /// <summary>Versions read per page when looking back from the newest (cold start, or a payment older than anything held).</summary>
    private const int BackfillPage = 8;

    private readonly Container container = database.GetContainer(Spec.Name);
    private readonly Container legacy = database.GetContainer(LegacyCommissionRules.Container);
    private readonly PartitionKey partition = new(Programme);
    private readonly ILogger log = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger<CommissionRulesStore>.Instance;
    private readonly SemaphoreSlim looking = new(1, 1); // one look at a time; it answers everyone waiting
    private readonly Lock migrating = new();
    private Timeline? timeline; // replaced whole, never mutated, only while holding `looking`
    private Task? migrated;

    /// <summary>
    /// What this instance knows: <see cref="Versions"/> (ascending) holds every version with EffectiveFrom in
    /// [<see cref="Floor"/>, <see cref="Horizon"/>) and the one in force at Floor (Floor null: from the
    /// beginning), and no other version will ever take effect in that interval (versions take effect from the
    /// moment they are set, never before). Versions from Horizon on are held too but may still change.
    /// </summary>
    private sealed record Timeline(ImmutableArray<RuleVersion> Versions, DateTimeOffset? Floor, DateTimeOffset Horizon)
    {
        /// <summary>Whether the answer for <paramref name="instant"/> is exact; a clock set back makes the horizon now.</summary>
        public bool Covers(DateTimeOffset instant, DateTimeOffset now)
            => (Floor is null || instant >= Floor) && instant < (Horizon < now ? Horizon : now);
    }

    /// <summary>
    /// The version in force at <paramref name="instant"/>, from what this instance holds when that is exact,
    /// else after one look at the database (shared by every payment waiting for it).
    /// </summary>
    public async Task<RuleVersion?> InForceAtAsync(DateTimeOffset instant, CancellationToken ct)
    {
        if (Volatile.Read(ref timeline) is { } held && held.Covers(instant, time.GetUtcNow()))
            return RuleVersion.InForceAt(held.Versions, instant);
        await looking.WaitAsync(ct);
        try
        {
            var known = timeline;
            if (known is null || !known.Covers(instant, time.GetUtcNow()))
            {
                await EnsureMigratedAsync(ct);
                known = known is null || (known.Floor is { } floor && instant < floor)
                    ? await LookBackAsync(known, instant, ct)
                    : await LookAheadAsync(known, ct);
                Volatile.Write(ref timeline, known);
            }
            // A payment dated after this very look (the order system's clock ahead) gets the freshest answer there is.
            return RuleVersion.InForceAt(known.Versions, instant);
        }
        finally
        {
            looking.Release();
        }
    }

    /// <summary>Every version, ascending (operators' view; not on the payment path).</summary>
    public async Task<List<RuleVersion>> ListAsync(CancellationToken ct)
    {
        await EnsureMigratedAsync(ct);
        var query = new QueryDefinition("SELECT * FROM c WHERE c.programme = @programme").WithParameter("@programme", Programme);
        var versions = await ReadAsync(query, maxItemCount: null, stop: null, ct);
        return versions.OrderBy(v => v.EffectiveFrom).ToList();
    }

    /// <summary>The version taking effect at <paramref name="effectiveFrom"/>, or null: one point read (the audit trail's view of a version).</summary>
    public async Task<RuleVersion?> FindVersionAsync(DateTimeOffset effectiveFrom, CancellationToken ct)
    {
        await EnsureMigratedAsync(ct);
        return (await container.ReadOrNullAsync<RuleVersionDocument>(RuleVersionDocument.IdFor(effectiveFrom), Programme, ct))?.Resource.ToVersion();
    }

    /// <summary>
    /// Writes <paramref name="version"/> (replacing a not-yet-effective one with the same effectiveFrom). An
    /// upsert of a document named by its instant: sent twice, it writes the same document twice.
    /// </summary>
    public async Task SaveAsync(RuleVersion version, CancellationToken ct)
    {
        await EnsureMigratedAsync(ct);
        await container.UpsertItemAsync(RuleVersionDocument.Of(version), partition,
            new ItemRequestOptions { EnableContentResponseOnWrite = false }, ct);
        // This instance may have looked past the new version's instant (a test clock that stands still; or
        // effectiveFrom = now within the same tick): its next payment from there on looks again.
        var effective = RuleVersion.Stored(version.EffectiveFrom);
        await looking.WaitAsync(CancellationToken.None); // the version is written: this instance must not miss it

        try
        {
            if (timeline is { } known && known.Horizon > effective)
                Volatile.Write(ref timeline, known with { Horizon = effective });
        }
        finally
        {
            looking.Release();
        }
    }

    /// <summary>
    /// Cold start, or a payment older than anything held: reads versions newest first, a page at a time, until
    /// the one in force at <paramref name="instant"/> (usually the first page: the versions still to come and
    /// the one in force). Joined below what is already held, which stays valid up to its horizon.
    /// </summary>
    private async Task<Timeline> LookBackAsync(Timeline? known, DateTimeOffset instant, CancellationToken ct)
    {
        var sent = time.GetUtcNow();
        var sql = "SELECT * FROM c WHERE c.programme = @programme"
                  + (known?.Floor is null ? "" : " AND c.effectiveFrom < @floor") + " ORDER BY c.effectiveFrom DESC";
        var query = new QueryDefinition(sql).WithParameter("@programme", Programme);
        if (known?.Floor is { } floor) query = query.WithParameter("@floor", UtcInstantConverter.Text(floor));
        var read = await ReadAsync(query, BackfillPage, stop: v => v.EffectiveFrom <= instant, ct);
        var inForce = read.Count > 0 && read[^1].EffectiveFrom <= instant ? read[^1] : null;
        var versions = read.Concat(known?.Versions ?? []).DistinctBy(v => v.EffectiveFrom).OrderBy(v => v.EffectiveFrom).ToImmutableArray();
        return new Timeline(versions, inForce?.EffectiveFrom, known?.Horizon ?? sent);
    }

    /// <summary>
    /// A payment made after this instance last looked: reads the versions taking effect from that look on
    /// (scheduled ones, and any set since; usually none). Everything before it is exact and kept.
    /// </summary>
    private async Task<Timeline> LookAheadAsync(Timeline known, CancellationToken ct)
    {
        var sent = time.GetUtcNow();
        var from = RuleVersion.Stored(known.Horizon < sent ? known.Horizon : sent);
        var query = new QueryDefinition("SELECT * FROM c WHERE c.programme = @programme AND c.effectiveFrom >= @from")
            .WithParameter("@programme", Programme).WithParameter("@from", UtcInstantConverter.Text(from));
        var read = await ReadAsync(query, maxItemCount: null, stop: null, ct);
        var versions = known.Versions.Where(v => v.EffectiveFrom < from).Concat(read).OrderBy(v => v.EffectiveFrom).ToImmutableArray();
        return known with { Versions = versions, Horizon = sent };
    }

    /// <summary>Results of <paramref name="query"/> in the programme's partition, until one satisfies <paramref name="stop"/> (null: all).</summary>
    private async Task<List<RuleVersion>> ReadAsync(QueryDefinition query, int? maxItemCount, Func<RuleVersion, bool>? stop, CancellationToken ct)
    {
        var versions = new List<RuleVersion>();
        // A version that cannot be read must not be skipped (a payment would meet the wrong rates): it throws.
        using var iterator = container.GetItemQueryIterator<RuleVersionDocument>(query, requestOptions: new QueryRequestOptions
        {
            PartitionKey = partition, MaxItemCount = maxItemCount, EnableOptimisticDirectExecution = true,
        });
        while (iterator.HasMoreResults)
        {
            foreach (var document in await iterator.ReadNextAsync(ct))
            {
                var version = document.ToVersion();
                versions.Add(version);
                if (stop?.Invoke(version) == true) return versions;
            }
        }
        return versions;
    }

    /// <summary>Copies the versions of the pre-issue-11 single document, once per instance (see <see cref="MigrateAsync"/>).</summary>
    private Task EnsureMigratedAsync(CancellationToken ct)
    {
        lock (migrating)
        {
            // A failed attempt (the database busy) is tried again by the next caller.
            if (migrated is null || migrated.IsFaulted || migrated.IsCanceled) migrated = MigrateAsync(ct);
            return migrated;
        }
    }

    /// <summary>
    /// The migration from the single document: where a "commission-rules" container with the old document
    /// exists (environments deployed before issue 11), each of its versions is created as its own document
    /// unless one with its instant exists (a retry, another instance, or a newer setting of a version still to
    /// come), then the old document is marked migrated so later instances stop at one read. The old document is
    /// kept, unchanged otherwise, so a rollback to the previous release still finds its rules. Where the
    /// container does not exist (every environment deployed since), the read answers 404 and nothing happens.
    /// </summary>
    private async Task MigrateAsync(CancellationToken ct)
    {
        var old = await legacy.ReadOrNullAsync<LegacyCommissionRules>(LegacyCommissionRules.DocumentId, LegacyCommissionRules.DocumentId, ct);
        if (old is null || old.Resource.MigratedAt is not null) return;
        foreach (var version in old.Resource.Versions)
            await container.TryCreateAsync(RuleVersionDocument.Of(version), Programme, ct);
        await legacy.PatchItemAsync<LegacyCommissionRules>(LegacyCommissionRules.DocumentId, new PartitionKey(LegacyCommissionRules.DocumentId),
            [PatchOperation.Set("/migratedAt", UtcInstantConverter.Text(time.GetUtcNow()))],
            new PatchItemRequestOptions { EnableContentResponseOnWrite = false }, ct);
        log.CommissionRulesMigrated(old.Resource.Versions.Count);
    }
}
