using System.ComponentModel.DataAnnotations;

namespace Marketing.Functions.Hosting;

/// <summary>
/// How much one timer run (ExpireCoupons, ReleaseCommissions, ...) may take on (section "Timers"). A run works in
/// bounded pages with bounded parallelism and stops taking new work when its time is up; what it leaves is found
/// by the next run exactly as it would have been found by this one (everything a timer reads is "what is due"),
/// so stopping early loses nothing.
/// </summary>
public sealed class TimerOptions
{
    public const string Section = "Timers";

    /// <summary>The host's functionTimeout in host.json; <see cref="RunSeconds"/> must leave room below it.</summary>
    public static readonly TimeSpan FunctionTimeout = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Seconds a run takes new work for. Below the schedules' 5-minute period, so runs do not queue behind each
    /// other, and far below <see cref="FunctionTimeout"/>: work in hand when the time is up (a page of items, each
    /// a few Cosmos calls of at most Cosmos:CallTimeoutSeconds) still finishes and the run reports.
    /// </summary>
    [Range(10, 540)]
    public int RunSeconds { get; set; } = 240;

    /// <summary>Items worked on at once within a run: enough to hide round-trip latency, few enough to leave requests room.</summary>
    [Range(1, 64)]
    public int Parallelism { get; set; } = 8;

    /// <summary>Items read per page: what a run holds in memory at once.</summary>
    [Range(1, 1000)]
    public int PageSize { get; set; } = 100;
}

/// <summary>
/// The time a timer run may still take new work for. Checked before each page or item is taken; work in hand is
/// never interrupted (every step is a conditional write that a later run repeats harmlessly, but finishing it is
/// cheaper than finding it again).
/// </summary>
public sealed class RunDeadline(TimeProvider time, DateTimeOffset stopAt)
{
    public static RunDeadline Start(TimeProvider time, TimerOptions options) => new(time, time.GetUtcNow().AddSeconds(options.RunSeconds));

    /// <summary>No limit: for callers (tests, tools) that want a run to finish everything.</summary>
    public static RunDeadline None { get; } = new(TimeProvider.System, DateTimeOffset.MaxValue);

    public DateTimeOffset StopAt => stopAt;

    /// <summary>True while new work may still be taken.</summary>
    public bool TimeLeft => time.GetUtcNow() < stopAt;

    /// <summary>Set when a run stopped with work left, so its report can say so.</summary>
    public bool Stopped { get; private set; }

    /// <summary><see cref="TimeLeft"/>, remembering a stop.</summary>
    public bool TakeMore()
    {
        if (TimeLeft) return true;
        Stopped = true;
        return false;
    }
}

/// <summary>
/// What a timer's report tells operators (docs/operations.md: marketing.timer.runs and marketing.timer.backlog): the
/// wrapper every timer is mapped with (<see cref="FunctionEndpointExtensions.MapTimerFunction"/>) reads it off the run's
/// ReturnValue, so no timer counts its own runs.
/// </summary>
public interface ITimerReport
{
    /// <summary>The run's time ran out with work left (the next run carries on).</summary>
    bool Stopped { get; }

    /// <summary>The run reported failures (each left for the next run).</summary>
    bool Failed { get; }

    /// <summary>What the run saw due and left not done; null for a timer without a due list.</summary>
    Backlog? Backlog { get; }
}

/// <summary>
/// What a run saw due and left not done: stopped before it took it, or its work failed or did not finish. Only what
/// the run read (no extra query): a run that stopped before reading a page or bucket leaves more than it counts, which
/// its "stopped" outcome says. Safe to add to from parallel work.
/// </summary>
public sealed class Backlog
{
    private readonly Lock gate = new();

    /// <summary>Things left (each timer counts its own kind: docs/operations.md).</summary>
    public int Count { get; private set; }

    /// <summary>When the longest-waiting of them fell due; null when nothing was left.</summary>
    public DateTimeOffset? OldestDueAt { get; private set; }

    /// <summary>
    /// Notes <paramref name="count"/> things due at <paramref name="dueAt"/> left not done (0: only that work due then is
    /// not finished, as a window a run did not complete).
    /// </summary>
    public void Left(DateTimeOffset dueAt, int count = 1)
    {
        lock (gate)
        {
            Count += count;
            if (OldestDueAt is null || dueAt < OldestDueAt) OldestDueAt = dueAt;
        }
    }

    /// <summary>Adds what another part of the run left.</summary>
    public void Add(Backlog other)
    {
        if (other.OldestDueAt is { } oldest) Left(oldest, other.Count);
    }

    /// <summary>Seconds the oldest has been due at <paramref name="now"/> (0 when nothing was left).</summary>
    public double AgeSeconds(DateTimeOffset now) => OldestDueAt is { } oldest ? Math.Max(0, (now - oldest).TotalSeconds) : 0;
}
