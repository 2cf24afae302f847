using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Payouts;

public sealed record PayoutLineView(string PromoterId, long Amount, int Entries, string State);

public sealed record PayoutBatchView(string BatchId, string State, long Minimum, string Currency, long Total, int Promoters,
    IReadOnlyList<PayoutLineView> Lines, IReadOnlyList<string> Skipped, string CreatedBy, DateTimeOffset CreatedAt, DateTimeOffset? CompletedAt);

/// <summary>GET /api/payouts/{id} — a batch as JSON, or as its CSV with Accept: text/csv.</summary>
public static class GetPayoutBatch
{
    public static RouteHandlerBuilder MapGetPayoutBatch(this IEndpointRouteBuilder group) =>
        group.MapGet("/{id}", async (string id, HttpContext context, PayoutStore payouts) =>
            {
                var batch = await payouts.FindAsync(id, context.RequestAborted);
                if (batch is null) return Problem.NotFound("The payout batch").ToResult();
                var lines = await payouts.ListLinesAsync(id, context.RequestAborted);
                if (context.Request.Headers.Accept.ToString().Contains(PayoutCsv.ContentType, StringComparison.OrdinalIgnoreCase))
                    return PayoutCsv.Result(id, lines, StatusCodes.Status200OK, context);
                var views = lines.OrderBy(l => l.PromoterId, StringComparer.Ordinal)
                    .Select(l => new PayoutLineView(l.PromoterId, l.Amount, l.Entries, l.State)).ToList();
                return TypedResults.Ok(new PayoutBatchView(batch.BatchId, batch.State, batch.Minimum, batch.Currency, views.Sum(l => l.Amount),
                    views.Count, views, batch.Skipped, batch.CreatedBy, batch.CreatedAt, batch.CompletedAt));
            })
            .AsFunction("GetPayoutBatch")
            .RequireAuthorization(Policies.Operator)
            .Produces<PayoutBatchView>()
            .Produces<string>(StatusCodes.Status200OK, PayoutCsv.ContentType)
            .WithSummary("A payout batch: JSON, or CSV with Accept: text/csv.");
}
