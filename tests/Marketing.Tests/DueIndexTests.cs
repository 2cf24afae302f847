using System.Net;
using System.Text.Json.Nodes;
using Marketing.Functions.Expiry;
using Marketing.Functions.Hosting;
using Marketing.Tests.Support;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The due index at its sharded shape: an hour's entries spread over <see cref="DueIndex.Shards"/> partitions
/// (so one hour of the platform's locks and payments is not capped by one partition), a run reads each bucket of a
/// due hour once, a few at a time, and closes it; entries filed in the unsharded shape before the change are read
/// and closed the same way. Each test has its own database: a run reads the whole index.
/// </summary>
public sealed class DueIndexTests
{
    private static Task<TestApp> StartAsync(string name)
    {
        var database = $"{Settings.Get("Cosmos__Database")}-due-{name}-{Guid.NewGuid():N}";
        return TestApp.StartAsync(database[..Math.Min(60, database.Length)]);
    }

    private static Container Container(TestApp app) => app.Services.GetRequiredService<Database>().GetContainer(DueIndex.Spec.Name);

    /// <summary>The stored document, or null when there is none.</summary>
    private static async Task<JsonObject?> ReadAsync(Container container, string id, string bucket)
    {
        using var response = await container.ReadItemStreamAsync(id, new PartitionKey(bucket));
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        response.EnsureSuccessStatusCode();
        return (await JsonNode.ParseAsync(response.Content))!.AsObject();
    }

    [Fact]
    public async Task An_hours_entries_are_spread_over_its_shards_and_a_run_works_each_once_reading_each_shard_once()
    {
        await using var app = await StartAsync("spread");
        var due = app.Services.GetRequiredService<DueIndex>();
        var container = Container(app);
        var hour = new DateTimeOffset(2026, 11, 21, 5, 0, 0, TimeSpan.Zero);
        var orders = Enumerable.Range(0, 320).Select(i => $"o-spread-{i}").ToList();
        await Parallel.ForEachAsync(orders, new ParallelOptions { MaxDegreeOfParallelism = 16 },
            async (order, _) => await due.AddLockExpiryAsync(order, hour.AddSeconds(orders.IndexOf(order))));

        // Each entry is in its own shard of the hour, none in the hour's unsharded partition.
        var perBucket = new Dictionary<string, int>();
        foreach (var order in orders)
        {
            var bucket = DueIndex.BucketOf(DueIndex.Expiry, hour, "lock:" + order);
            Assert.StartsWith("expiry:2026-11-21T05:", bucket);
            Assert.NotNull(await ReadAsync(container, "lock:" + order, bucket));
            Assert.Null(await ReadAsync(container, "lock:" + order, DueIndex.HourOf(DueIndex.Expiry, hour)));
            perBucket[bucket] = perBucket.GetValueOrDefault(bucket) + 1;
        }
        // Spread over every shard, none holding more than twice its share: the hour's writes go to 16 partitions.
        Assert.Equal(DueIndex.Shards, perBucket.Count);
        Assert.True(perBucket.Values.Max() <= 2 * orders.Count / DueIndex.Shards, string.Join(", ", perBucket.Values));

        // Before the hour: nothing is read.
        var early = new DueRun();
        await due.RunAsync(DueIndex.Expiry, hour.AddTicks(-1), early, (_, _) => Task.FromResult(true), RunDeadline.None, CancellationToken.None);
        Assert.Equal((0, 0), (early.BucketsRead, early.EntriesRead));

        // After it: every shard is read once, every entry worked once, Timers:Parallelism entries at once (across the
        // buckets in reading, not one entry of a bucket after another) and never more.
        var parallelism = app.Services.GetRequiredService<IOptions<TimerOptions>>().Value.Parallelism;
        var worked = new List<string>();
        var inFlight = 0;
        var mostInFlight = 0;
        var allBusy = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stuck = new CancellationTokenSource(TimeSpan.FromSeconds(60)); // a failure, not a hang, if parallelism were below the bound
        var run = new DueRun();
        await due.RunAsync(DueIndex.Expiry, hour.AddHours(1), run, async (entry, _) =>
        {
            var now = Interlocked.Increment(ref inFlight);
            lock (worked)
            {
                worked.Add(entry.Id);
                mostInFlight = Math.Max(mostInFlight, now);
            }
            if (now == parallelism) allBusy.TrySetResult();
            await allBusy.Task.WaitAsync(stuck.Token); // the first entries wait until as many as allowed are in work
            Interlocked.Decrement(ref inFlight);
            return true;
        }, RunDeadline.None, CancellationToken.None);

        Assert.True(run.Failures.Count == 0, string.Join("\n", run.Failures));
        Assert.Equal((DueIndex.Shards, orders.Count), (run.BucketsRead, run.EntriesRead));
        Assert.Equal(orders.Select(o => "lock:" + o).Order(), worked.Order());
        Assert.Equal(parallelism, mostInFlight);

        // The hour is over and all done: every shard is closed, and the next run reads nothing.
        foreach (var bucket in perBucket.Keys)
            Assert.Equal(true, (bool?)(await ReadAsync(container, bucket, "expiry:buckets"))!["done"]);
        var next = new DueRun();
        await due.RunAsync(DueIndex.Expiry, hour.AddHours(2), next, (_, _) => throw new InvalidOperationException("worked again"), RunDeadline.None, CancellationToken.None);
        Assert.Equal((0, 0), (next.BucketsRead, next.EntriesRead));
    }

    [Fact]
    public async Task A_lock_filed_in_the_unsharded_shape_before_sharding_is_released_and_its_hour_closed_with_no_migration()
    {
        await using var app = await StartAsync("legacy");
        var container = Container(app);
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow(), t => t["budget"] = 10000));
        var (customer, coupon) = await app.CustomerWithCouponAsync(campaign);
        var orderId = Api.NewId("o");
        var locked = await (await app.OrderSystem().LockAsync(orderId, customer, coupon)).AssertStatusAsync(HttpStatusCode.Created);
        var until = DateTimeOffset.Parse((string)locked["lockedUntil"]!);

        // As the version before sharding filed it: the entry in the hour's one partition, the hour listed by its name.
        // (Locks file no entry any more; the entry is worked first, so the lapsed-lock phase then finds nothing left.)
        var hour = DueIndex.HourOf(DueIndex.Expiry, until);
        var hourStart = new DateTimeOffset(until.Year, until.Month, until.Day, until.Hour, 0, 0, TimeSpan.Zero);
        await container.CreateItemAsync(new JsonObject
        {
            ["id"] = hour, ["bucket"] = "expiry:buckets", ["type"] = "bucket", ["dueAt"] = UtcInstantConverter.Text(hourStart), ["done"] = false,
        }, new PartitionKey("expiry:buckets"));
        await container.CreateItemAsync(new JsonObject
        {
            ["id"] = "lock:" + orderId, ["bucket"] = hour, ["type"] = "lock", ["dueAt"] = UtcInstantConverter.Text(until), ["orderId"] = orderId, ["done"] = false,
        }, new PartitionKey(hour));

        app.Clock.Set(hourStart.AddHours(1));
        var run = (await app.InvokeTimerAsync("ExpireCoupons"))["ReturnValue"]!;

        Assert.Equal(1, (int)run["LocksReleased"]!);
        Assert.Equal("available", await app.CouponStatusAsync(customer, coupon));
        var record = await (await app.OrderSystem().GetAsync($"/api/redemptions/{orderId}")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("cancelled", (string?)record["state"]);
        // The old entry and its hour are done (and will expire like the new shape's); later runs do not read them.
        Assert.Equal(true, (bool?)(await ReadAsync(container, "lock:" + orderId, hour))!["done"]);
        var closed = (await ReadAsync(container, hour, "expiry:buckets"))!;
        Assert.Equal(true, (bool?)closed["done"]);
        Assert.Equal(app.Services.GetRequiredService<DueIndex>().DoneTtlSeconds, (int?)closed["ttl"]);
        var next = (await app.InvokeTimerAsync("ExpireCoupons"))["ReturnValue"]!;
        Assert.Equal((0, 0), ((int)next["BucketsRead"]!, (int)next["LocksReleased"]!));
    }
}
