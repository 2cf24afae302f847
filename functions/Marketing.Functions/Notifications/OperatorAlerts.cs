using System.Collections.Concurrent;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using Marketing.Functions.Approvals;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Microsoft.Extensions.Options;
using Marketing.Functions.Telemetry;

namespace Marketing.Functions.Notifications;

/// <summary>When operators are alerted about a published campaign (section "Alerts"; 0 turns a condition off).</summary>
public sealed class AlertOptions
{
    public const string Section = "Alerts";

    /// <summary>budget_low: the money left (neither reserved nor spent) is below this percentage of the campaign's budget.</summary>
    [Range(0, 99)] public int BudgetPercent { get; set; } = 10;

    /// <summary>stock_low: the coupons left (all shards) are below this percentage of the total quantity.</summary>
    [Range(0, 99)] public int StockPercent { get; set; } = 10;

    /// <summary>ending_soon: the claim window ends within this many hours.</summary>
    [Range(0, 720)] public int EndingHours { get; set; } = 24;

    /// <summary>Days an alert's record is kept after the campaign's claim window ends (its "ttl"): while it exists, no second alert.</summary>
    [Range(1, 365)] public int RetentionDays { get; set; } = 90;

    /// <summary>approval_requested: tell the operators' channel (where approvers are) about each new request in the approvers' queue.</summary>
    public bool ApprovalRequests { get; set; } = true;
}

/// <summary>What the operators are alerted about; the wire name is part of the alert's id.</summary>
public enum AlertCondition { BudgetLow, StockLow, EndingSoon }

/// <summary>
/// What one pass raised: the messages to put on the queue (alerts written now), and how many campaign checks or alert
/// creates failed (logged; the next run repeats them).
/// </summary>
public sealed record AlertRun(IReadOnlyList<NotificationMessage> Messages, int Failed);

/// <summary>
/// Operator alerts (docs/notifications.md, "Operator alerts"), raised by each SendReminders run over the catalog it has
/// already read: for every PUBLISHED campaign, budget below <see cref="AlertOptions.BudgetPercent"/>, stock below
/// <see cref="AlertOptions.StockPercent"/>, claim window ending within <see cref="AlertOptions.EndingHours"/>. Each met
/// condition is one record in the partition "operators" with the id <c>alert-&lt;campaign&gt;-&lt;condition&gt;</c>,
/// created if absent; only the run whose create wrote it returns its queue message, so a condition is alerted once per
/// campaign across overlapping runs and reruns, and a run that died between the create and its output binding is
/// healed by the outbox sweep (the record is an external one, pending, never attempted). Conditions are judged from
/// the state as it is (level, not edge): a condition met while a run was down is alerted by the next one.
/// Cosmos per run: one query per published campaign (its stock and budget shards together), one query per 100 alerts
/// due (which exist already), and one create per alert not yet raised.
/// </summary>
public sealed class OperatorAlerts(NotificationStore notifications, StockStore stock, IOptions<AlertOptions> options, IOptions<TimerOptions> timers,
    ILogger<OperatorAlerts> log, IEnumerable<IApprovalQueue>? approvals = null)
{
    private readonly AlertOptions settings = options.Value;

    public static string IdOf(string campaignId, AlertCondition condition) => $"alert-{campaignId}-{Wire(condition)}";

    /// <summary>
    /// At most this many requests of each kind are looked at per run (the oldest first as the queue lists them): a queue longer
    /// than that has its later requests alerted by later runs, as earlier ones are decided.
    /// </summary>
    public const int ApprovalAlertsPerKind = 100;

    /// <summary>The approval_requested alert of one request: its kind, its id and when it was requested (a resubmission is a new request).</summary>
    public static string ApprovalIdOf(ApprovalItem item)
        => "alert-approval-" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(
            System.Text.Encoding.UTF8.GetBytes($"{item.Kind}\n{item.Id}\n{UtcInstantConverter.Text(item.RequestedAt)}")))[..32];

    public static string Wire(AlertCondition condition) => condition switch
    {
        AlertCondition.BudgetLow => "budget_low",
        AlertCondition.StockLow => "stock_low",
        _ => "ending_soon",
    };

    /// <summary>
    /// Checks every published campaign of <paramref name="catalog"/> and writes the alerts now due; the messages of those
    /// written by this call. Stops taking campaigns when <paramref name="deadline"/> passes (the next run checks them: the
    /// conditions are read from the state, and what was alerted is not alerted again). Never throws for a Cosmos error: a
    /// campaign whose check or create fails is logged and counted, and checked again by the next run.
    /// </summary>
    public async Task<AlertRun> RaiseAsync(IEnumerable<Campaign> catalog, DateTimeOffset now, RunDeadline deadline, CancellationToken ct)
    {
        var published = catalog.Where(c => c.Status == CampaignStatus.Published).ToList();
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = timers.Value.Parallelism, CancellationToken = ct };
        var failed = 0;

        // 1. Each published campaign's state: one query each.
        var due = new ConcurrentQueue<NotificationRecord>();
        await Parallel.ForEachAsync(published, parallel, async (campaign, token) =>
        {
            if (!deadline.TakeMore()) return;
            try
            {
                foreach (var record in await DueAsync(campaign, now, token)) due.Enqueue(record);
            }
            catch (Exception e) when (e is not OperationCanceledException || !token.IsCancellationRequested)
            {
                Interlocked.Increment(ref failed);
                Failed("checking campaign " + campaign.Id, e);
            }
        });
        // 1b. Requests waiting for an approver: one alert per request (and per resubmission: the id names when it was requested).
        if (settings.ApprovalRequests)
            foreach (var queue in approvals ?? [])
            {
                if (!deadline.TakeMore()) break;
                try
                {
                    foreach (var item in (await queue.PendingAsync(ApprovalAlertsPerKind, null, ct)).Items)
                        due.Enqueue(ApprovalRecord(item, now));
                }
                catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
                {
                    Interlocked.Increment(ref failed);
                    Failed("reading the approvers' queue of " + queue.Kind, e);
                }
            }
        if (due.IsEmpty) return new AlertRun([], failed);

        // 2. Which were raised before (a condition holds for many runs): one query per 100 alerts, so a condition that
        //    still holds costs no refused create. Only an optimisation: the create below decides.
        var existing = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            existing = await notifications.ExistingAlertIdsAsync([.. due.Select(r => r.Id)], ct);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            Failed("looking up the alerts raised before (every due alert is tried)", e);
        }

        // 3. Create-if-absent: only the run whose create wrote the record queues it.
        var messages = new ConcurrentQueue<NotificationMessage>();
        await Parallel.ForEachAsync(due.Where(r => !existing.Contains(r.Id)), parallel, async (record, token) =>
        {
            try
            {
                if (await notifications.TryCreateAsync(record, token)) messages.Enqueue(NotificationMessage.Of(record));
            }
            catch (Exception e) when (e is not OperationCanceledException || !token.IsCancellationRequested)
            {
                Interlocked.Increment(ref failed);
                Failed("writing alert " + record.Id, e);
            }
        });
        return new AlertRun([.. messages], failed);
    }

    private void Failed(string what, Exception e)
        => log.OperatorAlertsFailed(what, e);

    /// <summary>The alert records a campaign's state calls for now (one query for its stock and budget, skipped when both checks are off).</summary>
    public async Task<List<NotificationRecord>> DueAsync(Campaign campaign, DateTimeOffset now, CancellationToken ct)
    {
        var terms = campaign.Terms;
        var due = new List<NotificationRecord>();
        var levels = settings.StockPercent > 0 || (settings.BudgetPercent > 0 && terms.Budget is not null)
            ? await stock.ReadLevelsAsync(campaign.Id, terms.ShardCount, ct)
            : null;
        var name = $"\"{terms.Name}\" ({campaign.Id})";

        if (settings.BudgetPercent > 0 && terms.Budget is not null && levels is { Budget: > 0 and var budget, BudgetLeft: { } left }
            && Below(left, budget, settings.BudgetPercent))
            due.Add(Record(campaign, AlertCondition.BudgetLow, now, $"Budget low: {terms.Name}",
                $"Campaign {name}: budget left {Figure(left)} of {Figure(budget)} ({terms.Currency} minor units, {Percent(left, budget)}%), below the {settings.BudgetPercent}% alert threshold."));

        if (settings.StockPercent > 0 && levels is { Total: > 0 } units && Below(units.Remaining, units.Total, settings.StockPercent))
            due.Add(Record(campaign, AlertCondition.StockLow, now, $"Stock low: {terms.Name}",
                $"Campaign {name}: {Figure(units.Remaining)} of {Figure(units.Total)} coupons left ({Percent(units.Remaining, units.Total)}%), below the {settings.StockPercent}% alert threshold."));

        if (settings.EndingHours > 0 && terms.ClaimEndsAt > now && terms.ClaimEndsAt <= now + TimeSpan.FromHours(settings.EndingHours))
        {
            var zone = CampaignTerms.FindTimeZone(terms.TimeZone) ?? TimeZoneInfo.Utc;
            var local = TimeZoneInfo.ConvertTime(terms.ClaimEndsAt, zone);
            var stockLeft = levels is null ? "" : $"; {Figure(levels.Remaining)} of {Figure(levels.Total)} coupons left";
            due.Add(Record(campaign, AlertCondition.EndingSoon, now, $"Ending soon: {terms.Name}",
                $"Campaign {name}: claiming ends {local.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)} {zone.Id} ({terms.ClaimEndsAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)} UTC), within {settings.EndingHours} h{stockLeft}."));
        }
        return due;
    }

    /// <summary>part / whole &lt; percent / 100, in integers (money ≤ 10^12, so ×100 stays far inside a long).</summary>
    private static bool Below(long part, long whole, int percent) => part * 100 < whole * percent;

    private static string Figure(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static string Percent(long part, long whole) => (part * 100.0 / whole).ToString("0.#", CultureInfo.InvariantCulture);

    private NotificationRecord ApprovalRecord(ApprovalItem item, DateTimeOffset now)
    {
        var amount = item.Amount is { } money ? $", {Figure(money)} {item.Currency} minor units" : "";
        return new NotificationRecord
        {
            Id = ApprovalIdOf(item),
            CustomerId = NotificationRecord.OperatorsPartition,
            Kind = NotificationKind.OperatorAlert,
            Channel = NotificationChannel.Operators,
            Title = $"Approval requested: {item.Title}",
            Body = $"{item.Kind} {item.Id}{amount}, requested by {item.RequestedBy} at {UtcInstantConverter.Text(item.RequestedAt)}: "
                + $"{item.Changes.Count} field(s) changed since the last approval. Decide with POST /api/{item.Routes.Approve} or /api/{item.Routes.Reject}.",
            CampaignId = item.Kind == ApprovalItem.Kinds.Campaign ? item.Id : null,
            CreatedAt = now,
            Delivery = new DeliveryStatus(DeliveryState.Pending),
            // While it exists its id refuses a second alert for the same request.
            Ttl = (int)TimeSpan.FromDays(settings.RetentionDays).TotalSeconds,
        };
    }

    private NotificationRecord Record(Campaign campaign, AlertCondition condition, DateTimeOffset now, string title, string body)
    {
        // Kept while the campaign can still be published (until its claim window ends) and RetentionDays after: while the
        // record exists its id refuses a second alert. Cosmos takes a ttl up to int.MaxValue seconds.
        var keep = (campaign.Terms.ClaimEndsAt > now ? campaign.Terms.ClaimEndsAt - now : TimeSpan.Zero) + TimeSpan.FromDays(settings.RetentionDays);
        return new NotificationRecord
        {
            Id = IdOf(campaign.Id, condition),
            CustomerId = NotificationRecord.OperatorsPartition,
            Kind = NotificationKind.OperatorAlert,
            Channel = NotificationChannel.Operators,
            Title = title,
            Body = body,
            CampaignId = campaign.Id,
            CreatedAt = now,
            Delivery = new DeliveryStatus(DeliveryState.Pending),
            Ttl = (int)Math.Min(keep.TotalSeconds, int.MaxValue),
        };
    }
}
