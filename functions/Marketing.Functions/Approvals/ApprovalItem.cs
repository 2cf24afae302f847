using Marketing.Functions.Hosting;

namespace Marketing.Functions.Approvals;

/// <summary>
/// One thing waiting for an approver, whatever its kind: a submitted campaign revision, a budget top-up over the threshold,
/// a payout batch over the threshold. <see cref="Changes"/> is what the approver is approving: the field-level diff against
/// the last approved revision (for money: the amount against nothing). <see cref="Approve"/> names the route that decides it.
/// </summary>
public sealed record ApprovalItem
{
    public static class Kinds
    {
        public const string Campaign = "campaign";
        public const string TopUp = "top_up";
        public const string Payout = "payout";
    }

    public static class States
    {
        /// <summary>Waiting for a decision.</summary>
        public const string Pending = "pending";
        /// <summary>Approved, but its money has not finished moving (the approving call died): approving it again finishes it.</summary>
        public const string Unfinished = "approved_unfinished";
    }

    public required string Kind { get; init; }
    public string State { get; init; } = States.Pending;
    /// <summary>The id of what is to be approved (a campaign id; "{campaignId}/{key}" for a top-up; a batch id).</summary>
    public required string Id { get; init; }
    public required string Title { get; init; }
    public required string RequestedBy { get; init; }
    public required DateTimeOffset RequestedAt { get; init; }
    /// <summary>Who may not decide it (four eyes): the requester and everyone who edited what is requested.</summary>
    public IReadOnlyList<string> Makers { get; init; } = [];
    /// <summary>Money at stake, in minor units of <see cref="Currency"/> (a budget, a top-up, a batch total); null when none.</summary>
    public long? Amount { get; init; }
    public string? Currency { get; init; }
    public IReadOnlyList<FieldChange> Changes { get; init; } = [];
    /// <summary>
    /// A campaign's revision under review: send it back with the approval ({"revision": n}) so that only what was seen is
    /// approved (a revision returned, edited and submitted again in between is refused). Null for money requests, which never change.
    /// </summary>
    public int? Revision { get; init; }
    /// <summary>The routes that decide it, relative to /api (e.g. "campaigns/{id}/approve").</summary>
    public required ApprovalRoutes Routes { get; init; }
}

public sealed record ApprovalRoutes(string Approve, string Reject, string? Return = null);

/// <summary>One kind's pending approvals, a page at a time (each kind registers one: Campaigns, budgets, payouts).</summary>
public interface IApprovalQueue
{
    string Kind { get; }
    /// <summary>The role that decides this kind (admins decide every kind): the queue shows a caller the kinds they decide.</summary>
    string DecidedBy { get; }
    Task<Page<ApprovalItem>> PendingAsync(int pageSize, string? pageToken, CancellationToken ct);
}
