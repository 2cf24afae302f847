using System.Text.Json;
using Marketing.Functions.Hosting;
using Marketing.Functions.Redemption;
using Marketing.Functions.Wallet;

namespace Marketing.Functions.Stats;

/// <summary>
/// The facts a source document holds, read from its current version alone. The change feed (latest-version mode) shows
/// only a document's newest version, collapsing the ones between; so every fact must still be visible in the newest
/// version: a wallet keeps every coupon it was given (with when and where it was claimed, and whether it expired), and
/// a redemption keeps its whole history (steps are only appended). The same function serves the fold and the recount,
/// so the two cannot disagree on what a document means.
/// </summary>
public static class StatsFacts
{
    /// <summary>Facts of a wallet document (container "wallets"); none for its other documents.</summary>
    public static IEnumerable<StatsFact> OfWallet(JsonElement document)
    {
        if (!document.TryGetProperty("type", out var type) || type.GetString() != CampaignWallet.Kind) yield break;
        var wallet = document.Deserialize<CampaignWallet>(Json.Storage);
        if (wallet is null || wallet.Coupons.Count == 0) yield break;
        foreach (var fact in Of(wallet)) yield return fact;
    }

    public static IEnumerable<StatsFact> Of(CampaignWallet wallet)
    {
        // A wallet is created by its customer's first claim in the campaign and coupons are only ever appended, so the
        // earliest claim in it is the customer's first, for good.
        var first = wallet.Coupons.MinBy(c => c.ClaimedAt)!;
        yield return new StatsFact("n:" + wallet.CustomerId, wallet.CampaignId, first.ClaimedAt, StatsChannels.Name(first.ClaimedOn),
            new Figures { NewClaimers = 1 });
        foreach (var coupon in wallet.Coupons)
        {
            var channel = StatsChannels.Name(coupon.ClaimedOn);
            yield return new StatsFact("c:" + coupon.Id, wallet.CampaignId, coupon.ClaimedAt, channel, new Figures { Claims = 1 }, wallet.CustomerId);
            yield return new StatsFact("e:" + coupon.Id, wallet.CampaignId, coupon.ValidTo, channel, new Figures { Expiring = 1 });
            // Stored state, not the clock: a coupon counts as expired once the expiry timer (or a released lock) marks it,
            // on the hour its validity ended.
            if (coupon.State == CouponStatus.Expired)
                yield return new StatsFact("x:" + coupon.Id, wallet.CampaignId, coupon.ValidTo, channel, new Figures { Expired = 1 });
        }
    }

    /// <summary>
    /// Facts of commission ledger entries (container "ledger"): an entry is written once and only moves forward in status,
    /// so its amount and time never change. Counted for the campaign whose coupon the order redeemed (one point read of
    /// the order's redemption per order, shared by its entries); entries of orders that used no coupon count nowhere.
    /// </summary>
    public static async Task<List<StatsFact>> OfLedgerAsync(IEnumerable<JsonElement> documents, Func<string, CancellationToken, Task<Redemption.Redemption?>> findRedemption,
        CancellationToken ct)
    {
        var entries = documents.Where(d => d.TryGetProperty("kind", out _) && d.TryGetProperty("orderId", out _))
            .Select(d => d.Deserialize<Commissions.LedgerEntry>(Json.Storage)!).ToList();
        var orders = new Dictionary<string, Redemption.Redemption?>(StringComparer.Ordinal);
        foreach (var orderId in entries.Select(e => e.OrderId).Distinct(StringComparer.Ordinal))
            orders[orderId] = await findRedemption(orderId, ct);
        var facts = new List<StatsFact>();
        foreach (var entry in entries)
        {
            var delta = entry.Kind == Commissions.LedgerEntry.Reversal ? new Figures { CommissionReversed = -entry.Amount } : new Figures { Commission = entry.Amount };
            // Every commission is the programme's; those of orders that redeemed a coupon are their campaign's too.
            facts.Add(new StatsFact("l:" + entry.Id, Programme.Id, entry.CreatedAt, StatsChannels.Unknown, delta));
            if (orders[entry.OrderId] is not { } redemption) continue;
            facts.Add(new StatsFact("l:" + entry.Id, redemption.CampaignId, entry.CreatedAt, StatsChannels.Name(redemption.Channel), delta));
        }
        return facts;
    }

    /// <summary>
    /// Facts of the referrals container: a visit document is one visit; a buyer's bindings document holds one fact per
    /// binding (named by the buyer and when it began; bindings are only appended, the oldest dropped past a hundred).
    /// </summary>
    public static IEnumerable<StatsFact> OfReferrals(JsonElement document)
    {
        if (document.TryGetProperty("type", out var type) && type.GetString() == Promoters.ReferralVisit.Kind)
        {
            var visit = document.Deserialize<Promoters.ReferralVisit>(Json.Storage)!;
            yield return new StatsFact("v:" + visit.Id, Programme.Id, visit.At, StatsChannels.Unknown, new Figures { Visits = 1 });
            yield break;
        }
        if (!document.TryGetProperty("bindings", out _)) yield break;
        var referrals = document.Deserialize<Promoters.BuyerReferrals>(Json.Storage)!;
        foreach (var binding in referrals.Bindings)
            yield return new StatsFact($"b:{referrals.BuyerId}:{binding.From.UtcTicks}", Programme.Id, binding.From, StatsChannels.Unknown, new Figures { Bindings = 1 });
    }

    /// <summary>Facts of a settlement record (container "settlements"): its payment, when a promoter earned on it.</summary>
    public static IEnumerable<StatsFact> OfSettlement(JsonElement document)
    {
        if (!document.TryGetProperty("paid", out var paid) || paid.ValueKind != JsonValueKind.Object) yield break;
        var order = paid.Deserialize<Commissions.PaidOrder>(Json.Storage)!;
        if (order.Level1 is null) yield break;
        var orderId = document.GetProperty("id").GetString()!;
        yield return new StatsFact("p:" + orderId, Programme.Id, order.PaidAt, StatsChannels.Unknown, new Figures { PaidOrders = 1 });
    }

    /// <summary>Facts of a redemption record (container "redemptions"): one per step of its history.</summary>
    public static IEnumerable<StatsFact> OfRedemption(JsonElement document)
    {
        if (!document.TryGetProperty("history", out _) || !document.TryGetProperty("campaignId", out _)) return [];
        var redemption = document.Deserialize<Redemption.Redemption>(Json.Storage);
        return redemption is null ? [] : Of(redemption);
    }

    public static IEnumerable<StatsFact> Of(Redemption.Redemption record)
    {
        var channel = StatsChannels.Name(record.Channel);
        var gmv = record.OrderTotal ?? 0;
        for (var i = 0; i < record.History.Count; i++)
        {
            var step = record.History[i];
            Figures? delta = step.Step switch
            {
                "lock" => new Figures { Locks = 1 },
                "confirm" => new Figures { Redemptions = 1, Discount = record.Discount, Gmv = gmv },
                "cancel" => new Figures { Cancellations = 1 },
                "expire" => new Figures { Lapsed = 1 },
                "refund" => new Figures { Refunds = 1, Discount = -record.Discount, Gmv = -gmv },
                _ => null,
            };
            if (delta is null) continue;
            // The customer goes with it: a confirm is a redemption of theirs, counted in their reminder group (StatsFact.Classified).
            yield return new StatsFact($"r:{record.OrderId}:{i}", record.CampaignId, step.At, channel, delta, record.CustomerId);
            // The coupon's end of validity: a used coupon will not expire unused; one given back by a refund may again.
            if (step.Step == "confirm" || (step.Step == "refund" && record.CouponReturned))
                yield return new StatsFact($"re:{record.OrderId}:{i}", record.CampaignId, record.CouponValidTo, channel,
                    new Figures { Expiring = step.Step == "confirm" ? -1 : 1 });
        }
    }
}
