using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Marketing.Functions.Approvals;
using Marketing.Functions.Audit;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Wallet;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Campaigns;

public sealed record TopUpRequest(long Amount, string Reason);

/// <summary>
/// A top-up's answer: the budget's figures now (summed over its shards) and the top-up this Idempotency-Key recorded. A
/// replay answers the same top-up (its original who and when) with the figures as they are at the replay.
/// </summary>
public sealed record TopUpResult(long Total, long Left, long Reserved, long Spent, TopUpView TopUp);

/// <summary>
/// POST /api/campaigns/{id}/budget — an operator adds money to a published or paused campaign's budget
/// (Idempotency-Key header required). The top-up is its own document (who, how much, when, why), created if its key is
/// free, so a retry never adds twice; its money is then added to every budget shard, each at most once (a per-key entry
/// in the shard), under a lease; then it is marked applied and the per-key entries are removed. No document grows with
/// the number of top-ups (docs/redemption.md, "Budgets").
/// Above Approvals:TopUpThreshold the document is created as a request instead (approval pending), nothing is applied and
/// the answer is 202 with the top-up in state pending_approval; an approver decides it (ApproveTopUp, RejectTopUp), and
/// only an approved request is ever applied, by the same path (TopUpApplication; docs/approvals.md, "Money").
/// </summary>
public static class TopUpBudget
{
    public const int MaxReason = 200;

    public static RouteHandlerBuilder MapTopUpBudget(this IEndpointRouteBuilder group) =>
        group.MapPost("/{id}/budget", HandleAsync)
            .AsFunction("TopUpBudget")
            .RequireAuthorization(Policies.Operator)
            .Audited("top-up", AuditKinds.Budget, "id")
            .WithHeader(RequestHeader.IdempotencyKey(required: true))
            .WithProblems(409, ProblemTypes.CampaignNotActive, ProblemTypes.CampaignNotEditable, ProblemTypes.ConcurrentUpdate, ProblemTypes.IdempotencyInFlight)
            .WithProblems(422, ProblemTypes.IdempotencyKeyReused)
            .AcceptsJson(new TopUpRequest(500_000, "Weekend traffic is above plan"))
            .Produces<TopUpResult>()
            .Produces<TopUpResult>(StatusCodes.Status202Accepted)
            .WithSummary("Add to a campaign's budget, with a reason (Idempotency-Key header required); above the approval threshold, a request for an approver (202).");

    private static async Task<IResult> HandleAsync(string id, HttpContext context, CampaignStore campaigns, StockStore stock, TimeProvider time,
        IOptions<ApprovalOptions> approvals)
    {
        var keyHeader = context.Request.Headers[ClaimCoupon.IdempotencyHeader];
        if (!ClaimCoupon.IsValidKey(keyHeader)) return ClaimCoupon.InvalidKey().ToResult();
        var key = keyHeader.ToString();
        // The value rules go with the shape check, so a body with both kinds of mistakes gets them all in one 400.
        var (body, problem) = await JsonBody.ReadAsync<TopUpRequest>(context.Request, Validate);
        if (problem is not null) return problem.ToResult();
        var request = body!;
        context.AuditReason(request.Reason);

        var ct = context.RequestAborted;
        var campaign = await campaigns.FindAsync(id, ct);
        if (campaign is null) return Problem.NotFound("The campaign").ToResult();
        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(id + "\n" + JsonSerializer.Serialize(request, Json.Options))));
        var now = time.GetUtcNow();

        for (var attempt = 0; attempt < 5; attempt++)
        {
            // A replay first: it must get its answer even after the campaign ended.
            if (await stock.FindTopUpAsync(id, key, ct) is { } recorded)
            {
                if (recorded.RequestHash != hash) return KeyReused();
                // A request not (yet) approved is answered as it stands and never applied here: pending, rejected, or
                // refused. Its LeaseUntil is absent, so the lease test below would let anyone "take it over": this must come first.
                if (!recorded.MayApply)
                    return await AnswerAsync(recorded, replayed: true);
                if (recorded.AppliedAt is not null)
                {
                    // Applied: its per-key entries may still be there if a crash came before their removal.
                    await stock.ClearTopUpAsync(id, await TopUpApplication.ShardsAsync(stock, id), key, CancellationToken.None);
                    return await AnswerAsync(recorded, replayed: true);
                }
                if (now < recorded.LeaseUntil + StockStore.LeaseMargin)
                    return InFlight();
                // Its request (or its approver's) stopped (a crash, a timeout) before marking it applied: take the lease over and finish it.
                if (await stock.TryReplaceTopUpAsync(recorded with { LeaseUntil = now + StockStore.Lease }, CancellationToken.None) is not { } taken)
                    continue;
                return await ApplyAsync(taken);
            }

            var before = await stock.FindBudgetAsync(id, ct);
            // A key used before top-ups had their own documents is in the old shape's list (never appended again).
            if (before?.TopUps?.FirstOrDefault(t => t.Key == key) is { } earlier)
                return earlier.RequestHash != hash ? KeyReused() : await AnswerViewAsync(TopUpView.Of(earlier), replayed: true, StatusCodes.Status200OK);
            switch (campaign.Status)
            {
                case CampaignStatus.Draft or CampaignStatus.Submitted or CampaignStatus.Approved:
                    // The initial budget is part of the terms, approved with the campaign; publishing creates its documents.
                    return Problem.Of(ProblemTypes.CampaignNotEditable, 409, "A campaign not yet published has no budget to top up yet.",
                        "Set the draft's budget with PUT /api/campaigns/{id}.").ToResult();
                case CampaignStatus.Ended:
                    return Problem.Of(ProblemTypes.CampaignNotActive, 409, "The campaign has ended.").ToResult();
            }
            if (campaign.Terms.Budget is null)
                return Problem.Of(ProblemTypes.CampaignNotEditable, 409, "This campaign has no budget.",
                    "Its discounts are not limited by money; a budget can only be set before publishing.").ToResult();
            if (before is null) return Problem.NotFound("The campaign's budget").ToResult();

            // The budget's numbers must stay exact in Cosmos DB (see Limits): a top-up may take the budget up to the
            // maximum, not past it. Checked here against the budget as read for a clear answer, and again inside the
            // first shard's patch filter, so top-ups racing past this check cannot together overshoot it.
            if (before.Budget > Limits.MaxMoney - request.Amount)
                return OverCap(before.Budget);

            // Above the threshold the top-up is a request: recorded (the key is taken), nothing applied, no lease (no one is
            // moving money for it) until an approver approves it.
            var needsApproval = request.Amount > approvals.Value.TopUpThreshold;
            var topUp = new TopUp
            {
                CampaignId = id, Key = key, Amount = request.Amount, Reason = request.Reason, By = context.User.SubjectId(), At = now,
                RequestHash = hash,
                LeaseUntil = needsApproval ? null : now + StockStore.Lease,
                Approval = needsApproval ? new TopUpApproval { Status = TopUpApproval.Pending } : null,
            };
            if (await stock.TryCreateTopUpAsync(topUp, CancellationToken.None) is { } created)
                return needsApproval ? await AnswerAsync(created, replayed: false) : await ApplyAsync(created, before.ShardCount);
            // The same key got in first (a concurrent retry): answer as it does.
        }
        return KeptChanging();

        async Task<IResult> ApplyAsync(TopUp leased, int? knownShards = null)
        {
            var (outcome, topUp) = await TopUpApplication.ApplyAsync(stock, leased, knownShards ?? await TopUpApplication.ShardsAsync(stock, id), time);
            return outcome switch
            {
                TopUpApplied.Done => await AnswerAsync(topUp, replayed: false),
                TopUpApplied.OverCap => OverCap((await stock.FindBudgetAsync(id, CancellationToken.None))?.Budget ?? 0),
                _ => InFlight(), // our lease ran out and another request took it over: it finishes the top-up
            };
        }

        // 200 once applied; 202 for a request waiting for (or refused by) a decision.
        Task<IResult> AnswerAsync(TopUp topUp, bool replayed) => AnswerViewAsync(TopUpView.Of(topUp), replayed,
            topUp.AppliedAt is null && topUp.Approval is not null ? StatusCodes.Status202Accepted : StatusCodes.Status200OK);

        Task<IResult> AnswerViewAsync(TopUpView topUp, bool replayed, int status)
        {
            if (replayed) context.Response.Headers["Idempotent-Replayed"] = "true";
            return Answer(context, stock, campaign, topUp, status);
        }

        IResult InFlight() => TopUpBudget.InFlight(context);

        static IResult KeyReused() => Problem.Of(ProblemTypes.IdempotencyKeyReused, 422, "This Idempotency-Key was used for a different top-up.",
            "Use a new key for a new top-up.").ToResult();

        static IResult KeptChanging() => Problem.Of(ProblemTypes.ConcurrentUpdate, 409, "The top-up is being changed by someone else; try again.").ToResult();
    }

    /// <summary>
    /// The budget's figures now with <paramref name="topUp"/>, in one query over the shards; the top-ups themselves are listed
    /// by GET /api/campaigns/{id}/budget (paged: an answer that listed them all would grow with every top-up).
    /// </summary>
    public static async Task<IResult> Answer(HttpContext context, StockStore stock, Campaign campaign, TopUpView topUp, int status)
    {
        var budget = await stock.SumBudgetAsync(campaign.Id, campaign.Terms.ShardCount, ct: CancellationToken.None);
        if (budget is null) return Problem.NotFound("The campaign's budget").ToResult();
        var result = new TopUpResult(budget.Total, budget.Left, budget.Reserved, budget.Spent, topUp);
        return status == StatusCodes.Status202Accepted ? TypedResults.Accepted((string?)null, result) : TypedResults.Ok(result);
    }

    public static IResult OverCap(long budget) => Problem.Validation("amount", $"A budget holds at most {Limits.MaxMoney} minor units: at most "
        + $"{Math.Max(0, Limits.MaxMoney - budget)} more can be added to this one.").ToResult();

    public static IResult InFlight(HttpContext context)
    {
        context.Response.Headers.RetryAfter = "1";
        return Problem.Of(ProblemTypes.IdempotencyInFlight, 409, "A top-up with this Idempotency-Key is still in progress.", "Retry shortly.").ToResult();
    }

    private static Dictionary<string, string[]> Validate(TopUpRequest request)
    {
        var errors = new Dictionary<string, string[]>();
        if (!Limits.IsMoney(request.Amount, least: 1)) errors["amount"] = [$"1 to {Limits.MaxMoney} in minor units."];
        if (string.IsNullOrWhiteSpace(request.Reason) || request.Reason.Length > MaxReason) errors["reason"] = [$"Required, at most {MaxReason} characters."];
        return errors;
    }
}
