using Azure.Storage.Sas;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Media;

namespace Marketing.Functions.Payouts;

public sealed record PayoutCsvLink(string Url, DateTimeOffset ExpiresAt);

/// <summary>
/// GET /api/payouts/{id}/csv-link — finance gets a short-lived, read-only link to the completed batch's CSV on
/// Blob storage, for a browser or a finance tool that cannot send our bearer token. The CSV is stored on the first
/// request (<see cref="PayoutFiles"/>; never changes after) and each request signs a new link to that one blob.
/// </summary>
public static class GetPayoutCsvLink
{
    /// <summary>Long enough to start a download, short enough that a forwarded link is soon useless.</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(10);

    public static RouteHandlerBuilder MapGetPayoutCsvLink(this IEndpointRouteBuilder group) =>
        group.MapGet("/{id}/csv-link", async (string id, HttpContext context, PayoutStore payouts, PayoutFiles files, BlobSas sas) =>
            {
                var ct = context.RequestAborted;
                var batch = await payouts.FindAsync(id, ct);
                if (batch is null) return Problem.NotFound("The payout batch").ToResult();
                // A batch still being paid (or interrupted) would store a partial CSV for good.
                if (batch.State != PayoutBatch.Completed)
                    return Problem.Of(ProblemTypes.PayoutBatchNotCompleted, 409, "The payout batch is not completed yet.",
                        "Repeat POST /api/payouts with the batch id to finish it, then ask again.").ToResult();
                var lines = await payouts.ListLinesAsync(id, ct);
                var blob = await files.StoreCsvAsync(batch, PayoutCsv.Write(id, lines), ct);
                var (url, expires) = await sas.SignAsync(blob, BlobSasPermissions.Read, Lifetime, ct);
                context.Response.Headers.CacheControl = "no-store";
                return Results.Ok(new PayoutCsvLink(url.ToString(), expires));
            })
            .AsFunction("GetPayoutCsvLink")
            .RequireAuthorization(Policies.Finance)
            .WithProblems(409, ProblemTypes.PayoutBatchNotCompleted)
            .Produces<PayoutCsvLink>()
            .WithSummary("A read-only link (valid 10 minutes) to the completed batch's CSV on Blob storage.");
}
