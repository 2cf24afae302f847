using Marketing.Functions.Hosting;
using Marketing.Functions.Telemetry;

namespace Marketing.Functions.Redemption;

/// <summary>
/// Counts a redemption step by the answer the order system gets (<see cref="Metrics.Redemptions"/>, docs/operations.md):
/// - done: the step took effect (2xx);
/// - replayed: the same request again, answered with its first answer (2xx with Idempotent-Replayed: true);
/// - refused: a 4xx of the business rules: not found (the coupon is not in the wallet, the order has no redemption),
///   the coupon locked by another order, used, not applicable, the budget exhausted, a step the redemption's state does
///   not allow (cancelled, lapsed, not paid).
/// Not counted: malformed input (400, or an order id that cannot exist: the request never became a step) and the
/// answers that mean "try again" (in flight, kept changing, 503 busy): the retry is counted when it is answered.
/// The campaign is tagged only when it comes from a stored coupon or record, never from the request (bounded tags).
/// </summary>
public static class StepCount
{
    private static readonly HashSet<string> Refusals =
    [
        .. new[] { ProblemTypes.NotFound, ProblemTypes.CouponLocked, ProblemTypes.CouponNotApplicable, ProblemTypes.BudgetExhausted, ProblemTypes.InvalidTransition }
            .Select(type => ProblemTypes.Prefix + type),
    ];

    /// <summary>Counts <paramref name="answer"/> as a <paramref name="step"/> and returns it unchanged.</summary>
    public static IResult Counted(this IResult answer, string step, HttpContext context, string? campaignId = null)
    {
        switch (answer)
        {
            case ProblemResult { Value: var problem }:
                if (Refusals.Contains(problem.Type))
                    Metrics.RedemptionStep(step, Metrics.StepOutcomes.Refused, campaignId);
                break;
            case IStatusCodeHttpResult { StatusCode: >= 200 and < 300 }:
                // A redemption answered is the campaign's, whatever was known before.
                var campaign = answer is IValueHttpResult<RedemptionView> { Value: { } view } ? view.CampaignId : campaignId;
                var replayed = context.Response.Headers["Idempotent-Replayed"] == "true";
                Metrics.RedemptionStep(step, replayed ? Metrics.StepOutcomes.Replayed : Metrics.StepOutcomes.Done, campaign);
                break;
        }
        return answer;
    }
}
