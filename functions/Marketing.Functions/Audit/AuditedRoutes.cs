using Marketing.Functions.Hosting;

namespace Marketing.Functions.Audit;

/// <summary>What kinds of things audited routes change; each names how the audit reads its state before and after.</summary>
public static class AuditKinds
{
    public const string Campaign = "campaign";
    /// <summary>A campaign's budget (its figures summed over the shards); id = the campaign id.</summary>
    public const string Budget = "budget";
    /// <summary>One top-up of a campaign's budget; id = "{campaignId}/{topUpKey}".</summary>
    public const string TopUp = "top-up";
    public const string PayoutBatch = "payout-batch";
    /// <summary>A campaign's media item; id = "{campaignId}/{mediaId}".</summary>
    public const string Media = "media";
    /// <summary>One version of the commission rules; id = the instant it takes effect from ("2026-12-01T00:00:00.000Z").</summary>
    public const string CommissionRules = "commission-rules";
}

/// <summary>
/// Route metadata: the route changes state and leaves an audit entry (action, target kind, and the route values that
/// name the target, joined with "/"; none: the handler names the target itself with <see cref="AuditedRouteExtensions.BeginAuditAsync"/>).
/// </summary>
public sealed record AuditedRoute(string Action, string Kind, IReadOnlyList<string> RouteValues);

/// <summary>Route metadata: the route changes state but is deliberately not audited, and why (docs/audit.md).</summary>
public sealed record NotAuditedRoute(string Why);

public static class AuditedRouteExtensions
{
    private const string ReasonKey = "audit.reason";
    private const string CallKey = "audit.call";

    /// <summary>
    /// The route changes state: every call leaves an audit entry (docs/audit.md). A filter around the handler writes the
    /// entry's intent before the handler runs (when the route values name the target; else the handler calls
    /// <see cref="BeginAuditAsync"/> before its first write), and completes it from the handler's answer.
    /// </summary>
    public static RouteHandlerBuilder Audited(this RouteHandlerBuilder builder, string action, string kind, params string[] routeValues)
    {
        var route = new AuditedRoute(action, kind, routeValues);
        return builder.WithMetadata(route).AddEndpointFilter((invocation, next) => AuditAsync(route, invocation, next));
    }

    private static async ValueTask<object?> AuditAsync(AuditedRoute route, EndpointFilterInvocationContext invocation, EndpointFilterDelegate next)
    {
        var context = invocation.HttpContext;
        var trail = context.RequestServices.GetRequiredService<AuditTrail>();
        var call = new AuditCall(route);
        context.Items[CallKey] = call;
        if (route.RouteValues.Count > 0)
        {
            var values = route.RouteValues.Select(name => context.Request.RouteValues[name] as string).ToList();
            // A value outside the alphabet of our ids and of Idempotency-Keys (a top-up's key names it) names nothing
            // stored (handlers answer it without reaching Cosmos): nothing can change, so there is nothing to audit.
            if (!values.All(v => Ids.IsWellFormed(v) || Wallet.ClaimCoupon.IsValidKey(v))) return await next(invocation);
            await trail.BeginAsync(call, string.Join("/", values), context);
        }
        // A handler that throws leaves the intent: AuditRepair completes it from the target as it is (docs/audit.md).
        var result = await next(invocation);
        await trail.CompleteAsync(call, result, context);
        return result;
    }

    /// <summary>The route changes state but is not audited (a customer's own action, an order transaction): say why.</summary>
    public static RouteHandlerBuilder NotAudited(this RouteHandlerBuilder builder, string why)
        => builder.WithMetadata(new NotAuditedRoute(why));

    /// <summary>For routes whose target is only known inside the handler (creates): call before the first write.
    /// Reads the target and writes the intent; throws (503, nothing changed) when that fails.</summary>
    public static Task BeginAuditAsync(this HttpContext context, string targetId)
        => context.Items.TryGetValue(CallKey, out var value) && value is AuditCall call
            ? context.RequestServices.GetRequiredService<AuditTrail>().BeginAsync(call, targetId, context)
            : throw new InvalidOperationException("BeginAuditAsync on a route that is not .Audited(...).");

    /// <summary>The caller's reason (a rejection's reason, a return's comments, a top-up's reason): recorded in the entry.</summary>
    public static void AuditReason(this HttpContext context, string? reason) => context.Items[ReasonKey] = reason;

    public static string? AuditReason(this HttpContext context) => context.Items.TryGetValue(ReasonKey, out var reason) ? reason as string : null;
}
