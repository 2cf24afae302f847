using System.Text.Json;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Telemetry;

/// <summary>
/// Every log event the handler writes itself, each with a stable <see cref="EventId"/> that alerts, queries and the
/// runbook can rely on (docs/operations.md, "Log events", lists them all; LogScanTests checks that it does). Ids are
/// grouped by feature: 1000s campaigns, 2000s wallet, 3000s redemption and expiry, 4000s commissions and payouts,
/// 5000s notifications, 6000s statistics, 7000s audit, 8000s hosting; x100 and up in each range are the per-invocation
/// summaries of its timer and queue functions. An id is never reused for another meaning.
///
/// What a template may carry: ids (campaign, coupon, order, event, message, document, cursor), counts, names of
/// functions, containers and exception types, HTTP/Cosmos status codes and Cosmos activity ids. Never a token, a
/// request or message body, a customer's personal data or an exception's message (a Cosmos exception's text can quote
/// the server's answer; a JSON exception's can quote the document): <see cref="Failure"/> is what is logged of an error.
/// </summary>
public static partial class LogEvents
{
    /// <summary>The logger of a timer or queue function (category: its class, e.g. Marketing.Functions.Expiry.ExpireCoupons).</summary>
    public static ILogger LoggerOf(HttpContext context, Type function)
        => context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(function);

    /// <summary>A timer run's outcome, as <see cref="Metrics.TimerOutcomes"/> names them.</summary>
    public static string RunOutcome(int failures, bool stopped)
        => failures > 0 ? Metrics.TimerOutcomes.Failed : stopped ? Metrics.TimerOutcomes.Stopped : Metrics.TimerOutcomes.Completed;

    // Campaigns (1000s)
    [LoggerMessage(EventId = 1001, EventName = "CatalogMarkerNotWritten", Level = LogLevel.Warning,
        Message = "The catalog change marker was not written ({ErrorType}, status {Status}/{SubStatus}, activity {ActivityId}); other instances see the change within a minute.")]
    private static partial void CatalogMarkerNotWritten(ILogger log, string errorType, int status, int subStatus, string? activityId);
    public static void CatalogMarkerNotWritten(this ILogger log, Exception e)
    {
        if (!log.IsEnabled(LogLevel.Warning)) return;
        var f = Failure.Of(e);
        CatalogMarkerNotWritten(log, f.Type, f.Status, f.SubStatus, f.ActivityId);
    }

    [LoggerMessage(EventId = 1100, EventName = "ReconcileStockRan", Level = LogLevel.Information,
        Message = "ReconcileStock checked {Campaigns} campaigns: {Repairs} repairs.")]
    public static partial void ReconcileStockRan(this ILogger log, int campaigns, int repairs);

    // Wallet (2000s)
    [LoggerMessage(EventId = 2001, EventName = "StockGiveBackRefused", Level = LogLevel.Warning,
        Message = "A give-back of campaign {CampaignId} for coupon {CouponId} was refused (already given back?); reconciliation restores the count.")]
    public static partial void StockGiveBackRefused(this ILogger log, string campaignId, string couponId);

    [LoggerMessage(EventId = 2002, EventName = "StockGiveBackFailed", Level = LogLevel.Warning,
        Message = "Could not give back a unit of stock for campaign {CampaignId} ({ErrorType}, status {Status}/{SubStatus}, activity {ActivityId}); reconciliation will.")]
    private static partial void StockGiveBackFailed(ILogger log, string campaignId, string errorType, int status, int subStatus, string? activityId);
    public static void StockGiveBackFailed(this ILogger log, string campaignId, Exception e)
    {
        if (!log.IsEnabled(LogLevel.Warning)) return;
        var f = Failure.Of(e);
        StockGiveBackFailed(log, campaignId, f.Type, f.Status, f.SubStatus, f.ActivityId);
    }

    // Redemption and expiry (3000s)
    [LoggerMessage(EventId = 3100, EventName = "ExpireCouponsRan", Level = LogLevel.Information,
        Message = "ExpireCoupons {Outcome}: expired {CouponsExpired} coupons, released {LocksReleased} locks, ended {CampaignsEnded} and closed {CampaignsClosed} campaigns; read {EntriesRead} entries.")]
    public static partial void ExpireCouponsRan(this ILogger log, string outcome, int couponsExpired, int locksReleased, int campaignsEnded,
        int campaignsClosed, int entriesRead);

    // Commissions and payouts (4000s)
    [LoggerMessage(EventId = 4001, EventName = "CommissionRulesMigrated", Level = LogLevel.Information,
        Message = "Copied {Count} commission rule versions from the single rules document into their own documents.")]
    public static partial void CommissionRulesMigrated(this ILogger log, int count);

    [LoggerMessage(EventId = 4100, EventName = "ReleaseCommissionsRan", Level = LogLevel.Information,
        Message = "ReleaseCommissions {Outcome}: released {EntriesReleased} ledger entries; read {RecordsRead} settlement records, {Failures} failures.")]
    public static partial void ReleaseCommissionsRan(this ILogger log, string outcome, int entriesReleased, int recordsRead, int failures);

    [LoggerMessage(EventId = 4101, EventName = "OrderEventSettled", Level = LogLevel.Information,
        Message = "SettleCommission: message {MessageId} (delivery {DeliveryCount}) {Outcome}, {EntriesWritten} ledger entries written.")]
    public static partial void OrderEventSettled(this ILogger log, string messageId, int deliveryCount, string outcome, int entriesWritten);

    // Notifications (5000s)
    [LoggerMessage(EventId = 5001, EventName = "OperatorAlertsFailed", Level = LogLevel.Warning,
        Message = "Operator alerts: {What} failed ({ErrorType}, status {Status}/{SubStatus}, activity {ActivityId}); the next run tries again.")]
    private static partial void OperatorAlertsFailed(ILogger log, string what, string errorType, int status, int subStatus, string? activityId);
    public static void OperatorAlertsFailed(this ILogger log, string what, Exception e)
    {
        if (!log.IsEnabled(LogLevel.Warning)) return;
        var f = Failure.Of(e);
        OperatorAlertsFailed(log, what, f.Type, f.Status, f.SubStatus, f.ActivityId);
    }

    [LoggerMessage(EventId = 5100, EventName = "SendRemindersRan", Level = LogLevel.Information,
        Message = "SendReminders {Outcome}: sent {RemindersSent} reminders in {Messages} messages ({Queued} queued), held {RemindersHeld}; {Alerts} operator alerts; read {EntriesRead} entries.")]
    public static partial void SendRemindersRan(this ILogger log, string outcome, int remindersSent, int messages, int queued, int remindersHeld,
        int alerts, int entriesRead);

    [LoggerMessage(EventId = 5101, EventName = "NotificationHandled", Level = LogLevel.Information,
        Message = "DeliverNotifications: message {MessageId} (delivery {DeliveryCount}) for record {RecordId} on {Channel}: {Outcome}.")]
    public static partial void NotificationHandled(this ILogger log, string messageId, int deliveryCount, string? recordId, string? channel, string outcome);

    // Statistics (6000s)
    [LoggerMessage(EventId = 6001, EventName = "StatsFoldFailed", Level = LogLevel.Error,
        Message = "Folding the change feed of {Cursor} failed ({ErrorType}, status {Status}/{SubStatus}, activity {ActivityId}); the next run reads its page again.")]
    private static partial void StatsFoldFailed(ILogger log, string cursor, string errorType, int status, int subStatus, string? activityId);
    public static void StatsFoldFailed(this ILogger log, string cursor, Exception e)
    {
        if (!log.IsEnabled(LogLevel.Error)) return;
        var f = Failure.Of(e);
        StatsFoldFailed(log, cursor, f.Type, f.Status, f.SubStatus, f.ActivityId);
    }

    [LoggerMessage(EventId = 6002, EventName = "StatsFactOfUnknownCampaign", Level = LogLevel.Warning,
        Message = "Fact {Fact} names campaign {CampaignId}, which does not exist: not counted.")]
    public static partial void StatsFactOfUnknownCampaign(this ILogger log, string fact, string campaignId);

    [LoggerMessage(EventId = 6100, EventName = "AggregateStatsRan", Level = LogLevel.Information,
        Message = "AggregateStats {Outcome}: folded {Changes} changes in {Pages} pages, {Counted} of {Facts} facts new; {Failures} failures.")]
    public static partial void AggregateStatsRan(this ILogger log, string outcome, int changes, int pages, int counted, int facts, int failures);

    // Audit (7000s)
    [LoggerMessage(EventId = 7001, EventName = "AuditTargetMissing", Level = LogLevel.Error,
        Message = "Audited call {Action} answered {Status} without naming its target: no entry.")]
    public static partial void AuditTargetMissing(this ILogger log, string action, int status);

    [LoggerMessage(EventId = 7002, EventName = "AuditCompletedByOther", Level = LogLevel.Warning,
        Message = "Audit entry {EntryId} was completed by someone else (a repair) first.")]
    public static partial void AuditCompletedByOther(this ILogger log, string entryId);

    [LoggerMessage(EventId = 7003, EventName = "AuditEntryLeftForRepair", Level = LogLevel.Warning,
        Message = "Audit entry of {Action} not completed now ({ErrorType}, status {Status}/{SubStatus}, activity {ActivityId}); AuditRepair completes it.")]
    private static partial void AuditEntryLeftForRepair(ILogger log, string action, string errorType, int status, int subStatus, string? activityId);
    public static void AuditEntryLeftForRepair(this ILogger log, string action, Exception e)
    {
        if (!log.IsEnabled(LogLevel.Warning)) return;
        var f = Failure.Of(e);
        AuditEntryLeftForRepair(log, action, f.Type, f.Status, f.SubStatus, f.ActivityId);
    }

    [LoggerMessage(EventId = 7100, EventName = "AuditRepairRan", Level = LogLevel.Information,
        Message = "AuditRepair {Outcome}: read {IntentsRead} stale intents, repaired {Repaired}, {CompletedByOthers} completed by someone else first.")]
    public static partial void AuditRepairRan(this ILogger log, string outcome, int intentsRead, int repaired, int completedByOthers);

    // Hosting (8000s)
    [LoggerMessage(EventId = 8002, EventName = "RequestFailed", Level = LogLevel.Error,
        Message = "{Method} {Route} failed ({ErrorType}, status {Status}/{SubStatus}, activity {ActivityId}); request {RequestId}. At: {StackTrace}")]
    private static partial void RequestFailed(ILogger log, string method, string route, string requestId, string errorType, int status, int subStatus,
        string? activityId, string? stackTrace);
    /// <summary>
    /// A request that ended in an exception (answered 500, or 503 when transient): the route pattern (never the path or
    /// query), the failure and where in our code it happened (the stack trace holds method names, not data).
    /// </summary>
    public static void RequestFailed(this ILogger log, string method, string route, string requestId, Exception e)
    {
        if (!log.IsEnabled(LogLevel.Error)) return;
        var f = Failure.Of(e);
        RequestFailed(log, method, route, requestId, f.Type, f.Status, f.SubStatus, f.ActivityId, e.StackTrace);
    }

    [LoggerMessage(EventId = 8001, EventName = "UnreadableDocumentSkipped", Level = LogLevel.Error,
        Message = "Skipped unreadable document {DocumentId} in container {Container} ({ErrorType} at {JsonPath}).")]
    private static partial void UnreadableDocumentSkipped(ILogger log, string documentId, string container, string errorType, string? jsonPath);
    public static void UnreadableDocumentSkipped(this ILogger log, string documentId, string container, JsonException e)
        => UnreadableDocumentSkipped(log, documentId, container, e.GetType().Name, e.Path);
}

/// <summary>
/// What is logged of an exception: its type (and its inner exception's), the HTTP or Cosmos status code, and Cosmos'
/// activity id (which Azure support can trace), never its message. A message can quote a body: Cosmos puts the
/// server's answer in it, System.Text.Json the text it could not read.
/// </summary>
public readonly record struct Failure(string Type, int Status, int SubStatus, string? ActivityId)
{
    public static Failure Of(Exception e)
    {
        var type = e.InnerException is { } inner ? $"{e.GetType().Name}<-{inner.GetType().Name}" : e.GetType().Name;
        return e switch
        {
            CosmosException cosmos => new(type, (int)cosmos.StatusCode, cosmos.SubStatusCode, cosmos.ActivityId),
            HttpRequestException { StatusCode: { } status } => new(type, (int)status, 0, null),
            _ when e.InnerException is CosmosException wrapped => new(type, (int)wrapped.StatusCode, wrapped.SubStatusCode, wrapped.ActivityId),
            _ => new(type, 0, 0, null),
        };
    }

    /// <summary>One line for an invocation's log: the type and status, not the message.</summary>
    public override string ToString() => Status == 0 ? Type : $"{Type} (status {Status}/{SubStatus}{(ActivityId is null ? "" : ", activity " + ActivityId)})";
}
