using System.Globalization;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Commissions;

public sealed record QuarantineView(string Day, IReadOnlyList<QuarantinedEvent> Items);

/// <summary>GET /api/order-events/quarantine?day=YYYY-MM-DD — order events SettleCommission could not use, for operators (UTC day, today by default).</summary>
public static class ListQuarantinedEvents
{
    public static RouteHandlerBuilder MapListQuarantinedEvents(this IEndpointRouteBuilder group) =>
        group.MapGet("/quarantine", async (HttpContext context, QuarantineStore quarantine, TimeProvider time, string? day) =>
            {
                if (day is not null && !DateOnly.TryParseExact(day, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _))
                    return Problem.Validation("day", "A UTC date like 2026-11-22.").ToResult();
                day ??= QuarantineStore.DayOf(time.GetUtcNow());
                return (IResult)TypedResults.Ok(new QuarantineView(day, await quarantine.ListAsync(day, context.RequestAborted)));
            })
            .AsFunction("ListQuarantinedEvents")
            .RequireAuthorization(Policies.Operator)
            .Produces<QuarantineView>()
            .WithSummary("Order events that could not be settled (malformed, or another currency), by UTC day.");
}
