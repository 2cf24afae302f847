using Marketing.Functions.Approvals;
using Marketing.Functions.Hosting;

namespace Marketing.Functions.Payouts;

public static class PayoutsModule
{
    public static readonly ContainerSpec[] Containers = [PayoutStore.Spec];

    public static IServiceCollection AddPayouts(this IServiceCollection services)
        => services.AddSingleton<PayoutStore>().AddSingleton<PayoutFiles>().AddSingleton<IApprovalQueue, PendingPayouts>();

    public static IEndpointRouteBuilder MapPayouts(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/payouts").WithTags("Distribution");
        group.MapCreatePayoutBatch();
        group.MapGetPayoutBatch();
        group.MapListPayoutBatches();
        group.MapGetPayoutCsvLink();
        group.MapApprovePayoutBatch();
        group.MapRejectPayoutBatch();
        return routes;
    }
}
