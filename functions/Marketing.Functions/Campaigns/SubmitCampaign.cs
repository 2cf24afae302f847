using Marketing.Functions.Audit;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Campaigns;

/// <summary>
/// POST /api/campaigns/{id}/submit — an operator submits a draft's current revision for approval (draft → submitted). From
/// then on the campaign is in review: its terms are frozen until an approver approves, rejects or returns it, and neither
/// the submitter nor any of the revision's makers may decide it (four eyes, docs/approvals.md). Submitting again answers
/// 200 with the campaign as it is (a retry converges); from any other status it is 409 invalid-transition.
/// </summary>
public static class SubmitCampaign
{
    public static RouteHandlerBuilder MapSubmitCampaign(this IEndpointRouteBuilder group) =>
        group.MapPost("/{id}/submit", HandleAsync)
            .AsFunction("SubmitCampaign")
            .RequireAuthorization(Policies.Operator)
            .Audited("submit", AuditKinds.Campaign, "id")
            .WithProblems(409, ProblemTypes.InvalidTransition, ProblemTypes.ConcurrentUpdate)
            .Accepts<CampaignStepRequest>(isOptional: true, "application/json") // an empty object: nothing to show
            .Produces<CampaignView>()
            .WithSummary("Submit a draft for approval: it is in review (frozen) until an approver other than its makers decides it.");

    private static async Task<IResult> HandleAsync(string id, HttpContext context, CampaignStore store, TimeProvider time)
    {
        var (_, problem) = await JsonBody.ReadOptionalAsync<CampaignStepRequest>(context.Request);
        if (problem is not null) return problem.ToResult();
        var ct = context.RequestAborted;
        for (var attempt = 0; ; attempt++)
        {
            var current = await store.FindAsync(id, ct);
            if (current is null) return Problem.NotFound("The campaign").ToResult();
            if (current.Status == CampaignStatus.Submitted) return CampaignResults.Campaign(current, context);
            if (current.Status != CampaignStatus.Draft)
                return Problem.Of(ProblemTypes.InvalidTransition, 409, "This lifecycle step is not possible now.",
                    $"Only a draft can be submitted; this campaign is {CampaignStore.Wire(current.Status)}.").ToResult();

            var now = time.GetUtcNow();
            var submitted = await store.ReplaceAsync(current with
            {
                Status = CampaignStatus.Submitted,
                SubmittedBy = context.User.SubjectId(),
                SubmittedAt = now,
                // The last rejection or return was about an earlier submission; the audit trail keeps it.
                Review = null,
                // Documents older than approvals name their makers now, so the list the approver is checked against is stored.
                Makers = current.CurrentMakers,
                UpdatedAt = now,
                UpdatedBy = context.User.SubjectId(),
            }, current.ETag!, ct);
            if (submitted is not null) return CampaignResults.Campaign(submitted, context);
            if (attempt >= 3)
                return Problem.Of(ProblemTypes.ConcurrentUpdate, 409, "The campaign is being changed by someone else; try again.").ToResult();
        }
    }
}
