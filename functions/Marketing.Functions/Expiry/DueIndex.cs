using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Expiry;

/// <summary>
/// Something that falls due at <see cref="DueAt"/>, filed under the UTC hour it falls in (<see cref="Bucket"/>,
/// the partition key), so the expiry timer reads only the hours that have come, never the whole database.
/// Kinds:
/// - "coupons": the coupons of campaign <see cref="CampaignId"/> that expire at <see cref="DueAt"/>. Coupons of
///   a campaign claimed on the same local day (relative validity) or at all (absolute) expire at the same
///   instant, so one entry stands for all of them and a claim writes it once per instance, not per coupon.
/// - "lock": the lock of order <see cref="OrderId"/>, which lapses at <see cref="DueAt"/> unless confirmed.
/// - "bucket": in partition "buckets", one per hour that holds entries; the timer's table of contents.
/// </summary>
public sealed record DueEntry
{
    public const string Coupons = "coupons";
    public const string Lock = "lock";
    public const string BucketKind = "bucket";
    public const string Buckets = "buckets";

    public required string Id { get; init; }
    public required string Bucket { get; init; }
    public required string Type { get; init; }
    public required DateTimeOffset DueAt { get; init; }
    public string? CampaignId { get; init; }
    public string? OrderId { get; init; }
    public bool Done { get; init; }
    public DateTimeOffset? DoneAt { get; init; }
}

/// <summary>
/// Container "due", partitioned by /bucket (a UTC hour such as "2026-11-22T10", or "buckets" for the list
/// of hours). Writers file an entry before the thing it points to exists, so a crash can leave an entry
/// with nothing behind it (the timer shrugs) but never a coupon or lock the timer cannot find.
/// </summary>
public sealed class DueIndex(Database database)
{
    public static readonly ContainerSpec Spec = new("due", "/bucket", ["/\"_etag\"/?"]);

    private readonly Container container = database.GetContainer(Spec.Name);

    /// <summary>Entries this instance has already written (writes are create-if-absent, so this only saves round trips).</summary>
    private readonly ConcurrentDictionary<string, Lazy<Task>> written = new();

    public static string BucketOf(DateTimeOffset instant) => instant.UtcDateTime.ToString("yyyy-MM-dd'T'HH", CultureInfo.InvariantCulture);

    public static DateTimeOffset BucketStart(string bucket)
        => DateTimeOffset.ParseExact(bucket + ":00:00Z", "yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

    /// <summary>Files "the coupons of this campaign expiring at this instant" (once per instance).</summary>
    public Task EnsureCouponExpiryAsync(string campaignId, DateTimeOffset validTo)
    {
        var bucket = BucketOf(validTo);
        var entry = new DueEntry
        {
            Id = $"{DueEntry.Coupons}:{campaignId}:{UtcInstantConverter.Text(validTo)}",
            Bucket = bucket, Type = DueEntry.Coupons, DueAt = validTo, CampaignId = campaignId,
        };
        return Once(entry.Id, async () =>
        {
            await EnsureBucketAsync(bucket);
            await CreateIfAbsentAsync(entry);
        });
    }

    /// <summary>Files the lapse of an order's lock (one entry per lock).</summary>
    public async Task AddLockExpiryAsync(string orderId, DateTimeOffset lockedUntil)
    {
        var bucket = BucketOf(lockedUntil);
        await EnsureBucketAsync(bucket);
        await CreateIfAbsentAsync(new DueEntry
        {
            Id = $"{DueEntry.Lock}:{orderId}", Bucket = bucket, Type = DueEntry.Lock, DueAt = lockedUntil, OrderId = orderId,
        });
    }

    private Task EnsureBucketAsync(string bucket)
        => Once("bucket:" + bucket, () => CreateIfAbsentAsync(new DueEntry
        {
            Id = bucket, Bucket = DueEntry.Buckets, Type = DueEntry.BucketKind, DueAt = BucketStart(bucket),
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

    private async Task CreateIfAbsentAsync(DueEntry entry)
    {
        try
        {
            // Not the caller's token: the entry is shared by every request waiting on it.
            await container.CreateItemAsync(entry, new PartitionKey(entry.Bucket),
                new ItemRequestOptions { EnableContentResponseOnWrite = false }, CancellationToken.None);
        }
        catch (CosmosException e) when (e.StatusCode == HttpStatusCode.Conflict)
        {
        }
    }

    /// <summary>Hours that hold entries not yet done and have begun by <paramref name="now"/> (one single-partition query).</summary>
    public Task<List<DueEntry>> ListOpenBucketsAsync(DateTimeOffset now, CancellationToken ct)
        => QueryAsync(DueEntry.Buckets, now, ct);

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
