using System.ComponentModel.DataAnnotations;
using Marketing.Functions.Hosting;
using Marketing.Functions.Wallet;
using Microsoft.Extensions.Options;

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
}

public sealed record ReconcileReport(int Campaigns, List<string> Repairs);

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
            return result;
        });

    private static async Task ReconcileAsync(string campaignId, CampaignStore campaigns, StockStore stocks, WalletStore wallets,
        DateTimeOffset now, TimeSpan quiet, List<string> repairs, CancellationToken ct)
    {
        // Fresh reads: the list above may be minutes old, and acting on a stale status could reopen a
        // campaign an operator has just paused.
        var campaign = await campaigns.FindAsync(campaignId, ct);
        var stock = await stocks.FindAsync(campaignId, ct);
        if (campaign is null || stock is null) return; // publish writes the counter before the status: nothing was ever claimable

        // Lifecycle and quantity: only once no operator change can still be in flight.
        if (now - campaign.UpdatedAt >= quiet)
        {
            var shouldBeOpen = campaign.Status == CampaignStatus.Published;
            if (stock.Open != shouldBeOpen)
            {
                await stocks.SetOpenAsync(campaign.Id, shouldBeOpen, ct);
                repairs.Add($"{campaign.Id}: open {stock.Open} -> {shouldBeOpen}");
            }
            if (campaign.Terms.TotalQuantity > stock.Total &&
                await stocks.TryChangeTotalAsync(campaign.Id, stock.Total, campaign.Terms.TotalQuantity, ct))
                repairs.Add($"{campaign.Id}: total {stock.Total} -> {campaign.Terms.TotalQuantity}");
            stock = await stocks.FindAsync(campaign.Id, ct) ?? stock;
        }

        await ReturnLostUnitsAsync(stock, stocks, wallets, now, quiet, repairs, ct);
    }

    /// <summary>
    /// Sets issued/remaining from the coupons really issued, returning units lost to claims that died between
    /// taking stock and writing the coupon. Only when quiet (no claim can still be in flight), and only if
    /// something happened since the last check. True when units came back. The expiry timer calls it before it
    /// ends a sold-out campaign, so a campaign is never closed as sold out while units are only lost.
    /// </summary>
    public static async Task<bool> ReturnLostUnitsAsync(Stock stock, StockStore stocks, WalletStore wallets, DateTimeOffset now, TimeSpan quiet,
        List<string> repairs, CancellationToken ct)
    {
        var lastClaim = stock.LastClaimAt;
        if (lastClaim is null || now - lastClaim < quiet || stock.ReconciledAt >= lastClaim)
            return false;
        var issued = await wallets.CountIssuedAsync(stock.CampaignId, ct);
        if (!await stocks.TryRepairAsync(stock, issued, now, ct) || issued == stock.Issued)
            return false;
        repairs.Add($"{stock.CampaignId}: issued {stock.Issued} -> {issued}, remaining {stock.Remaining} -> {stock.Total - issued}");
        return issued < stock.Issued;
    }

    public static async Task<ReconcileReport> RunAsync(CampaignStore campaigns, StockStore stocks, WalletStore wallets,
        DateTimeOffset now, TimeSpan quiet, CancellationToken ct)
    {
        var repairs = new List<string>();
        // Ids only: each campaign is read fresh just before it is reconciled.
        var all = await campaigns.ListNotDraftIdsAsync(ct);
        foreach (var id in all)
        {
            try
            {
                await ReconcileAsync(id, campaigns, stocks, wallets, now, quiet, repairs, ct);
            }
            catch (Exception e) when (!ct.IsCancellationRequested) // our call deadline is an OperationCanceledException too: one failure, not the run's end
            {
                // One campaign's trouble must not stop the others; it is retried on the next run.
                repairs.Add($"{id}: failed ({e.GetType().Name}: {e.Message.Split('\n')[0]})");
            }
        }
        return new ReconcileReport(all.Count, repairs);
    }
}
