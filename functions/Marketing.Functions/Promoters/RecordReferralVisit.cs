using Marketing.Functions.Audit;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Promoters;

public sealed record ReferralVisitRequest(string Code);

/// <summary>
/// What the visit did: "bound" (the caller now counts as brought by this code's promoter until
/// <see cref="BoundUntil"/>), "already_bound" (to this promoter, unchanged), or "kept_earlier" (another
/// promoter brought the caller first and keeps them; who is not said).
/// </summary>
public sealed record ReferralVisitResult(string Status, DateTimeOffset? BoundUntil);

/// <summary>
/// POST /api/referrals/visits — an authenticated customer arrived through a referral link. Binds the buyer to
/// the code's promoter for the attribution window (Referrals:AttributionDays, 30 by default). Rule
/// (Referrals:Attribution): FirstTouch by default — while a binding lasts, a later code does not take the
/// buyer; LastTouch — every visit rebinds. Self-referral is refused, and so is a visit through the code of
/// a promoter the caller invited (the caller would earn level-2 commission on their own purchase).
/// One document per buyer, written with its etag, so concurrent visits settle on one binding.
/// </summary>
public static class RecordReferralVisit
{
    private const int Attempts = 5;

    public static RouteHandlerBuilder MapRecordReferralVisit(this IEndpointRouteBuilder group) =>
        group.MapPost("/visits", HandleAsync)
            .AsFunction("RecordReferralVisit")
            .NotAudited("A customer's own self-service: the document it writes records who and when (docs/audit.md).")
            .RequireAuthorization(Policies.Customer)
            .WithProblems(409, ProblemTypes.ConcurrentUpdate)
            .WithProblems(422, ProblemTypes.SelfReferral)
            .AcceptsJson(new ReferralVisitRequest("K7Q2M9XA"))
            .Produces<ReferralVisitResult>()
            .WithSummary("Record a visit through a referral code: binds me to its promoter for the attribution window (first touch).");

    private static async Task<IResult> HandleAsync(HttpContext context, PromoterStore promoters, ReferralStore referrals,
        IOptions<ReferralOptions> options, TimeProvider time)
    {
        var (request, problem) = await JsonBody.ReadAsync<ReferralVisitRequest>(context.Request);
        if (problem is not null) return problem.ToResult();
        if (!PromoterStore.IsWellFormedCode(request!.Code))
            return Problem.Validation("code", $"{PromoterStore.CodeLength} characters of 0-9 and A-Z (no I, L, O, U).").ToResult();
        var ct = context.RequestAborted;
        var buyerId = context.User.SubjectId();
        var promoter = await promoters.FindByCodeAsync(request.Code, ct);
        if (promoter is null) return RegisterPromoter.UnknownCode().ToResult();
        if (promoter.Id == buyerId)
            return Problem.Of(ProblemTypes.SelfReferral, 422, "You cannot be referred by your own code.").ToResult();
        if (promoter.ParentId == buyerId)
            return Problem.Of(ProblemTypes.SelfReferral, 422, "You cannot be referred by a promoter you invited.",
                "You would earn level-2 commission on your own purchases.").ToResult();

        // Counted by the distribution programme's statistics (visits → bound buyers → paid orders → commission).
        await referrals.RecordVisitAsync(new ReferralVisit { Id = "visit:" + Ids.New("v"), BuyerId = buyerId, PromoterId = promoter.Id, At = time.GetUtcNow() }, ct);

        var rule = options.Value.Attribution;
        var window = TimeSpan.FromDays(options.Value.AttributionDays);
        for (var attempt = 0; attempt < Attempts; attempt++)
        {
            var now = time.GetUtcNow();
            var before = await referrals.FindAsync(buyerId, ct);
            var bindings = before?.Bindings.ToList() ?? [];
            var current = before?.At(now);
            if (current is not null && rule == AttributionRule.FirstTouch)
                return TypedResults.Ok(current.PromoterId == promoter.Id
                    ? new ReferralVisitResult("already_bound", current.Until)
                    : new ReferralVisitResult("kept_earlier", null));
            if (current is not null)
                bindings[bindings.LastIndexOf(current)] = current with { Until = now };
            var binding = new ReferralBinding(promoter.Id, promoter.ParentId, promoter.Code, now, now + window);
            bindings.Add(binding);
            var after = new BuyerReferrals { Id = buyerId, Bindings = bindings.TakeLast(BuyerReferrals.MaxBindings).ToList() };
            if (await referrals.TrySaveAsync(before, after, ct))
                return TypedResults.Ok(new ReferralVisitResult("bound", binding.Until));
        }
        return Problem.Of(ProblemTypes.ConcurrentUpdate, 409, "Your referrals kept changing; retry.").ToResult();
    }
}
