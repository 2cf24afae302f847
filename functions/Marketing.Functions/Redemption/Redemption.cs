using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using System.Text.Json.Serialization;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Wallet;

namespace Marketing.Functions.Redemption;

/// <summary>
/// locked → used → refunded, and locked → cancelled (by the order system, or "expire" by the timer when the lock
/// lapses). A lock writes its record directly as locked; pending is the per-order slot held while a retry takes over
/// a lock whose attempt died, or while the timer releases one, and the state locks of the previous release were
/// created in (docs/redemption.md).
/// </summary>
public enum RedemptionState { Pending, Locked, Used, Cancelled, Refunded }

/// <summary>One step in a redemption's history: never rewritten, only appended.</summary>
public sealed record RedemptionStep(string Step, RedemptionState State, DateTimeOffset At, string By, string? Reason = null);

/// <summary>
/// The redemption of one coupon on one order (container "redemptions", id = partition key = order id).
/// A lock writes it last (after the coupon and the budget); confirm and cancel change it first, by a patch filtered
/// on its state (the record decides which step wins), then complete their effects on the budget and the coupon.
/// </summary>
public sealed record Redemption
{
    public required string Id { get; init; }
    public required string OrderId { get; init; }
    public required string CustomerId { get; init; }
    public required string CouponId { get; init; }
    public required string CouponCode { get; init; }
    public required string CampaignId { get; init; }
    /// <summary>Where the coupon sits in its wallet document (indexes never change).</summary>
    public required int CouponIndex { get; init; }
    public required DateTimeOffset CouponValidTo { get; init; }
    public required long Discount { get; init; }
    public required string Currency { get; init; }
    public required bool Budgeted { get; init; }
    public required bool ReturnOnRefund { get; init; }
    public required RedemptionState State { get; init; }
    public required DateTimeOffset LockedUntil { get; init; }
    /// <summary>Fingerprint of the lock request, so a replay with a different body is told apart.</summary>
    public required string RequestHash { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public bool CouponReturned { get; init; }
    /// <summary>The budget shard holding this order's reservation (0 for a campaign with one budget document, and for records written before shards).</summary>
    public int BudgetShard { get; init; }
    /// <summary>
    /// A used record being refunded: until when the request that took this lease may still move the refund's money
    /// (its calls are cancelled by then). Nobody else refunds it before this plus StockStore.LeaseMargin; the commit
    /// clears it. This is what lets the budget's refund entry be removed right after the commit (docs/redemption.md).
    /// </summary>
    public DateTimeOffset? RefundingUntil { get; init; }
    public required List<RedemptionStep> History { get; init; }
    /// <summary>
    /// The order's channel and gross value (the sum of its lines) as the lock saw them: what campaign statistics
    /// (Stats/) count a redemption under and as GMV. Null on records written before they were kept.
    /// </summary>
    public Channel? Channel { get; init; }
    public long? OrderTotal { get; init; }

    [JsonPropertyName("_etag")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ETag { get; init; }

    public CouponRef Coupon => new(CustomerId, CampaignId, CouponIndex, CouponId);

    public Redemption Then(string step, RedemptionState state, DateTimeOffset at, string by, string? reason = null)
        => this with { State = state, History = [.. History, new RedemptionStep(step, state, at, by, reason)] };
}

/// <summary>What the order system and operators see of a redemption.</summary>
public sealed record RedemptionView(
    string OrderId,
    string CustomerId,
    string CouponId,
    string CouponCode,
    string CampaignId,
    long Discount,
    string Currency,
    RedemptionState State,
    DateTimeOffset LockedUntil,
    bool CouponReturned,
    IReadOnlyList<RedemptionStep> History)
{
    public static RedemptionView Of(Redemption r) => new(r.OrderId, r.CustomerId, r.CouponId, r.CouponCode, r.CampaignId,
        r.Discount, r.Currency, r.State, r.LockedUntil, r.CouponReturned, r.History);
}

public sealed class RedemptionOptions
{
    public const string Section = "Redemption";

    /// <summary>How long a lock holds a coupon for an unpaid order.</summary>
    [Range(1, 1440)]
    public int LockMinutes { get; set; } = 30;

    /// <summary>
    /// Days a redemption that can no longer change (cancelled, refunded) is kept before Cosmos deletes it (its
    /// "ttl", written with that final step). A used (paid) redemption never expires: a refund may come at any time,
    /// and it is the only record a refund can be applied from. See docs/scale.md.
    /// </summary>
    [Range(30, 3650)]
    public int FinishedRetentionDays { get; set; } = 180;
}

/// <summary>The optional body of confirm, cancel and refund: why, for the history.</summary>
public sealed record StepRequest(string? Reason = null)
{
    public const int MaxReason = 200;

    public static async Task<(string? Reason, Problem? Problem)> ReadAsync(HttpRequest request)
    {
        var (body, problem) = await JsonBody.ReadOptionalAsync<StepRequest>(request, b =>
            b.Reason is { } reason && (string.IsNullOrWhiteSpace(reason) || reason.Length > MaxReason)
                ? new Dictionary<string, string[]> { ["reason"] = [$"When given, 1 to {MaxReason} characters."] }
                : new Dictionary<string, string[]>());
        return (body?.Reason, problem);
    }
}

public static class RedemptionBudget
{
    /// <summary>
    /// Releases the order's reservation for the record's coupon wherever it is: in the record's budget shard when the
    /// record was locked (the lock that created it reserved there first), else — a pending record, whose lock may have
    /// died after reserving, or a lock whose record never came — in the shard that holds it (<see cref="StockStore.AnyShard"/>).
    /// </summary>
    public static async Task ReleaseAsync(this StockStore stock, Redemption record)
    {
        if (!record.Budgeted || record.Discount <= 0) return;
        if (record.History.Any(h => h.State == RedemptionState.Locked))
        {
            await stock.MoveBudgetAsync(record.CampaignId, record.BudgetShard, record.OrderId, record.CouponId, BudgetMove.Release, record.Discount, CancellationToken.None);
            return;
        }
        await stock.ReleaseWhereverAsync(record.CampaignId, record.OrderId, record.CouponId, record.Discount);
    }

    /// <summary>Releases the order's reservation for <paramref name="couponId"/> in whichever budget shard holds it (none: nothing to do).</summary>
    public static Task ReleaseWhereverAsync(this StockStore stock, string campaignId, string orderId, string couponId, long amount)
        => stock.MoveBudgetAsync(campaignId, StockStore.AnyShard, orderId, couponId, BudgetMove.Release, amount, CancellationToken.None);

    /// <summary>
    /// Moves the order's discount in its campaign's budget, if it has one (once per order: see StockStore), in the shard
    /// the record names. A pending record never recorded one (its lock was interrupted or refused): its release looks
    /// for the reservation in every shard.
    /// </summary>
    public static async Task MoveBudgetAsync(this StockStore stock, Redemption record, BudgetMove move, CancellationToken ct = default)
    {
        if (record.Budgeted && record.Discount > 0)
        {
            var shard = record.State == RedemptionState.Pending && move == BudgetMove.Release ? StockStore.AnyShard : record.BudgetShard;
            await stock.MoveBudgetAsync(record.CampaignId, shard, record.OrderId, record.CouponId, move, record.Discount, ct);
        }
    }

    /// <summary>Removes a refunded order's entry from its budget shard (see StockStore.ClearRefundAsync).</summary>
    public static async Task ClearRefundAsync(this StockStore stock, Redemption record)
    {
        if (record.Budgeted && record.Discount > 0)
            await stock.ClearRefundAsync(record.CampaignId, record.BudgetShard, record.OrderId, CancellationToken.None);
    }
}

public static class RedemptionResults
{
    public static IResult Created(Redemption redemption, HttpContext context, bool replayed)
    {
        if (replayed) context.Response.Headers["Idempotent-Replayed"] = "true";
        return TypedResults.Created($"/api/redemptions/{redemption.OrderId}", RedemptionView.Of(redemption));
    }

    public static IResult Ok(Redemption redemption, HttpContext context, bool replayed)
    {
        if (replayed) context.Response.Headers["Idempotent-Replayed"] = "true";
        return TypedResults.Ok(RedemptionView.Of(redemption));
    }

    public static Problem NotFound() => Problem.NotFound("A redemption for this order");

    public static Problem KeptChanging() => Problem.Of(ProblemTypes.ConcurrentUpdate, 409, "The redemption is being changed by someone else; try again.");

    public static Problem Impossible(string detail) => Problem.Of(ProblemTypes.InvalidTransition, 409, "This redemption step is not possible now.", detail);

    public static Problem InFlight() => Problem.Of(ProblemTypes.IdempotencyInFlight, 409, "A lock for this order is still in progress.",
        "Retry shortly.");

    public static string Wire(RedemptionState state) => JsonNamingPolicy.SnakeCaseLower.ConvertName(state.ToString());
}
