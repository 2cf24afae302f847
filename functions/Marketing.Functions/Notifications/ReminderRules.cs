using System.Globalization;

namespace Marketing.Functions.Notifications;

/// <summary>One reminder owed: coupon <see cref="CouponId"/> of <see cref="CampaignId"/>, for its offset <see cref="OffsetHours"/>.</summary>
public sealed record DueReminder(string CampaignId, string CouponId, int OffsetHours, DateTimeOffset ValidTo);

/// <summary>
/// The timing rules of expiry reminders (docs/notifications.md, "Expiry reminders: the rules"), as pure functions of
/// instants, so they are tested without a database and the timer only applies them.
/// </summary>
public static class ReminderRules
{
    /// <summary>
    /// A reminder is never sent later than this before the coupon expires, nor earlier than this after its claim
    /// (<see cref="ReminderOptions.MarginMinutes"/>; the local run shortens it to see reminders at once).
    /// </summary>
    public static readonly TimeSpan Margin = TimeSpan.FromHours(1);

    /// <summary>
    /// When the reminder for (<paramref name="offsetHours"/>) of a coupon claimed at <paramref name="claimedAt"/> and
    /// valid until <paramref name="validTo"/> falls due; null when it is not sent. Normally <c>validTo − offset</c>; a
    /// coupon claimed after that instant (validity shorter than the offset) is reminded one hour after its claim
    /// instead, if that is still at least an hour before expiry. Offsets that fall on the same instant give one
    /// reminder: the one of the smallest offset (<paramref name="offsets"/>, the campaign's).
    /// </summary>
    public static DateTimeOffset? DueAt(int offsetHours, IReadOnlyList<int> offsets, DateTimeOffset claimedAt, DateTimeOffset validTo,
        TimeSpan? margin = null)
    {
        var m = margin ?? Margin;
        var due = Due(offsetHours, claimedAt, validTo, m);
        if (due is null) return null;
        // Another, smaller offset of the campaign falling on the same instant sends this one.
        return offsets.Any(o => o < offsetHours && Due(o, claimedAt, validTo, m) == due) ? null : due;
    }

    private static DateTimeOffset? Due(int offsetHours, DateTimeOffset claimedAt, DateTimeOffset validTo, TimeSpan margin)
    {
        var normal = validTo - TimeSpan.FromHours(offsetHours);
        var due = normal >= claimedAt + margin ? normal : claimedAt + margin;
        return due <= validTo - margin ? due : null;
    }

    /// <summary>
    /// The claim instants whose reminder for <paramref name="offsetHours"/> falls due in (<paramref name="from"/>,
    /// <paramref name="to"/>], for coupons valid until <paramref name="validTo"/>: claimed after <c>Lo</c> (null: any)
    /// and at or before <c>Hi</c>; null when none can. What the wallet query asks for, so each run reads the coupons
    /// whose reminders fall due in its window and no others.
    /// </summary>
    public static (DateTimeOffset? Lo, DateTimeOffset Hi)? ClaimWindow(int offsetHours, DateTimeOffset validTo, DateTimeOffset from, DateTimeOffset to,
        TimeSpan? margin = null)
    {
        var m = margin ?? Margin;
        var normal = validTo - TimeSpan.FromHours(offsetHours);
        if (normal > to) return null; // not due yet, whenever the coupon was claimed
        var last = validTo - m < to ? validTo - m : to; // no reminder later than an hour before expiry
        if (last <= from) return null;
        // due = max(normal, claimedAt + 1 h) ∈ (from, last]: claimedAt ≤ last − 1 h, and claimedAt > from − 1 h unless
        // the normal instant itself lies in the window.
        return (normal > from ? null : from - m, last - m);
    }

    /// <summary>When the quiet hours that <paramref name="now"/> falls in end, in the zone; null when it falls outside them.</summary>
    public static DateTimeOffset? QuietUntil(QuietHours quiet, TimeZoneInfo zone, DateTimeOffset now)
    {
        var local = TimeZoneInfo.ConvertTime(now, zone);
        var time = TimeOnly.FromDateTime(local.DateTime);
        if (!quiet.Contains(time)) return null;
        var to = TimeOnly.ParseExact(quiet.To, "HH:mm", CultureInfo.InvariantCulture);
        var day = DateOnly.FromDateTime(local.DateTime);
        return ToInstant(time < to ? day : day.AddDays(1), to, zone);
    }

    /// <summary>The first instant of the next local day outside the quiet hours: when a capped channel may send again.</summary>
    public static DateTimeOffset NextDayStart(QuietHours quiet, TimeZoneInfo zone, DateTimeOffset now)
    {
        var day = LocalDay(zone, now).AddDays(1);
        var midnight = ToInstant(day, TimeOnly.MinValue, zone);
        return QuietUntil(quiet, zone, midnight) ?? midnight;
    }

    /// <summary>The customer's local date at <paramref name="now"/>: the daily cap's day.</summary>
    public static DateOnly LocalDay(TimeZoneInfo zone, DateTimeOffset now) => DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(now, zone).DateTime);

    /// <summary>A local wall-clock time as an instant; a time skipped by a daylight-saving change means the first one after it.</summary>
    public static DateTimeOffset ToInstant(DateOnly day, TimeOnly time, TimeZoneInfo zone)
    {
        var local = day.ToDateTime(time, DateTimeKind.Unspecified);
        if (zone.IsInvalidTime(local))
        {
            // The first wall-clock time after the gap, found a minute at a time (gaps start and end on whole minutes).
            // Coarser steps overshoot by a time-dependent amount: 02:15 would become 03:15 while 02:30 became 03:00, so
            // later quiet hours could end earlier.
            local = new DateTime(local.Ticks - local.Ticks % TimeSpan.TicksPerMinute, DateTimeKind.Unspecified);
            while (zone.IsInvalidTime(local)) local = local.AddMinutes(1);
        }
        // An ambiguous time (clocks turned back) is its first occurrence: the earlier instant, the larger offset.
        var offset = zone.IsAmbiguousTime(local) ? zone.GetAmbiguousTimeOffsets(local).Max() : zone.GetUtcOffset(local);
        return new DateTimeOffset(local, offset).ToUniversalTime();
    }
}
