using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Marketing.Functions.Telemetry;

/// <summary>
/// The platform's business metrics: one meter, its instruments and tags named here once, so that
/// docs/operations.md, the alert rules and the tests use the very same names (TelemetryTests cross-checks them).
/// Tags are bounded: an outcome from a fixed list, and a campaign id where the metric is per campaign (campaigns
/// are bounded per platform). A customer, order or promoter is never a tag.
/// </summary>
public static class Metrics
{
    public const string MeterName = "Marketing";

    /// <summary>Claims answered, by <see cref="OutcomeTag"/> (<see cref="ClaimOutcomes"/>) and <see cref="CampaignTag"/>.</summary>
    public const string Claims = "marketing.claims";

    /// <summary>Order events settled by SettleCommission, by <see cref="OutcomeTag"/> (<see cref="OrderEventOutcomes"/>).</summary>
    public const string OrderEvents = "marketing.order_events";

    /// <summary>Redemption steps answered, by <see cref="StepTag"/> (<see cref="RedemptionSteps"/>), <see cref="OutcomeTag"/> (<see cref="StepOutcomes"/>) and, where one coupon's campaign is known, <see cref="CampaignTag"/>.</summary>
    public const string Redemptions = "marketing.redemption_steps";

    /// <summary>Requests refused because a campaign's budget is spent (a lock whose discount it cannot cover: only locks reserve budget), by <see cref="CampaignTag"/>.</summary>
    public const string BudgetExhausted = "marketing.budget_exhausted";

    /// <summary>Timer runs, by <see cref="FunctionTag"/> and <see cref="OutcomeTag"/> (<see cref="TimerOutcomes"/>).</summary>
    public const string TimerRuns = "marketing.timer.runs";

    /// <summary>Gauge, at the end of each run of a timer with a due list: entries due now and not done, by <see cref="FunctionTag"/>.</summary>
    public const string TimerBacklog = "marketing.timer.backlog";

    /// <summary>Gauge, seconds: how long the oldest due, not done entry has been due at the end of a run (0 when none), by <see cref="FunctionTag"/>.</summary>
    public const string TimerBacklogAge = "marketing.timer.backlog_age";

    /// <summary>Gauge, seconds: now minus the statistics' "as of" after each AggregateStats run.</summary>
    public const string StatsLag = "marketing.stats.lag";

    /// <summary>Expiry reminders, by <see cref="OutcomeTag"/> (<see cref="ReminderOutcomes"/>).</summary>
    public const string Reminders = "marketing.reminders";

    /// <summary>Histogram, milliseconds: calls to a provider webhook, by <see cref="ChannelTag"/> and <see cref="OutcomeTag"/> (<see cref="WebhookOutcomes"/>).</summary>
    public const string WebhookDuration = "marketing.webhook.duration";

    public const string OutcomeTag = "outcome";
    public const string CampaignTag = "campaign_id";
    public const string StepTag = "step";
    public const string FunctionTag = "function";
    public const string ChannelTag = "channel";

    /// <summary>What a claim came to (replayed: an Idempotency-Key's earlier answer, or a key reused for another request).</summary>
    public static class ClaimOutcomes
    {
        public const string Issued = "issued";
        public const string SoldOut = "sold_out";
        public const string Limit = "limit";
        public const string NotEligible = "not_eligible";
        public const string NotActive = "not_active";
        public const string Replayed = "replayed";
    }

    /// <summary>What SettleCommission did with a message (SettlementOutcome.Outcome, plus retry on a transient failure).</summary>
    public static class OrderEventOutcomes
    {
        public const string Applied = "applied";
        public const string Duplicate = "duplicate";
        public const string Parked = "parked";
        public const string Ignored = "ignored";
        public const string Quarantined = "quarantined";
        public const string Retry = "retry";
    }

    public static class RedemptionSteps
    {
        public const string Quote = "quote";
        public const string Lock = "lock";
        public const string Confirm = "confirm";
        public const string Cancel = "cancel";
        public const string Refund = "refund";
    }

    /// <summary>done: the step took effect; replayed: the same request again (its first answer); refused: a 4xx of the business rules (expired, used, locked by another order, ...).</summary>
    public static class StepOutcomes
    {
        public const string Done = "done";
        public const string Replayed = "replayed";
        public const string Refused = "refused";
    }

    /// <summary>completed: everything due was done; stopped: the run's time ran out with work left; failed: the run reported failures or threw.</summary>
    public static class TimerOutcomes
    {
        public const string Completed = "completed";
        public const string Stopped = "stopped";
        public const string Failed = "failed";
    }

    /// <summary>sent: a reminder carried by a message written now; held: held back (quiet hours, daily cap) for later; failed: a run's failure left it for the next run.</summary>
    public static class ReminderOutcomes
    {
        public const string Sent = "sent";
        public const string Held = "held";
        public const string Failed = "failed";
    }

    /// <summary>ProviderWebhook's WebhookOutcome in snake case.</summary>
    public static class WebhookOutcomes
    {
        public const string Delivered = "delivered";
        public const string Rejected = "rejected";
        public const string Unavailable = "unavailable";
        public const string NotAllowed = "not_allowed";
    }

    // A static meter: the instruments cost nothing until a MeterProvider listens (AddTelemetry), and call sites
    // in static handlers need no extra dependency.
    private static readonly Meter Meter = new(MeterName);
    private static readonly Counter<long> ClaimCounter = Meter.CreateCounter<long>(Claims, "{claim}", "Claims answered, by outcome and campaign.");
    private static readonly Counter<long> OrderEventCounter = Meter.CreateCounter<long>(OrderEvents, "{event}", "Order events settled, by outcome.");

    private static readonly Counter<long> RedemptionCounter = Meter.CreateCounter<long>(Redemptions, "{step}", "Redemption steps answered, by step and outcome (and campaign, where one coupon's campaign is known).");
    private static readonly Counter<long> BudgetExhaustedCounter = Meter.CreateCounter<long>(BudgetExhausted, "{request}", "Requests refused because the campaign's budget is spent, by campaign.");
    private static readonly Counter<long> TimerRunCounter = Meter.CreateCounter<long>(TimerRuns, "{run}", "Timer runs, by function and outcome.");
    private static readonly Gauge<long> TimerBacklogGauge = Meter.CreateGauge<long>(TimerBacklog, "{entry}", "Entries a timer's run saw due and left not done, by function.");
    private static readonly Gauge<double> TimerBacklogAgeGauge = Meter.CreateGauge<double>(TimerBacklogAge, "s", "How long the oldest entry a run left has been due, by function.");
    private static readonly Gauge<double> StatsLagGauge = Meter.CreateGauge<double>(StatsLag, "s", "Now minus the statistics' asOf after an AggregateStats run.");
    private static readonly Counter<long> ReminderCounter = Meter.CreateCounter<long>(Reminders, "{reminder}", "Expiry reminders, by outcome.");
    private static readonly Histogram<double> WebhookHistogram = Meter.CreateHistogram<double>(WebhookDuration, "ms", "Calls to a provider webhook (its retries included), by channel and outcome.");

    public static void Claim(string outcome, string campaignId)
        => ClaimCounter.Add(1, new TagList { { OutcomeTag, outcome }, { CampaignTag, campaignId } });

    public static void OrderEvent(string outcome)
        => OrderEventCounter.Add(1, new KeyValuePair<string, object?>(OutcomeTag, outcome));

    /// <summary>One redemption step answered; <paramref name="campaignId"/> only when it comes from a stored coupon or record (never from the request).</summary>
    public static void RedemptionStep(string step, string outcome, string? campaignId)
    {
        var tags = new TagList { { StepTag, step }, { OutcomeTag, outcome } };
        if (campaignId is not null) tags.Add(CampaignTag, campaignId);
        RedemptionCounter.Add(1, tags);
    }

    public static void BudgetSpent(string campaignId)
        => BudgetExhaustedCounter.Add(1, new KeyValuePair<string, object?>(CampaignTag, campaignId));

    /// <summary>One timer run; <paramref name="function"/> is a timer's declared name (bounded: the app's timers).</summary>
    public static void TimerRun(string function, string outcome)
        => TimerRunCounter.Add(1, new TagList { { FunctionTag, function }, { OutcomeTag, outcome } });

    public static void TimerBacklogAtEnd(string function, long entries, double oldestAgeSeconds)
    {
        var tag = new KeyValuePair<string, object?>(FunctionTag, function);
        TimerBacklogGauge.Record(entries, tag);
        TimerBacklogAgeGauge.Record(oldestAgeSeconds, tag);
    }

    public static void StatsLagAfterRun(double seconds) => StatsLagGauge.Record(seconds);

    public static void ReminderOutcome(string outcome, long count)
    {
        if (count > 0) ReminderCounter.Add(count, new KeyValuePair<string, object?>(OutcomeTag, outcome));
    }

    /// <summary>One call to a provider webhook; <paramref name="channel"/> is a notification channel's wire name (bounded).</summary>
    public static void WebhookCall(string channel, string outcome, double milliseconds)
        => WebhookHistogram.Record(milliseconds, new TagList { { ChannelTag, channel }, { OutcomeTag, outcome } });
}
