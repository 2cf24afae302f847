using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Notifications;

/// <summary>A customer's preferences document and their WeChat one-time subscribe consents.</summary>
public sealed partial class NotificationStore
{
    /// <summary>The customer's stored preferences (with their etag), or the defaults (no etag) when they never set any.</summary>
    public async Task<NotificationPreferences> FindPreferencesAsync(string customerId, CancellationToken ct)
        => await container.ReadOrNullAsync<NotificationPreferences>(NotificationPreferences.DocumentId, customerId, ct) is { } r
            ? r.Resource with { ETag = r.ETag }
            : NotificationPreferences.Defaults(customerId);

    /// <summary>
    /// Writes the preferences: creates them when <paramref name="etag"/> is null (none stored), else replaces them if
    /// unchanged since read. The new etag, or null when another write got there first. Safe to send twice (stamped).
    /// </summary>
    public Task<string?> TrySavePreferencesAsync(NotificationPreferences preferences, string? etag, CancellationToken ct)
        => container.TryWriteAsync(preferences with { ETag = null }, preferences.CustomerId, etag, ct);

    /// <summary>
    /// Records one WeChat one-time subscribe consent (one per subscribe action) with its instant; read, append, write
    /// with the etag, again on a lost race. The consent's id decides: a consent already present is not added again.
    /// </summary>
    public async Task<NotificationPreferences> AddWechatConsentAsync(string customerId, WechatConsent consent, CancellationToken ct)
    {
        while (true)
        {
            var current = await FindPreferencesAsync(customerId, ct);
            if (current.WechatConsents.Any(c => c.Id == consent.Id)) return current;
            // Bounded: past the cap the oldest unused consent gives way (the document must not grow with a customer's taps).
            var next = current with { WechatConsents = [.. current.WechatConsents.Append(consent).TakeLast(NotificationPreferences.MaxWechatConsents)] };
            if (await TrySavePreferencesAsync(next, current.ETag, ct) is { } etag) return next with { ETag = etag };
        }
    }

    /// <summary>
    /// Uses one unused WeChat consent (the oldest): true when one was used now, false when none is left. Atomic: the
    /// patch removes the first consent only while it is still the one read (a filter on its id), so two senders racing
    /// for one consent get one true; the SDK resending our own applied patch is told apart by the write stamp.
    /// </summary>
    public async Task<bool> TryConsumeWechatConsentAsync(string customerId, CancellationToken ct)
    {
        while (true)
        {
            var current = await FindPreferencesAsync(customerId, ct);
            if (current.WechatConsents is not [var oldest, ..]) return false;
            // The id is ours (server-made, [a-z0-9_]), so it may stand in the filter's text (patch filters take no parameters).
            if (await container.TryPatchAsync<NotificationPreferences>(NotificationPreferences.DocumentId, customerId,
                    [PatchOperation.Remove("/wechatConsents/0")], $"c.wechatConsents[0].id = '{oldest.Id}'", ct))
                return true;
            // Someone else used it first: look again (another consent may be left).
        }
    }

    public static string NewWechatConsentId() => "wc_" + Guid.NewGuid().ToString("N");
}
