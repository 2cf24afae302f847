using System.Text.Json.Nodes;
using Marketing.Functions.Hosting;

namespace Marketing.Functions.Audit;

/// <summary>Who made a call: the token's subject and roles as they were at the call.</summary>
public sealed record AuditActor(string Sub, IReadOnlyList<string> Roles);

/// <summary>
/// One audited call (docs/audit.md). Written as an <see cref="States.Intent"/> before the call changes anything, then
/// completed once (<see cref="States.Done"/> by the call itself, or <see cref="States.Repaired"/> by AuditRepair when
/// the call died first). Entries are never changed after that and never deleted by any route.
/// </summary>
public sealed record AuditEntry
{
    public static class States
    {
        public const string Intent = "intent";
        public const string Done = "done";
        public const string Repaired = "repaired";
    }

    public static class Outcomes
    {
        /// <summary>The call succeeded and the target changed.</summary>
        public const string Applied = "applied";
        /// <summary>The call was refused (4xx): <see cref="Status"/> and <see cref="ProblemType"/> say why.</summary>
        public const string Refused = "refused";
        /// <summary>The call succeeded without changing the target (a repeat), or died before changing it (repaired).</summary>
        public const string NoChange = "no_change";
    }

    /// <summary>Random: two calls never share an entry, and a resent create of the same entry is told apart by its stamp.</summary>
    public required string Id { get; init; }
    /// <summary>"{kind}/{targetId}", the partition key: one target's history is one single-partition query.</summary>
    public required string Target { get; init; }
    public required string Kind { get; init; }
    public required string TargetId { get; init; }
    public required string Action { get; init; }
    public required AuditActor Actor { get; init; }
    /// <summary>The request's trace identifier (HttpContext.TraceIdentifier), to find the call in the logs.</summary>
    public required string RequestId { get; init; }
    public required DateTimeOffset OccurredAt { get; init; }
    public required string State { get; init; }
    public string? Outcome { get; init; }
    /// <summary>The HTTP status the call answered (null: it never answered, see <see cref="States.Repaired"/>).</summary>
    public int? Status { get; init; }
    public string? ProblemType { get; init; }
    public string? Reason { get; init; }
    /// <summary>The target before the call (null: it did not exist), unless too large (<see cref="StatesOmitted"/>).</summary>
    public JsonNode? Before { get; init; }
    public JsonNode? After { get; init; }
    /// <summary>SHA-256 of the target before the call: tells "changed" from "not changed" even when the state itself is omitted.</summary>
    public string? BeforeHash { get; init; }
    /// <summary>Field-level diff of before and after (<see cref="JsonDiff"/>).</summary>
    public IReadOnlyList<FieldChange>? Changes { get; init; }
    /// <summary>Set when before/after were too large to keep (only the changes are kept), or the changes' values were.</summary>
    public string? StatesOmitted { get; init; }
    public DateTimeOffset? CompletedAt { get; init; }

    /// <summary>The stored entry's etag (its completion is conditional on it); never shown by GET /api/audit.</summary>
    [System.Text.Json.Serialization.JsonPropertyName("_etag")]
    public string? ETag { get; init; }
}
