using Marketing.Functions.Campaigns;

namespace Marketing.Functions.Wallet;

/// <summary>
/// When a coupon claimed at a given instant can be used. Relative validity counts calendar days in the
/// campaign's time zone, the claim day being day 1: "7 days" claimed on 21 November at any hour is valid
/// until the end of 27 November, local time (so the end is local midnight, whatever DST does).
/// </summary>
public static class CouponValidity
{
    public static (DateTimeOffset From, DateTimeOffset To) For(CampaignTerms terms, DateTimeOffset claimedAt)
    {
        if (terms.Validity.Type == ValidityType.Absolute)
            return (terms.Validity.From!.Value, terms.Validity.To!.Value);

        var zone = CampaignTerms.FindTimeZone(terms.TimeZone)
            ?? throw new InvalidOperationException($"Unknown time zone '{terms.TimeZone}'.");
        var localClaim = TimeZoneInfo.ConvertTime(claimedAt, zone);
        var localEnd = localClaim.Date.AddDays(terms.Validity.Days!.Value);
        return (claimedAt, LocalToInstant(localEnd, zone));
    }

    /// <summary>A local wall-clock time as an instant, resolving DST gaps forward and overlaps to the first occurrence.</summary>
    private static DateTimeOffset LocalToInstant(DateTime local, TimeZoneInfo zone)
    {
        local = DateTime.SpecifyKind(local, DateTimeKind.Unspecified);
        while (zone.IsInvalidTime(local)) local = local.AddMinutes(15);
        var offset = zone.IsAmbiguousTime(local) ? zone.GetAmbiguousTimeOffsets(local).Max() : zone.GetUtcOffset(local);
        return new DateTimeOffset(local, offset).ToUniversalTime();
    }
}
