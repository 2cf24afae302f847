using System.Text.Json;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Redemption;
using Marketing.Functions.Wallet;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Stats;

/// <summary>A day whose stored figures differ from the recount, cell by cell (null = no such document / cell).</summary>
public sealed record DayDifference(string CampaignId, DateOnly Day, IReadOnlyDictionary<string, (Figures? Stored, Figures? Recounted)> Cells);

/// <summary>
/// The command recount-stats: the same figures as AggregateStats, computed from scratch from the source documents (every
/// wallet and redemption, or one campaign's), with the same meaning (<see cref="StatsFacts"/>). The tests' oracle, and the
/// operators' repair tool: with --write it replaces the stored days that differ (docs/stats.md, "Repair").
/// </summary>
public sealed class RecountStats(Database database, StatsStore stats, CampaignStore campaigns)
{
    /// <summary>The recounted figures: campaign → local day → cell key → figures.</summary>
    public async Task<Dictionary<string, Dictionary<DateOnly, Dictionary<string, Figures>>>> RecountAsync(string? campaignId, CancellationToken ct)
    {
        var zones = new TimeZoneCache(campaigns);
        var result = new Dictionary<string, Dictionary<DateOnly, Dictionary<string, Figures>>>(StringComparer.Ordinal);
        async Task AddAsync(IEnumerable<StatsFact> facts)
        {
            foreach (var fact in facts)
            {
                if (await zones.FindAsync(fact.CampaignId, ct) is not { } zone) continue; // as the fold: a fact of no campaign is not counted
                var cell = Cell.Of(fact, zone);
                if (!result.TryGetValue(fact.CampaignId, out var days)) result[fact.CampaignId] = days = [];
                if (!days.TryGetValue(cell.Day, out var cells)) days[cell.Day] = cells = new(StringComparer.Ordinal);
                cells[cell.Key] = cells.TryGetValue(cell.Key, out var figures) ? figures.Plus(fact.Delta) : fact.Delta;
            }
        }

        var filter = campaignId is null ? "" : " AND c.campaignId = @campaign";
        await foreach (var wallet in ScanAsync(WalletStore.Spec.Name, $"SELECT * FROM c WHERE c.type = @type{filter}", q => q.WithParameter("@type", CampaignWallet.Kind), campaignId, ct))
            await AddAsync(StatsFacts.OfWallet(wallet));
        await foreach (var record in ScanAsync(RedemptionStore.Spec.Name, $"SELECT * FROM c WHERE IS_DEFINED(c.campaignId){filter}", q => q, campaignId, ct))
            await AddAsync(StatsFacts.OfRedemption(record));
        return result;
    }

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
            foreach (var day in expected.Keys.Union(stored.Keys).Order())
            {
                var want = expected.GetValueOrDefault(day) ?? [];
                var have = stored.GetValueOrDefault(day)?.Cells ?? [];
                var cells = want.Keys.Union(have.Keys).Where(k => !Equals(want.GetValueOrDefault(k) ?? Figures.Zero, have.GetValueOrDefault(k) ?? Figures.Zero))
                    .ToDictionary(k => k, k => (have.GetValueOrDefault(k), want.GetValueOrDefault(k)));
                if (cells.Count > 0) differences.Add(new DayDifference(id, day, cells));
            }
        }
        return differences;
    }

    /// <summary>Replaces each differing day with its recount (conditional on the day as read); how many were replaced.</summary>
    public async Task<int> RepairAsync(IEnumerable<DayDifference> differences, CancellationToken ct)
    {
        var recounted = new Dictionary<string, Dictionary<DateOnly, Dictionary<string, Figures>>>(StringComparer.Ordinal);
        var replaced = 0;
        foreach (var difference in differences)
        {
            if (!recounted.TryGetValue(difference.CampaignId, out var days))
                recounted[difference.CampaignId] = days = (await RecountAsync(difference.CampaignId, ct)).GetValueOrDefault(difference.CampaignId) ?? [];
            var stored = await stats.FindDayAsync(difference.CampaignId, difference.Day, ct);
            var day = new CampaignDay
            {
                Pk = StatsStore.DayPartition(difference.CampaignId, difference.Day), CampaignId = difference.CampaignId,
                Day = difference.Day.ToString(StatsStore.DayFormat, System.Globalization.CultureInfo.InvariantCulture),
                Cells = days.GetValueOrDefault(difference.Day) ?? [], ETag = stored?.Resource.ETag,
            };
            if (await stats.TryReplaceDayAsync(day, ct)) replaced++;
        }
        return replaced;
    }

    private async IAsyncEnumerable<JsonElement> ScanAsync(string container, string sql, Func<QueryDefinition, QueryDefinition> parameters, string? campaignId,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        var query = parameters(new QueryDefinition(sql));
        if (campaignId is not null) query = query.WithParameter("@campaign", campaignId);
        using var iterator = database.GetContainer(container).GetItemQueryIterator<JsonElement>(query, requestOptions: new QueryRequestOptions { MaxItemCount = 500, EnableOptimisticDirectExecution = true });
        while (iterator.HasMoreResults)
            foreach (var item in await iterator.ReadNextAsync(ct))
                yield return item;
    }
}
