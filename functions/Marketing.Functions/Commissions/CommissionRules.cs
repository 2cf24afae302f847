using System.Net;
using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Commissions;

/// <summary>
/// Rates of one level in basis points (1 bp = 0.01 %; 1000 = 10 %): a default, and overrides per product
/// category. Integers, so a rate means the same to every reader and the arithmetic is exact.
/// </summary>
public sealed record RateTable(int DefaultBps, IReadOnlyDictionary<string, int> CategoryBps)
{
    public int For(string category) => CategoryBps.TryGetValue(category, out var bps) ? bps : DefaultBps;
}

/// <summary>The rates in force from <see cref="EffectiveFrom"/> until the next version's.</summary>
public sealed record RuleVersion(DateTimeOffset EffectiveFrom, RateTable Level1, RateTable Level2, string SetBy, DateTimeOffset SetAt);

/// <summary>
/// The programme's commission rules: every version, by the instant it takes effect. A payment uses the version
/// in force at the payment's time, whenever its event is processed; that is why a version may only take
/// effect from now on (SetCommissionRules refuses the past), so a late event never meets rates that did not
/// exist when the order was paid.
/// </summary>
public sealed record CommissionRules
{
    public const string DocumentId = "commission-rules";

    public string Id => DocumentId;
    public required IReadOnlyList<RuleVersion> Versions { get; init; }
    [System.Text.Json.Serialization.JsonIgnore] public string? ETag { get; init; }

    public RuleVersion? InForceAt(DateTimeOffset instant) => Versions.LastOrDefault(v => v.EffectiveFrom <= instant);
}

/// <summary>Container "commission-rules", partitioned by /id: one document, changed with its etag.</summary>
public sealed class CommissionRulesStore(Database database)
{
    public static readonly ContainerSpec Spec = new("commission-rules", "/id", ["/versions/*", "/\"_etag\"/?"]);

    private readonly Container container = database.GetContainer(Spec.Name);

    public async Task<CommissionRules?> FindAsync(CancellationToken ct)
        => await container.ReadOrNullAsync<CommissionRules>(CommissionRules.DocumentId, CommissionRules.DocumentId, ct) is { } response ? response.Resource with { ETag = response.ETag } : null;

    /// <summary>Writes the rules if nobody changed them since <paramref name="before"/> was read (null: none existed).</summary>
    public Task<bool> TrySaveAsync(CommissionRules? before, CommissionRules after, CancellationToken ct)
        => container.TrySaveAsync(after, after.Id, before?.ETag, ct);
}
