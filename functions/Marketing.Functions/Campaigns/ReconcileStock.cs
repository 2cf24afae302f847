using System.ComponentModel.DataAnnotations;
using Marketing.Functions.Hosting;
using Marketing.Functions.Wallet;
using Microsoft.Extensions.Options;
using Marketing.Functions.Telemetry;

namespace Marketing.Functions.Campaigns;

public sealed class StockOptions
{
    public const string Section = "Stock";

    /// <summary>
    /// A campaign's stock is only repaired after this long without claims or changes. It must exceed the
    /// longest time a claim can spend between taking stock and writing the coupon (ClaimCoupon.ClaimDeadline,
    /// 30 s), so a repair never races a claim still in flight.
    /// </summary>
    [Range(2, 1440)]
    public int QuietMinutes { get; set; } = 5;

    /// <summary>
    /// Most open entries (reservations of open locks) one budget shard holds; a lock that finds every shard that could
    /// cover its discount at this cap is answered 503 (retry). Bounds a budget document's size by construction: each
    /// entry is at most ~120 bytes (a 64-character order id and "reserved:" + a 37-character coupon id), so 5,000 ≈
    /// 0.6 MB at the longest ids, under Cosmos DB's 2 MB item limit (docs/redemption.md, "Budgets").
    /// </summary>
    [Range(1, 10_000)]
    public int BudgetHoldsPerShard { get; set; } = 5_000;
}

/// <summary>A run's campaigns checked and repairs made; <c>Failures</c> counts the campaigns that failed (named in Repairs).</summary>
public sealed record ReconcileReport(int Campaigns, List<string> Repairs, int Failures = 0) : ITimerReport
{
    bool ITimerReport.Stopped => false; // it checks every launched campaign in one run
    bool ITimerReport.Failed => Failures > 0;
    Backlog? ITimerReport.Backlog => null; // no due list
}

/// <summary>
/// Timer function ReconcileStock (schedule: app setting ReconcileStockSchedule). Restores the invariants
/// after crashes: the stock's open switch follows the campaign status, its total follows the campaign's
/// quantity, and issued/remaining follow the coupons really in wallets (a claim that died between taking
/// stock and writing the coupon left one unit lost, never one too many). Safe to run twice at once:
/// every write is conditional (etag or current value), so the second run's writes simply fail.
/// </summary>
public static class ReconcileStock
{
    public const string FunctionName = "ReconcileStock";
    public const string ScheduleSetting = "ReconcileStockSchedule";

    public static RouteHandlerBuilder MapReconcileStock(this IEndpointRouteBuilder routes) =>
        routes.MapTimerFunction(FunctionName, $"%{ScheduleSetting}%", async (_, context) =>
        {
            var services = context.RequestServices;
            var report = await RunAsync(services.GetRequiredService<CampaignStore>(), services.GetRequiredService<StockStore>(),
                services.GetRequiredService<WalletStore>(), services.GetRequiredService<TimeProvider>().GetUtcNow(),
                TimeSpan.FromMinutes(services.GetRequiredService<IOptions<StockOptions>>().Value.QuietMinutes), context.RequestAborted);
            var result = new InvocationResult { ReturnValue = report };
            result.Log($"Checked {report.Campaigns} campaigns, {report.Repairs.Count} repairs.");
            report.Repairs.ForEach(r => result.Log(r));
            LogEvents.LoggerOf(context, typeof(ReconcileStock)).ReconcileStockRan(report.Campaigns, report.Repairs.Count);
            return result;
        });

    private static async Task ReconcileAsync(string campaignId, CampaignStore campaigns, StockStore stocks, WalletStore wallets,
        DateTimeOffset now, TimeSpan quiet, List<string> repairs, CancellationToken ct)
    {
        // Fresh reads: the list above may be minutes old, and acting on a stale status could reopen a
        // campaign an operator has just paused.
        var campaign = await campaigns.FindAsync(campaignId, ct);
        if (campaign is null) return;
        // Every shard of a sharded campaign is checked the same way as an unsharded campaign's one counter.
        var shards = campaign.Terms.ShardCount;
        var stock = await stocks.FindShardsAsync(campaignId, shards, ct);
        if (stock.Count == 0) return; // publish writes the counters before the status: nothing was ever claimable

        // Lifecycle and quantity: only once no operator change can still be in flight.
        if (now - campaign.UpdatedAt >= quiet)
        {
            var shouldBeOpen = campaign.Status == CampaignStatus.Published;
            foreach (var shard in stock)
            {
                if (shard.Open != shouldBeOpen)
                {
                    await stocks.SetShardOpenAsync(campaign.Id, shard.ShardNumber, shouldBeOpen, ct);
                    repairs.Add($"{shard.CampaignId}: open {shard.Open} -> {shouldBeOpen}");
                }
                // Each shard's part of the quantity (parts only grow with it), conditional on the shard's current total.
                var share = StockSharding.Share(campaign.Terms.TotalQuantity, shards, shard.ShardNumber);
                if (share > shard.Total && await stocks.TryChangeShardTotalAsync(campaign.Id, shard.ShardNumber, shard.Total, share, ct))
                    repairs.Add($"{shard.CampaignId}: total {shard.Total} -> {share}");
            }
            stock = await stocks.FindShardsAsync(campaign.Id, shards, ct);
        }

        await ReturnLostUnitsAsync(stock, stocks, wallets, now, quiet, repairs, ct);
    }

    /// <summary>
    /// Sets issued/remaining from the coupons really issued, returning units lost to claims that died between
    /// taking stock and writing the coupon. Only when quiet (no claim can still be in flight), and only if
    /// something happened since the last check. True when units came back. The expiry timer calls it before it
    /// ends a sold-out campaign, so a campaign is never closed as sold out while units are only lost.
    /// <paramref name="stock"/> is every shard of one campaign (one counter if unsharded), each as read before the
    /// count: each shard is checked and repaired on its own (its own quiet period, its own etag), from one count of
    /// the campaign's coupons by the shard they came from.
    /// </summary>
    public static async Task<bool> ReturnLostUnitsAsync(IReadOnlyList<Stock> stock, StockStore stocks, WalletStore wallets, DateTimeOffset now,
        TimeSpan quiet, List<string> repairs, CancellationToken ct)
    {
        var due = stock.Where(s => s.LastClaimAt is { } lastClaim && now - lastClaim >= quiet && !(s.ReconciledAt >= lastClaim)).ToList();
        if (due.Count == 0)
            return false;
        var campaignId = due[0].ForCampaign;
        var shards = due.Max(s => s.Shards ?? 1);
        var issuedByShard = shards == 1 ? [await wallets.CountIssuedAsync(campaignId, ct)] : await wallets.CountIssuedByShardAsync(campaignId, shards, ct);
        var returned = false;
        foreach (var shard in due)
        {
            var issued = issuedByShard[shard.ShardNumber];
            if (!await stocks.TryRepairAsync(shard, issued, now, ct) || issued == shard.Issued)
                continue;
            repairs.Add($"{shard.CampaignId}: issued {shard.Issued} -> {issued}, remaining {shard.Remaining} -> {shard.Total - issued}");
            returned |= issued < shard.Issued;
        }
        return returned;
    }

    public static async Task<ReconcileReport> RunAsync(CampaignStore campaigns, StockStore stocks, WalletStore wallets,
        DateTimeOffset now, TimeSpan quiet, CancellationToken ct)
    {
        var repairs = new List<string>();
        var failures = 0;
        // Ids only: each campaign is read fresh just before it is reconciled.
        var all = await campaigns.ListLaunchedIdsAsync(ct);
        foreach (var id in all)
        {
            try
            {
                await ReconcileAsync(id, campaigns, stocks, wallets, now, quiet, repairs, ct);
            }
            catch (Exception e) when (!ct.IsCancellationRequested) // our call deadline is an OperationCanceledException too: one failure, not the run's end
            {
                // One campaign's trouble must not stop the others; it is retried on the next run.
                repairs.Add($"{id}: failed ({Failure.Of(e)})");
                failures++;
            }
        }
        return new ReconcileReport(all.Count, repairs, failures);
    }
}
