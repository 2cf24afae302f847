using Marketing.Functions.Hosting;

namespace Marketing.Functions.Expiry;

/// <summary>
/// What one timer run works with: its deadline and its bound on work in hand. Created by <see cref="DueIndex.RunAsync"/>
/// and handed to each entry's work.
/// Two bounds, both <see cref="TimerOptions.Parallelism"/>:
/// - entries in work at once (taken by the index, across every bucket): what the run holds in memory beyond its
///   pages, e.g. a coupons entry's batch of wallets;
/// - work items in flight at once (<see cref="ForEachAsync{T}"/>, <see cref="DoAsync"/>): a lock's cancel, a wallet's
///   expiry, a ledger entry's release. Shared by every entry of the run, so a coupons entry with thousands of wallets
///   and a bucket of lock entries get the same parallelism, and together never more.
/// An item slot is only ever held around one item's own work, never while waiting for another slot, so the two
/// bounds cannot deadlock each other.
/// </summary>
public sealed class DueWork
{
    private readonly SemaphoreSlim items;

    public DueWork(int parallelism, RunDeadline deadline, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(parallelism, 1);
        Parallelism = parallelism;
        Deadline = deadline;
        Token = ct;
        items = new SemaphoreSlim(parallelism, parallelism);
        Entries = new SemaphoreSlim(parallelism, parallelism);
    }

    public int Parallelism { get; }
    public RunDeadline Deadline { get; }

    /// <summary>The run's cancellation (the invocation's): every Cosmos call of the run is bounded by it.</summary>
    public CancellationToken Token { get; }

    /// <summary>Entries in work at once (taken by <see cref="DueIndex"/> before it starts an entry).</summary>
    internal SemaphoreSlim Entries { get; }

    /// <summary>
    /// Whether an entry may take another page of its own work (a batch of wallets): false once the run's time is up.
    /// An entry that stops there answers "not finished" and stays not done; the next run does the rest.
    /// </summary>
    public bool TakeMore() => Deadline.TakeMore();

    /// <summary>One work item, when a slot of the run is free.</summary>
    public async Task DoAsync(Func<CancellationToken, Task> item)
    {
        await items.WaitAsync(Token);
        try
        {
            await item(Token);
        }
        finally
        {
            items.Release();
        }
    }

    /// <summary>
    /// Works on every item of a page already in hand (they finish even when the run's time runs out meanwhile),
    /// at most <see cref="Parallelism"/> items of the whole run at once. Items are started only as slots free up, so
    /// at most that many are in flight. After the first failure no further item is started; the ones in flight
    /// finish and the first failure is thrown (the entry stays not done, and every item is a conditional write the
    /// next run repeats harmlessly).
    /// </summary>
    public async Task ForEachAsync<T>(IEnumerable<T> source, Func<T, CancellationToken, Task> body)
    {
        var started = new List<Task>();
        Exception? failure = null;
        foreach (var item in source)
        {
            if (Volatile.Read(ref failure) is not null) break;
            await items.WaitAsync(Token);
            started.Add(RunOneAsync(item));
        }
        await Task.WhenAll(started); // each catches its own failure
        Token.ThrowIfCancellationRequested();
        if (failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);

        async Task RunOneAsync(T item)
        {
            try
            {
                await body(item, Token);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref failure, e, null);
            }
            finally
            {
                items.Release();
            }
        }
    }
}
