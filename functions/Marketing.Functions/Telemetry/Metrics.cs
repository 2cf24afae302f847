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

    public const string OutcomeTag = "outcome";
    public const string CampaignTag = "campaign_id";

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

    // A static meter: the instruments cost nothing until a MeterProvider listens (AddTelemetry), and call sites
    // in static handlers need no extra dependency.
    private static readonly Meter Meter = new(MeterName);
    private static readonly Counter<long> ClaimCounter = Meter.CreateCounter<long>(Claims, "{claim}", "Claims answered, by outcome and campaign.");
    private static readonly Counter<long> OrderEventCounter = Meter.CreateCounter<long>(OrderEvents, "{event}", "Order events settled, by outcome.");

    public static void Claim(string outcome, string campaignId)
        => ClaimCounter.Add(1, new TagList { { OutcomeTag, outcome }, { CampaignTag, campaignId } });

    public static void OrderEvent(string outcome)
        => OrderEventCounter.Add(1, new KeyValuePair<string, object?>(OutcomeTag, outcome));
}
