using System.ComponentModel.DataAnnotations;

namespace Marketing.Functions.Approvals;

/// <summary>
/// When money needs a second person (section "Approvals", docs/approvals.md "Money"). Both are in minor units of the
/// platform's currency (Commissions:Currency) and mean "above this, an approver decides"; at or below, the money moves at once.
/// 0 means every top-up (every batch that pays anything) waits for a decision. There is no "off": a deployment that wants
/// none sets the maximum (Limits.MaxMoney), which no top-up or batch can exceed. Left out, the defaults below apply.
/// </summary>
public sealed class ApprovalOptions
{
    public const string Section = "Approvals";

    /// <summary>
    /// A budget top-up above this waits for an approver (Campaigns/TopUpBudget.cs). Default 1,000,000 (10,000.00 CNY): above
    /// a day's typical push, below what a single mistaken keystroke (an extra zero) usually adds.
    /// </summary>
    [Range(typeof(long), "0", "1000000000000")]
    public long TopUpThreshold { get; set; } = 1_000_000;

    /// <summary>
    /// A payout batch whose total is above this waits for finance (Payouts/CreatePayoutBatch.cs). Default 5,000,000
    /// (50,000.00 CNY): weekly batches of a small programme pay at once, a large or unusual one gets a second look.
    /// </summary>
    [Range(typeof(long), "0", "1000000000000")]
    public long PayoutThreshold { get; set; } = 5_000_000;
}
