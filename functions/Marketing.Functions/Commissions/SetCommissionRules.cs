using Marketing.Functions.Audit;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;

namespace Marketing.Functions.Commissions;

public sealed record RateTableRequest(int DefaultBps, Dictionary<string, int>? CategoryBps = null);

public sealed record SetCommissionRulesRequest(RateTableRequest Level1, RateTableRequest Level2, DateTimeOffset? EffectiveFrom = null);

public sealed record CommissionRulesView(RuleVersion? InForce, IReadOnlyList<RuleVersion> Versions)
{
    public static CommissionRulesView Of(IReadOnlyList<RuleVersion> versions, DateTimeOffset now)
        => new(RuleVersion.InForceAt(versions, now), versions);
}

/// <summary>
/// PUT /api/commission-rules — an operator sets the level-1 and level-2 rates (basis points, a default and
/// per-category overrides) in force from <c>effectiveFrom</c> (now when left out; never in the past, so a
/// payment's rates are fixed once it happened). A version with the same effectiveFrom is replaced (it has not
/// taken effect yet, or only this very instant); earlier versions stay, because late order events still need
/// them. Each version is its own document named by its instant, so a retried PUT writes the same document.
/// </summary>
public static class SetCommissionRules
{
    public const int MaxBps = 10_000;
    public const int MaxCategories = 200;

    public static RouteHandlerBuilder MapSetCommissionRules(this IEndpointRouteBuilder group) =>
        group.MapPut("", HandleAsync)
            .AsFunction("SetCommissionRules")
            .RequireAuthorization(Policies.Operator)
            .Audited("set", AuditKinds.CommissionRules)
            .AcceptsJson(new SetCommissionRulesRequest(
                new RateTableRequest(1000, new() { ["digital"] = 500 }), new RateTableRequest(300)))
            .Produces<CommissionRulesView>()
            .WithSummary("Set the commission rates (basis points) for levels 1 and 2, in force from effectiveFrom.");

    private static async Task<IResult> HandleAsync(HttpContext context, CommissionRulesStore store, TimeProvider time)
    {
        var now = time.GetUtcNow();
        var (request, problem) = await JsonBody.ReadAsync<SetCommissionRulesRequest>(context.Request, r => Validate(r, now));
        if (problem is not null) return problem.ToResult();

        var version = new RuleVersion(RuleVersion.Stored(request!.EffectiveFrom ?? now), Table(request.Level1), Table(request.Level2),
            context.User.SubjectId(), now);
        await context.BeginAuditAsync(UtcInstantConverter.Text(version.EffectiveFrom));
        await store.SaveAsync(version, context.RequestAborted);
        return TypedResults.Ok(CommissionRulesView.Of(await store.ListAsync(context.RequestAborted), now));
    }

    private static RateTable Table(RateTableRequest r) => new(r.DefaultBps, new Dictionary<string, int>(r.CategoryBps ?? [], StringComparer.Ordinal));

    private static Dictionary<string, string[]> Validate(SetCommissionRulesRequest r, DateTimeOffset now)
    {
        var errors = new Dictionary<string, string[]>();
        if (r.EffectiveFrom < now)
            errors["effectiveFrom"] = ["Must not be in the past: payments already made keep the rates they were made under."];
        foreach (var (name, table) in new[] { ("level1", r.Level1), ("level2", r.Level2) })
        {
            if (table is null) continue; // missing: already reported with the body's shape
            if (table.DefaultBps is < 0 or > MaxBps) errors[$"{name}.defaultBps"] = [$"0 to {MaxBps} basis points."];
            var categories = table.CategoryBps ?? [];
            if (categories.Count > MaxCategories) errors[$"{name}.categoryBps"] = [$"At most {MaxCategories} categories."];
            foreach (var (category, bps) in categories)
            {
                if (string.IsNullOrWhiteSpace(category) || category.Length > 64 || category.Any(char.IsControl))
                    errors[$"{name}.categoryBps"] = ["Category ids are 1 to 64 printable characters."];
                else if (bps is < 0 or > MaxBps)
                    errors[$"{name}.categoryBps.{category}"] = [$"0 to {MaxBps} basis points."];
            }
        }
        if (errors.Count > 0) return errors;
        // Both levels together never give away more than the line is worth.
        var level1 = Table(r.Level1);
        var level2 = Table(r.Level2);
        foreach (var category in level1.CategoryBps.Keys.Union(level2.CategoryBps.Keys).Append(null))
        {
            var sum = category is null ? level1.DefaultBps + level2.DefaultBps : level1.For(category) + level2.For(category);
            if (sum > MaxBps)
                errors[category is null ? "defaultBps" : $"categoryBps.{category}"] = [$"Level 1 and level 2 together exceed {MaxBps} basis points."];
        }
        return errors;
    }
}
