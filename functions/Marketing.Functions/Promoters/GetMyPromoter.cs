using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Promoters;

/// <summary>GET /api/promoters/me — the caller's own registration (the id comes from the token).</summary>
public static class GetMyPromoter
{
    public static RouteHandlerBuilder MapGetMyPromoter(this IEndpointRouteBuilder group) =>
        group.MapGet("/me", async (HttpContext context, PromoterStore promoters) =>
                await promoters.FindAsync(context.User.SubjectId(), context.RequestAborted) is { } promoter
                    ? (IResult)TypedResults.Ok(PromoterView.Of(promoter))
                    : Problem.NotFound("Your promoter registration").ToResult())
            .AsFunction("GetMyPromoter")
            .RequireAuthorization(Policies.Promoter)
            .WithProblems(404, ProblemTypes.NotFound)
            .Produces<PromoterView>()
            .WithSummary("My promoter registration and referral code.");
}
