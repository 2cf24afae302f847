using Marketing.Functions.Audit;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Promoters;

public sealed record RegisterPromoterRequest(string? InviterCode = null);

public sealed record PromoterView(string Id, string Code, string? InvitedWithCode, DateTimeOffset RegisteredAt)
{
    public static PromoterView Of(Promoter p) => new(p.Id, p.Code, p.ParentCode, p.RegisteredAt);
}

/// <summary>
/// POST /api/promoters — a customer joins the distribution programme, optionally with the referral code of
/// the promoter who invited them (who becomes their level-2 parent, for good). The customer gets a unique
/// referral code. Registering again answers the existing registration (200), whatever code is sent: the
/// parent cannot be changed afterwards, or a promoter could re-parent themselves under a friend.
/// Uniqueness: the code is the id of its document (create fails on a clash, we draw again); the promoter
/// document's id is the customer's id (create fails for a second registration, which gives its code back).
/// </summary>
public static class RegisterPromoter
{
    private const int CodeAttempts = 5;

    public static RouteHandlerBuilder MapRegisterPromoter(this IEndpointRouteBuilder group) =>
        group.MapPost("", HandleAsync)
            .AsFunction("RegisterPromoter")
            .NotAudited("A customer's own self-service: the document it writes records who and when (docs/audit.md).")
            .RequireAuthorization(Policies.Customer)
            .WithProblems(422, ProblemTypes.UnknownReferralCode)
            .AcceptsJson(new RegisterPromoterRequest("K7Q2M9XA"), isOptional: true)
            .Produces<PromoterView>(StatusCodes.Status201Created)
            .Produces<PromoterView>()
            .WithSummary("Become a promoter (optionally with the inviter's referral code); answers the existing registration when repeated.");

    private static async Task<IResult> HandleAsync(HttpContext context, PromoterStore promoters, TimeProvider time)
    {
        var (request, problem) = await JsonBody.ReadOptionalAsync<RegisterPromoterRequest>(context.Request);
        if (problem is not null) return problem.ToResult();
        var ct = context.RequestAborted;
        var customerId = context.User.SubjectId();
        if (await promoters.FindAsync(customerId, ct) is { } existing) return TypedResults.Ok(PromoterView.Of(existing));

        Promoter? parent = null;
        if (request?.InviterCode is { } inviterCode)
        {
            if (!PromoterStore.IsWellFormedCode(inviterCode))
                return Problem.Validation("inviterCode", $"{PromoterStore.CodeLength} characters of 0-9 and A-Z (no I, L, O, U).").ToResult();
            parent = await promoters.FindByCodeAsync(inviterCode, ct);
            if (parent is null) return UnknownCode().ToResult();
        }

        for (var attempt = 0; attempt < CodeAttempts; attempt++)
        {
            var code = Ids.ReferralCode();
            if (!await promoters.TryReserveCodeAsync(code, customerId, ct)) continue;
            var promoter = new Promoter
            {
                Id = customerId, Code = code, ParentId = parent?.Id, ParentCode = parent?.Code, RegisteredAt = time.GetUtcNow(),
            };
            if (await promoters.TryCreateAsync(promoter, ct))
                return TypedResults.Created("/api/promoters/me", PromoterView.Of(promoter));
            // A concurrent registration of the same customer won: give the code back and answer theirs.
            await promoters.ReleaseCodeAsync(code, ct);
            var winner = await promoters.FindAsync(customerId, ct);
            if (winner is not null) return TypedResults.Ok(PromoterView.Of(winner));
        }
        // 40 random bits clash five times in a row only if the code space is nearly full.
        throw new InvalidOperationException("Could not draw a free referral code.");
    }

    public static Problem UnknownCode() => Problem.Of(ProblemTypes.UnknownReferralCode, 422, "No promoter has this referral code.");
}
