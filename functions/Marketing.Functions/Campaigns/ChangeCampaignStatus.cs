using Marketing.Functions.Audit;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Campaigns;

/// <summary>
/// The body of publish, pause, resume and end: optional, and when sent an empty JSON object. A step has nothing to
/// say today; refusing members (rather than ignoring them) keeps a client from believing it set something, and
/// leaves room to add optional members later without changing what old clients get.
/// </summary>
public sealed record CampaignStepRequest;

/// <summary>
/// POST /api/campaigns/{id}/publish · /pause · /resume · /end — the lifecycle
/// approved → published → paused ⇄ published → ended. Publishing needs an approval of the current revision
/// (draft → submitted → approved: SubmitCampaign, DecideCampaign); without one it is 409 approval-required.
/// Repeating a transition that already happened answers 200 and re-applies its stock side, so a retry
/// after a crash between the two writes converges. Anything else is 409 invalid-transition.
/// The order of the two writes is chosen so that a crash in between can only stop claims, never allow them:
/// closing the stock comes before the status says paused/ended; opening it comes after it says published.
/// </summary>
public static class ChangeCampaignStatus
{
    private sealed record Transition(string Action, string Function, CampaignStatus Target, CampaignStatus[] From, string Summary);

    private static readonly Transition[] Transitions =
    [
        new("publish", "PublishCampaign", CampaignStatus.Published, [CampaignStatus.Approved], "Publish an approved campaign: customers can claim while the claim window is open."),
        new("pause", "PauseCampaign", CampaignStatus.Paused, [CampaignStatus.Published], "Pause claiming."),
        new("resume", "ResumeCampaign", CampaignStatus.Published, [CampaignStatus.Paused], "Resume claiming after a pause."),
        new("end", "EndCampaign", CampaignStatus.Ended, [CampaignStatus.Published, CampaignStatus.Paused], "End a campaign for good."),
    ];

    public static void MapChangeCampaignStatus(this IEndpointRouteBuilder group)
    {
        foreach (var transition in Transitions)
        {
            group.MapPost("/{id}/" + transition.Action,
                    (string id, HttpContext context, CampaignStore store, StockStore stock, CampaignCache cache, TimeProvider time)
                        => HandleAsync(transition, id, context, store, stock, cache, time))
                .AsFunction(transition.Function)
                .RequireAuthorization(Policies.Operator)
                .Audited(transition.Action, AuditKinds.Campaign, "id")
                .WithProblems(409, transition.Action == "publish"
                    ? [ProblemTypes.InvalidTransition, ProblemTypes.ApprovalRequired, ProblemTypes.ConcurrentUpdate]
                    : [ProblemTypes.InvalidTransition, ProblemTypes.ConcurrentUpdate])
                .Accepts<CampaignStepRequest>(isOptional: true, "application/json") // an empty object: nothing to show
                .Produces<CampaignView>()
                .WithSummary(transition.Summary);
        }
    }

    private static async Task<IResult> HandleAsync(Transition transition, string id, HttpContext context,
        CampaignStore store, StockStore stock, CampaignCache cache, TimeProvider time)
    {
        var (_, problem) = await JsonBody.ReadOptionalAsync<CampaignStepRequest>(context.Request);
        if (problem is not null) return problem.ToResult();
        var (campaign, refusal, _) = await ApplyAsync(transition, id, context.User.SubjectId(), "operator", store, stock, cache, time.GetUtcNow(),
            context.RequestAborted);
        return refusal is not null ? refusal.ToResult() : CampaignResults.Campaign(campaign!, context);
    }

    /// <summary>
    /// Ends a published or paused campaign on the expiry timer's behalf (claim window over, sold out).
    /// Null when there was nothing to do (already ended, or changed by someone else meanwhile).
    /// </summary>
    public static async Task<Campaign?> EndAsync(string id, string by, string reason, Func<Campaign, bool> stillDue,
        CampaignStore store, StockStore stock, CampaignCache cache, DateTimeOffset now, CancellationToken ct)
    {
        var (campaign, _, changed) = await ApplyAsync(Transitions.Single(t => t.Action == "end"), id, by, reason, store, stock, cache, now, ct,
            stillDue);
        return changed ? campaign : null;
    }

    private static async Task<(Campaign? Campaign, Problem? Refusal, bool Changed)> ApplyAsync(Transition transition, string id, string by, string reason,
        CampaignStore store, StockStore stock, CampaignCache cache, DateTimeOffset now, CancellationToken ct,
        Func<Campaign, bool>? stillDue = null)
    {
        for (var attempt = 0; ; attempt++)
        {
            var current = await store.FindAsync(id, ct);
            if (current is null) return (null, Problem.NotFound("The campaign"), false);
            // A scheduled step re-checks its reason on every attempt: an operator may have just extended the campaign.
            if (stillDue is not null && !stillDue(current)) return (current, null, false);
            var repeat = current.Status == transition.Target;
            // Maker-checker: a draft or a campaign still in review has no approval of its current revision to publish.
            if (transition.Action == "publish" && current.Status is CampaignStatus.Draft or CampaignStatus.Submitted)
                return (null, Problem.Of(ProblemTypes.ApprovalRequired, 409, "Publishing needs an approval of the current revision.",
                    current.Status == CampaignStatus.Draft
                        ? "Submit it (POST /api/campaigns/{id}/submit); an approver other than its makers approves it; then publish."
                        : "It is in review: an approver other than its makers approves it; then publish."), false);
            if (!repeat && !transition.From.Contains(current.Status))
                return (null, Problem.Of(ProblemTypes.InvalidTransition, 409, "This lifecycle step is not possible now.",
                    $"Cannot {transition.Action} a campaign that is {CampaignStore.Wire(current.Status)}."), false);
            if (transition.Action == "publish" && !repeat && current.Terms.ClaimEndsAt <= now)
                return (null, Problem.Of(ProblemTypes.InvalidTransition, 409, "This lifecycle step is not possible now.",
                    "The claim window is already over; extend claimEndsAt first."), false);

            var opens = transition.Target == CampaignStatus.Published;
            // Every step opens or closes every stock shard (fixed once published, so the draft's count is the one used).
            var shards = current.Terms.ShardCount;
            if (transition.Action == "publish" && !repeat)
                await stock.PrepareForPublishAsync(id, current.Terms.TotalQuantity, current.Terms.Budget, shards, ct);
            else if (!opens)
                await stock.SetOpenAsync(id, shards, false, ct);

            var campaign = current;
            if (!repeat)
            {
                campaign = await store.ReplaceAsync(current with
                {
                    Status = transition.Target,
                    UpdatedAt = now,
                    UpdatedBy = by,
                    PublishedAt = transition.Action == "publish" ? now : current.PublishedAt,
                    EndedAt = transition.Target == CampaignStatus.Ended ? now : current.EndedAt,
                    EndReason = transition.Target == CampaignStatus.Ended ? reason : current.EndReason,
                }, current.ETag!, ct);
                if (campaign is null)
                {
                    // Closed counter + unchanged status only blocks claims; a retry or the reconciliation job converges.
                    if (attempt >= 3)
                        return (null, Problem.Of(ProblemTypes.ConcurrentUpdate, 409, "The campaign is being changed by someone else; try again."), false);
                    continue;
                }
            }

            if (!opens)
            {
                // Close again after the status write: a concurrent resume or the reconciliation job may have
                // reopened the counter from a read taken before our status change.
                await stock.SetOpenAsync(id, shards, false, CancellationToken.None);
            }
            else
            {
                await stock.SetOpenAsync(id, shards, true, ct);
                // A pause or end may have landed between our read and our open: if so, close again.
                if ((await store.FindAsync(id, ct))?.Status is not CampaignStatus.Published)
                    await stock.SetOpenAsync(id, shards, false, CancellationToken.None);
            }
            cache.Forget(id);
            return (campaign, null, !repeat);
        }
    }
}
