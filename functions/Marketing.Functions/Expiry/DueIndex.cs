using System.Collections.Concurrent;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Text;
using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.Options;
using Marketing.Functions.Telemetry;

namespace Marketing.Functions.Expiry;

/// <summary>
/// Something that falls due at <see cref="DueAt"/>, filed under the UTC hour it falls in and one of that hour's
/// shards (<see cref="Bucket"/>, the partition key), so a timer reads only the hours that have come, never the
/// whole database, and no hour is one partition for the whole platform.
/// Each timer has its own track (<see cref="DueIndex.Expiry"/>, <see cref="DueIndex.Release"/>): the bucket of an
/// entry is "track:hour:shard", e.g. "expiry:2026-11-22T10:7", and the track's table of contents is "track:buckets".
/// Kinds:
/// - "coupons" (expiry): the coupons of campaign <see cref="CampaignId"/> that expire at <see cref="DueAt"/>. Coupons of
///   a campaign claimed on the same local day (relative validity) or at all (absolute) expire at the same
///   instant, so one entry stands for all of them and a claim writes it once per instance, not per coupon.
/// - "lock" (expiry): the lock of order <see cref="OrderId"/>, which lapses at <see cref="DueAt"/> unless confirmed (written
///   by the previous release only; still worked).
/// - "commissions" (release): ledger entries (<see cref="Items"/>) of one order event that become available at <see cref="DueAt"/>.
/// - "reminders" (reminders): expiry reminders of customer <see cref="CustomerId"/> held back by quiet hours or the daily cap
///   (<see cref="Reminders"/>), sent at <see cref="DueAt"/> (Notifications/SendReminders.cs).
/// - "bucket": in the track's "buckets" partition, one per bucket (hour and shard) that holds entries; the timer's
///   table of contents. Its id is the bucket's partition ("expiry:2026-11-22T10:7").
/// Done entries and closed buckets carry a Cosmos "ttl" (<see cref="DueIndexOptions.DoneRetentionDays"/>): Cosmos
/// deletes them that long after they were finished. Open ones never carry one.
/// </summary>
public sealed record DueEntry
{
    public const string Coupons = "coupons";
    public const string Lock = "lock";
    public const string Commissions = "commissions";
    public const string HeldReminders = "reminders";
    public const string BucketKind = "bucket";

    public required string Id { get; init; }
    public required string Bucket { get; init; }
    public required string Type { get; init; }
    public required DateTimeOffset DueAt { get; init; }
    public string? CampaignId { get; init; }
    public string? OrderId { get; init; }
    public IReadOnlyList<DueItem>? Items { get; init; }
    public string? CustomerId { get; init; }
    public IReadOnlyList<Notifications.DueReminder>? Reminders { get; init; }
    public bool Done { get; init; }
    public DateTimeOffset? DoneAt { get; init; }
}

/// <summary>
/// What a timer's run through its track read, and what it must leave for the next run. Buckets and entries are
/// worked in parallel: change the counts (here and in derived reports) only under <c>lock (run)</c>.
/// </summary>
public record DueRun : ITimerReport
{
    public int BucketsRead { get; set; }
    /// <summary>Query pages read: of the track's bucket list and of the buckets' entries (each at most TimerOptions.PageSize).</summary>
    public int PagesRead { get; set; }
    public int EntriesRead { get; set; }
    /// <summary>The run's time ran out with work left: the next run finds it (nothing left is marked done).</summary>
    public bool Stopped { get; set; }
    public List<string> Failures { get; } = [];

    /// <summary>Entries the run read due and left not done (not taken when its time ran out, failed, or not finished), and the oldest's dueAt.</summary>
    public Backlog Backlog { get; } = new();

    bool ITimerReport.Failed => Failures.Count > 0;

    Backlog? ITimerReport.Backlog => Backlog;

    public void Failed(string failure)
    {
        lock (this) Failures.Add(failure);
    }
}

/// <summary>A document an entry stands for: its partition key and id.</summary>
public sealed record DueItem(string PartitionKey, string Id);

public sealed class DueIndexOptions
{
    public const string Section = "DueIndex";

    /// <summary>
    /// Days a done entry (or a closed bucket) is kept before Cosmos deletes it (its "ttl"). Nothing reads a done
    /// entry again; this is for operators looking into a run after a weekend, and far longer than two runs overlap.
    /// </summary>
    [Range(1, 90)]
    public int DoneRetentionDays { get; set; } = 3;
}

/// <summary>
/// Container "due", partitioned by /bucket: a track, UTC hour and shard such as "expiry:2026-11-22T10:7", or
/// "expiry:buckets" for the track's list of buckets. Writers file an entry before the thing it points to exists,
/// so a crash can leave an entry with nothing behind it (the timer shrugs) but never a coupon or lock the timer
/// cannot find.
/// Each hour is spread over <see cref="Shards"/> logical partitions (the shard is a stable hash of the entry's id),
/// so the writes of one hour, every lock and paid order event of the platform, are not capped by one partition.
/// The timer reads whatever buckets the list names, so buckets of the unsharded shape ("expiry:2026-11-22T10",
/// written before sharding) are read and closed the same way, with no migration.
/// </summary>
public sealed class DueIndex(Database database, IOptions<DueIndexOptions>? options = null, IOptions<TimerOptions>? timerOptions = null)
{
    private readonly TimerOptions timers = timerOptions?.Value ?? new TimerOptions();

    // Not indexed: the ledger entry ids a "commissions" entry carries. Timers query on bucket, done and dueAt only.
    // TTL on with no default: only done entries and closed buckets expire (their own "ttl").
    public static readonly ContainerSpec Spec = new("due", "/bucket", ["/items/*", "/reminders/*", "/\"_etag\"/?"], DefaultTtl: -1);

    /// <summary>
    /// Shards per hour and track. 16 partitions of ~1,000 writes/s each: far beyond the lock and payment rates this
    /// platform is sized for (docs/scale.md). Changing it is safe at any time: readers follow the bucket list, and a
    /// write repeated under another count lands as a second entry whose effects are all filtered (done once).
    /// </summary>
    public const int Shards = 16;

    /// <summary>
    /// Buckets a run reads at once: enough to overlap their queries and keep <see cref="TimerOptions.Parallelism"/>
    /// entries in work when buckets are small, few enough that the pages held stay small (each reader holds one).
    /// </summary>
    public const int BucketParallelism = 4;

    private readonly Container container = database.GetContainer(Spec.Name);

    /// <summary>Seconds a done entry or closed bucket stays (Cosmos "ttl": a nonzero positive integer).</summary>
    public int DoneTtlSeconds { get; } = checked((options?.Value ?? new DueIndexOptions()).DoneRetentionDays * 86_400);

    /// <summary>Entries this instance has already written (writes are create-if-absent, so this only saves round trips).</summary>
    private readonly ConcurrentDictionary<string, Lazy<Task>> written = new();

    /// <summary>The track of ExpireCoupons: coupon expiry and lapsing locks.</summary>
    public const string Expiry = "expiry";
    /// <summary>The track of ReleaseCommissions: commissions whose holding period ends.</summary>
    public const string Release = "release";
    /// <summary>The track of SendReminders: reminders held back until quiet hours end or the next local day.</summary>
    public const string Reminders = "reminders";

    /// <summary>The track's hour of <paramref name="instant"/>, e.g. "expiry:2026-11-22T10": also the bucket of the unsharded shape.</summary>
    public static string HourOf(string track, DateTimeOffset instant)
        => track + ":" + instant.UtcDateTime.ToString("yyyy-MM-dd'T'HH", CultureInfo.InvariantCulture);

    /// <summary>The bucket (partition) of the entry <paramref name="entryId"/> due at <paramref name="instant"/>: "track:hour:shard".</summary>
    public static string BucketOf(string track, DateTimeOffset instant, string entryId)
        => HourOf(track, instant) + ":" + ShardOf(entryId).ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// The entry's shard: FNV-1a of its id's UTF-8 bytes, mod <see cref="Shards"/>. Stable across processes and
    /// releases (never string.GetHashCode), so a repeated write of an entry lands where the first one did.
    /// </summary>
    public static int ShardOf(string entryId) => (int)(StableHash.Fnv1a(entryId) % Shards);

    private static string BucketsOf(string track) => track + ":buckets";

    private static DateTimeOffset HourStart(DateTimeOffset instant)
        => new(instant.UtcDateTime.Year, instant.UtcDateTime.Month, instant.UtcDateTime.Day, instant.UtcDateTime.Hour, 0, 0, TimeSpan.Zero);

    /// <summary>Files "the coupons of this campaign expiring at this instant" (once per instance).</summary>
    public Task EnsureCouponExpiryAsync(string campaignId, DateTimeOffset validTo)
    {
        var id = $"{DueEntry.Coupons}:{campaignId}:{UtcInstantConverter.Text(validTo)}";
        var entry = new DueEntry
        {
            Id = id, Bucket = BucketOf(Expiry, validTo, id), Type = DueEntry.Coupons, DueAt = validTo, CampaignId = campaignId,
        };
        return Once(entry.Id, async () =>
        {
            await EnsureBucketAsync(Expiry, entry);
            await CreateIfAbsentAsync(entry);
        });
    }

    /// <summary>
    /// Files the lapse of an order's lock (one entry per lock), as the previous release did for every lock. Locks no
    /// longer file one (the timer finds lapsed locks by a wallet query, Expiry/LapsedLocks.cs); entries already filed
    /// are still worked until none are left, and tests file them to prove it.
    /// </summary>
    public async Task AddLockExpiryAsync(string orderId, DateTimeOffset lockedUntil)
    {
        var id = $"{DueEntry.Lock}:{orderId}";
        var entry = new DueEntry { Id = id, Bucket = BucketOf(Expiry, lockedUntil, id), Type = DueEntry.Lock, DueAt = lockedUntil, OrderId = orderId };
        await EnsureBucketAsync(Expiry, entry);
        await CreateIfAbsentAsync(entry);
    }

    /// <summary>Files ledger entries that become available at <paramref name="availableAt"/> (one entry per order event).</summary>
    public async Task AddCommissionReleaseAsync(string key, DateTimeOffset availableAt, IReadOnlyList<DueItem> items)
    {
        var id = $"{DueEntry.Commissions}:{key}";
        var entry = new DueEntry
        {
            Id = id, Bucket = BucketOf(Release, availableAt, id), Type = DueEntry.Commissions, DueAt = availableAt, Items = items,
        };
        await EnsureBucketAsync(Release, entry);
        await CreateIfAbsentAsync(entry);
    }

    /// <summary>
    /// Files reminders of one customer held back until <paramref name="at"/> (quiet hours, the daily cap) in the one
    /// entry of that customer and instant: everything held for the same instant is decided, and bundled, together.
    /// A hold filed twice (an overlapping run, a rerun) adds nothing the entry already holds. Bounded by the customer's
    /// reminders falling due before that instant (at most three per coupon).
    /// </summary>
    public async Task HoldRemindersAsync(string customerId, DateTimeOffset at, IReadOnlyList<Notifications.DueReminder> reminders, CancellationToken ct)
    {
        var id = "held:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(
            Encoding.UTF8.GetBytes(customerId + "\n" + UtcInstantConverter.Text(at))))[..40];
        var entry = new DueEntry
        {
            Id = id, Bucket = BucketOf(Reminders, at, id), Type = DueEntry.HeldReminders, DueAt = at, CustomerId = customerId,
            Reminders = [.. reminders.DistinctBy(Notifications.ReminderMark.IdOf)],
        };
        await EnsureBucketAsync(Reminders, entry);
        if (await container.TryCreateAsync(entry, entry.Bucket, ct)) return;
        // Held before for this instant: add what is new to it, on its etag (another run may be adding too).
        for (var attempt = 0; attempt < 10; attempt++)
        {
            var stored = await container.ReadOrNullAsync<DueEntry>(id, entry.Bucket, ct);
            if (stored is null)
            {
                if (await container.TryCreateAsync(entry, entry.Bucket, ct)) return;
                continue;
            }
            var held = stored.Resource.Reminders ?? [];
            var added = entry.Reminders.Where(r => !held.Any(h => Notifications.ReminderMark.IdOf(h) == Notifications.ReminderMark.IdOf(r))).ToList();
            if (added.Count == 0) return;
            if (stored.Resource.Done)
            {
                // Worked already (only an instance whose clock runs behind holds for an instant that has come): a new
                // entry named by what it holds, so the reminders are not lost.
                var again = entry with { Id = id + ":" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(
                    string.Join("\n", added.Select(Notifications.ReminderMark.IdOf).Order(StringComparer.Ordinal)))))[..16], Reminders = added };
                again = again with { Bucket = BucketOf(Reminders, at, again.Id) };
                await EnsureBucketAsync(Reminders, again);
                await container.TryCreateAsync(again, again.Bucket, ct);
                return;
            }
            if (await container.TrySaveAsync(stored.Resource with { Reminders = [.. held, .. added] }, entry.Bucket, stored.ETag, ct)) return;
        }
        throw new InvalidOperationException("Holding reminders: the customer's entry kept changing.");
    }

    /// <summary>
    /// The expiry track's "coupons" entries whose instant lies in (<paramref name="after"/>, <paramref name="until"/>]:
    /// the campaigns and instants whose coupons may owe a reminder. Reads the table of contents for those hours, then
    /// each listed bucket (a page at a time); never a bucket outside the range.
    /// </summary>
    public async IAsyncEnumerable<DueEntry> CouponExpiriesAsync(DateTimeOffset after, DateTimeOffset until,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        // A bucket's dueAt is its hour's start: the hour holding "after" starts up to an hour before it.
        var buckets = new List<string>();
        var toc = new QueryDefinition("SELECT VALUE c.id FROM c WHERE c.bucket = @toc AND c.dueAt > @from AND c.dueAt <= @until")
            .WithParameter("@toc", BucketsOf(Expiry)).WithParameter("@from", UtcInstantConverter.Text(after - TimeSpan.FromHours(1)))
            .WithParameter("@until", UtcInstantConverter.Text(until));
        using (var pages = container.GetItemQueryIterator<string>(toc, requestOptions: SinglePartition(BucketsOf(Expiry))))
            while (pages.HasMoreResults) buckets.AddRange(await pages.ReadNextAsync(ct));
        foreach (var bucket in buckets)
        {
            var query = new QueryDefinition("SELECT * FROM c WHERE c.bucket = @bucket AND c.type = @type AND c.dueAt > @after AND c.dueAt <= @until")
                .WithParameter("@bucket", bucket).WithParameter("@type", DueEntry.Coupons)
                .WithParameter("@after", UtcInstantConverter.Text(after)).WithParameter("@until", UtcInstantConverter.Text(until));
            using var pages = container.GetItemQueryIterator<DueEntry>(query, requestOptions: SinglePartition(bucket));
            while (pages.HasMoreResults)
                foreach (var entry in await pages.ReadNextAsync(ct))
                    yield return entry;
        }
    }

    private QueryRequestOptions SinglePartition(string bucket) => new()
    {
        PartitionKey = new PartitionKey(bucket), MaxItemCount = timers.PageSize, EnableOptimisticDirectExecution = true,
    };

    /// <summary>Lists the entry's bucket in the track's table of contents (once per instance and bucket).</summary>
    private Task EnsureBucketAsync(string track, DueEntry entry)
        => Once("bucket:" + entry.Bucket, () => CreateIfAbsentAsync(new DueEntry
        {
            Id = entry.Bucket, Bucket = BucketsOf(track), Type = DueEntry.BucketKind, DueAt = HourStart(entry.DueAt),
        }));

    private async Task Once(string key, Func<Task> write)
    {
        var lazy = written.GetOrAdd(key, _ => new Lazy<Task>(write));
        try
        {
            await lazy.Value;
        }
        catch
        {
            // Forget a failed write, so the next caller tries again.
            written.TryRemove(KeyValuePair.Create(key, lazy));
            throw;
        }
    }

    // Not the caller's token: the entry is shared by every request waiting on it.
    private Task CreateIfAbsentAsync(DueEntry entry) => container.TryCreateAsync(entry, entry.Bucket, CancellationToken.None);

    /// <summary>
    /// Does <paramref name="work"/> for every entry of <paramref name="track"/> that is due by <paramref name="now"/>,
    /// until <paramref name="deadline"/>. Reads only the buckets whose hour has begun and that still hold open entries,
    /// the list and each bucket a page (<see cref="TimerOptions.PageSize"/>) at a time, <see cref="BucketParallelism"/>
    /// buckets at once; entries of every bucket in reading are worked in parallel, <see cref="TimerOptions.Parallelism"/>
    /// at once (<see cref="DueWork"/>), so the run holds a few pages and the entries in work, never a whole hour.
    /// <para>
    /// <paramref name="work"/> answers whether it finished the entry: an entry is marked done only after its work
    /// finished, so an interrupted or stopped run is finished by the next one. The deadline is checked before each page
    /// and each entry is taken: once it has passed nothing new is taken, the work in hand finishes, and the rest stays
    /// as it was (not done), found by the next run exactly as this one would have found it. A bucket whose hour is over
    /// and whose entries are all done is closed, so later runs do not read it again; never after a stop or a failure.
    /// One entry's failure is reported and does not stop the rest.
    /// </para>
    /// </summary>
    public async Task RunAsync(string track, DateTimeOffset now, DueRun run, Func<DueEntry, DueWork, Task<bool>> work, RunDeadline deadline,
        CancellationToken ct)
    {
        var limits = new DueWork(timers.Parallelism, deadline, ct);
        await Parallel.ForEachAsync(OpenBucketsAsync(track, now, run, deadline, ct),
            new ParallelOptions { MaxDegreeOfParallelism = BucketParallelism, CancellationToken = ct },
            (bucket, _) => new ValueTask(RunBucketAsync(bucket, now, run, work, limits)));
        if (deadline.Stopped) run.Stopped = true;
    }

    /// <summary>The track's open, begun buckets, a page at a time (taken only while the run has time).</summary>
    private async IAsyncEnumerable<DueEntry> OpenBucketsAsync(string track, DateTimeOffset now, DueRun run, RunDeadline deadline,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        using var pages = DueQuery(BucketsOf(track), now);
        while (pages.HasMoreResults && deadline.TakeMore())
        {
            var page = await pages.ReadNextAsync(ct);
            lock (run) run.PagesRead++;
            foreach (var bucket in page) yield return bucket;
        }
    }

    private async Task RunBucketAsync(DueEntry bucket, DateTimeOffset now, DueRun run, Func<DueEntry, DueWork, Task<bool>> work, DueWork limits)
    {
        var ct = limits.Token;
        var progress = new BucketProgress();
        var read = false;
        var complete = true; // every page read and every entry taken
        using (var pages = DueQuery(bucket.Id, now))
        {
            while (complete && pages.HasMoreResults)
            {
                if (!limits.TakeMore())
                {
                    complete = false;
                    break;
                }
                var page = await pages.ReadNextAsync(ct);
                lock (run)
                {
                    if (!read) run.BucketsRead++;
                    run.PagesRead++;
                    run.EntriesRead += page.Count;
                }
                read = true;
                List<DueEntry> entries = [.. page];
                for (var i = 0; i < entries.Count; i++)
                {
                    var entry = entries[i];
                    // Taken when fewer than Parallelism entries are in work, and only if the run still has time then;
                    // not awaited here, so the next page is read while this one is worked.
                    await limits.Entries.WaitAsync(ct);
                    if (!limits.TakeMore())
                    {
                        limits.Entries.Release();
                        complete = false;
                        // Read due and not taken: the run's backlog (what it never read it cannot count).
                        foreach (var left in entries.Skip(i)) run.Backlog.Left(left.DueAt);
                        break;
                    }
                    progress.Started();
                    _ = RunEntryAsync(entry, now, run, work, limits, progress);
                }
            }
        }
        var allDone = await progress.AllFinishedAsync();
        ct.ThrowIfCancellationRequested();
        if (read && complete && allDone && bucket.DueAt.AddHours(1) <= now)
            await MarkDoneAsync(bucket, now, ct);
    }

    /// <summary>One entry: its work, then its done mark. Never throws: the outcome goes to <paramref name="progress"/>.</summary>
    private async Task RunEntryAsync(DueEntry entry, DateTimeOffset now, DueRun run, Func<DueEntry, DueWork, Task<bool>> work, DueWork limits,
        BucketProgress progress)
    {
        var done = false;
        try
        {
            // Not done when the run's time ran out part way through the entry's own pages: left for the next run.
            if (await work(entry, limits))
            {
                await MarkDoneAsync(entry, now, limits.Token);
                done = true;
            }
        }
        catch (Exception e) when (!limits.Token.IsCancellationRequested) // our call deadline is an OperationCanceledException too: one failure, not the run's end
        {
            // Left not done: the next run tries it again.
            run.Failed($"{entry.Id}: failed ({Failure.Of(e)})");
        }
        catch (Exception)
        {
            // The run is cancelled: the bucket's reader throws once every entry in work has stopped.
        }
        finally
        {
            if (!done) run.Backlog.Left(entry.DueAt);
            limits.Entries.Release();
            progress.Finished(done);
        }
    }

    /// <summary>Entries of one bucket in work, and whether all that finished were done.</summary>
    private sealed class BucketProgress
    {
        private readonly TaskCompletionSource finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int pending = 1; // the reader's own, given up in AllFinishedAsync
        private int notDone;

        public void Started() => Interlocked.Increment(ref pending);

        public void Finished(bool done)
        {
            if (!done) Interlocked.Increment(ref notDone);
            if (Interlocked.Decrement(ref pending) == 0) finished.TrySetResult();
        }

        /// <summary>Waits for every entry started; true when each of them was done.</summary>
        public async Task<bool> AllFinishedAsync()
        {
            Finished(true);
            await finished.Task;
            return Volatile.Read(ref notDone) == 0;
        }
    }

    // "done = false": a done entry is never read as due again, also while it waits for its ttl to delete it
    // (and on the local emulator, which does not delete expired items at all). Paged by continuation: Cosmos DB
    // resumes a single-partition query after the last item it returned (by its _rid), so entries marked done
    // while later pages are read are neither skipped nor returned twice.
    private FeedIterator<DueEntry> DueQuery(string bucket, DateTimeOffset now)
    {
        var query = new QueryDefinition("SELECT * FROM c WHERE c.bucket = @bucket AND c.done = false AND c.dueAt <= @now")
            .WithParameter("@bucket", bucket).WithParameter("@now", UtcInstantConverter.Text(now));
        return container.GetItemQueryIterator<DueEntry>(query, requestOptions: new QueryRequestOptions
        {
            PartitionKey = new PartitionKey(bucket),
            MaxItemCount = timers.PageSize,
            EnableOptimisticDirectExecution = true,
        });
    }

    /// <summary>
    /// Marks an entry (or a bucket) done, in the same patch as its "ttl": from now on it is only kept for
    /// <see cref="DueIndexOptions.DoneRetentionDays"/>. Doing it twice is harmless (it only moves the deletion on).
    /// </summary>
    public Task MarkDoneAsync(DueEntry entry, DateTimeOffset now, CancellationToken ct)
        => container.PatchItemAsync<DueEntry>(entry.Id, new PartitionKey(entry.Bucket),
            [PatchOperation.Set("/done", true), PatchOperation.Set("/doneAt", now), PatchOperation.Set("/ttl", DoneTtlSeconds)],
            new PatchItemRequestOptions { EnableContentResponseOnWrite = false }, ct);
}
