using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Marketing.Functions.Audit;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Expiry;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Telemetry;
using Microsoft.Extensions.Primitives;

namespace Marketing.Functions.Wallet;

public sealed record ClaimRequest(Channel Channel);

/// <summary>
/// POST /api/campaigns/{id}/claims — a customer claims a coupon into their wallet.
///
/// Two Cosmos round trips on success: (1) take one unit of stock with a conditional patch, (2) write
/// the coupon into the customer's wallet document for the campaign, which atomically enforces the
/// per-customer limit and the idempotency key. Stock is taken first so that a crash between the two
/// writes can only under-sell; <see cref="ReconcileStock"/> later returns such a lost unit. When the
/// wallet refuses (limit reached, key already used), the unit is given back at once.
/// See docs/claiming.md for the full argument.
/// </summary>
public static class ClaimCoupon
{
    public const string IdempotencyHeader = "Idempotency-Key";
    public const int MaxKeyLength = 64;

    /// <summary>Longest a claim may spend between taking stock and writing the coupon (see StockOptions.QuietMinutes).</summary>
    public static readonly TimeSpan ClaimDeadline = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Requests in progress on this instance, by (customer, key): a concurrent duplicate gets 409 at once
    /// instead of taking stock. Across instances the wallet's key check decides (the loser replays).
    /// </summary>
    private static readonly ConcurrentDictionary<string, byte> InFlight = new();

    public static RouteHandlerBuilder MapClaimCoupon(this IEndpointRouteBuilder group) =>
        group.MapPost("/{id}/claims", HandleAsync)
            .AsFunction("ClaimCoupon")
            .NotAudited("A customer's own self-service: the document it writes records who and when (docs/audit.md).")
            .RequireAuthorization(Policies.Customer)
            .WithHeader(RequestHeader.IdempotencyKey(required: true))
            .WithProblems(403, ProblemTypes.NotEligible)
            .WithProblems(409, ProblemTypes.CampaignNotActive, ProblemTypes.IdempotencyInFlight, ProblemTypes.LimitReached, ProblemTypes.SoldOut)
            .WithProblems(422, ProblemTypes.IdempotencyKeyReused)
            .AcceptsJson(new ClaimRequest(Channel.MiniProgram))
            .Produces<CouponView>(StatusCodes.Status201Created)
            .WithSummary("Claim a coupon (Idempotency-Key header required).");

    private static async Task<IResult> HandleAsync(string id, HttpContext context, CampaignCache campaigns, StockStore stock,
        WalletStore wallets, DueIndex due, TimeProvider time, ILoggerFactory loggers)
    {
        var key = context.Request.Headers[IdempotencyHeader];
        if (!IsValidKey(key)) return InvalidKey().ToResult();
        var (request, problem) = await JsonBody.ReadAsync<ClaimRequest>(context.Request);
        if (problem is not null) return problem.ToResult();

        var customerId = context.User.SubjectId();
        var claim = new Claim(customerId, id, key.ToString(), Fingerprint(id, request!));
        var gate = customerId + "\n" + id + "\n" + claim.Key;
        if (!InFlight.TryAdd(gate, 0))
            return Problem.Of(ProblemTypes.IdempotencyInFlight, 409, "A request with this Idempotency-Key is still in progress.",
                "Retry after it completes to get its answer.").ToResult();
        try
        {
            var logger = loggers.CreateLogger(typeof(ClaimCoupon));
            return await ClaimAsync(claim, request!.Channel, context, campaigns, stock, wallets, due, time.GetUtcNow(), logger);
        }
        finally
        {
            InFlight.TryRemove(gate, out _);
        }
    }

    private sealed record Claim(string CustomerId, string CampaignId, string Key, string RequestHash);

    private static async Task<IResult> ClaimAsync(Claim claim, Channel channel, HttpContext context, CampaignCache campaigns,
        StockStore stock, WalletStore wallets, DueIndex due, DateTimeOffset now, ILogger logger)
    {
        var ct = context.RequestAborted;
        var campaign = await campaigns.FindAsync(claim.CampaignId, ct);
        // Campaigns never published (draft, in review, approved) do not exist as far as customers are concerned.
        if (campaign is null || !campaign.Status.IsLaunched())
            return Problem.NotFound("The campaign").ToResult();

        // Every refusal first checks whether this key already succeeded: a replay must get the first
        // answer even after the campaign sold out or ended. (Refusal paths only: no cost on success.)
        // The claims metric counts what the customer was told: a refusal that turns out to be a replay counts as one.
        async Task<IResult> Refuse(Problem refusal, string outcome)
        {
            var replay = await ReplayAsync(claim, context, wallets);
            Metrics.Claim(replay is null ? outcome : Metrics.ClaimOutcomes.Replayed, claim.CampaignId);
            return replay ?? refusal.ToResult();
        }

        if (!campaign.IsClaimableAt(now))
            return await Refuse(Problem.Of(ProblemTypes.CampaignNotActive, 409, "This campaign cannot be claimed now.",
                campaign.Status != CampaignStatus.Published ? $"The campaign is {CampaignStore.Wire(campaign.Status)}."
                : now < campaign.Terms.ClaimStartsAt ? "Claiming has not started yet." : "Claiming has ended."), Metrics.ClaimOutcomes.NotActive);
        if (!campaign.Terms.Channels.Contains(channel))
            return await Refuse(Problem.Of(ProblemTypes.NotEligible, 403, "This campaign is not offered on this channel."), Metrics.ClaimOutcomes.NotEligible);
        var (validFrom, validTo) = CouponValidity.For(campaign.Terms, now);
        if (validTo <= now)
            return await Refuse(Problem.Of(ProblemTypes.CampaignNotActive, 409, "This campaign's coupons have already expired."), Metrics.ClaimOutcomes.NotActive);

        // File the coupon's expiry before it exists (the expiry timer finds coupons only through the index).
        // One entry per campaign and expiry instant, written once per instance: no cost per claim.
        await due.EnsureCouponExpiryAsync(claim.CampaignId, validTo);

        string? newcomerMarker = null;
        if (campaign.Terms.NewCustomersOnly)
        {
            // Rule (docs/claiming.md): a newcomer holds no coupon of another campaign here, and spends their
            // newcomer status on one newcomer campaign only (a create-if-absent marker decides races).
            if (await wallets.HasCouponsOfOtherCampaignsAsync(claim.CustomerId, claim.CampaignId, ct))
                return await Refuse(NotNewcomer(), Metrics.ClaimOutcomes.NotEligible);
            var (allowed, createdETag) = await wallets.TryUseNewcomerStatusAsync(claim.CustomerId, claim.CampaignId, now, ct);
            if (!allowed) return await Refuse(NotNewcomer(), Metrics.ClaimOutcomes.NotEligible);
            newcomerMarker = createdETag;
        }

        // From the take on, a client disconnect must not cut the claim in half: the unit would be lost
        // until reconciliation. Instead every later call is bounded by the claim deadline, which the
        // reconciliation quiet period is sized against (docs/claiming.md).
        using var deadline = new CancellationTokenSource(ClaimDeadline);
        // Hot campaigns split their stock across shards: a random shard first, the others only if it is empty.
        var shards = campaign.Terms.ShardCount;
        StockTake taken;
        try
        {
            taken = await stock.TryTakeAsync(claim.CampaignId, shards, now, deadline.Token);
        }
        catch when (newcomerMarker is not null)
        {
            await wallets.ReleaseNewcomerStatusAsync(claim.CustomerId, newcomerMarker, CancellationToken.None);
            throw;
        }
        if (taken.Outcome != TakeOutcome.Taken)
        {
            // Got nothing: do not let a sold-out newcomer campaign use up the customer's newcomer status.
            if (newcomerMarker is not null)
                await wallets.ReleaseNewcomerStatusAsync(claim.CustomerId, newcomerMarker, CancellationToken.None);
            return await Refuse(taken.Outcome == TakeOutcome.SoldOut
                ? Problem.Of(ProblemTypes.SoldOut, 409, "All coupons of this campaign have been claimed.")
                : Problem.Of(ProblemTypes.CampaignNotActive, 409, "This campaign cannot be claimed now.", "The campaign is paused or ended."),
                taken.Outcome == TakeOutcome.SoldOut ? Metrics.ClaimOutcomes.SoldOut : Metrics.ClaimOutcomes.NotActive);
        }

        // From here one unit is ours. Past this point we never give it back on an unknown outcome
        // (a timeout may hide a write that succeeded): only on a definite refusal from the wallet.
        var coupon = NewCoupon(claim, campaign, channel, now, validFrom, validTo) with { StockShard = shards > 1 ? taken.Shard : null };
        var outcome = await wallets.AddAsync(claim.CustomerId, coupon, campaign.Terms.PerCustomerLimit, deadline.Token);
        // A retried write that had in fact committed finds its own coupon: that is success, not a duplicate.
        if (outcome is AddOutcome.KeyExists { Coupon.Id: var foundId } && foundId == coupon.Id)
            outcome = new AddOutcome.Added();
        if (outcome is not AddOutcome.Added)
            await GiveBackAsync(stock, claim.CampaignId, taken.Shard, coupon.Id, now, logger);

        if (outcome is not AddOutcome.LimitReached)
            Metrics.Claim(outcome is AddOutcome.Added ? Metrics.ClaimOutcomes.Issued : Metrics.ClaimOutcomes.Replayed, claim.CampaignId);
        return outcome switch
        {
            AddOutcome.Added => Created(context, coupon, replayed: false),
            AddOutcome.KeyExists existing => Replay(claim, existing.Coupon, context),
            _ => await Refuse(Problem.Of(ProblemTypes.LimitReached, 409, "You already hold as many coupons of this campaign as allowed.",
                $"The limit is {campaign.Terms.PerCustomerLimit} per customer."), Metrics.ClaimOutcomes.Limit),
        };
    }

    private static Problem NotNewcomer() => Problem.Of(ProblemTypes.NotEligible, 403, "This campaign is for new customers only.");

    private static async Task GiveBackAsync(StockStore stock, string campaignId, int shard, string couponId, DateTimeOffset now, ILogger logger)
    {
        try
        {
            // To the shard the unit came from: each shard's issued + remaining = its total.
            if (!await stock.GiveBackAsync(campaignId, shard, couponId, now, CancellationToken.None))
                logger.StockGiveBackRefused(campaignId, couponId);
        }
        catch (Exception e)
        {
            // Under-sold by one until reconciliation: never over-sold.
            logger.StockGiveBackFailed(campaignId, e);
        }
    }

    private static Coupon NewCoupon(Claim claim, Campaign campaign, Channel channel, DateTimeOffset now,
        DateTimeOffset validFrom, DateTimeOffset validTo)
    {
        var t = campaign.Terms;
        var coupon = new Coupon
        {
            Id = CouponIds.New(campaign.Id),
            Code = Ids.CouponCode(),
            CampaignId = campaign.Id,
            CampaignName = t.Name,
            Kind = t.Kind,
            AmountOff = t.AmountOff,
            PercentOff = t.PercentOff,
            MaxDiscount = t.MaxDiscount,
            MinimumSpend = t.MinimumSpend,
            Currency = t.Currency,
            Categories = t.Categories,
            Channels = t.Channels,
            Budgeted = t.Budget is not null,
            ReturnOnRefund = t.ReturnOnRefund,
            ClaimedOn = channel,
            ClaimedAt = now,
            ValidFrom = validFrom,
            ValidTo = validTo,
            IdempotencyKey = claim.Key,
            RequestHash = claim.RequestHash,
            Response = "",
        };
        // The first answer, stored with the coupon so that a replay returns exactly these bytes.
        return coupon with { Response = JsonSerializer.Serialize(CouponView.Of(coupon, now), Json.Options) };
    }

    private static async Task<IResult?> ReplayAsync(Claim claim, HttpContext context, WalletStore wallets)
    {
        var existing = await wallets.FindKeyAsync(claim.CustomerId, claim.CampaignId, claim.Key, context.RequestAborted);
        return existing is null ? null : Replay(claim, existing, context);
    }

    private static IResult Replay(Claim claim, Coupon existing, HttpContext context)
        => existing.RequestHash == claim.RequestHash
            ? Created(context, existing, replayed: true)
            : Problem.Of(ProblemTypes.IdempotencyKeyReused, 422, "This Idempotency-Key was used for a different request.",
                "Use a new key for a new request.").ToResult();

    private static IResult Created(HttpContext context, Coupon coupon, bool replayed)
    {
        context.Response.Headers.Location = $"/api/me/coupons/{coupon.Id}";
        if (replayed) context.Response.Headers["Idempotent-Replayed"] = "true";
        return Results.Text(coupon.Response, "application/json; charset=utf-8", Encoding.UTF8, StatusCodes.Status201Created);
    }

    public static Problem InvalidKey() => Problem.Validation(IdempotencyHeader,
        $"Required: 1 to {MaxKeyLength} characters of A-Z a-z 0-9 . _ : - (a UUID is ideal).");

    public static bool IsValidKey(StringValues values)
        => values.Count == 1 && values[0] is { Length: > 0 and <= MaxKeyLength } key &&
           key.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or ':' or '-');

    /// <summary>What makes two claims "the same request": the campaign and the body's meaning (not its bytes).</summary>
    private static string Fingerprint(string campaignId, ClaimRequest request)
        => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(campaignId + "\n" + JsonSerializer.Serialize(request, Json.Options))));
}
