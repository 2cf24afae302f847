using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Payouts;

public sealed record PayoutLineView(string PromoterId, long Amount, int Entries, string State);

public sealed record PayoutBatchView(string BatchId, string State, long Minimum, string Currency, long Total, int Promoters,
    IReadOnlyList<PayoutLineView> Lines, IReadOnlyList<string> Skipped, string CreatedBy, DateTimeOffset CreatedAt, DateTimeOffset? CompletedAt,
    PayoutApproval? Approval)
{
    public static PayoutBatchView Of(PayoutBatch batch, IEnumerable<PayoutLine> lines)
    {
        var views = lines.OrderBy(l => l.PromoterId, StringComparer.Ordinal).Select(l => new PayoutLineView(l.PromoterId, l.Amount, l.Entries, l.State)).ToList();
        return new(batch.BatchId, batch.State, batch.Minimum, batch.Currency, views.Sum(l => l.Amount), views.Count, views, batch.Skipped,
            batch.CreatedBy, batch.CreatedAt, batch.CompletedAt, batch.Approval);
    }
}

/// <summary>
/// GET /api/payouts/{id} — a batch as JSON, or as its CSV with Accept: text/csv. A batch awaiting approval, or rejected,
/// has no CSV (409 payout-batch-not-completed): its lines are a plan nobody may pay from. Operators, and finance, who
/// approve batches and download their CSV (every line) anyway, so the batch's own view tells them nothing more.
/// </summary>
public static class GetPayoutBatch
{
    public static RouteHandlerBuilder MapGetPayoutBatch(this IEndpointRouteBuilder group) =>
        group.MapGet("/{id}", async (string id, HttpContext context, PayoutStore payouts) =>
            {
                var batch = await payouts.FindAsync(id, context.RequestAborted);
                if (batch is null) return Problem.NotFound("The payout batch").ToResult();
                var lines = await payouts.ListLinesAsync(id, context.RequestAborted);
                if (context.Request.Headers.Accept.ToString().Contains(PayoutCsv.ContentType, StringComparison.OrdinalIgnoreCase))
                {
                    if (batch.State is PayoutBatch.AwaitingApproval or PayoutBatch.Rejected)
                        return Problem.Of(ProblemTypes.PayoutBatchNotCompleted, 409, $"The payout batch is {batch.State}: it has no CSV to pay from.",
                            "A batch awaiting approval gets its CSV once finance approves it (POST /api/payouts/{batchId}/approve).").ToResult();
                    return PayoutCsv.Result(id, lines, StatusCodes.Status200OK, context);
                }
                return TypedResults.Ok(PayoutBatchView.Of(batch, lines));
            })
            .AsFunction("GetPayoutBatch")
            .RequireAuthorization(Policies.PayoutReader)
            .WithProblems(409, ProblemTypes.PayoutBatchNotCompleted)
            .Produces<PayoutBatchView>()
            .Produces<string>(StatusCodes.Status200OK, PayoutCsv.ContentType)
            .WithSummary("A payout batch: JSON, or CSV with Accept: text/csv.");
}
