using System.ComponentModel.DataAnnotations;
using System.Net;
using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Promoters;

/// <summary>Which visit wins while a binding lasts.</summary>
public enum AttributionRule
{
    /// <summary>The first promoter keeps the buyer until the window ends; later codes do not steal them.</summary>
    FirstTouch,
    /// <summary>Every visit through a code binds the buyer to that promoter from then on.</summary>
    LastTouch,
}

public sealed class ReferralOptions
{
    public const string Section = "Referrals";

    /// <summary>How long a visit binds the buyer to the promoter.</summary>
    [Range(1, 365)] public int AttributionDays { get; set; } = 30;
    public AttributionRule Attribution { get; set; } = AttributionRule.FirstTouch;
}

/// <summary>
/// The buyer was brought by <see cref="PromoterId"/> from <see cref="From"/> until <see cref="Until"/> (exclusive).
/// <see cref="ParentId"/> is that promoter's inviter, copied at the visit (it never changes), so settlement
/// finds both levels in one read.
/// </summary>
public sealed record ReferralBinding(string PromoterId, string? ParentId, string Code, DateTimeOffset From, DateTimeOffset Until)
{
    public bool Covers(DateTimeOffset instant) => From <= instant && instant < Until;
}

/// <summary>A buyer's bindings, oldest first and never overlapping, so "who brought this buyer at time T" has one answer.</summary>
public sealed record BuyerReferrals
{
    public required string Id { get; init; }
    public string BuyerId => Id;
    public required IReadOnlyList<ReferralBinding> Bindings { get; init; }
    [System.Text.Json.Serialization.JsonIgnore] public string? ETag { get; init; }

    /// <summary>Bindings kept per buyer: old ones only matter for late order events, and a year is plenty.</summary>
    public const int MaxBindings = 100;

    public ReferralBinding? At(DateTimeOffset instant) => Bindings.LastOrDefault(b => b.Covers(instant));
}

/// <summary>
/// One visit through a referral code, kept only until the statistics have counted it (docs/stats.md): its own small
/// document in the buyer's partition, expiring <see cref="ReferralStore.VisitRetentionDays"/> days after it was written.
/// </summary>
public sealed record ReferralVisit
{
    public const string Kind = "visit";

    public required string Id { get; init; }
    public required string BuyerId { get; init; }
    public string Type { get; init; } = Kind;
    public required string PromoterId { get; init; }
    public required DateTimeOffset At { get; init; }
    public int Ttl { get; init; } = ReferralStore.VisitRetentionDays * 86_400;
}

/// <summary>
/// Container "referrals", partitioned by /buyerId: one document per buyer with their bindings, changed with its etag, and
/// the buyer's recent visits (<see cref="ReferralVisit"/>, each with a time to live).
/// </summary>
public sealed class ReferralStore(Database database)
{
    public static readonly ContainerSpec Spec = new("referrals", "/buyerId", ["/bindings/*", "/\"_etag\"/?"], DefaultTtl: -1);

    /// <summary>Days a visit document is kept: longer than statistics may fall behind (Stats:FactDays, 14 by default).</summary>
    public const int VisitRetentionDays = 30;

    private readonly Container container = database.GetContainer(Spec.Name);

    public async Task<BuyerReferrals?> FindAsync(string buyerId, CancellationToken ct)
        => await container.ReadOrNullAsync<BuyerReferrals>(buyerId, buyerId, ct) is { } response ? response.Resource with { ETag = response.ETag } : null;

    /// <summary>Records a visit (its id is new each time: written twice by a re-send, the second is refused and changes nothing).</summary>
    public Task<bool> RecordVisitAsync(ReferralVisit visit, CancellationToken ct) => container.TryCreateAsync(visit, visit.BuyerId, ct);

    /// <summary>Writes the buyer's bindings if nobody changed them since <paramref name="before"/> was read (null: none existed).</summary>
    public Task<bool> TrySaveAsync(BuyerReferrals? before, BuyerReferrals after, CancellationToken ct)
        => container.TrySaveAsync(after, after.Id, before?.ETag, ct);
}
