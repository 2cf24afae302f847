using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Campaigns;

/// <summary>
/// A campaign's stock and money as they stand, summed over its shards: units <see cref="Remaining"/> of
/// <see cref="Total"/>, and, for a campaign with a budget, <see cref="BudgetLeft"/> (neither reserved nor spent) of
/// <see cref="Budget"/> (top-ups included). Null budget figures: the campaign has no budget document.
/// </summary>
public sealed record StockLevels(int Total, int Remaining, long? Budget, long? BudgetLeft);

public sealed partial class StockStore
{
    /// <summary>
    /// Every stock shard's total and remaining units and every budget shard's budget and left, in ONE query naming the
    /// shards' partition keys (the counter and the budget of a shard share its partition), projecting only those
    /// figures (never the budget's per-order entries or the counter's give-backs). One request while the container has
    /// one physical partition, whatever the shard count; for the operator alerts, once per published campaign per run.
    /// Null when the campaign has no counter (a draft, an unknown campaign).
    /// </summary>
    public async Task<StockLevels?> ReadLevelsAsync(string campaignId, int shards, CancellationToken ct)
    {
        var keys = Enumerable.Range(0, shards).Select(k => "@k" + k).ToArray();
        // LEFT is a reserved word of Cosmos DB SQL: c["left"], as in the reservation's filter.
        var query = new QueryDefinition(
                $"SELECT c.id, c.total, c.remaining, c.budget, c[\"left\"] AS budgetLeft FROM c WHERE c.id IN (@stock, @budget) AND c.campaignId IN ({string.Join(", ", keys)})")
            .WithParameter("@stock", Stock.DocumentId).WithParameter("@budget", CampaignBudget.DocumentId);
        for (var k = 0; k < shards; k++) query = query.WithParameter(keys[k], StockSharding.Key(campaignId, k));
        var rows = new List<LevelRow>();
        using var iterator = container.GetItemQueryIterator<LevelRow>(query,
            requestOptions: new QueryRequestOptions { EnableOptimisticDirectExecution = true });
        while (iterator.HasMoreResults)
            rows.AddRange(await iterator.ReadNextAsync(ct));
        var counters = rows.Where(r => r.Id == Stock.DocumentId).ToList();
        if (counters.Count == 0) return null;
        var budgets = rows.Where(r => r.Id == CampaignBudget.DocumentId).ToList();
        return new StockLevels(counters.Sum(r => r.Total ?? 0), counters.Sum(r => r.Remaining ?? 0),
            budgets.Count == 0 ? null : budgets.Sum(r => r.Budget ?? 0), budgets.Count == 0 ? null : budgets.Sum(r => r.BudgetLeft ?? 0));
    }

    private sealed record LevelRow(string Id, int? Total, int? Remaining, long? Budget, long? BudgetLeft);
}
