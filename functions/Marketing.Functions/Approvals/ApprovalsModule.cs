namespace Marketing.Functions.Approvals;

/// <summary>
/// The approvers' queue over every kind of approval (docs/approvals.md). Each feature registers its own
/// <see cref="IApprovalQueue"/> (explicitly, in its AddX) and owns the routes that decide its requests.
/// </summary>
public static class ApprovalsModule
{
    /// <summary>The money thresholds (<see cref="ApprovalOptions"/>), read by top-ups and payout batches; checked on start.</summary>
    public static IServiceCollection AddApprovals(this IServiceCollection services)
    {
        // Bound from the app's configuration in the container (BindConfiguration), so the call site needs none.
        services.AddOptions<ApprovalOptions>().BindConfiguration(ApprovalOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        return services;
    }

    public static IEndpointRouteBuilder MapApprovals(this IEndpointRouteBuilder routes)
    {
        routes.MapListApprovals();
        return routes;
    }
}
