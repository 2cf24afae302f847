using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Commissions;

/// <summary>GET /api/commission-rules — every version of the rates and the one in force now.</summary>
public static class GetCommissionRules
{
    public static RouteHandlerBuilder MapGetCommissionRules(this IEndpointRouteBuilder group) =>
        group.MapGet("", async (HttpContext context, CommissionRulesStore store, TimeProvider time) =>
                TypedResults.Ok(CommissionRulesView.Of(await store.ListAsync(context.RequestAborted), time.GetUtcNow())))
            .AsFunction("GetCommissionRules")
            .RequireAuthorization(Policies.Operator)
            .Produces<CommissionRulesView>()
            .WithSummary("The commission rates: every version, and the one in force now.");
}
