using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Marketing.Functions.Campaigns;

namespace Marketing.Functions.Notifications;

/// <summary>Quiet hours as local wall-clock times "HH:mm"; may cross midnight (22:00–08:00); equal times mean none.</summary>
public sealed partial record QuietHours(string From, string To)
{
    public static readonly QuietHours Default = new("22:00", "08:00");

    [GeneratedRegex("^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    private static partial Regex Clock();

    public static bool IsClock(string? text) => text is not null && Clock().IsMatch(text);

    /// <summary>Whether the local time falls inside the quiet hours (from inclusive, to exclusive).</summary>
    public bool Contains(TimeOnly local)
    {
        var from = TimeOnly.ParseExact(From, "HH:mm");
        var to = TimeOnly.ParseExact(To, "HH:mm");
        if (from == to) return false;
        return from < to ? local >= from && local < to : local >= from || local < to;
    }
}

/// <summary>An external channel the customer opted in to, with the instant of their consent (kept while it stays in).</summary>
public sealed record ChannelConsent(NotificationChannel Channel, DateTimeOffset ConsentedAt);

/// <summary>One WeChat one-time subscribe consent: the customer's permission for exactly one message.</summary>
public sealed record WechatConsent(string Id, DateTimeOffset GrantedAt);

/// <summary>
/// A customer's notification preferences (container "notifications", id "preferences", partition the customer). In-app
/// messages are always on (the inbox is the record itself); every other channel is off until the customer opts in, and
/// then carries the instant of that consent. A customer who never set anything has <see cref="Defaults"/>.
/// </summary>
public sealed record NotificationPreferences
{
    public const string DocumentId = "preferences";
    /// <summary>Unused WeChat consents kept at most (~70 bytes each); a newer one replaces the oldest past it.</summary>
    public const int MaxWechatConsents = 50;
    public const string DocumentType = "notification-preferences";

    public string Id { get; init; } = DocumentId;
    public required string CustomerId { get; init; }
    public string Type { get; init; } = DocumentType;
    /// <summary>The external channels opted in to (inapp is never listed: it is always on).</summary>
    public IReadOnlyList<ChannelConsent> Consents { get; init; } = [];
    public QuietHours QuietHours { get; init; } = QuietHours.Default;
    /// <summary>IANA time zone for quiet hours and the daily cap; null = the campaign's (the coupon's campaign).</summary>
    public string? TimeZone { get; init; }
    /// <summary>Unused WeChat one-time subscribe consents, oldest first; each message uses the oldest.</summary>
    public IReadOnlyList<WechatConsent> WechatConsents { get; init; } = [];
    public DateTimeOffset? UpdatedAt { get; init; }

    [JsonPropertyName("_etag")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ETag { get; init; }

    /// <summary>What a customer who never set preferences gets: in-app only, quiet 22:00–08:00 in the campaign's time zone.</summary>
    public static NotificationPreferences Defaults(string customerId) => new() { CustomerId = customerId };

    /// <summary>Whether messages may go out on the channel (inapp always; WeChat also needs an unused consent per message).</summary>
    public bool IsOptedIn(NotificationChannel channel) => channel == NotificationChannel.Inapp || Consents.Any(c => c.Channel == channel);

    /// <summary>The zone quiet hours are judged in: the customer's, else the campaign's, else UTC.</summary>
    public TimeZoneInfo ZoneFor(string? campaignTimeZone)
        => CampaignTerms.FindTimeZone(TimeZone) ?? CampaignTerms.FindTimeZone(campaignTimeZone) ?? TimeZoneInfo.Utc;
}

/// <summary>PUT body: the channels opted in to (inapp may be listed; it is on regardless), quiet hours, time zone.</summary>
public sealed record PreferencesRequest(IReadOnlyList<NotificationChannel> Channels, QuietHours? QuietHours = null, string? TimeZone = null)
{
    public static readonly PreferencesRequest Example = new([NotificationChannel.Inapp, NotificationChannel.Push], QuietHours.Default, "Asia/Shanghai");

    public IReadOnlyDictionary<string, string[]> Validate()
    {
        var errors = new Dictionary<string, string[]>();
        if (Channels is not null && Channels.Distinct().Count() != Channels.Count)
            errors["channels"] = ["Each channel at most once."];
        // The operators' channel is a value of the same enum, not one a customer may choose.
        for (var i = 0; i < (Channels?.Count ?? 0); i++)
            if (!NotificationChannels.Customer.Contains(Channels![i]))
                errors[$"channels[{i}]"] = ["One of: inapp, push, sms, wechat, email."];
        if (QuietHours is not null)
        {
            if (!QuietHours.IsClock(QuietHours.From)) errors["quietHours.from"] = ["A local time HH:mm, 00:00 to 23:59."];
            if (!QuietHours.IsClock(QuietHours.To)) errors["quietHours.to"] = ["A local time HH:mm, 00:00 to 23:59."];
        }
        if (TimeZone is not null && CampaignTerms.FindTimeZone(TimeZone) is null)
            errors["timeZone"] = ["An IANA time zone id such as Asia/Shanghai, or null for the campaign's."];
        return errors;
    }
}

public sealed record ChannelView(NotificationChannel Channel, bool OptedIn, DateTimeOffset? ConsentedAt);

/// <summary>Preferences as the customer sees them: every channel with its state, and how many WeChat consents are unused.</summary>
public sealed record PreferencesView(IReadOnlyList<ChannelView> Channels, QuietHours QuietHours, string? TimeZone, int WechatConsents,
    DateTimeOffset? UpdatedAt)
{
    public static PreferencesView Of(NotificationPreferences p) => new(
        NotificationChannels.Customer.Select(c => new ChannelView(c, p.IsOptedIn(c), p.Consents.FirstOrDefault(x => x.Channel == c)?.ConsentedAt)).ToList(),
        p.QuietHours, p.TimeZone, p.WechatConsents.Count, p.UpdatedAt);
}
