using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Campaigns;

/// <summary>A campaign as customers see it in the coupon centre.</summary>
public sealed record ClaimableCampaign(
    string Id,
    string Name,
    DiscountKind Kind,
    long? AmountOff,
    int? PercentOff,
    long? MaxDiscount,
    long MinimumSpend,
    string Currency,
    string[] Categories,
    bool NewCustomersOnly,
    Channel[] Channels,
    DateTimeOffset ClaimEndsAt,
    Validity Validity,
    int PerCustomerLimit)
{
    public static ClaimableCampaign Of(Campaign c)
    {
        var t = c.Terms;
        return new(c.Id, t.Name, t.Kind, t.AmountOff, t.PercentOff, t.MaxDiscount, t.MinimumSpend, t.Currency, t.Categories,
            t.NewCustomersOnly, t.Channels, t.ClaimEndsAt, t.Validity, t.PerCustomerLimit);
    }
}

public sealed record ClaimableCampaigns(IReadOnlyList<ClaimableCampaign> Items);

/// <summary>
/// GET /api/campaigns/claimable?channel= — published campaigns whose claim window is open now, optionally
/// for one channel, soonest-ending first. Served from the instance's short-lived copy of the catalog; the
/// claim itself is always checked against the stock counter.
/// </summary>
public static class ListClaimableCampaigns
{
    public static RouteHandlerBuilder MapListClaimableCampaigns(this IEndpointRouteBuilder group) =>
        group.MapGet("/claimable", HandleAsync)
            .AsFunction("ListClaimableCampaigns")
            .RequireAuthorization(Policies.Customer)
            .Produces<ClaimableCampaigns>()
            .WithSummary("Campaigns a customer can claim now.");

    private static async Task<IResult> HandleAsync(HttpContext context, CampaignCache cache, TimeProvider time, string? channel)
    {
        Channel? wanted = null;
        if (channel is not null)
        {
            if (!Channels.TryParse(channel, out var parsed))
                return Problem.Validation("channel", Channels.Allowed).ToResult();
            wanted = parsed;
        }
        var now = time.GetUtcNow();
        var items = (await cache.ListPublishedAsync(context.RequestAborted))
            .Where(c => c.IsClaimableAt(now) && (wanted is null || c.Terms.Channels.Contains(wanted.Value)))
            .OrderBy(c => c.Terms.ClaimEndsAt)
            .Select(ClaimableCampaign.Of)
            .ToList();
        return TypedResults.Ok(new ClaimableCampaigns(items));
    }
}

public static class Channels
{
    public const string Allowed = "One of app, mini_program, h5, ota.";

    public static bool TryParse(string? text, out Channel channel)
    {
        channel = default;
        switch (text)
        {
            case "app": channel = Channel.App; return true;
            case "mini_program": channel = Channel.MiniProgram; return true;
            case "h5": channel = Channel.H5; return true;
            case "ota": channel = Channel.Ota; return true;
            default: return false;
        }
    }
}
