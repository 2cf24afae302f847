using System.Runtime.CompilerServices;
using System.Text.Json;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Redemption;
using Marketing.Functions.Wallet;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Stats;

/// <summary>A day whose stored figures differ from the recount, cell by cell (null = no such document / cell).</summary>
public sealed record DayDifference(string CampaignId, DateOnly Day, IReadOnlyDictionary<string, (Figures? Stored, Figures? Recounted)> Cells);

/// <summary>
/// The command recount-stats: the same figures as AggregateStats, computed from scratch from the source documents (every
/// wallet, redemption, ledger entry, referral and settlement, or one campaign's), with the same meaning (<see cref="StatsFacts"/>). The tests' oracle, and the
/// operators' repair tool: with --write it rewrites the stored days that differ (docs/stats.md, "Repair").
/// </summary>
public sealed class RecountStats(Database database, StatsStore stats, CampaignStore campaigns, RedemptionStore redemptions, TimeProvider time,
    IOptions<StatsOptions> options, IOptions<RedemptionOptions> redemptionOptions)
{
    /// <summary>
    /// The first local day whose facts the sources still hold in full. Cosmos deletes a finished (cancelled, refunded)
    /// redemption <see cref="RedemptionOptions.FinishedRetentionDays"/> after its last step, so from then on the
    /// recount no longer sees the lock, confirm, cancel or refund it held, while the stored day rightly keeps them.
    /// A fact's record lives at least that long after the fact; two days more cover every time zone (a local day starts
    /// at most 14 hours before the UTC one). Older days are neither compared nor rewritten: they stay as counted.
    /// For the distribution programme it is the visits' retention instead (<see cref="Promoters.ReferralStore.VisitRetentionDays"/>).
    /// </summary>
    public DateOnly FirstRecountableDay(string campaignId)
        => DateOnly.FromDateTime(time.GetUtcNow().UtcDateTime).AddDays(2 - (campaignId == Programme.Id
            ? Promoters.ReferralStore.VisitRetentionDays
            : redemptionOptions.Value.FinishedRetentionDays));

    /// <summary>The recounted figures: campaign → local day → cell key → figures.</summary>
    public async Task<Dictionary<string, Dictionary<DateOnly, Dictionary<string, Figures>>>> RecountAsync(string? campaignId, CancellationToken ct)
    {
        var result = new Dictionary<string, Dictionary<DateOnly, Dictionary<string, Figures>>>(StringComparer.Ordinal);
        await foreach (var (fact, cell) in FactsAsync(campaignId, ct))
        {
            if (!result.TryGetValue(fact.CampaignId, out var days)) result[fact.CampaignId] = days = [];
            if (!days.TryGetValue(cell.Day, out var cells)) days[cell.Day] = cells = new(StringComparer.Ordinal);
            Add(cells, fact, cell);
        }
        return result;
    }

    /// <summary>Every fact of the source documents (one campaign's, or all), placed in its cell; facts of no campaign are left out, as the fold leaves them.</summary>
    private async IAsyncEnumerable<(StatsFact Fact, Cell Cell)> FactsAsync(string? campaignId, [EnumeratorCancellation] CancellationToken ct)
    {
        var lookup = new CampaignLookup(campaigns, options.Value.TimeZone);
        var filter = campaignId is null || campaignId == Programme.Id ? "" : " AND c.campaignId = @campaign";
        var scoped = campaignId is null || campaignId == Programme.Id ? null : campaignId;
        var sources = new List<(string Container, string Sql, Func<QueryDefinition, QueryDefinition> Parameters, string? Campaign, Func<JsonElement, IEnumerable<StatsFact>> Facts)>();
        if (campaignId is not Programme.Id)
        {
            sources.Add((WalletStore.Spec.Name, $"SELECT * FROM c WHERE c.type = @type{filter}", q => q.WithParameter("@type", CampaignWallet.Kind), scoped, StatsFacts.OfWallet));
            sources.Add((RedemptionStore.Spec.Name, $"SELECT * FROM c WHERE IS_DEFINED(c.campaignId){filter}", q => q, scoped, StatsFacts.OfRedemption));
        }
        if (campaignId is null or Programme.Id)
        {
            // The distribution programme: visits and bindings, and paid orders of bound buyers.
            sources.Add((Promoters.ReferralStore.Spec.Name, "SELECT * FROM c", q => q, null, StatsFacts.OfReferrals));
            sources.Add((Commissions.SettlementStore.Spec.Name, "SELECT * FROM c WHERE IS_DEFINED(c.paid)", q => q, null, StatsFacts.OfSettlement));
        }
        foreach (var source in sources)
            await foreach (var document in ScanAsync(source.Container, source.Sql, source.Parameters, source.Campaign, ct))
                foreach (var fact in source.Facts(document))
                    if (await lookup.FindAsync(fact.CampaignId, ct) is { } campaign)
                        yield return (fact.Classified(campaign.Reminders), Cell.Of(fact, campaign.Zone));

        // Ledger entries name their order, not the campaign: every entry is read, a page at a time, and its facts kept for
        // the campaign asked for (every entry is the programme's; those of orders that redeemed a coupon, their campaign's).
        var page = new List<JsonElement>();
        await foreach (var entry in ScanAsync(Commissions.LedgerStore.Spec.Name, "SELECT * FROM c WHERE IS_DEFINED(c.kind)", q => q, null, ct))
        {
            page.Add(entry);
            if (page.Count < 500) continue;
            foreach (var placed in await PlaceAsync(page)) yield return placed;
            page.Clear();
        }
        foreach (var placed in await PlaceAsync(page)) yield return placed;

        async Task<List<(StatsFact, Cell)>> PlaceAsync(List<JsonElement> entries)
        {
            var placed = new List<(StatsFact, Cell)>();
            foreach (var fact in await StatsFacts.OfLedgerAsync(entries, redemptions.FindAsync, ct))
                if ((campaignId is null || fact.CampaignId == campaignId) && await lookup.FindAsync(fact.CampaignId, ct) is { } campaign)
                    placed.Add((fact.Classified(campaign.Reminders), Cell.Of(fact, campaign.Zone)));
            return placed;
        }
    }

    private static void Add(Dictionary<string, Figures> cells, StatsFact fact, Cell cell)
        => cells[cell.Key] = cells.TryGetValue(cell.Key, out var figures) ? figures.Plus(fact.Delta) : fact.Delta;

    /// <summary>Every stored day that differs from the recount (and every recounted day with no document), for one campaign or all.</summary>
    public async Task<List<DayDifference>> CompareAsync(string? campaignId, CancellationToken ct)
    {
        var recounted = await RecountAsync(campaignId, ct);
        var differences = new List<DayDifference>();
        var campaignIds = recounted.Keys.ToHashSet(StringComparer.Ordinal);
        if (campaignId is not null) campaignIds.Add(campaignId);
        foreach (var id in campaignIds.Order(StringComparer.Ordinal))
        {
            var expected = recounted.GetValueOrDefault(id) ?? [];
            var stored = (await stats.ReadAllDaysAsync(id, ct)).ToDictionary(d => d.Date);
            foreach (var day in expected.Keys.Union(stored.Keys).Where(d => d >= FirstRecountableDay(id)).Order())
            {
                var cells = Differing(stored.GetValueOrDefault(day)?.Cells ?? [], expected.GetValueOrDefault(day) ?? []);
                if (cells.Count > 0) differences.Add(new DayDifference(id, day, cells));
            }
        }
        return differences;
    }

    private static Dictionary<string, (Figures? Stored, Figures? Recounted)> Differing(Dictionary<string, Figures> have, Dictionary<string, Figures> want)
        => want.Keys.Union(have.Keys).Where(k => !Equals(want.GetValueOrDefault(k) ?? Figures.Zero, have.GetValueOrDefault(k) ?? Figures.Zero))
            .ToDictionary(k => k, k => (have.GetValueOrDefault(k), want.GetValueOrDefault(k)));

    /// <summary>
    /// Rewrites each differing day as the fold would have it (<see cref="RepairDayAsync"/>); how many days are right now.
    /// </summary>
    public async Task<int> RepairAsync(IEnumerable<DayDifference> differences, CancellationToken ct)
    {
        var repaired = 0;
        foreach (var campaign in differences.GroupBy(d => d.CampaignId, StringComparer.Ordinal))
        {
            var days = campaign.Select(d => d.Day).Where(d => d >= FirstRecountableDay(campaign.Key)).ToHashSet();
            var facts = days.ToDictionary(d => d, _ => new List<StatsFact>());
            await foreach (var (fact, cell) in FactsAsync(campaign.Key, ct))
                if (facts.TryGetValue(cell.Day, out var list)) list.Add(fact);
            foreach (var day in days.Order())
                if (await RepairDayAsync(campaign.Key, day, facts[day], ct)) repaired++;
        }
        return repaired;
    }

    /// <summary>
    /// Rewrites one day from its recounted facts, keeping the fold's promise to count each fact once: a fact whose mark
    /// exists (the fold counted it) or that is too old for the fold ever to count (older than its marks are kept, plus a
    /// day: no run in flight still takes it) is in the day; any other fact is left out, since the fold will count it when
    /// it reads it — putting it in now would have it counted twice. A fold batch always changes the day with its marks,
    /// so the day and the marks read together stay true until the conditional replace, which a batch in between
    /// refuses (read again). True when the day is right.
    /// </summary>
    private async Task<bool> RepairDayAsync(string campaignId, DateOnly day, List<StatsFact> facts, CancellationToken ct)
    {
        var settled = time.GetUtcNow().AddDays(-(options.Value.FactDays + 1));
        var zone = (await new CampaignLookup(campaigns, options.Value.TimeZone).FindAsync(campaignId, ct))?.Zone ?? TimeZoneInfo.Utc;
        for (var attempt = 0; attempt < 20; attempt++)
        {
            var (stored, marked) = await stats.ReadDayAndMarksAsync(campaignId, day, ct);
            var cells = new Dictionary<string, Figures>(StringComparer.Ordinal);
            foreach (var fact in facts.DistinctBy(f => f.Id))
                if (fact.At < settled || marked.Contains(StatsStore.MarkId(fact.Id)))
                    Add(cells, fact, Cell.Of(fact, zone));
            if (Differing(stored?.Cells ?? [], cells).Count == 0) return true;
            var rewritten = new CampaignDay
            {
                Pk = StatsStore.DayPartition(campaignId, day), CampaignId = campaignId,
                Day = day.ToString(StatsStore.DayFormat, System.Globalization.CultureInfo.InvariantCulture),
                Cells = cells, ETag = stored?.ETag,
            };
            if (await stats.TryReplaceDayAsync(rewritten, ct)) return true;
        }
        return false;
    }

    private async IAsyncEnumerable<JsonElement> ScanAsync(string container, string sql, Func<QueryDefinition, QueryDefinition> parameters, string? campaignId,
        [EnumeratorCancellation] CancellationToken ct)
    {
        var query = parameters(new QueryDefinition(sql));
        if (campaignId is not null) query = query.WithParameter("@campaign", campaignId);
        using var iterator = database.GetContainer(container).GetItemQueryIterator<JsonElement>(query,
            requestOptions: new QueryRequestOptions { MaxItemCount = 500, EnableOptimisticDirectExecution = true });
        while (iterator.HasMoreResults)
            foreach (var item in await iterator.ReadNextAsync(ct))
                yield return item;
    }
}
