using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Wallet;

namespace Marketing.Functions.Campaigns;

public sealed record TopUpRequest(long Amount, string Reason);

public sealed record BudgetView(long Budget, long Left, long Reserved, long Spent, IReadOnlyList<TopUpView> TopUps)
{
    public static BudgetView Of(CampaignBudget budget) => new(budget.Budget, budget.Left, budget.Reserved, budget.Spent,
        [.. budget.TopUps.Select(t => new TopUpView(t.Key, t.Amount, t.Reason, t.By, t.At))]);
}

public sealed record TopUpView(string Key, long Amount, string Reason, string By, DateTimeOffset At);

/// <summary>
/// POST /api/campaigns/{id}/budget — an operator adds money to a published or paused campaign's budget
/// (Idempotency-Key header required). One patch adds to the budget and appends the top-up (who, how much,
/// when, why) to the budget document, refused if the key was used before, so a retry never adds twice.
/// </summary>
public static class TopUpBudget
{
    public const int MaxReason = 200;

    public static RouteHandlerBuilder MapTopUpBudget(this IEndpointRouteBuilder group) =>
        group.MapPost("/{id}/budget", HandleAsync)
            .AsFunction("TopUpBudget")
            .RequireAuthorization(Policies.Operator)
            .Accepts<TopUpRequest>("application/json")
            .Produces<BudgetView>()
            .WithSummary("Add to a campaign's budget, with a reason (Idempotency-Key header required).");

    private static async Task<IResult> HandleAsync(string id, HttpContext context, CampaignStore campaigns, StockStore stock, TimeProvider time)
    {
        var keyHeader = context.Request.Headers[ClaimCoupon.IdempotencyHeader];
        if (!ClaimCoupon.IsValidKey(keyHeader)) return ClaimCoupon.InvalidKey().ToResult();
        var key = keyHeader.ToString();
        var (request, problem) = await JsonBody.ReadAsync<TopUpRequest>(context.Request);
        if (problem is not null) return problem.ToResult();
        var errors = new Dictionary<string, string[]>();
        if (!Limits.IsMoney(request!.Amount, least: 1)) errors["amount"] = [$"1 to {Limits.MaxMoney} in minor units."];
        if (string.IsNullOrWhiteSpace(request.Reason) || request.Reason.Length > MaxReason) errors["reason"] = [$"Required, at most {MaxReason} characters."];
        if (errors.Count > 0) return Problem.Validation(errors).ToResult();

        var ct = context.RequestAborted;
        var campaign = await campaigns.FindAsync(id, ct);
        if (campaign is null) return Problem.NotFound("The campaign").ToResult();
        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(id + "\n" + JsonSerializer.Serialize(request, Json.Options))));

        // A replay first: it must get its answer even after the campaign ended.
        var before = await stock.FindBudgetAsync(id, ct);
        if (before?.TopUps.FirstOrDefault(t => t.Key == key) is { } earlier)
            return Replay(earlier, hash, before, context);
        switch (campaign.Status)
        {
            case CampaignStatus.Draft:
                return Problem.Of(ProblemTypes.CampaignNotEditable, 409, "A draft has no budget to top up yet.",
                    "Set the draft's budget with PUT /api/campaigns/{id}.").ToResult();
            case CampaignStatus.Ended:
                return Problem.Of(ProblemTypes.CampaignNotActive, 409, "The campaign has ended.").ToResult();
        }
        if (campaign.Terms.Budget is null)
            return Problem.Of(ProblemTypes.CampaignNotEditable, 409, "This campaign has no budget.",
                "Its discounts are not limited by money; a budget can only be set before publishing.").ToResult();

        // The budget document's numbers must stay exact in Cosmos DB (see Limits): a top-up may take the budget
        // up to the maximum, not past it. Checked here against the budget as read for a clear answer, and again
        // inside the patch's filter, so top-ups racing past this check cannot together overshoot it.
        if (before is not null && before.Budget > Limits.MaxMoney - request.Amount)
            return OverCap(before);

        var topUp = new BudgetTopUp(key, request.Amount, request.Reason, context.User.SubjectId(), time.GetUtcNow(), hash);
        var added = await stock.TryTopUpAsync(id, topUp, ct);
        var after = await stock.FindBudgetAsync(id, ct);
        if (after is null) return Problem.NotFound("The campaign's budget").ToResult();
        if (!added)
        {
            // Refused: the same key got in first (a concurrent retry).
            if (after.TopUps.FirstOrDefault(t => t.Key == key) is { } raced) return Replay(raced, hash, after, context);
            // Or other top-ups raised the budget meanwhile past what this one may add.
            return OverCap(after);
        }
        return TypedResults.Ok(BudgetView.Of(after));

        IResult OverCap(CampaignBudget budget) => Problem.Validation("amount", $"A budget holds at most {Limits.MaxMoney} minor units: at most "
            + $"{Math.Max(0, Limits.MaxMoney - budget.Budget)} more can be added to this one.").ToResult();
    }

    private static IResult Replay(BudgetTopUp earlier, string hash, CampaignBudget budget, HttpContext context)
    {
        if (earlier.RequestHash != hash)
            return Problem.Of(ProblemTypes.IdempotencyKeyReused, 422, "This Idempotency-Key was used for a different top-up.",
                "Use a new key for a new top-up.").ToResult();
        context.Response.Headers["Idempotent-Replayed"] = "true";
        return TypedResults.Ok(BudgetView.Of(budget));
    }
}
