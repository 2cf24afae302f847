namespace Marketing.Functions.Approvals;

/// <summary>
/// The approvers' queue over every kind of approval (docs/approvals.md). Each feature registers its own
/// <see cref="IApprovalQueue"/> (explicitly, in its AddX) and owns the routes that decide its requests.
/// </summary>
public static class ApprovalsModule
{
    public static IEndpointRouteBuilder MapApprovals(this IEndpointRouteBuilder routes)
    {
        routes.MapListApprovals();
        return routes;
    }
}
