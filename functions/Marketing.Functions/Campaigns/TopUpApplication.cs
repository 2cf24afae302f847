namespace Marketing.Functions.Campaigns;

/// <summary>How applying a leased top-up ended.</summary>
public enum TopUpApplied
{
    /// <summary>Added to every shard and marked applied.</summary>
    Done,
    /// <summary>Refused for the cap by the first shard: nothing was added anywhere.</summary>
    OverCap,
    /// <summary>Our lease ran out and another request took it over: that one finishes the top-up.</summary>
    LeaseLost,
}

/// <summary>
/// The one path that moves a top-up's money, shared by TopUpBudget (a top-up at or below the threshold, a replay taking
/// over a stopped one) and ApproveTopUp (an approved request): under the top-up's lease, its money is added to every budget
/// shard at most once (per-key entries), then it is marked applied (etag), then the entries are removed. It refuses to run
/// for a request that is not approved: that is what keeps a pending or rejected request's money out of the budget whatever
/// path reaches here.
/// </summary>
public static class TopUpApplication
{
    /// <summary>
    /// Applies <paramref name="leased"/> (a top-up whose lease the caller just took: created, approved or taken over, with
    /// its etag). From here the money moves even if the client goes away: every call ends with the lease.
    /// </summary>
    public static async Task<(TopUpApplied Outcome, TopUp TopUp)> ApplyAsync(StockStore stock, TopUp leased, int shards, TimeProvider time)
    {
        if (!leased.MayApply)
            throw new InvalidOperationException($"Top-up {leased.Key} of {leased.CampaignId} is {leased.State}: only an approved request may be applied.");
        using (var lease = new CancellationTokenSource(StockStore.Lease))
        {
            if (!await stock.ApplyTopUpAsync(leased.CampaignId, shards, leased.Key, leased.Amount, lease.Token))
            {
                // Refused for the cap by the first shard: nothing was added anywhere. A top-up that needed no approval frees
                // its key again (as before approvals); an approved request keeps its record, and the decision says why it
                // did not apply (final: a budget only grows, so it would be refused again).
                if (leased.Approval is null)
                    await stock.TryDeleteTopUpAsync(leased, CancellationToken.None);
                else
                    leased = await stock.TryReplaceTopUpAsync(leased with
                    {
                        LeaseUntil = null,
                        Approval = leased.Approval with { Status = TopUpApproval.Refused, Reason = "The budget would pass its maximum." },
                    }, CancellationToken.None) ?? leased;
                return (TopUpApplied.OverCap, leased);
            }
        }
        if (await stock.TryReplaceTopUpAsync(leased with { LeaseUntil = null, AppliedAt = time.GetUtcNow() }, CancellationToken.None) is not { } marked)
            return (TopUpApplied.LeaseLost, leased);
        await stock.ClearTopUpAsync(leased.CampaignId, shards, leased.Key, CancellationToken.None);
        return (TopUpApplied.Done, marked);
    }

    /// <summary>How many budget shards the campaign has (shard 0 says; an old budget without shards: 1).</summary>
    public static async Task<int> ShardsAsync(StockStore stock, string campaignId)
        => (await stock.FindBudgetShardAsync(campaignId, 0, CancellationToken.None))?.ShardCount ?? 1;
}
