using Marketing.Functions.Audit;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Campaigns;

/// <summary>The body of approve (optional): the revision the approver reviewed; when sent, any other revision is not approved.</summary>
public sealed record ApproveCampaignRequest
{
    public int? Revision { get; init; }
}

/// <summary>The body of reject: why (required; it is the makers' answer and goes in the audit entry).</summary>
public sealed record RejectCampaignRequest(string Reason);

/// <summary>The body of return: what to change (required; it is the makers' answer and goes in the audit entry).</summary>
public sealed record ReturnCampaignRequest(string Comments);

/// <summary>
/// POST /api/campaigns/{id}/approve · /reject · /return — an approver (or an admin) decides a submitted revision:
/// approve (submitted → approved; publishing then needs nothing more), reject (reason required) or return it for changes
/// (comments required), both back to draft. Four eyes: whoever submitted the revision or is among its makers (created or
/// edited it since the last approval) gets 403 four-eyes, admins included. One decision per revision: each write is
/// conditional on the revision as read (etag), so of two decisions at once one wins and the other re-reads it. Repeating the
/// decision that was taken answers 200 with the campaign (a retry converges); asking for another decision of a decided
/// revision is 409 approval-not-pending; anything else not submitted is 409 invalid-transition.
/// </summary>
public static class DecideCampaign
{
    public const int MaxReason = 500;
    public const int MaxComments = 2000;

    private enum Decision { Approve, Reject, Return }

    public static void MapDecideCampaign(this IEndpointRouteBuilder group)
    {
        group.MapPost("/{id}/approve", ApproveAsync)
            .AsFunction("ApproveCampaign")
            .RequireAuthorization(Policies.Approver)
            .Audited("approve", AuditKinds.Campaign, "id")
            .WithProblems(403, ProblemTypes.FourEyes)
            .WithProblems(409, ProblemTypes.InvalidTransition, ProblemTypes.ApprovalNotPending, ProblemTypes.ConcurrentUpdate)
            .AcceptsJson(new ApproveCampaignRequest { Revision = 3 }, isOptional: true)
            .Produces<CampaignView>()
            .WithSummary("Approve a submitted revision (approver or admin, never its submitter or makers); then it can be published.");
        group.MapPost("/{id}/reject", RejectAsync)
            .AsFunction("RejectCampaign")
            .RequireAuthorization(Policies.Approver)
            .Audited("reject", AuditKinds.Campaign, "id")
            .WithProblems(403, ProblemTypes.FourEyes)
            .WithProblems(409, ProblemTypes.InvalidTransition, ProblemTypes.ApprovalNotPending, ProblemTypes.ConcurrentUpdate)
            .AcceptsJson(new RejectCampaignRequest("The discount exceeds this quarter's promotion policy."))
            .Produces<CampaignView>()
            .WithSummary("Reject a submitted revision, with a reason: back to draft.");
        group.MapPost("/{id}/return", ReturnAsync)
            .AsFunction("ReturnCampaign")
            .RequireAuthorization(Policies.Approver)
            .Audited("return", AuditKinds.Campaign, "id")
            .WithProblems(403, ProblemTypes.FourEyes)
            .WithProblems(409, ProblemTypes.InvalidTransition, ProblemTypes.ApprovalNotPending, ProblemTypes.ConcurrentUpdate)
            .AcceptsJson(new ReturnCampaignRequest("Shorten the claim window to the weekend and name the categories."))
            .Produces<CampaignView>()
            .WithSummary("Return a submitted revision for changes, with comments: back to draft.");
    }

    private static async Task<IResult> ApproveAsync(string id, HttpContext context, CampaignStore store, TimeProvider time)
    {
        var (body, problem) = await JsonBody.ReadOptionalAsync<ApproveCampaignRequest>(context.Request,
            r => r.Revision is < 1 ? new Dictionary<string, string[]> { ["revision"] = ["When set, 1 or more: the revision you reviewed."] } : []);
        if (problem is not null) return problem.ToResult();
        return await DecideAsync(Decision.Approve, id, body?.Revision, null, context, store, time);
    }

    private static async Task<IResult> RejectAsync(string id, HttpContext context, CampaignStore store, TimeProvider time)
    {
        var (body, problem) = await JsonBody.ReadAsync<RejectCampaignRequest>(context.Request,
            r => Text("reason", r.Reason, MaxReason));
        if (problem is not null) return problem.ToResult();
        context.AuditReason(body!.Reason);
        return await DecideAsync(Decision.Reject, id, null, body.Reason, context, store, time);
    }

    private static async Task<IResult> ReturnAsync(string id, HttpContext context, CampaignStore store, TimeProvider time)
    {
        var (body, problem) = await JsonBody.ReadAsync<ReturnCampaignRequest>(context.Request,
            r => Text("comments", r.Comments, MaxComments));
        if (problem is not null) return problem.ToResult();
        context.AuditReason(body!.Comments);
        return await DecideAsync(Decision.Return, id, null, body.Comments, context, store, time);
    }

    private static Dictionary<string, string[]> Text(string field, string? text, int max)
        => string.IsNullOrWhiteSpace(text) || text.Length > max
            ? new() { [field] = [$"Required, at most {max} characters."] }
            : [];

    private static async Task<IResult> DecideAsync(Decision decision, string id, int? reviewedRevision, string? reason,
        HttpContext context, CampaignStore store, TimeProvider time)
    {
        var ct = context.RequestAborted;
        var approver = context.User.SubjectId();
        for (var attempt = 0; ; attempt++)
        {
            var current = await store.FindAsync(id, ct);
            if (current is null) return Problem.NotFound("The campaign").ToResult();

            var taken = Taken(current);
            if (current.Status != CampaignStatus.Submitted && taken is null)
                return Problem.Of(ProblemTypes.InvalidTransition, 409, "This lifecycle step is not possible now.",
                    $"Only a submitted campaign can be decided; this campaign is {CampaignStore.Wire(current.Status)}.").ToResult();
            // Four eyes before anything else is said about the revision (a repeat included): its makers never decide it.
            if (current.FourEyes.Contains(approver, StringComparer.Ordinal))
                return Problem.Of(ProblemTypes.FourEyes, 403, "You cannot decide a revision you submitted or edited.",
                    $"Revision {current.Revision} was submitted by {current.SubmittedBy} and made by {string.Join(", ", current.CurrentMakers)}: " +
                    "another approver decides it.").ToResult();
            if (reviewedRevision is { } reviewed && reviewed != current.Revision)
                return Problem.Of(ProblemTypes.ApprovalNotPending, 409, "The revision you reviewed is no longer the one in review.",
                    $"You reviewed revision {reviewed}; the campaign is at revision {current.Revision}. Review it again.").ToResult();
            if (taken is { } done)
                return done == decision
                    ? CampaignResults.Campaign(current, context)
                    : Problem.Of(ProblemTypes.ApprovalNotPending, 409, "This revision was already decided.",
                        $"Revision {current.Revision} was {Wire(done)}; it cannot be {Wire(decision)} now.").ToResult();

            var now = time.GetUtcNow();
            var decided = await store.ReplaceAsync(decision switch
            {
                Decision.Approve => current with
                {
                    Status = CampaignStatus.Approved,
                    Approval = new CampaignApproval(current.Revision, approver, now),
                    LastApproved = new ApprovedTerms(current.Revision, current.Terms, approver, now),
                    UpdatedAt = now,
                    UpdatedBy = approver,
                },
                _ => current with
                {
                    Status = CampaignStatus.Draft,
                    Review = new CampaignReview(decision == Decision.Reject ? ReviewOutcome.Rejected : ReviewOutcome.Returned,
                        current.Revision, approver, now, reason!),
                    UpdatedAt = now,
                    UpdatedBy = approver,
                },
            }, current.ETag!, ct);
            if (decided is not null) return CampaignResults.Campaign(decided, context);
            // Someone else changed it (another decision, a concurrent retry): read it again and answer for what is there.
            if (attempt >= 3)
                return Problem.Of(ProblemTypes.ConcurrentUpdate, 409, "The campaign is being changed by someone else; try again.").ToResult();
        }
    }

    /// <summary>The decision already taken on the current revision, if any (a campaign approved, or back in draft by a review of this revision).</summary>
    private static Decision? Taken(Campaign campaign) => campaign switch
    {
        { Status: CampaignStatus.Approved, IsApproved: true } => Decision.Approve,
        { Status: CampaignStatus.Draft, Review: { } review } when review.Revision == campaign.Revision
            => review.Outcome == ReviewOutcome.Rejected ? Decision.Reject : Decision.Return,
        _ => null,
    };

    private static string Wire(Decision decision) => decision switch
    {
        Decision.Approve => "approved",
        Decision.Reject => "rejected",
        _ => "returned",
    };
}
