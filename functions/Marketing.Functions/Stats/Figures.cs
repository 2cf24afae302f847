using Marketing.Functions.Campaigns;

namespace Marketing.Functions.Stats;

/// <summary>
/// What a campaign's statistics count, for one hour and channel of one day (a cell), or summed over any span. Every
/// member is a sum of facts (<see cref="StatsFact"/>), so cells add up to days, days to any range, exactly.
/// Money is in minor units of the campaign's currency. docs/stats.md defines each figure.
/// </summary>
public sealed record Figures
{
    /// <summary>Coupons claimed (by the hour they were claimed, on the channel they were claimed on).</summary>
    public long Claims { get; init; }
    /// <summary>Customers who claimed their first coupon of the campaign (so the sum over the campaign's life is its unique claimers).</summary>
    public long NewClaimers { get; init; }
    /// <summary>Coupons locked by an order (on the order's channel).</summary>
    public long Locks { get; init; }
    /// <summary>Locks confirmed: the order was paid and the coupon used.</summary>
    public long Redemptions { get; init; }
    /// <summary>Locks the order system cancelled.</summary>
    public long Cancellations { get; init; }
    /// <summary>Locks that lapsed unconfirmed and were released by the expiry timer.</summary>
    public long Lapsed { get; init; }
    /// <summary>Redeemed orders refunded (counted on the refund's hour).</summary>
    public long Refunds { get; init; }
    /// <summary>Coupons that expired unused (on the hour their validity ended, on the channel they were claimed on).</summary>
    public long Expired { get; init; }
    /// <summary>Discount given on redeemed orders, net of refunds (a refund takes its discount back on the refund's hour).</summary>
    public long Discount { get; init; }
    /// <summary>Gross value of the redeemed orders (the sum of their lines), net of refunds likewise.</summary>
    public long Gmv { get; init; }
    /// <summary>
    /// Coupons whose validity ends in this hour and that are not used (as of the figures' asOf): a claim adds one at its
    /// coupon's end of validity, a confirm takes it away there, a refund that gives the coupon back adds it again. In the
    /// future it says how many coupons are about to expire unused; in the past it equals what expired (or lapsed locked).
    /// </summary>
    public long Expiring { get; init; }
    /// <summary>Commissions accrued to promoters on the campaign's redeemed orders (both levels), when the payment was settled.</summary>
    public long Commission { get; init; }
    /// <summary>Commissions taken back by refunds of those orders (a positive amount), when the refund was settled.</summary>
    public long CommissionReversed { get; init; }

    // The reminders' experiment (docs/stats.md, "Reminders: reminded against the holdout"): the claims and redemptions of
    // the customers the campaign's reminder policy holds out; the reminder group's are the totals less these.
    /// <summary>Of <see cref="Claims"/>, those of customers in the campaign's reminder holdout (<see cref="ReminderPolicy.HoldsOut"/>).</summary>
    public long HoldoutClaims { get; init; }
    /// <summary>Of <see cref="Redemptions"/>, those of customers in the campaign's reminder holdout.</summary>
    public long HoldoutRedemptions { get; init; }

    // The distribution programme's own figures (the "programme" days, in the platform's time zone: docs/stats.md).
    /// <summary>Visits through a referral code (every accepted visit, whatever it did to the buyer's binding).</summary>
    public long Visits { get; init; }
    /// <summary>Buyers bound to a promoter (a new binding: first touch, or a later one under last touch).</summary>
    public long Bindings { get; init; }
    /// <summary>Paid orders of bound buyers (a promoter earned on them), when the payment was settled.</summary>
    public long PaidOrders { get; init; }

    public static Figures Zero { get; } = new();

    public Figures Plus(Figures o) => new()
    {
        Claims = Claims + o.Claims,
        NewClaimers = NewClaimers + o.NewClaimers,
        Locks = Locks + o.Locks,
        Redemptions = Redemptions + o.Redemptions,
        Cancellations = Cancellations + o.Cancellations,
        Lapsed = Lapsed + o.Lapsed,
        Refunds = Refunds + o.Refunds,
        Expired = Expired + o.Expired,
        Discount = Discount + o.Discount,
        Gmv = Gmv + o.Gmv,
        Expiring = Expiring + o.Expiring,
        Commission = Commission + o.Commission,
        CommissionReversed = CommissionReversed + o.CommissionReversed,
        HoldoutClaims = HoldoutClaims + o.HoldoutClaims,
        HoldoutRedemptions = HoldoutRedemptions + o.HoldoutRedemptions,
        Visits = Visits + o.Visits,
        Bindings = Bindings + o.Bindings,
        PaidOrders = PaidOrders + o.PaidOrders,
    };

    public static Figures Sum(IEnumerable<Figures> figures) => figures.Aggregate(Zero, (a, b) => a.Plus(b));
}

/// <summary>
/// One thing that happened, counted once: a claim, a first claim by a customer, a step of a redemption, an expiry. Its
/// id names it for good (the coupon, the customer, the order and step), so a change read twice — the change feed
/// delivers at least once, a run can die before saving where it got to, two runs can overlap — yields the same fact,
/// and a fact already stored is never counted again (docs/stats.md, "Exactly once").
/// </summary>
public sealed record StatsFact(string Id, string CampaignId, DateTimeOffset At, string Channel, Figures Delta, string? CustomerId = null)
{
    /// <summary>
    /// The fact as counted under the campaign's reminder policy as it is when the fact is counted: a claim or a redemption
    /// of a customer the policy holds out counts in the holdout's figures too. The customer's group is a hash of campaign
    /// and customer ids (the same on every run, instance and recount), so only a change of the policy's holdoutPercent
    /// moves a customer between groups, for the facts counted from then on (docs/stats.md).
    /// </summary>
    public StatsFact Classified(ReminderPolicy? policy)
        => CustomerId is { } customer && policy is not null && (Delta.Claims != 0 || Delta.Redemptions != 0) && policy.HoldsOut(CampaignId, customer)
            ? this with { Delta = Delta with { HoldoutClaims = Delta.HoldoutClaims + Delta.Claims, HoldoutRedemptions = Delta.HoldoutRedemptions + Delta.Redemptions } }
            : this;
}

/// <summary>Where a fact is counted: the campaign's day (in its time zone) and the hour and channel within it.</summary>
public readonly record struct Cell(string CampaignId, DateOnly Day, int Hour, string Channel)
{
    /// <summary>The key of the cell within its day document.</summary>
    public string Key => $"{Hour:00}|{Channel}";

    public static Cell Of(StatsFact fact, TimeZoneInfo zone)
    {
        var local = TimeZoneInfo.ConvertTime(fact.At, zone);
        return new Cell(fact.CampaignId, DateOnly.FromDateTime(local.DateTime), local.Hour, fact.Channel);
    }

    public static (int Hour, string Channel) Parse(string key)
    {
        var bar = key.IndexOf('|');
        return (int.Parse(key.AsSpan(0, bar), System.Globalization.CultureInfo.InvariantCulture), key[(bar + 1)..]);
    }
}

/// <summary>The distribution programme's figures are kept as the days of this pseudo-campaign (no campaign has this id).</summary>
public static class Programme
{
    public const string Id = "programme";
}

/// <summary>Channel names as the API writes them; "unknown" for records written before the channel was kept.</summary>
public static class StatsChannels
{
    public const string Unknown = "unknown";

    public static string Name(Channel? channel) => channel switch
    {
        Channel.App => "app",
        Channel.MiniProgram => "mini_program",
        Channel.H5 => "h5",
        Channel.Ota => "ota",
        _ => Unknown,
    };

    public static readonly string[] All = ["app", "mini_program", "h5", "ota", Unknown];
}
