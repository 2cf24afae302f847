using System.Collections.Concurrent;
using Marketing.Functions.Identity;
using Microsoft.AspNetCore.Authorization;

namespace Marketing.Functions.Promoters;

/// <summary>
/// Who may call promoter routes: a token with role "promoter" (an identity provider that knows about the
/// programme may issue it), or a customer's token once that customer has registered. Registering is an
/// API call, and the customer's next request must not wait for their identity provider to learn about it,
/// so the registration itself is checked (a point read, remembered per instance; registrations are never
/// undone). Either way the routes act on the caller's own account only: the promoter id is the token's subject.
/// </summary>
public sealed class PromoterRequirement : IAuthorizationRequirement;

public sealed class PromoterAccess(PromoterStore promoters) : AuthorizationHandler<PromoterRequirement>
{
    private const int MaxRemembered = 100_000;
    private readonly ConcurrentDictionary<string, bool> registered = new(StringComparer.Ordinal);

    protected override async Task HandleRequirementAsync(AuthorizationHandlerContext context, PromoterRequirement requirement)
    {
        var user = context.User;
        if (user.Identity?.IsAuthenticated != true) return;
        if (user.IsInRole(Roles.Promoter))
        {
            context.Succeed(requirement);
            return;
        }
        if (!user.IsInRole(Roles.Customer)) return;
        var id = user.SubjectId();
        if (registered.ContainsKey(id) || await promoters.FindAsync(id, (context.Resource as HttpContext)?.RequestAborted ?? default) is not null)
        {
            if (registered.Count >= MaxRemembered) registered.Clear();
            registered[id] = true;
            context.Succeed(requirement);
        }
    }
}
