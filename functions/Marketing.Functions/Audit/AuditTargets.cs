using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Commissions;
using Marketing.Functions.Hosting;
using Marketing.Functions.Media;
using Marketing.Functions.Payouts;

namespace Marketing.Functions.Audit;

/// <summary>
/// Reads one kind of audited target as it is now, as JSON (null: it does not exist). The audit reads it before and after
/// each call, and AuditRepair after a call that died. One reader per kind, registered explicitly in AddAudit.
/// What a reader returns is what an entry shows: it leaves out what customers change all the time (a budget's "left",
/// a stock's counters), so that an operator's entry shows the operator's change, and a repair finds no change
/// that the operator did not make.
/// </summary>
public interface IAuditTarget
{
    string Kind { get; }
    Task<JsonNode?> ReadAsync(string targetId, CancellationToken ct);
}

public static class AuditState
{
    /// <summary>A document as an entry shows it: without Cosmos system properties (_etag, _ts, ...) and our write stamp.</summary>
    public static JsonNode? Of<T>(T? value) where T : class
    {
        if (value is null) return null;
        var node = JsonSerializer.SerializeToNode(value, Json.Storage);
        if (node is JsonObject json)
            foreach (var name in json.Select(p => p.Key).Where(n => n.StartsWith('_') || n == ContainerExtensions.WriteStamp).ToList())
                json.Remove(name);
        return node;
    }

    /// <summary>SHA-256 of the state (hex): "changed" is decided on it, also when the state itself is too large to keep.</summary>
    public static string Hash(JsonNode? state)
        => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(state?.ToJsonString() ?? "null")));

    /// <summary>Bytes of the state as stored.</summary>
    public static int Size(JsonNode? state) => state is null ? 0 : Encoding.UTF8.GetByteCount(state.ToJsonString());
}

/// <summary>A campaign: its whole document (terms, status, who and when).</summary>
public sealed class CampaignAuditTarget(CampaignStore campaigns) : IAuditTarget
{
    public string Kind => AuditKinds.Campaign;
    public async Task<JsonNode?> ReadAsync(string targetId, CancellationToken ct) => AuditState.Of(await campaigns.FindAsync(targetId, ct));
}

/// <summary>
/// A campaign's budget: its total over every shard (one query naming every possible shard), and the money its top-up
/// requests waiting for an approver ask for (one query in the campaign's partition), so a top-up over the threshold shows
/// as what it requested. Not what is left, reserved or spent: that moves with every order, and is the redemptions' trail.
/// </summary>
public sealed class BudgetAuditTarget(StockStore stock) : IAuditTarget
{
    public string Kind => AuditKinds.Budget;

    public async Task<JsonNode?> ReadAsync(string targetId, CancellationToken ct)
        => await stock.SumBudgetAsync(targetId, StockSharding.Max, ct: ct) is { } figures
            ? new JsonObject { ["total"] = figures.Total, ["pendingTopUps"] = await stock.SumPendingTopUpsAsync(targetId, ct) }
            : null;
}

/// <summary>One top-up: "{campaignId}/{key}".</summary>
public sealed class TopUpAuditTarget(StockStore stock) : IAuditTarget
{
    public string Kind => AuditKinds.TopUp;

    public async Task<JsonNode?> ReadAsync(string targetId, CancellationToken ct)
    {
        var slash = targetId.IndexOf('/');
        if (slash <= 0) return null;
        return AuditState.Of(await stock.FindTopUpAsync(targetId[..slash], targetId[(slash + 1)..], ct));
    }
}

/// <summary>A payout batch: its header, and its lines counted and summed (never listed: a batch may pay thousands).</summary>
public sealed class PayoutBatchAuditTarget(PayoutStore payouts) : IAuditTarget
{
    public string Kind => AuditKinds.PayoutBatch;

    public async Task<JsonNode?> ReadAsync(string targetId, CancellationToken ct)
    {
        if (AuditState.Of(await payouts.FindAsync(targetId, ct)) is not JsonObject header) return null;
        var lines = await payouts.ListLinesAsync(targetId, ct);
        header["lines"] = new JsonObject
        {
            ["count"] = lines.Count,
            ["amount"] = lines.Sum(l => l.Amount),
            ["paid"] = lines.Count(l => l.State == PayoutLine.Paid),
        };
        return header;
    }
}

/// <summary>A campaign's media item: "{campaignId}/{mediaId}".</summary>
public sealed class MediaAuditTarget(MediaStore media) : IAuditTarget
{
    public string Kind => AuditKinds.Media;

    public async Task<JsonNode?> ReadAsync(string targetId, CancellationToken ct)
    {
        var slash = targetId.IndexOf('/');
        if (slash <= 0) return null;
        return AuditState.Of(await media.FindAsync(targetId[..slash], targetId[(slash + 1)..], ct));
    }
}

/// <summary>One version of the commission rules, named by the instant it takes effect from (each version is its own document).</summary>
public sealed class CommissionRulesAuditTarget(CommissionRulesStore rules) : IAuditTarget
{
    public string Kind => AuditKinds.CommissionRules;

    public async Task<JsonNode?> ReadAsync(string targetId, CancellationToken ct)
        => DateTimeOffset.TryParse(targetId, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var effectiveFrom)
            ? AuditState.Of(await rules.FindVersionAsync(effectiveFrom, ct))
            : null;
}
