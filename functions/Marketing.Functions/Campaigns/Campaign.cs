using System.Text.Json.Serialization;
using Marketing.Functions.Hosting;

namespace Marketing.Functions.Campaigns;

public enum DiscountKind { AmountOff, PercentOff }

public enum Channel { App, MiniProgram, H5, Ota }

/// <summary>
/// draft → submitted → approved → published → paused ⇄ published → ended (docs/approvals.md, "Campaigns"). From submitted an
/// approver rejects or returns it to draft; editing an approved campaign voids its approval (back to draft).
/// </summary>
public enum CampaignStatus { Draft, Submitted, Approved, Published, Paused, Ended }

public static class CampaignStatuses
{
    /// <summary>
    /// Published at some point (published, paused, ended): the campaign has stock and a budget document, and coupons may
    /// exist. Drafts, submitted and approved campaigns have none of these (publishing creates them), so every job that
    /// looks after stock, budgets or coupons reads launched campaigns only.
    /// </summary>
    public static bool IsLaunched(this CampaignStatus status) => status is CampaignStatus.Published or CampaignStatus.Paused or CampaignStatus.Ended;
}

public enum ValidityType { Absolute, Relative }

/// <summary>
/// How long a claimed coupon can be used: either a fixed window (<see cref="From"/>..<see cref="To"/>)
/// or <see cref="Days"/> whole days after the claim, counted in the campaign's time zone.
/// </summary>
public sealed record Validity
{
    public required ValidityType Type { get; init; }
    public DateTimeOffset? From { get; init; }
    public DateTimeOffset? To { get; init; }
    public int? Days { get; init; }
}

/// <summary>
/// The editable terms of a campaign (a coupon template): what operators send on create and update.
/// Money is in minor units of <see cref="Currency"/>, at most <see cref="Limits.MaxMoney"/> per field; instants are UTC.
/// </summary>
public sealed record CampaignTerms
{
    public required string Name { get; init; }
    public required DiscountKind Kind { get; init; }
    /// <summary>amount_off: the discount in minor units.</summary>
    public long? AmountOff { get; init; }
    /// <summary>percent_off: 1..100.</summary>
    public int? PercentOff { get; init; }
    /// <summary>percent_off: optional cap on the discount, in minor units.</summary>
    public long? MaxDiscount { get; init; }
    /// <summary>Eligible subtotal needed before the coupon applies; 0 = no threshold.</summary>
    public long MinimumSpend { get; init; }
    public required string Currency { get; init; }
    /// <summary>Categories the coupon applies to; empty = all.</summary>
    public string[] Categories { get; init; } = [];
    public bool NewCustomersOnly { get; init; }
    public required Channel[] Channels { get; init; }
    public required DateTimeOffset ClaimStartsAt { get; init; }
    public required DateTimeOffset ClaimEndsAt { get; init; }
    public required Validity Validity { get; init; }
    public required int TotalQuantity { get; init; }
    public int PerCustomerLimit { get; init; } = 1;
    /// <summary>IANA time zone, e.g. Asia/Shanghai: where "a day" is counted for relative validity.</summary>
    public required string TimeZone { get; init; }
    /// <summary>
    /// Most discount the campaign may give in total, in minor units; null = no money limit. Locks reserve
    /// against it; once published it only grows, by top-ups (TopUpBudget), which are recorded.
    /// </summary>
    public long? Budget { get; init; }
    /// <summary>Whether a refunded order gives its coupon back to the wallet (if the coupon is still valid).</summary>
    public bool ReturnOnRefund { get; init; }
    /// <summary>
    /// Hot campaigns (flash sales): the stock is split across this many shards, each in its own logical partition,
    /// so claims are not capped by one counter document (docs/claiming.md, "Hot campaigns"). Null or 1 = one
    /// counter, as for every campaign before sharding. Fixed once published (like every term but quantity and
    /// claim end): claims route by it.
    /// </summary>
    public int? StockShards { get; init; }

    /// <summary>
    /// Expiry reminders (docs/notifications.md): when before a coupon's end of validity its customer is reminded, and the
    /// share of customers held out to measure the reminders' uplift. Null = <see cref="ReminderPolicy.Default"/>. The one
    /// term besides quantity and claim end that may change once published: it applies to reminders not yet due.
    /// </summary>
    public ReminderPolicy? Reminders { get; init; }

    /// <summary>The reminder policy in force (the default when none is set).</summary>
    [JsonIgnore] public ReminderPolicy ReminderPolicy => Reminders ?? ReminderPolicy.Default;

    /// <summary>How many stock shards the campaign has (1 when <see cref="StockShards"/> is not set).</summary>
    [JsonIgnore] public int ShardCount => StockShards ?? 1;

    /// <summary>The example terms of the OpenAPI document: 20 CNY off 100, a week's validity, a budget of 10,000 CNY.</summary>
    public static CampaignTerms Example { get; } = new()
    {
        Name = "Spend 100 save 20",
        Kind = DiscountKind.AmountOff,
        AmountOff = 2000,
        MinimumSpend = 10000,
        Currency = "CNY",
        Categories = ["grocery"],
        Channels = [Channel.App, Channel.MiniProgram, Channel.H5],
        ClaimStartsAt = new DateTimeOffset(2027, 1, 1, 0, 0, 0, TimeSpan.Zero),
        ClaimEndsAt = new DateTimeOffset(2027, 1, 31, 16, 0, 0, TimeSpan.Zero),
        Validity = new Validity { Type = ValidityType.Relative, Days = 7 },
        TotalQuantity = 10000,
        PerCustomerLimit = 1,
        TimeZone = "Asia/Shanghai",
        Budget = 1_000_000,
        Reminders = new ReminderPolicy { OffsetsHours = [48, 2], HoldoutPercent = 10 },
    };

    public const int MaxQuantity = 100_000_000;
    public const int MaxPerCustomerLimit = 100;
    public const int MaxValidityDays = 3650;

    /// <summary>Field errors, keyed by JSON field name; empty when the terms are consistent.</summary>
    public Dictionary<string, string[]> Validate()
    {
        var errors = new Dictionary<string, List<string>>();
        void Error(string field, string message)
        {
            if (!errors.TryGetValue(field, out var list)) errors[field] = list = [];
            list.Add(message);
        }

        if (string.IsNullOrWhiteSpace(Name) || Name.Length > 100) Error("name", "Required, at most 100 characters.");
        switch (Kind)
        {
            case DiscountKind.AmountOff:
                if (AmountOff is null or <= 0 or > Limits.MaxMoney) Error("amountOff", $"Required for amount_off: 1 to {Limits.MaxMoney} in minor units.");
                if (PercentOff is not null) Error("percentOff", "Only for percent_off.");
                if (MaxDiscount is not null) Error("maxDiscount", "Only for percent_off.");
                break;
            case DiscountKind.PercentOff:
                if (PercentOff is null or < 1 or > 100) Error("percentOff", "Required for percent_off: 1 to 100.");
                if (AmountOff is not null) Error("amountOff", "Only for amount_off.");
                if (MaxDiscount is <= 0 or > Limits.MaxMoney) Error("maxDiscount", $"When set, 1 to {Limits.MaxMoney} in minor units.");
                break;
        }
        if (!Limits.IsMoney(MinimumSpend)) Error("minimumSpend", $"0 (no threshold) to {Limits.MaxMoney} in minor units.");
        if (Currency is null || Currency.Length != 3 || !Currency.All(char.IsAsciiLetterUpper))
            Error("currency", "An ISO 4217 code such as CNY.");
        if (Categories is null || Categories.Length > 50 || Categories.Any(c => string.IsNullOrWhiteSpace(c) || c.Length > 64))
            Error("categories", "At most 50 non-empty category ids of at most 64 characters.");
        else if (Categories.Distinct(StringComparer.Ordinal).Count() != Categories.Length)
            Error("categories", "No duplicates.");
        if (Channels is null || Channels.Length == 0) Error("channels", "At least one channel.");
        else if (Channels.Distinct().Count() != Channels.Length) Error("channels", "No duplicates.");
        if (ClaimEndsAt <= ClaimStartsAt) Error("claimEndsAt", "Must be after claimStartsAt.");
        if (Validity is null) Error("validity", "Required.");
        else if (Validity.Type == ValidityType.Relative)
        {
            if (Validity.Days is null or < 1 or > MaxValidityDays) Error("validity.days", $"Required for relative validity: 1 to {MaxValidityDays}.");
            if (Validity.From is not null || Validity.To is not null) Error("validity", "from/to are only for absolute validity.");
        }
        else
        {
            if (Validity.From is null) Error("validity.from", "Required for absolute validity.");
            if (Validity.To is null) Error("validity.to", "Required for absolute validity.");
            if (Validity.From is { } from && Validity.To is { } to && to <= from) Error("validity.to", "Must be after validity.from.");
            if (Validity.To is { } end && end <= ClaimStartsAt) Error("validity.to", "Coupons would expire before claiming starts.");
            if (Validity.Days is not null) Error("validity.days", "Only for relative validity.");
        }
        if (TotalQuantity is < 1 or > MaxQuantity) Error("totalQuantity", $"1 to {MaxQuantity}.");
        if (StockShards is < 1 or > StockSharding.Max) Error("stockShards", $"When set, 1 to {StockSharding.Max}.");
        // Every shard starts with at least one unit, so an empty shard has always seen a claim (the sold-out query needs it).
        else if (StockShards > TotalQuantity) Error("stockShards", "At most totalQuantity: every shard starts with at least one unit.");
        if (PerCustomerLimit is < 1 or > MaxPerCustomerLimit) Error("perCustomerLimit", $"1 to {MaxPerCustomerLimit}.");
        // Top-ups cannot take a budget past this either (TopUpBudget), so what a budget document sums stays exact.
        if (Budget is < 1 or > Limits.MaxMoney) Error("budget", $"When set, 1 to {Limits.MaxMoney} in minor units.");
        if (FindTimeZone(TimeZone) is null) Error("timeZone", "An IANA time zone id such as Asia/Shanghai.");
        if (Reminders is { } reminders)
        {
            if (reminders.OffsetsHours is null || reminders.OffsetsHours.Length > ReminderPolicy.MaxOffsets
                || reminders.OffsetsHours.Any(h => h is < 1 or > ReminderPolicy.MaxOffsetHours))
                Error("reminders.offsetsHours", $"0 to {ReminderPolicy.MaxOffsets} offsets, each 1 to {ReminderPolicy.MaxOffsetHours} hours before expiry ([] = no reminders).");
            else if (reminders.OffsetsHours.Distinct().Count() != reminders.OffsetsHours.Length) Error("reminders.offsetsHours", "No duplicates.");
            if (reminders.HoldoutPercent is < 0 or > ReminderPolicy.MaxHoldoutPercent)
                Error("reminders.holdoutPercent", $"0 to {ReminderPolicy.MaxHoldoutPercent}.");
        }

        return errors.ToDictionary(e => e.Key, e => e.Value.ToArray());
    }

    public static TimeZoneInfo? FindTimeZone(string? id)
    {
        if (string.IsNullOrWhiteSpace(id)) return null;
        return TimeZoneInfo.TryFindSystemTimeZoneById(id, out var zone) ? zone : null;
    }
}

/// <summary>A campaign as stored (container "campaigns") and as operators see it.</summary>
public sealed record Campaign
{
    public required string Id { get; init; }
    /// <summary>Partition key. One catalog today ("default"); a merchant/tenant catalog later.</summary>
    public required string Catalog { get; init; }
    public required CampaignTerms Terms { get; init; }
    public required CampaignStatus Status { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required string CreatedBy { get; init; }
    public required DateTimeOffset UpdatedAt { get; init; }
    public required string UpdatedBy { get; init; }
    public DateTimeOffset? PublishedAt { get; init; }
    public DateTimeOffset? EndedAt { get; init; }
    /// <summary>Why it ended: "operator", "claim_window_over" or "sold_out" (the last two by ExpireCoupons).</summary>
    public string? EndReason { get; init; }

    /// <summary>The revision of the terms: 1 on create, +1 on every change of the terms (documents older than approvals read as 1).</summary>
    public int Revision { get; init; } = 1;
    /// <summary>
    /// Who created or edited the terms since the last approval (distinct subs, at most <see cref="MaxMakers"/>): none of them
    /// may approve this revision. Null on documents older than approvals: then the creator and the last editor stand in.
    /// </summary>
    public string[]? Makers { get; init; }
    /// <summary>Who submitted the current revision for approval, and when (the last submission).</summary>
    public string? SubmittedBy { get; init; }
    public DateTimeOffset? SubmittedAt { get; init; }
    /// <summary>The approval of the current revision; null when there is none (never approved, or voided by an edit).</summary>
    public CampaignApproval? Approval { get; init; }
    /// <summary>The terms as last approved: what the approvers' queue diffs a resubmitted revision against.</summary>
    public ApprovedTerms? LastApproved { get; init; }
    /// <summary>The last rejection or return (cleared on the next submission): what the makers have to address.</summary>
    public CampaignReview? Review { get; init; }

    /// <summary>
    /// How many distinct makers a revision may have. Operators are a handful of people; the cap keeps the document bounded.
    /// A new maker beyond it is refused (409 campaign-not-editable) until the revision is decided: dropping a name would let
    /// that person approve their own work.
    /// </summary>
    public const int MaxMakers = 50;

    /// <summary>Who may not approve the current revision: its makers and its submitter.</summary>
    [JsonIgnore]
    public IReadOnlyList<string> FourEyes => [.. (Makers ?? [CreatedBy, UpdatedBy]).Append(SubmittedBy).OfType<string>().Distinct(StringComparer.Ordinal)];

    /// <summary>The makers of the current revision (for old documents: the creator and the last editor).</summary>
    [JsonIgnore]
    public string[] CurrentMakers => Makers ?? [.. new[] { CreatedBy, UpdatedBy }.Distinct(StringComparer.Ordinal)];

    /// <summary>Whether the current revision carries an approval (publishing needs one).</summary>
    [JsonIgnore]
    public bool IsApproved => Approval is { } approval && approval.Revision == Revision;

    [JsonPropertyName("_etag")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ETag { get; init; }

    public bool IsClaimableAt(DateTimeOffset now)
        => Status == CampaignStatus.Published && now >= Terms.ClaimStartsAt && now < Terms.ClaimEndsAt;
}

/// <summary>An approval of one revision of the terms: by whom and when.</summary>
public sealed record CampaignApproval(int Revision, string By, DateTimeOffset At);

/// <summary>The terms of the last approved revision, kept for the approvers' diff of the next one.</summary>
public sealed record ApprovedTerms(int Revision, CampaignTerms Terms, string By, DateTimeOffset At);

public enum ReviewOutcome { Rejected, Returned }

/// <summary>An approver's rejection (reason) or return for changes (comments) of one submitted revision.</summary>
public sealed record CampaignReview(ReviewOutcome Outcome, int Revision, string By, DateTimeOffset At, string Reason);

/// <summary>
/// A campaign's expiry reminders: up to <see cref="MaxOffsets"/> offsets before a coupon's end of validity, in hours
/// (default 24), and the percentage of its customers held out (sent no reminder), chosen by a stable hash of campaign
/// and customer so the same customers stay out for the campaign's life (docs/notifications.md, "Holdout").
/// </summary>
public sealed record ReminderPolicy
{
    public const int MaxOffsets = 3;
    public const int MaxOffsetHours = 720;
    public const int MaxHoldoutPercent = 50;

    public static ReminderPolicy Default { get; } = new();

    public int[] OffsetsHours { get; init; } = [24];
    public int HoldoutPercent { get; init; }

    /// <summary>Whether <paramref name="customerId"/> is in the campaign's holdout: FNV-1a of "campaign\ncustomer", mod 100.</summary>
    public bool HoldsOut(string campaignId, string customerId)
        => HoldoutPercent > 0 && Hosting.StableHash.Fnv1a(campaignId + "\n" + customerId) % 100 < (uint)HoldoutPercent;
}

