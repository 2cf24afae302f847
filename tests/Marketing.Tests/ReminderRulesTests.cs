using Marketing.Functions.Notifications;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The timing rules of expiry reminders (docs/notifications.md, "Expiry reminders: the rules") as pure functions of
/// instants: no database, no clock. The edge cases are the ones a calendar gets wrong: quiet hours across midnight,
/// equal bounds, a daylight-saving gap, and the first and last time zones on Earth.
/// </summary>
public sealed class ReminderRulesTests
{
    private static readonly TimeZoneInfo LosAngeles = TimeZoneInfo.FindSystemTimeZoneById("America/Los_Angeles");
    private static readonly TimeZoneInfo Shanghai = TimeZoneInfo.FindSystemTimeZoneById("Asia/Shanghai");
    private static readonly TimeZoneInfo Kiritimati = TimeZoneInfo.FindSystemTimeZoneById("Pacific/Kiritimati"); // UTC+14
    private static readonly TimeZoneInfo MinusTwelve = TimeZoneInfo.FindSystemTimeZoneById("Etc/GMT+12"); // UTC−12 (POSIX sign)

    private static DateTimeOffset Utc(int month, int day, int hour, int minute = 0, int year = 2026) => new(year, month, day, hour, minute, 0, TimeSpan.Zero);
    private static (DateTimeOffset? Lo, DateTimeOffset Hi)? Window(DateTimeOffset? lo, DateTimeOffset hi) => (lo, hi);
    private static readonly QuietHours Night = QuietHours.Default; // 22:00–08:00

    // ---- DueAt: the offsets and the short-validity rule ----

    [Fact]
    public void A_reminder_falls_due_its_offset_before_expiry_when_the_coupon_was_claimed_earlier()
    {
        var validTo = Utc(11, 28, 16);
        Assert.Equal(validTo.AddHours(-24), ReminderRules.DueAt(24, [24], Utc(11, 21, 2), validTo));
        Assert.Equal(validTo.AddHours(-48), ReminderRules.DueAt(48, [48, 2], Utc(11, 21, 2), validTo));
        Assert.Equal(validTo.AddHours(-2), ReminderRules.DueAt(2, [48, 2], Utc(11, 21, 2), validTo));
        // Claimed exactly an hour before the normal instant: still the normal instant.
        Assert.Equal(validTo.AddHours(-24), ReminderRules.DueAt(24, [24], validTo.AddHours(-25), validTo));
    }

    [Fact]
    public void A_coupon_claimed_after_its_offsets_instant_is_reminded_an_hour_after_the_claim_if_an_hour_is_then_left()
    {
        var claimed = Utc(11, 21, 2);
        Assert.Equal(claimed.AddHours(1), ReminderRules.DueAt(24, [24], claimed, claimed.AddHours(5)));
        // Claimed 30 minutes before the normal instant: an hour after the claim, not the normal instant.
        Assert.Equal(claimed.AddHours(1), ReminderRules.DueAt(24, [24], claimed, claimed.AddHours(24.5)));
        // Exactly two hours of validity: due an hour after the claim, an hour before expiry (both bounds inclusive).
        Assert.Equal(claimed.AddHours(1), ReminderRules.DueAt(24, [24], claimed, claimed.AddHours(2)));
        // Less than two hours: no instant is both an hour after the claim and an hour before expiry.
        Assert.Null(ReminderRules.DueAt(24, [24], claimed, claimed.AddHours(2).AddMinutes(-1)));
        Assert.Null(ReminderRules.DueAt(1, [1], claimed, claimed.AddMinutes(110)));
    }

    [Fact]
    public void Offsets_that_fall_on_the_same_instant_give_one_reminder_the_smallest_offsets()
    {
        var claimed = Utc(11, 21, 2);
        var validTo = claimed.AddHours(10);
        // 48 and 24 both collapse to claim + 1 h: the 24 h reminder is sent, the 48 h one is not.
        Assert.Null(ReminderRules.DueAt(48, [48, 24], claimed, validTo));
        Assert.Equal(claimed.AddHours(1), ReminderRules.DueAt(24, [48, 24], claimed, validTo));
        // 48 collapses, 2 keeps its own instant: two reminders.
        Assert.Equal(claimed.AddHours(1), ReminderRules.DueAt(48, [48, 2], claimed, validTo));
        Assert.Equal(validTo.AddHours(-2), ReminderRules.DueAt(2, [48, 2], claimed, validTo));
        // Three offsets, all after the claim: one reminder (the smallest's), whatever order the campaign lists them in.
        Assert.Equal([null, null, claimed.AddHours(1)], new[] { 72, 48, 24 }.Select(o => ReminderRules.DueAt(o, [24, 72, 48], claimed, validTo)).ToArray());
    }

    // ---- ClaimWindow: which claims a run must read ----

    [Fact]
    public void The_claim_window_is_every_claim_when_the_normal_instant_lies_in_the_runs_window()
    {
        var validTo = Utc(11, 28, 16);
        var window = ReminderRules.ClaimWindow(24, validTo, validTo.AddHours(-24).AddMinutes(-5), validTo.AddHours(-24).AddMinutes(5));
        Assert.NotNull(window);
        Assert.Null(window.Value.Lo);
        // Claims up to an hour before the run's end: a later claim's reminder is due an hour after it, after the window.
        Assert.Equal(validTo.AddHours(-24).AddMinutes(5).AddHours(-1), window.Value.Hi);
    }

    [Fact]
    public void The_claim_window_is_only_the_last_hours_claims_once_the_normal_instant_has_passed_and_none_before_it()
    {
        var validTo = Utc(11, 28, 16);
        var from = validTo.AddHours(-10);
        var to = from.AddMinutes(5);
        Assert.Equal(Window(from.AddHours(-1), to.AddHours(-1)), ReminderRules.ClaimWindow(24, validTo, from, to));
        // Not due yet whoever claimed: the normal instant is after the window.
        Assert.Null(ReminderRules.ClaimWindow(24, validTo, validTo.AddHours(-30), validTo.AddHours(-25)));
        // Within the last hour before expiry nothing falls due any more.
        Assert.Null(ReminderRules.ClaimWindow(24, validTo, validTo.AddMinutes(-60), validTo.AddMinutes(-55)));
        // A window ending after the last instant is cut at it: claims up to two hours before expiry.
        Assert.Equal(Window(validTo.AddMinutes(-70).AddHours(-1), validTo.AddHours(-2)), ReminderRules.ClaimWindow(24, validTo, validTo.AddMinutes(-70), validTo.AddMinutes(5)));
    }

    [Fact]
    public void Every_claim_whose_reminder_falls_due_in_a_runs_window_lies_in_that_runs_claim_window()
    {
        // The window logic and DueAt must agree: a claim is read exactly when its reminder falls due in the window.
        var validTo = Utc(11, 28, 16);
        var runs = Enumerable.Range(0, 30 * 12).Select(i => validTo.AddHours(-30).AddMinutes(5 * i)).ToList();
        foreach (var offset in new[] { 24, 2 })
            for (var claimedMinutes = 0; claimedMinutes < 30 * 60; claimedMinutes += 7)
            {
                var claimed = validTo.AddHours(-30).AddMinutes(claimedMinutes);
                var due = ReminderRules.DueAt(offset, [offset], claimed, validTo);
                var readBy = runs.Zip(runs.Skip(1)).Where(w => ReminderRules.ClaimWindow(offset, validTo, w.First, w.Second) is { } cw
                    && (cw.Lo is null || claimed > cw.Lo) && claimed <= cw.Hi && due > w.First && due <= w.Second).Count();
                var dueIn = runs.Zip(runs.Skip(1)).Count(w => due > w.First && due <= w.Second);
                Assert.True(readBy == dueIn, $"offset {offset}, claimed {claimed:O}, due {due:O}: due in {dueIn} windows, read in {readBy}");
            }
    }

    // ---- QuietUntil ----

    [Fact]
    public void Quiet_hours_across_midnight_end_the_next_morning_in_the_evening_and_the_same_morning_after_midnight()
    {
        // 23:30 on 23 November in Los Angeles (PST, UTC−8) = 07:30Z on the 24th: quiet until 08:00 local on the 24th.
        Assert.Equal(Utc(11, 24, 16), ReminderRules.QuietUntil(Night, LosAngeles, Utc(11, 24, 7, 30)));
        // 03:00 local: until 08:00 the same day.
        Assert.Equal(Utc(11, 24, 16), ReminderRules.QuietUntil(Night, LosAngeles, Utc(11, 24, 11)));
        // From inclusive, to exclusive.
        Assert.Equal(Utc(11, 24, 16), ReminderRules.QuietUntil(Night, LosAngeles, Utc(11, 24, 6))); // 22:00 local
        Assert.Null(ReminderRules.QuietUntil(Night, LosAngeles, Utc(11, 24, 16))); // 08:00 local
        Assert.Null(ReminderRules.QuietUntil(Night, LosAngeles, Utc(11, 24, 5, 59))); // 21:59 local
        // The same instant 07:30Z is 15:30 in Shanghai: not quiet there. The zone decides, not the instant.
        Assert.Null(ReminderRules.QuietUntil(Night, Shanghai, Utc(11, 24, 7, 30)));
    }

    [Fact]
    public void Quiet_hours_within_a_day_and_equal_bounds()
    {
        var lunch = new QuietHours("12:00", "14:00");
        Assert.Equal(Utc(11, 24, 6), ReminderRules.QuietUntil(lunch, Shanghai, Utc(11, 24, 4, 30))); // 12:30 → 14:00 local
        Assert.Null(ReminderRules.QuietUntil(lunch, Shanghai, Utc(11, 24, 7))); // 15:00
        Assert.Null(ReminderRules.QuietUntil(lunch, Shanghai, Utc(11, 23, 17))); // 01:00: not "across midnight"
        // Equal times mean no quiet hours at all, at any hour.
        var none = new QuietHours("08:00", "08:00");
        Assert.All(Enumerable.Range(0, 48), h => Assert.Null(ReminderRules.QuietUntil(none, LosAngeles, Utc(11, 24, 0).AddMinutes(30 * h))));
    }

    [Fact]
    public void Quiet_hours_ending_in_a_daylight_saving_gap_end_at_the_first_time_after_the_gap()
    {
        // 8 March 2026, Los Angeles: 02:00 PST jumps to 03:00 PDT (10:00Z). Nothing between exists.
        var gap = new DateOnly(2026, 3, 8);
        Assert.Equal(Utc(3, 8, 10, year: 2026), ReminderRules.ToInstant(gap, new TimeOnly(2, 0), LosAngeles));
        Assert.Equal(Utc(3, 8, 10, year: 2026), ReminderRules.ToInstant(gap, new TimeOnly(2, 15), LosAngeles));
        Assert.Equal(Utc(3, 8, 10, year: 2026), ReminderRules.ToInstant(gap, new TimeOnly(2, 30), LosAngeles));
        Assert.Equal(Utc(3, 8, 10, year: 2026), ReminderRules.ToInstant(gap, new TimeOnly(2, 59), LosAngeles));
        Assert.Equal(Utc(3, 8, 10, 1, year: 2026), ReminderRules.ToInstant(gap, new TimeOnly(3, 1), LosAngeles));
        // Either side of the gap, wall-clock times map as usual: 01:59 PST and 03:00 PDT.
        Assert.Equal(Utc(3, 8, 9, 59, year: 2026), ReminderRules.ToInstant(gap, new TimeOnly(1, 59), LosAngeles));

        // Quiet hours 22:00–02:30 on that night end when the clock shows 03:00 (10:00Z), not later.
        var late = new QuietHours("22:00", "02:30");
        Assert.Equal(Utc(3, 8, 10, year: 2026), ReminderRules.QuietUntil(late, LosAngeles, Utc(3, 8, 7, year: 2026))); // 23:00 PST on the 7th
        // A later end of quiet hours never ends earlier: the mapping is monotonic across the gap.
        var ends = Enumerable.Range(0, 61).Select(m => ReminderRules.ToInstant(gap, new TimeOnly(2, 0).AddMinutes(m), LosAngeles)).ToList();
        Assert.Equal(ends.Order().ToList(), ends);
    }

    [Fact]
    public void A_time_the_clocks_pass_twice_is_its_first_occurrence()
    {
        // 1 November 2026, Los Angeles: 02:00 PDT goes back to 01:00 PST; 01:30 happens at 08:30Z and again at 09:30Z.
        Assert.Equal(Utc(11, 1, 8, 30), ReminderRules.ToInstant(new DateOnly(2026, 11, 1), new TimeOnly(1, 30), LosAngeles));
        // Quiet hours ending 01:30 that night end at its first occurrence.
        Assert.Equal(Utc(11, 1, 8, 30), ReminderRules.QuietUntil(new QuietHours("23:00", "01:30"), LosAngeles, Utc(11, 1, 7))); // 00:00 PDT
    }

    // ---- NextDayStart and LocalDay ----

    [Fact]
    public void The_next_day_starts_at_the_end_of_its_quiet_hours_or_at_midnight_without_them()
    {
        // 15:00 on 24 November in Shanghai: the next day's first instant outside 22:00–08:00 is 08:00 on the 25th.
        Assert.Equal(Utc(11, 25, 0), ReminderRules.NextDayStart(Night, Shanghai, Utc(11, 24, 7)));
        // 23:30 on the 23rd, itself in quiet hours: the 24th's 08:00, when tonight's quiet hours end.
        Assert.Equal(Utc(11, 24, 0), ReminderRules.NextDayStart(Night, Shanghai, Utc(11, 23, 15, 30)));
        // No quiet hours: local midnight.
        Assert.Equal(Utc(11, 24, 16), ReminderRules.NextDayStart(new QuietHours("00:00", "00:00"), Shanghai, Utc(11, 24, 7)));
        // Quiet hours that do not cover midnight: midnight too.
        Assert.Equal(Utc(11, 24, 16), ReminderRules.NextDayStart(new QuietHours("01:00", "05:00"), Shanghai, Utc(11, 24, 7)));
        // Just after local midnight (00:30 on the 25th): the next day is the 26th.
        Assert.Equal(Utc(11, 26, 0), ReminderRules.NextDayStart(Night, Shanghai, Utc(11, 24, 16, 30)));
    }

    [Fact]
    public void The_next_day_after_a_daylight_saving_change_is_counted_in_local_time()
    {
        // 7 March 2026, 12:00 PST: the next day's 08:00 is PDT (15:00Z), 23 hours later.
        Assert.Equal(Utc(3, 8, 15, year: 2026), ReminderRules.NextDayStart(Night, LosAngeles, Utc(3, 7, 20, year: 2026)));
        // 31 October 2026, 12:00 PDT: the next day's 08:00 is PST (16:00Z), 25 hours later.
        Assert.Equal(Utc(11, 1, 16), ReminderRules.NextDayStart(Night, LosAngeles, Utc(10, 31, 19)));
    }

    [Fact]
    public void The_local_day_at_the_ends_of_the_world_is_two_dates_apart_at_the_same_instant()
    {
        var instant = Utc(11, 21, 10);
        Assert.Equal(new DateOnly(2026, 11, 22), ReminderRules.LocalDay(Kiritimati, instant)); // 00:00 on the 22nd
        Assert.Equal(new DateOnly(2026, 11, 20), ReminderRules.LocalDay(MinusTwelve, instant)); // 22:00 on the 20th
        Assert.Equal(new DateOnly(2026, 11, 21), ReminderRules.LocalDay(TimeZoneInfo.Utc, instant));
        // A minute earlier Kiritimati is still on the 21st.
        Assert.Equal(new DateOnly(2026, 11, 21), ReminderRules.LocalDay(Kiritimati, instant.AddMinutes(-1)));
        // The day's message ids a run reads (UTC day ± 1) cover both: the daily cap holds at both ends.
        Assert.StartsWith("reminder-push-20261122-", ReminderRun.DayRecordId("c-1", NotificationChannel.Push, ReminderRules.LocalDay(Kiritimati, instant)));
        Assert.StartsWith("reminder-push-20261120-", ReminderRun.DayRecordId("c-1", NotificationChannel.Push, ReminderRules.LocalDay(MinusTwelve, instant)));
    }

    [Fact]
    public void Quiet_hours_and_the_next_day_in_utc_plus_14_and_utc_minus_12()
    {
        // 23:30 in Kiritimati on the 21st is 09:30Z: quiet until 08:00 there on the 22nd = 18:00Z on the 21st.
        Assert.Equal(Utc(11, 21, 18), ReminderRules.QuietUntil(Night, Kiritimati, Utc(11, 21, 9, 30)));
        // The same instant is 21:30 on the 20th at UTC−12: not quiet.
        Assert.Null(ReminderRules.QuietUntil(Night, MinusTwelve, Utc(11, 21, 9, 30)));
        // The next day there (the 21st) starts at 08:00 UTC−12 = 20:00Z on the 21st.
        Assert.Equal(Utc(11, 21, 20), ReminderRules.NextDayStart(Night, MinusTwelve, Utc(11, 21, 9, 30)));
        Assert.Equal(new DateTimeOffset(2026, 11, 22, 0, 0, 0, TimeSpan.FromHours(14)), ReminderRules.ToInstant(new DateOnly(2026, 11, 22), TimeOnly.MinValue, Kiritimati));
    }

    [Fact]
    public void The_days_message_id_is_the_same_for_one_customer_and_differs_between_customers()
    {
        // It is the provider's Idempotency-Key, which a provider keeps across all our customers.
        var day = new DateOnly(2026, 11, 24);
        Assert.Equal(ReminderRun.DayRecordId("alice", NotificationChannel.Push, day), ReminderRun.DayRecordId("alice", NotificationChannel.Push, day));
        Assert.NotEqual(ReminderRun.DayRecordId("alice", NotificationChannel.Push, day), ReminderRun.DayRecordId("bob", NotificationChannel.Push, day));
        Assert.NotEqual(ReminderRun.DayRecordId("alice", NotificationChannel.Push, day), ReminderRun.DayRecordId("alice", NotificationChannel.Sms, day));
        Assert.DoesNotContain('/', ReminderRun.DayRecordId("tenant/alice", NotificationChannel.Push, day));
    }
}
