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
    /// <summary>The commission rules (one document); id = "current".</summary>
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

    /// <summary>The route changes state: every call leaves an audit entry (docs/audit.md).</summary>
    public static RouteHandlerBuilder Audited(this RouteHandlerBuilder builder, string action, string kind, params string[] routeValues)
        => builder.WithMetadata(new AuditedRoute(action, kind, routeValues));

    /// <summary>The route changes state but is not audited (a customer's own action, an order transaction): say why.</summary>
    public static RouteHandlerBuilder NotAudited(this RouteHandlerBuilder builder, string why)
        => builder.WithMetadata(new NotAuditedRoute(why));

    /// <summary>For routes whose target is only known inside the handler (creates): call before the first write.</summary>
    public static Task BeginAuditAsync(this HttpContext context, string targetId) => Task.CompletedTask;

    /// <summary>The caller's reason (a rejection's reason, a return's comments, a top-up's reason): recorded in the entry.</summary>
    public static void AuditReason(this HttpContext context, string? reason) => context.Items[ReasonKey] = reason;

    public static string? AuditReason(this HttpContext context) => context.Items.TryGetValue(ReasonKey, out var reason) ? reason as string : null;
}
