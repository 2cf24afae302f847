using System.ComponentModel.DataAnnotations;
using System.Security.Claims;
using System.Text.Json.Nodes;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Telemetry;

namespace Marketing.Functions.Audit;

public sealed class AuditOptions
{
    public const string Section = "Audit";

    /// <summary>
    /// How old an intent must be before AuditRepair completes it: longer than any invocation can run, so a repair never
    /// completes the entry of a call still running. The front end answers an HTTP caller within 230 s, but the function
    /// itself runs on until host.json's functionTimeout (10 minutes), so the grace is that plus a margin, and never less.
    /// </summary>
    [Range(15, 1440)]
    public int RepairGraceMinutes { get; set; } = 15;
}

/// <summary>The audit entry could not be written before the call: nothing was changed, and the caller may retry (503).</summary>
public sealed class AuditUnavailableException(Exception inner) : RetryLaterException("The audit trail cannot be written right now; nothing was changed.")
{
    public Exception Cause { get; } = inner;
}

/// <summary>One audited call in progress: its route, and once its target is named, its intent.</summary>
public sealed class AuditCall(AuditedRoute route)
{
    public AuditedRoute Route { get; } = route;
    public AuditEntry? Intent { get; set; }
}

/// <summary>
/// Writes the trail of audited calls (docs/audit.md, docs/decisions/0008): the intent before the call changes anything,
/// its completion after, and the completion of intents whose call died (AuditRepair).
/// </summary>
public sealed class AuditTrail(AuditStore store, IEnumerable<IAuditTarget> targets, TimeProvider time, ILogger<AuditTrail> log)
{
    /// <summary>Before and after together are kept up to this size; beyond it only the changes are.</summary>
    public const int MaxKeptStateBytes = 256 * 1024;
    /// <summary>An intent keeps the state before up to this size (the diff needs it); beyond it only its hash.</summary>
    public const int MaxIntentStateBytes = 1024 * 1024;

    private readonly Dictionary<string, IAuditTarget> readers = targets.ToDictionary(t => t.Kind);

    public IAuditTarget Reader(string kind) => readers.TryGetValue(kind, out var reader) ? reader
        : throw new InvalidOperationException($"No audit reader for kind '{kind}': register one in AddAudit.");

    /// <summary>
    /// Reads the target and writes the intent. Throws <see cref="AuditUnavailableException"/> (503) when either fails:
    /// the call has not run, so nothing changed without its entry.
    /// </summary>
    public async Task BeginAsync(AuditCall call, string targetId, HttpContext context)
    {
        if (call.Intent is not null) throw new InvalidOperationException("The audited call already named its target.");
        var kind = call.Route.Kind;
        var reader = Reader(kind);
        var ct = context.RequestAborted;
        try
        {
            var before = await reader.ReadAsync(targetId, ct);
            var fits = AuditState.Size(before) <= MaxIntentStateBytes;
            var intent = new AuditEntry
            {
                Id = Ids.New("aud"), Target = kind + "/" + targetId, Kind = kind, TargetId = targetId, Action = call.Route.Action,
                Actor = Actor(context.User), RequestId = context.TraceIdentifier, OccurredAt = time.GetUtcNow(), State = AuditEntry.States.Intent,
                Before = fits ? before : null, BeforeHash = AuditState.Hash(before),
                StatesOmitted = fits ? null : $"The target was over {MaxIntentStateBytes} bytes: only whether it changed is kept.",
            };
            call.Intent = intent with { ETag = await store.WriteIntentAsync(intent, ct) };
        }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            throw new AuditUnavailableException(e);
        }
    }

    /// <summary>
    /// Completes the call's entry from its answer: 2xx applied (or no_change when the target is as before), 4xx refused.
    /// A 5xx answer leaves the intent to AuditRepair, as a crash would. Never fails the call: its change is made, and
    /// an intent left behind is completed by the repair.
    /// </summary>
    public async Task CompleteAsync(AuditCall call, object? result, HttpContext context)
    {
        var (status, problemType) = Answer(result, context);
        if (status >= 500) return;
        try
        {
            if (call.Intent is not { } intent)
            {
                // Refused before it named its target (a create with a bad body): nothing can have changed; one entry says so,
                // under a target of its kind and day ("campaign/-/2026-12-02"), so refusals spread over one partition a day
                // instead of growing one forever.
                if (status >= 400)
                    await store.WriteCompletedAsync(new AuditEntry
                    {
                        Id = Ids.New("aud"), Target = $"{call.Route.Kind}/{UnnamedTarget(time.GetUtcNow())}", Kind = call.Route.Kind,
                        TargetId = UnnamedTarget(time.GetUtcNow()), Action = call.Route.Action,
                        Actor = Actor(context.User), RequestId = context.TraceIdentifier, OccurredAt = time.GetUtcNow(), State = AuditEntry.States.Done,
                        Outcome = AuditEntry.Outcomes.Refused, Status = status, ProblemType = problemType, Reason = context.AuditReason(),
                        BeforeHash = AuditState.Hash(null), Changes = [], CompletedAt = time.GetUtcNow(),
                    }, CancellationToken.None);
                else
                    log.AuditTargetMissing(call.Route.Action, status);
                return;
            }
            // The change is made: completing its entry must not stop because the client went away (each call is bounded anyway).
            var after = await Reader(intent.Kind).ReadAsync(intent.TargetId, CancellationToken.None);
            var completed = Complete(intent, after, AuditEntry.States.Done, status, problemType, context.AuditReason());
            if (!await store.TryCompleteAsync(completed, intent.ETag!, CancellationToken.None))
                log.AuditCompletedByOther(intent.Id);
        }
        catch (Exception e)
        {
            log.AuditEntryLeftForRepair(call.Route.Action, e);
        }
    }

    /// <summary>
    /// Completes an intent whose call died (AuditRepair): the target "after" is the state before the target's next call that
    /// began once this one could no longer be running, else the target now. Applied if it differs from before, else no_change.
    /// False when someone else completed it first.
    /// </summary>
    public async Task<bool> RepairAsync(AuditEntry intent, TimeSpan grace, CancellationToken ct)
    {
        JsonNode? after;
        var next = await store.FirstFromAsync(intent.Target, intent.OccurredAt + grace, ct);
        if (next is not null && next.Id != intent.Id && next.StatesOmitted is null && AuditState.Hash(next.Before) == next.BeforeHash)
            after = next.Before;
        else
            after = await Reader(intent.Kind).ReadAsync(intent.TargetId, ct);
        var repaired = Complete(intent, after, AuditEntry.States.Repaired, status: null, problemType: null, reason: null);
        return await store.TryCompleteAsync(repaired, intent.ETag!, ct);
    }

    /// <summary>The target id of a refusal that never named its target: "-/" and the UTC day.</summary>
    public static string UnnamedTarget(DateTimeOffset now) => "-/" + now.UtcDateTime.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);

    private AuditEntry Complete(AuditEntry intent, JsonNode? after, string state, int? status, string? problemType, string? reason)
    {
        var changed = AuditState.Hash(after) != intent.BeforeHash;
        var outcome = status >= 400 ? AuditEntry.Outcomes.Refused : changed ? AuditEntry.Outcomes.Applied : AuditEntry.Outcomes.NoChange;
        var omitted = intent.StatesOmitted;
        var (before, kept) = (intent.Before, after);
        IReadOnlyList<FieldChange>? changes;
        if (omitted is not null)
        {
            // No state before to diff against: the outcome (from the hashes) says whether it changed. The after is not kept
            // either: a target too large for the intent would make the completed entry too large to write, forever.
            changes = null;
            kept = null;
        }
        else
        {
            var diff = JsonDiff.Of(before, after);
            changes = diff;
            if (AuditState.Size(before) + AuditState.Size(after) > MaxKeptStateBytes)
            {
                (before, kept) = (null, null);
                omitted = $"Before and after were over {MaxKeptStateBytes} bytes together: only the changes are kept.";
                if (diff.Sum(c => AuditState.Size(c.Before) + AuditState.Size(c.After)) > MaxKeptStateBytes)
                {
                    changes = [.. diff.Select(c => c with { Before = null, After = null })];
                    omitted = $"Before, after and the changed values were over {MaxKeptStateBytes} bytes: only the changed paths are kept.";
                }
            }
        }
        return intent with
        {
            State = state, Outcome = outcome, Status = status, ProblemType = problemType, Reason = reason ?? intent.Reason,
            Before = before, After = kept, Changes = changes, StatesOmitted = omitted, CompletedAt = time.GetUtcNow(),
        };
    }

    private static AuditActor Actor(ClaimsPrincipal user)
    {
        var roleType = (user.Identity as ClaimsIdentity)?.RoleClaimType ?? ClaimTypes.Role;
        return new AuditActor(user.SubjectId(), [.. user.FindAll(roleType).Select(c => c.Value).Distinct().Order(StringComparer.Ordinal)]);
    }

    /// <summary>The status and problem type a handler's result answers with (results without a status answer 200).</summary>
    private static (int Status, string? ProblemType) Answer(object? result, HttpContext context) => result switch
    {
        ProblemResult problem => (problem.Value.Status, problem.Value.Type),
        IStatusCodeHttpResult { StatusCode: { } code } => (code, null),
        IResult => (StatusCodes.Status200OK, null),
        _ => (context.Response.StatusCode, null),
    };
}
