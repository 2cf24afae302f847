using System.Collections.Concurrent;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Expiry;
using Marketing.Functions.Hosting;
using Marketing.Functions.Telemetry;
using Marketing.Functions.Wallet;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Notifications;

public sealed class ReminderOptions
{
    public const string Section = "Reminders";

    /// <summary>Days a reminder message stays in the inbox (its record's "ttl").</summary>
    [Range(1, 365)]
    public int RecordRetentionDays { get; set; } = 90;

    /// <summary>The first run looks this far back for reminders that fell due (later runs start where the last one finished).</summary>
    public const int FirstLookbackMinutes = 60;

    /// <summary>An external message still unsent this long after it was written is put on the queue again (once).</summary>
    [Range(1, 1440)]
    public int RequeueAfterMinutes { get; set; } = 10;

    /// <summary>Coupons one message lists at most (a transactional batch holds 100 operations: the messages, the marks, a consent).</summary>
    public const int MaxCouponsPerMessage = 90;

    /// <summary>
    /// Coupons a run reads at most (about 150 bytes each in memory: 30 MB); far more than a run sends in its time (about
    /// 200 reminders/s on the local emulator, docs/benchmarks.md). The next run goes on.
    /// </summary>
    public const int MaxCouponsPerRun = 200_000;

    /// <summary>
    /// Minutes a reminder keeps from a coupon's claim and from its expiry (the short-validity and quiet-hours rules):
    /// 60 in Azure. The local run (scripts/run-local.sh) sets 1, so a coupon claimed now is reminded a minute later.
    /// </summary>
    [Range(1, 60)]
    public int MarginMinutes { get; set; } = 60;

    public TimeSpan Margin => TimeSpan.FromMinutes(MarginMinutes);
}

/// <summary>What one run did (the tests and the benchmark hold it to its counts).</summary>
public sealed record ReminderReport : ITimerReport
{
    public DateTimeOffset From { get; set; }
    public DateTimeOffset Through { get; set; }
    public bool CursorAdvanced { get; set; }
    public bool Stopped { get; set; }
    /// <summary>Expiry index entries (campaign, instant) read, and the wallet queries made for them.</summary>
    public int EntriesRead { get; set; }
    public int WalletQueries { get; set; }
    public int CouponsRead { get; set; }
    /// <summary>Coupons of customers in their campaign's holdout: no reminder, by design.</summary>
    public int HeldOut { get; set; }
    /// <summary>Reminders (coupon, offset) sent now: each marked once, in the batch of its message.</summary>
    public int RemindersSent { get; set; }
    /// <summary>Reminders found already sent (an overlapping or earlier run).</summary>
    public int AlreadySent { get; set; }
    /// <summary>Message records written, and of them external ones put on the queue.</summary>
    public int Messages { get; set; }
    public int Queued { get; set; }
    /// <summary>Reminders held back (quiet hours, the daily cap) to be sent later, and held reminders worked now.</summary>
    public int RemindersHeld { get; set; }
    public int HeldEntriesWorked { get; set; }
    /// <summary>Reminders not sent because the coupon was no longer available when a held reminder came due.</summary>
    public int NoLongerAvailable { get; set; }
    public int Requeued { get; set; }
    /// <summary>Operator alerts written and queued by this run (OperatorAlerts: once per campaign per condition).</summary>
    public int Alerts { get; set; }
    public ConcurrentQueue<string> Failures { get; } = new();
    /// <summary>
    /// Reminders a failure left for the next run: those of a customer whose decision failed (an error, or refused four
    /// times), and of a held entry whose work failed. At most: some of them may have gone out in an earlier message of
    /// the same decision (the next run skips those by their marks). A failure of the whole run counts none here.
    /// </summary>
    public int RemindersFailed { get; set; }
    /// <summary>
    /// Customers' reminders due and left: held entries not done, and customers of the window not decided (out of time, or
    /// failed); the oldest is the window's start while the cursor did not advance (docs/operations.md).
    /// </summary>
    public Backlog Backlog { get; } = new();

    bool ITimerReport.Failed => !Failures.IsEmpty;

    Backlog? ITimerReport.Backlog => Backlog;

    internal void Add(Action<ReminderReport> change)
    {
        lock (this) change(this);
    }
}

/// <summary>
/// Timer function SendReminders (schedule: app setting SendRemindersSchedule, every 5 minutes by default): expiry
/// reminders by the rules of docs/notifications.md. Each run handles the reminders falling due since the last run's
/// window (its cursor) up to now:
/// 1. finds the (campaign, expiry instant) pairs that can owe one through the expiry index (no write on the claim
///    path), and for each one wallet query for the still-available coupons whose reminder falls due in the window;
/// 2. decides per customer (holdout, consent, quiet hours, daily cap, bundling) and writes each message with the
///    marks of the reminders it carries in one transactional batch in the customer's partition (exactly once);
/// 3. works the reminders held back earlier whose time has come (the due index's "reminders" track);
/// 4. puts external messages on the notifications queue through its Service Bus output binding, and once more any
///    message of the last hour that never left (the run that wrote it died before returning it);
/// 5. moves the cursor on only when everything in the window was handled.
/// </summary>
public static class SendReminders
{
    public const string FunctionName = "SendReminders";
    public const string ScheduleSetting = "SendRemindersSchedule";
    /// <summary>The output binding's name: what the handler returns under Outputs[...] is sent to %NotificationsQueue%.</summary>
    public const string Output = "notifications";

    public static readonly ServiceBusOutput QueueOutput = new(Output, "%" + DeliverNotifications.QueueSetting + "%", DeliverNotifications.Connection);

    public static RouteHandlerBuilder MapSendReminders(this IEndpointRouteBuilder routes) =>
        routes.MapTimerFunction(FunctionName, $"%{ScheduleSetting}%", async (_, context) =>
        {
            var s = context.RequestServices;
            var time = s.GetRequiredService<TimeProvider>();
            var timers = s.GetRequiredService<IOptions<TimerOptions>>().Value;
            var deadline = RunDeadline.Start(time, timers);
            var run = new ReminderRun(s.GetRequiredService<NotificationStore>(), s.GetRequiredService<WalletStore>(), s.GetRequiredService<CampaignStore>(),
                s.GetRequiredService<DueIndex>(), s.GetRequiredService<IOptions<ReminderOptions>>().Value, timers, s.GetRequiredService<OperatorAlerts>());
            var (report, messages) = await run.RunAsync(time.GetUtcNow(), deadline, context.RequestAborted);
            var result = new InvocationResult { ReturnValue = report };
            // Each message as its JSON (camelCase, as the provider webhook receives it): the host sends each array item
            // to the queue as one message body.
            result.Outputs[Output] = messages.Select(m => JsonSerializer.SerializeToNode(m, Json.Options)).ToList();
            result.Log($"Sent {report.RemindersSent} reminders in {report.Messages} messages ({report.Queued} queued, {report.Requeued} queued again); held {report.RemindersHeld}, worked {report.HeldEntriesWorked} held; {report.AlreadySent} already sent, {report.HeldOut} held out; {report.Alerts} operator alerts; read {report.EntriesRead} expiry entries, {report.WalletQueries} wallet queries, {report.CouponsRead} coupons; window {report.From:O} to {report.Through:O}{(report.CursorAdvanced ? "" : " (not finished: the next run does it again)")}.");
            foreach (var failure in report.Failures) result.Log(failure);
            Metrics.ReminderOutcome(Metrics.ReminderOutcomes.Sent, report.RemindersSent);
            Metrics.ReminderOutcome(Metrics.ReminderOutcomes.Held, report.RemindersHeld);
            Metrics.ReminderOutcome(Metrics.ReminderOutcomes.Failed, report.RemindersFailed);
            LogEvents.LoggerOf(context, typeof(SendReminders)).SendRemindersRan(LogEvents.RunOutcome(report.Failures.Count, deadline.Stopped),
                report.RemindersSent, report.Messages, report.Queued, report.RemindersHeld, report.Alerts, report.EntriesRead);
            return result;
        }, [QueueOutput]);
}

/// <summary>One run of <see cref="SendReminders"/>.</summary>
public sealed class ReminderRun(NotificationStore store, WalletStore wallets, CampaignStore campaigns, DueIndex due, ReminderOptions options,
    TimerOptions timers, OperatorAlerts? alerts = null)
{
    private static readonly NotificationChannel[] External = [NotificationChannel.Push, NotificationChannel.Sms, NotificationChannel.Email, NotificationChannel.Wechat];

    private readonly ConcurrentQueue<NotificationMessage> queued = new();
    private Dictionary<string, Campaign> catalog = [];

    /// <summary>
    /// One run at <paramref name="now"/>. Whatever fails after some messages were written, the run still answers the
    /// messages it wrote (the host sends them after it answers): a failure is reported, never thrown past them.
    /// </summary>
    public async Task<(ReminderReport Report, List<NotificationMessage> Messages)> RunAsync(DateTimeOffset now, RunDeadline? deadline, CancellationToken ct)
    {
        deadline ??= RunDeadline.None;
        var report = new ReminderReport();
        try
        {
            await RunStepsAsync(now, deadline, report, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            report.Failures.Enqueue($"The run stopped: {Failure.Of(e)}");
            // Its window is not done: its age is the backlog's (unknown only when the cursor itself could not be read).
            if (report.From != default && !report.CursorAdvanced) report.Backlog.Left(report.From, 0);
        }
        return (report, [.. queued]);
    }

    private async Task RunStepsAsync(DateTimeOffset now, RunDeadline deadline, ReminderReport report, CancellationToken ct)
    {
        // First the messages earlier runs wrote but may not have sent: nothing later in this run can keep them waiting,
        // and a failure here does not keep the reminders from going out (it is reported; the next run sweeps again).
        try
        {
            await RequeueUnsentAsync(now, report, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            report.Failures.Enqueue($"The outbox sweep failed: {Failure.Of(e)}");
        }
        var cursor = await store.FindReminderCursorAsync(ct);
        var from = cursor?.Through ?? now - TimeSpan.FromMinutes(ReminderOptions.FirstLookbackMinutes);
        report.From = from;
        report.Through = now;
        catalog = (await campaigns.ListLaunchedAsync(ct)).ToDictionary(c => c.Id, StringComparer.Ordinal);

        var owed = new Dictionary<string, List<DueReminder>>(StringComparer.Ordinal);
        var complete = from < now ? await FindDueAsync(from, now, owed, report, deadline, ct) : true;
        await Parallel.ForEachAsync(owed, new ParallelOptions { MaxDegreeOfParallelism = timers.Parallelism, CancellationToken = ct },
            async (customer, token) =>
            {
                // Taken only while the run has time: the rest stays for the next run (the cursor does not move).
                if (!deadline.TakeMore())
                {
                    complete = false;
                    report.Backlog.Left(from);
                    return;
                }
                await DecideSafelyAsync(customer.Key, customer.Value, now, report, token);
            });
        if (alerts is not null)
        {
            // Operator alerts over the catalog already read (docs/notifications.md, "Operator alerts"); a failed check is
            // logged there and repeated by the next run, so it does not hold the reminders' cursor.
            var raised = await alerts.RaiseAsync(catalog.Values, now, deadline, ct);
            foreach (var message in raised.Messages) queued.Enqueue(message);
            report.Alerts = raised.Messages.Count;
        }

        var held = new DueRun();
        await due.RunAsync(DueIndex.Reminders, now, held, async (entry, work) =>
        {
            try
            {
                return await WorkHeldAsync(entry, now, report, work.Token);
            }
            catch (Exception) when (!work.Token.IsCancellationRequested)
            {
                report.Add(r => r.RemindersFailed += entry.Reminders?.Count ?? 0);
                throw; // the due index reports it and leaves the entry for the next run
            }
        }, deadline, ct);
        foreach (var failure in held.Failures) report.Failures.Enqueue(failure);
        report.Backlog.Add(held.Backlog);

        report.Stopped = deadline.Stopped || held.Stopped;
        if (complete && report.Failures.IsEmpty && now > from)
        {
            await store.AdvanceReminderCursorAsync(cursor, now, ct);
            report.CursorAdvanced = true;
        }
        else if (now > from)
            report.Backlog.Left(from, 0); // the window is not finished: the next run starts from here again
    }

    /// <summary>
    /// Collects the reminders falling due in (<paramref name="from"/>, <paramref name="now"/>], per customer. False when
    /// the run's time ran out first (what was collected is still sent; the cursor stays, so the next run repeats the
    /// window and the marks skip what this one sent).
    /// </summary>
    private async Task<bool> FindDueAsync(DateTimeOffset from, DateTimeOffset now, Dictionary<string, List<DueReminder>> owed, ReminderReport report,
        RunDeadline deadline, CancellationToken ct)
    {
        var reminding = catalog.Values.Where(c => c.Terms.ReminderPolicy.OffsetsHours.Length > 0).ToList();
        if (reminding.Count == 0) return true;
        // Coupons still valid whose furthest reminder has begun: expiring in (now, now + the largest offset].
        var horizon = now + TimeSpan.FromHours(reminding.Max(c => c.Terms.ReminderPolicy.OffsetsHours.Max()));
        await foreach (var entry in due.CouponExpiriesAsync(now, horizon, ct))
        {
            if (!deadline.TakeMore()) return false;
            report.EntriesRead++;
            if (entry.CampaignId is null || !catalog.TryGetValue(entry.CampaignId, out var campaign)) continue;
            var policy = campaign.Terms.ReminderPolicy;
            var windows = policy.OffsetsHours.Select(o => ReminderRules.ClaimWindow(o, entry.DueAt, from, now, options.Margin)).OfType<(DateTimeOffset? Lo, DateTimeOffset Hi)>().ToList();
            if (windows.Count == 0) continue;
            var lo = windows.Any(w => w.Lo is null) ? null : windows.Min(w => w.Lo);
            var hi = windows.Max(w => w.Hi);
            // Only claims after "lo" can owe a reminder now: none once the claim window closed before it.
            if (lo is { } after && campaign.Terms.ClaimEndsAt <= after) continue;
            report.WalletQueries++;
            await foreach (var coupon in wallets.RemindableAsync(campaign.Id, entry.DueAt, lo, hi, ct))
            {
                // Out of time, or holding as many reminders as a run sends: decide those, leave the rest to the next run.
                if (++report.CouponsRead % 1000 == 0 && (!deadline.TakeMore() || report.CouponsRead >= ReminderOptions.MaxCouponsPerRun))
                    return false;
                if (policy.HoldsOut(campaign.Id, coupon.CustomerId))
                {
                    report.HeldOut++;
                    continue;
                }
                foreach (var offset in policy.OffsetsHours)
                {
                    if (ReminderRules.DueAt(offset, policy.OffsetsHours, coupon.ClaimedAt, entry.DueAt, options.Margin) is not { } at || at <= from || at > now) continue;
                    if (!owed.TryGetValue(coupon.CustomerId, out var list)) owed[coupon.CustomerId] = list = [];
                    list.Add(new DueReminder(campaign.Id, coupon.CouponId, offset, entry.DueAt));
                }
            }
        }
        return true;
    }

    private async Task DecideSafelyAsync(string customerId, List<DueReminder> reminders, DateTimeOffset now, ReminderReport report, CancellationToken ct)
    {
        try
        {
            if (!await DecideAsync(customerId, reminders, now, report, ct))
                report.Backlog.Left(report.From); // refused again and again: the next run decides them again
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            report.Failures.Enqueue($"Reminding a customer failed: {Failure.Of(e)}");
            report.Add(r => r.RemindersFailed += reminders.Count);
            report.Backlog.Left(report.From);
        }
    }

    /// <summary>A held reminder's time has come: send what is still available (one wallet read per campaign), by the same rules.</summary>
    private async Task<bool> WorkHeldAsync(DueEntry entry, DateTimeOffset now, ReminderReport report, CancellationToken ct)
    {
        if (entry.Type != DueEntry.HeldReminders || entry.CustomerId is null || entry.Reminders is not { Count: > 0 } held) return true;
        var available = new List<DueReminder>();
        foreach (var group in held.GroupBy(r => r.CampaignId))
        {
            var wallet = await wallets.FindWalletAsync(entry.CustomerId, group.Key, ct);
            foreach (var reminder in group)
            {
                var coupon = wallet?.Coupons.FirstOrDefault(c => c.Id == reminder.CouponId);
                if (coupon is not null && coupon.StatusAt(now) == CouponStatus.Available) available.Add(reminder);
                else report.Add(r => r.NoLongerAvailable++);
            }
        }
        report.Add(r => r.HeldEntriesWorked++);
        // Not decided (refused again and again): the entry stays open and the next run works it again.
        return available.Count == 0 || await DecideAsync(entry.CustomerId, available, now, report, ct);
    }

    /// <summary>
    /// One customer's reminders due now: skips those already sent, then consent, quiet hours, the daily cap and bundling
    /// decide which messages to write now and what to hold; the messages and the marks are one batch. A refused batch
    /// (another run got there first, the preferences changed) is decided again from a fresh read.
    /// </summary>
    private async Task<bool> DecideAsync(string customerId, IReadOnlyList<DueReminder> reminders, DateTimeOffset now, ReminderReport report, CancellationToken ct)
    {
        reminders = [.. reminders.DistinctBy(ReminderMark.IdOf)]; // one mark each: a batch cannot create one id twice
        var markIds = reminders.Select(ReminderMark.IdOf).ToList();
        IReadOnlyList<string> tried = [];
        string? lastWrite = null;
        for (var attempt = 0; attempt < 4; attempt++)
        {
            var state = await store.ReadReminderStateAsync(customerId, markIds, [.. DayRecordIds(customerId, now), .. tried], ct);
            // Our own last batch, by its write id (one per attempt, so another decision of this run, say a second held
            // entry of the same customer, is never mistaken for it): the SDK re-sent it after it was applied.
            var ours = state.Records.Values.Where(r => lastWrite is not null && r.RunId == lastWrite).ToList();
            if (ours.Count > 0)
            {
                Sent(ours, report);
                return true;
            }
            var open = reminders.Where(r => !state.Marked.Contains(ReminderMark.IdOf(r)) && r.ValidTo > now).ToList();
            if (attempt == 0) report.Add(r => r.AlreadySent += reminders.Count - open.Count);
            if (open.Count == 0) return true;

            var preferences = state.Preferences ?? NotificationPreferences.Defaults(customerId);
            var first = open.MinBy(r => r.ValidTo)!;
            var zone = preferences.ZoneFor(catalog.TryGetValue(first.CampaignId, out var c) ? c.Terms.TimeZone : null);
            var external = External.Where(ch => preferences.IsOptedIn(ch) && (ch != NotificationChannel.Wechat || preferences.WechatConsents.Count > 0)).ToList();
            var channels = new List<NotificationChannel> { NotificationChannel.Inapp };
            if (external.Count > 0)
            {
                // Quiet hours: wait for their end, unless the coupon would then have less than an hour left.
                if (ReminderRules.QuietUntil(preferences.QuietHours, zone, now) is { } quietEnd)
                    open = await HoldAsync(customerId, open, quietEnd, report, ct);
                if (open.Count == 0) return true;
                var day = ReminderRules.LocalDay(zone, now);
                var free = external.Where(ch => !state.Records.ContainsKey(DayRecordId(customerId, ch, day))).ToList();
                if (free.Count > 0) channels = free;
                else
                    // The day's message went out on every channel: wait for the next day, or the inbox only when that is too late.
                    open = await HoldAsync(customerId, open, ReminderRules.NextDayStart(preferences.QuietHours, zone, now), report, ct);
                if (open.Count == 0) return true;
            }
            var ordered = open.OrderBy(r => r.ValidTo).ThenBy(r => r.CouponId, StringComparer.Ordinal).ToList();
            var take = ordered.Take(ReminderOptions.MaxCouponsPerMessage).ToList();

            var local = ReminderRules.LocalDay(zone, now);
            lastWrite = Guid.NewGuid().ToString("N");
            var records = channels.Select(ch => Record(customerId, ch, local, take, zone, now, lastWrite)).ToList();
            var marks = take.Select(r => new ReminderMark(ReminderMark.IdOf(r), customerId, MarkTtl(r, now))).ToList();
            var consent = channels.Contains(NotificationChannel.Wechat) ? state.Preferences?.ETag : null;
            if (await store.TryWriteRemindersAsync(customerId, records, marks, consent, ct))
            {
                report.Add(r => r.RemindersSent += take.Count);
                Sent(records, report);
                // More than one message holds: the rest are decided again, now that the day's messages exist (the daily
                // cap: the next day, or the inbox when that is too late; in-app only customers get another message).
                return ordered.Count == take.Count || await DecideAsync(customerId, [.. ordered.Skip(take.Count)], now, report, ct);
            }
            tried = [.. records.Select(r => r.Id)];
        }
        report.Failures.Enqueue("A customer's reminders were refused 4 times in a row (their partition keeps changing); the next run tries again.");
        report.Add(r => r.RemindersFailed += reminders.Count);
        return false;
    }

    /// <summary>
    /// Holds the reminders whose coupon is still valid for an hour at <paramref name="until"/> (filed in the due index,
    /// sent then); answers the others, which go out now.
    /// </summary>
    private async Task<List<DueReminder>> HoldAsync(string customerId, List<DueReminder> reminders, DateTimeOffset until, ReminderReport report,
        CancellationToken ct)
    {
        var later = reminders.Where(r => r.ValidTo - options.Margin >= until).ToList();
        if (later.Count > 0)
        {
            await due.HoldRemindersAsync(customerId, until, later, ct);
            report.Add(r => r.RemindersHeld += later.Count);
        }
        return [.. reminders.Except(later)];
    }

    private void Sent(IReadOnlyList<NotificationRecord> records, ReminderReport report)
    {
        foreach (var record in records)
        {
            report.Add(r => r.Messages++);
            if (record.Channel == NotificationChannel.Inapp) continue;
            queued.Enqueue(NotificationMessage.Of(record));
            report.Add(r => r.Queued++);
        }
    }

    /// <summary>
    /// Puts on the queue again the external messages of the last day that never reached a provider, RequeueAfterMinutes
    /// after they were written or last requeued, at most <see cref="NotificationRecord.MaxRequeues"/> times each.
    /// </summary>
    private async Task RequeueUnsentAsync(DateTimeOffset now, ReminderReport report, CancellationToken ct)
    {
        var by = now - TimeSpan.FromMinutes(options.RequeueAfterMinutes);
        foreach (var record in await store.ListUnsentAsync(now - TimeSpan.FromDays(1), by, ct))
        {
            if (!await store.TryMarkRequeuedAsync(record, by, now, ct)) continue;
            queued.Enqueue(NotificationMessage.Of(record));
            report.Add(r => r.Requeued++);
        }
    }

    /// <summary>
    /// The id of the day's message on a channel: one per customer, channel and local day (the daily cap). It names the
    /// customer (a hash: their id may hold characters an id cannot) because it is also the delivery's Idempotency-Key,
    /// which a provider keeps across all our customers.
    /// </summary>
    public static string DayRecordId(string customerId, NotificationChannel channel, DateOnly day)
        => $"reminder-{Wire(channel)}-{day.ToString("yyyyMMdd", CultureInfo.InvariantCulture)}-{Hash(customerId)[..24]}";

    /// <summary>The day's message ids on every external channel for every local day <paramref name="now"/> can be somewhere (UTC−12 to +14).</summary>
    private static IEnumerable<string> DayRecordIds(string customerId, DateTimeOffset now)
    {
        var utc = DateOnly.FromDateTime(now.UtcDateTime);
        return from day in new[] { utc.AddDays(-1), utc, utc.AddDays(1) } from ch in External select DayRecordId(customerId, ch, day);
    }

    private static string Hash(string text) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    private static string Wire(NotificationChannel channel) => channel.ToString().ToLowerInvariant();

    private NotificationRecord Record(string customerId, NotificationChannel channel, DateOnly day, IReadOnlyList<DueReminder> reminders,
        TimeZoneInfo zone, DateTimeOffset now, string writeId)
    {
        // In-app messages are not capped (they interrupt nobody): one per bundle, named by what it lists.
        var id = channel == NotificationChannel.Inapp
            ? "reminder-inapp-" + Hash(string.Join("\n", [customerId, .. reminders.Select(ReminderMark.IdOf).Order(StringComparer.Ordinal)]))[..40]
            : DayRecordId(customerId, channel, day);
        var lines = reminders.DistinctBy(r => r.CouponId).Select(r =>
            $"{(catalog.TryGetValue(r.CampaignId, out var c) ? c.Terms.Name : "Coupon")}: expires {TimeZoneInfo.ConvertTime(r.ValidTo, zone).ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)}").ToList();
        return new NotificationRecord
        {
            Id = id,
            CustomerId = customerId,
            Kind = NotificationKind.ExpiryReminder,
            Channel = channel,
            Title = lines.Count == 1 ? "Your coupon expires soon" : $"{lines.Count.ToString(CultureInfo.InvariantCulture)} of your coupons expire soon",
            Body = string.Join("\n", lines),
            CouponIds = [.. reminders.Select(r => r.CouponId).Distinct(StringComparer.Ordinal)],
            CampaignId = reminders.Select(r => r.CampaignId).Distinct().Count() == 1 ? reminders[0].CampaignId : null,
            CreatedAt = now,
            Delivery = channel == NotificationChannel.Inapp ? null : new DeliveryStatus(DeliveryState.Pending),
            RunId = writeId,
            Ttl = options.RecordRetentionDays * 86_400,
        };
    }

    /// <summary>A mark is kept until a day after its coupon expires: no reminder for it can fall due after that.</summary>
    private static int MarkTtl(DueReminder r, DateTimeOffset now)
        => (int)Math.Clamp((r.ValidTo - now + TimeSpan.FromDays(1)).TotalSeconds, 86_400, int.MaxValue);
}
