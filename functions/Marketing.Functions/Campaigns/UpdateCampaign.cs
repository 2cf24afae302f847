using System.Text.Json;
using Marketing.Functions.Audit;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Campaigns;

/// <summary>
/// PUT /api/campaigns/{id} — replace a campaign's terms. Drafts are fully editable. A submitted campaign is in review
/// and frozen until an approver decides it (or returns it). Editing an approved campaign voids its approval: it goes back
/// to draft, to be submitted again. Once published, customers hold coupons on these terms, so only quantity (up), claim
/// end (later) and reminders may change, without a new approval (docs/decisions/0009). Ended campaigns are frozen.
/// Every change of the terms is a new revision, and its editor one of the revision's makers, who may not approve it.
/// Optional If-Match (the ETag of a GET) guards against overwriting another operator's edit.
/// </summary>
public static class UpdateCampaign
{
    public static RouteHandlerBuilder MapUpdateCampaign(this IEndpointRouteBuilder group) =>
        group.MapPut("/{id}", HandleAsync)
            .AsFunction("UpdateCampaign")
            .RequireAuthorization(Policies.Operator)
            .Audited("update", AuditKinds.Campaign, "id")
            .WithHeader(RequestHeader.IfMatch)
            .WithProblems(409, ProblemTypes.CampaignNotEditable, ProblemTypes.ConcurrentUpdate)
            .WithProblems(412, ProblemTypes.PreconditionFailed)
            .AcceptsJson(CampaignTerms.Example)
            .Produces<CampaignView>()
            .WithSummary("Update a campaign's terms (drafts fully; published: grow quantity or extend the claim end).");

    private static async Task<IResult> HandleAsync(string id, HttpContext context, CampaignStore store, StockStore stock,
        CampaignCache cache, TimeProvider time)
    {
        var (body, problem) = await JsonBody.ReadAsync<CampaignTerms>(context.Request, t => t.Validate());
        if (problem is not null) return problem.ToResult();
        var terms = body!;
        string? ifMatch = context.Request.Headers.IfMatch;

        // Optimistic concurrency: read, check, replace if unchanged; retry a few times when another
        // writer got in between (unless the caller pinned a version with If-Match).
        for (var attempt = 0; ; attempt++)
        {
            var current = await store.FindAsync(id, context.RequestAborted);
            if (current is null) return Problem.NotFound("The campaign").ToResult();
            if (ifMatch is not null && !CampaignResults.Matches(ifMatch, current.ETag!))
                return Problem.Of(ProblemTypes.PreconditionFailed, 412, "The campaign changed since you read it.",
                    "GET it again and re-apply your change.").ToResult();

            var refusal = CheckEditable(current, terms);
            if (refusal is not null) return refusal.ToResult();

            var now = time.GetUtcNow();
            var editor = context.User.SubjectId();
            var changed = !SameTerms(current.Terms, terms);
            // A revision's makers are who edited it since its last approval: an edit of an approved revision starts a new list.
            var makers = !changed ? current.Makers
                : current.IsApproved ? [editor]
                : current.CurrentMakers.Contains(editor, StringComparer.Ordinal) ? current.CurrentMakers
                : [.. current.CurrentMakers, editor];
            if (makers is { Length: > Campaign.MaxMakers })
                return Problem.Of(ProblemTypes.CampaignNotEditable, 409, "Too many different people edited this revision.",
                    $"A revision may have at most {Campaign.MaxMakers} makers (its editors since the last approval, who may not approve it): " +
                    "have one of them finish it and submit it for approval.").ToResult();
            var voidsApproval = changed && current.Status == CampaignStatus.Approved;
            var updated = await store.ReplaceAsync(current with
            {
                Terms = terms,
                UpdatedAt = now,
                UpdatedBy = editor,
                Revision = changed ? current.Revision + 1 : current.Revision,
                Makers = makers,
                // An edit after approval voids it: the new revision goes back to draft and through review again.
                Status = voidsApproval ? CampaignStatus.Draft : current.Status,
                Approval = voidsApproval ? null : current.Approval,
            }, current.ETag!, context.RequestAborted);
            if (updated is null)
            {
                if (ifMatch is not null)
                    return Problem.Of(ProblemTypes.PreconditionFailed, 412, "The campaign changed since you read it.").ToResult();
                if (attempt >= 3)
                    return Problem.Of(ProblemTypes.ConcurrentUpdate, 409, "The campaign is being changed by someone else; try again.").ToResult();
                continue;
            }

            // Campaign first, stock second: if we stop in between, the counter is short (never over) and
            // the reconciliation job finishes the change. The patch is conditional on the old total (each shard's
            // on its old share of it), so applying it twice is impossible.
            if (current.Status.IsLaunched() && terms.TotalQuantity != current.Terms.TotalQuantity)
                await stock.TryChangeTotalAsync(id, current.Terms.ShardCount, current.Terms.TotalQuantity, terms.TotalQuantity, context.RequestAborted);
            cache.Forget(id);
            return CampaignResults.Campaign(updated, context);
        }
    }

    /// <summary>Whether two sets of terms are the same (as JSON, so an unchanged PUT is not a new revision).</summary>
    private static bool SameTerms(CampaignTerms a, CampaignTerms b)
        => JsonElement.DeepEquals(JsonSerializer.SerializeToElement(a, Json.Storage), JsonSerializer.SerializeToElement(b, Json.Storage));

    private static Problem? CheckEditable(Campaign current, CampaignTerms terms)
    {
        switch (current.Status)
        {
            case CampaignStatus.Draft or CampaignStatus.Approved:
                return null;
            case CampaignStatus.Submitted:
                return Problem.Of(ProblemTypes.CampaignNotEditable, 409, "The campaign is in review.",
                    "Ask an approver to return it for changes (POST /api/campaigns/{id}/return), then edit and submit it again.");
            case CampaignStatus.Ended:
                return Problem.Of(ProblemTypes.CampaignNotEditable, 409, "An ended campaign cannot be changed.");
        }

        var errors = new Dictionary<string, string[]>();
        if (terms.TotalQuantity < current.Terms.TotalQuantity)
            errors["totalQuantity"] = ["A published campaign's quantity can only grow."];
        if (terms.ClaimEndsAt < current.Terms.ClaimEndsAt)
            errors["claimEndsAt"] = ["A published campaign's claim end can only move later."];
        // Everything else must be exactly as published: compare the rest field by field.
        // stockShards absent and 1 mean the same (one counter).
        // Reminders may change too: they apply to reminders not yet due.
        var before = JsonSerializer.SerializeToElement(current.Terms with { TotalQuantity = 0, ClaimEndsAt = default, StockShards = current.Terms.ShardCount, Reminders = null }, Json.Options);
        var after = JsonSerializer.SerializeToElement(terms with { TotalQuantity = 0, ClaimEndsAt = default, StockShards = terms.ShardCount, Reminders = null }, Json.Options);
        foreach (var property in after.EnumerateObject())
        {
            if (!before.TryGetProperty(property.Name, out var old) || !JsonElement.DeepEquals(old, property.Value))
                errors[property.Name] = ["Cannot change once published."];
        }
        foreach (var property in before.EnumerateObject())
        {
            if (!after.TryGetProperty(property.Name, out _))
                errors[property.Name] = ["Cannot change once published."];
        }
        if (errors.ContainsKey("budget"))
            errors["budget"] = ["Cannot change once published; add to it with POST /api/campaigns/{id}/budget (TopUpBudget)."];
        return errors.Count == 0 ? null : Problem.Of(ProblemTypes.CampaignNotEditable, 409,
            "Only quantity (up), claim end (later) and reminders can change once a campaign is published.", null, errors);
    }
}
