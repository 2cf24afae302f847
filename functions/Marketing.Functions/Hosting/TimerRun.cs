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
