using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Commissions;

public sealed record LedgerEntryView(string Id, string OrderId, string LineId, string Category, int Level, string Kind, long Amount,
    string Currency, LedgerStatus Status, DateTimeOffset AvailableAt, DateTimeOffset CreatedAt, string? PayoutBatchId, DateTimeOffset? PaidAt)
{
    public static LedgerEntryView Of(LedgerEntry e) => new(e.Id, e.OrderId, e.LineId, e.Category, e.Level, e.Kind, e.Amount, e.Currency,
        e.Status, e.AvailableAt, e.CreatedAt, e.PayoutBatchId, e.PaidAt);
}

public sealed record CommissionPage(IReadOnlyList<LedgerEntryView> Items, string? ContinuationToken);

public sealed record BalanceView(string Currency, long Pending, long Available, long Paid, long Net);

/// <summary>
/// GET /api/promoters/me/commissions and /balance — a promoter's own ledger. The promoter is the caller
/// (the token's subject), never a value from the URL, so nobody can read another promoter's entries.
/// Buyers are not named: an entry shows the order and line, not who bought.
/// </summary>
public static class ListMyCommissions
{
    public const int DefaultPageSize = 50;
    public const int MaxPageSize = 200;

    public static void MapMyCommissions(this IEndpointRouteBuilder group)
    {
        group.MapGet("/me/commissions", ListAsync)
            .AsFunction("ListMyCommissions")
            .RequireAuthorization(Policies.Promoter)
            .Produces<CommissionPage>()
            .WithSummary("My ledger entries, newest first; filter by status (pending, available, paid); page with continuationToken.")
            .WithDescription(Paging.Description);

        group.MapGet("/me/balance", async (HttpContext context, LedgerStore ledger, IOptions<CommissionOptions> options) =>
            {
                var balance = await ledger.BalanceAsync(context.User.SubjectId(), context.RequestAborted);
                return TypedResults.Ok(new BalanceView(options.Value.Currency, balance.Pending, balance.Available, balance.Paid, balance.Net));
            })
            .AsFunction("GetMyBalance")
            .RequireAuthorization(Policies.Promoter)
            .Produces<BalanceView>()
            .WithSummary("My balance in minor units: pending, available (may be negative after refunds), paid, and net of all.");
    }

    private static async Task<IResult> ListAsync(HttpContext context, LedgerStore ledger, string? status, string? limit, string? continuationToken)
    {
        // Every field checked before answering, so a request with several mistakes hears of all of them at once.
        var errors = new Dictionary<string, string[]>();
        LedgerStatus? filter = null;
        if (status is not null)
        {
            filter = Enum.GetValues<LedgerStatus>().Cast<LedgerStatus?>().FirstOrDefault(s => LedgerStore.Wire(s!.Value) == status);
            if (filter is null) errors["status"] = ["One of pending, available, paid."];
        }
        var pageSize = Paging.Limit(limit, MaxPageSize, errors);
        if (errors.Count > 0) return Problem.Validation(errors).ToResult();
        try
        {
            var page = await ledger.ListAsync(context.User.SubjectId(), filter, pageSize ?? DefaultPageSize, continuationToken, context.RequestAborted);
            return TypedResults.Ok(new CommissionPage(page.Items.Select(LedgerEntryView.Of).ToList(), page.ContinuationToken));
        }
        catch (InvalidPageTokenException e)
        {
            return Problem.InvalidPageToken(e.Message).ToResult();
        }
    }
}
