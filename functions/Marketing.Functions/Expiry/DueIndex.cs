using System.Collections.Concurrent;
using System.Globalization;
using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Expiry;

/// <summary>
/// Something that falls due at <see cref="DueAt"/>, filed under the UTC hour it falls in (<see cref="Bucket"/>,
/// the partition key), so a timer reads only the hours that have come, never the whole database.
/// Each timer has its own track (<see cref="DueIndex.Expiry"/>, <see cref="DueIndex.Release"/>): the bucket of an
/// entry is "track:hour", e.g. "expiry:2026-11-22T10", and the track's table of contents is "track:buckets".
/// Kinds:
/// - "coupons" (expiry): the coupons of campaign <see cref="CampaignId"/> that expire at <see cref="DueAt"/>. Coupons of
///   a campaign claimed on the same local day (relative validity) or at all (absolute) expire at the same
///   instant, so one entry stands for all of them and a claim writes it once per instance, not per coupon.
/// - "lock" (expiry): the lock of order <see cref="OrderId"/>, which lapses at <see cref="DueAt"/> unless confirmed.
/// - "commissions" (release): ledger entries (<see cref="Items"/>) of one order event that become available at <see cref="DueAt"/>.
/// - "bucket": in the track's "buckets" partition, one per hour that holds entries; the timer's table of
///   contents. Its id is the hour's partition ("expiry:2026-11-22T10").
/// </summary>
public sealed record DueEntry
{
    public const string Coupons = "coupons";
    public const string Lock = "lock";
    public const string Commissions = "commissions";
    public const string BucketKind = "bucket";

    public required string Id { get; init; }
    public required string Bucket { get; init; }
    public required string Type { get; init; }
    public required DateTimeOffset DueAt { get; init; }
    public string? CampaignId { get; init; }
    public string? OrderId { get; init; }
    public IReadOnlyList<DueItem>? Items { get; init; }
    public bool Done { get; init; }
    public DateTimeOffset? DoneAt { get; init; }
}

/// <summary>What a timer's run through its track read, and what it must leave for the next run.</summary>
public record DueRun
{
    public int BucketsRead { get; set; }
    public int EntriesRead { get; set; }
    public List<string> Failures { get; } = [];
}

/// <summary>A document an entry stands for: its partition key and id.</summary>
public sealed record DueItem(string PartitionKey, string Id);

/// <summary>
/// Container "due", partitioned by /bucket (a track and UTC hour such as "expiry:2026-11-22T10", or
/// "expiry:buckets" for the list of hours). Writers file an entry before the thing it points to exists, so a crash can leave an entry
/// with nothing behind it (the timer shrugs) but never a coupon or lock the timer cannot find.
/// </summary>
public sealed class DueIndex(Database database)
{
    // Not indexed: the ledger entry ids a "commissions" entry carries. Timers query on bucket, done and dueAt only.
    public static readonly ContainerSpec Spec = new("due", "/bucket", ["/items/*", "/\"_etag\"/?"]);

    private readonly Container container = database.GetContainer(Spec.Name);

    /// <summary>Entries this instance has already written (writes are create-if-absent, so this only saves round trips).</summary>
    private readonly ConcurrentDictionary<string, Lazy<Task>> written = new();

    /// <summary>The track of ExpireCoupons: coupon expiry and lapsing locks.</summary>
    public const string Expiry = "expiry";
    /// <summary>The track of ReleaseCommissions: commissions whose holding period ends.</summary>
    public const string Release = "release";

    public static string BucketOf(string track, DateTimeOffset instant)
        => track + ":" + instant.UtcDateTime.ToString("yyyy-MM-dd'T'HH", CultureInfo.InvariantCulture);

    private static string BucketsOf(string track) => track + ":buckets";

    private static DateTimeOffset HourStart(DateTimeOffset instant)
        => new(instant.UtcDateTime.Year, instant.UtcDateTime.Month, instant.UtcDateTime.Day, instant.UtcDateTime.Hour, 0, 0, TimeSpan.Zero);

    /// <summary>Files "the coupons of this campaign expiring at this instant" (once per instance).</summary>
    public Task EnsureCouponExpiryAsync(string campaignId, DateTimeOffset validTo)
    {
        var bucket = BucketOf(Expiry, validTo);
        var entry = new DueEntry
        {
            Id = $"{DueEntry.Coupons}:{campaignId}:{UtcInstantConverter.Text(validTo)}",
            Bucket = bucket, Type = DueEntry.Coupons, DueAt = validTo, CampaignId = campaignId,
        };
        return Once(entry.Id, async () =>
        {
            await EnsureBucketAsync(Expiry, validTo);
            await CreateIfAbsentAsync(entry);
        });
    }

    /// <summary>Files the lapse of an order's lock (one entry per lock).</summary>
    public async Task AddLockExpiryAsync(string orderId, DateTimeOffset lockedUntil)
    {
        await EnsureBucketAsync(Expiry, lockedUntil);
        await CreateIfAbsentAsync(new DueEntry
        {
            Id = $"{DueEntry.Lock}:{orderId}", Bucket = BucketOf(Expiry, lockedUntil), Type = DueEntry.Lock, DueAt = lockedUntil, OrderId = orderId,
        });
    }

    /// <summary>Files ledger entries that become available at <paramref name="availableAt"/> (one entry per order event).</summary>
    public async Task AddCommissionReleaseAsync(string key, DateTimeOffset availableAt, IReadOnlyList<DueItem> items)
    {
        await EnsureBucketAsync(Release, availableAt);
        await CreateIfAbsentAsync(new DueEntry
        {
            Id = $"{DueEntry.Commissions}:{key}", Bucket = BucketOf(Release, availableAt), Type = DueEntry.Commissions,
            DueAt = availableAt, Items = items,
        });
    }

    private Task EnsureBucketAsync(string track, DateTimeOffset instant)
    {
        var bucket = BucketOf(track, instant);
        return Once("bucket:" + bucket, () => CreateIfAbsentAsync(new DueEntry
        {
            Id = bucket, Bucket = BucketsOf(track), Type = DueEntry.BucketKind, DueAt = HourStart(instant),
        }));
    }

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
    /// reading only the hours that have begun and still hold open entries. An entry is marked done only after
    /// its work, so an interrupted run is finished by the next one; an hour that is over and fully done is
    /// closed, so later runs do not read it again. One entry's failure is reported and does not stop the rest.
    /// </summary>
    public async Task RunAsync(string track, DateTimeOffset now, DueRun run, Func<DueEntry, Task> work, CancellationToken ct)
    {
        foreach (var bucket in await ListOpenBucketsAsync(track, now, ct))
        {
            run.BucketsRead++;
            var entries = await ListDueAsync(bucket.Id, now, ct);
            run.EntriesRead += entries.Count;
            var allDone = true;
            foreach (var entry in entries)
            {
                try
                {
                    await work(entry);
                    await MarkDoneAsync(entry, now, ct);
                }
                catch (Exception e) when (!ct.IsCancellationRequested) // our call deadline is an OperationCanceledException too: one failure, not the run's end
                {
                    // Left not done: the next run tries it again.
                    allDone = false;
                    run.Failures.Add($"{entry.Id}: failed ({e.GetType().Name}: {e.Message.Split('\n')[0]})");
                }
            }
            if (allDone && bucket.DueAt.AddHours(1) <= now)
                await MarkDoneAsync(bucket, now, ct);
        }
    }

    /// <summary>Hours of a track that hold entries not yet done and have begun by <paramref name="now"/> (one single-partition query).</summary>
    public Task<List<DueEntry>> ListOpenBucketsAsync(string track, DateTimeOffset now, CancellationToken ct)
        => QueryAsync(BucketsOf(track), now, ct);

    /// <summary>The entries of <paramref name="bucket"/> due by <paramref name="now"/> and not done (one single-partition query).</summary>
    public Task<List<DueEntry>> ListDueAsync(string bucket, DateTimeOffset now, CancellationToken ct)
        => QueryAsync(bucket, now, ct);

    private async Task<List<DueEntry>> QueryAsync(string bucket, DateTimeOffset now, CancellationToken ct)
    {
        var query = new QueryDefinition("SELECT * FROM c WHERE c.bucket = @bucket AND c.done = false AND c.dueAt <= @now")
            .WithParameter("@bucket", bucket).WithParameter("@now", UtcInstantConverter.Text(now));
        var results = new List<DueEntry>();
        using var iterator = container.GetItemQueryIterator<DueEntry>(query, requestOptions: new QueryRequestOptions
        {
            PartitionKey = new PartitionKey(bucket),
            EnableOptimisticDirectExecution = true,
        });
        while (iterator.HasMoreResults)
            results.AddRange(await iterator.ReadNextAsync(ct));
        return results;
    }

    /// <summary>Marks an entry (or a bucket) done; doing it twice is harmless.</summary>
    public Task MarkDoneAsync(DueEntry entry, DateTimeOffset now, CancellationToken ct)
        => container.PatchItemAsync<DueEntry>(entry.Id, new PartitionKey(entry.Bucket),
            [PatchOperation.Set("/done", true), PatchOperation.Set("/doneAt", now)],
            new PatchItemRequestOptions { EnableContentResponseOnWrite = false }, ct);
}
