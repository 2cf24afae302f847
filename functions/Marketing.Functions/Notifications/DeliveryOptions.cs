using System.ComponentModel.DataAnnotations;
using Marketing.Functions.Hosting;

namespace Marketing.Functions.Notifications;

/// <summary>
/// Where external notifications go (section "NotificationDelivery"): one provider webhook per channel, the secret
/// that signs every call, and how long and how often one delivery tries. A channel without a URL is not delivered
/// (its records are marked failed, "no provider configured"). URLs come from settings only, never from a message.
/// </summary>
public sealed class DeliveryOptions : IValidatableObject
{
    public const string Section = "NotificationDelivery";

    /// <summary>Provider webhook for push messages; empty = none configured.</summary>
    public string? PushWebhook { get; set; }
    public string? SmsWebhook { get; set; }
    public string? WechatWebhook { get; set; }
    public string? EmailWebhook { get; set; }

    /// <summary>
    /// The operators' channel (operator alerts): a DingTalk/Feishu/Slack-compatible receiver or a relay in front of one.
    /// It receives the same signed <see cref="NotificationMessage"/> JSON as the other channels (not a chat tool's own
    /// format): a relay checks the signature and reformats. Empty = alerts are recorded but not delivered.
    /// </summary>
    public string? OperatorsWebhook { get; set; }

    /// <summary>
    /// HMAC-SHA256 key of the X-Signature header. In Azure a Key Vault reference or a secure deployment parameter,
    /// never in the repo; the sample's value is for the local sink only.
    /// </summary>
    public string? WebhookSecret { get; set; }

    /// <summary>Longest one call to a provider may take.</summary>
    [Range(1, 60)] public int TimeoutSeconds { get; set; } = 10;

    /// <summary>Retries within one delivery (then Service Bus delivers the message again).</summary>
    [Range(0, 5)] public int Retries { get; set; } = 2;

    /// <summary>First retry's delay; later ones back off exponentially, with jitter.</summary>
    [Range(0, 10_000)] public int RetryDelayMilliseconds { get; set; } = 500;

    /// <summary>
    /// Local only: allows http and loopback addresses (127/8, ::1), for the local sink (scripts/notification-sink.mjs).
    /// Private, link-local and other internal addresses stay refused even then.
    /// </summary>
    [LocalOnly] public bool AllowLoopback { get; set; }

    /// <summary>The provider webhook of <paramref name="channel"/>, or null when none is configured.</summary>
    public string? WebhookOf(NotificationChannel channel) => channel switch
    {
        NotificationChannel.Push => PushWebhook,
        NotificationChannel.Sms => SmsWebhook,
        NotificationChannel.Wechat => WechatWebhook,
        NotificationChannel.Email => EmailWebhook,
        NotificationChannel.Operators => OperatorsWebhook,
        _ => null, // in-app messages are the inbox itself
    } is { Length: > 0 } url ? url : null;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var configured = new[] { PushWebhook, SmsWebhook, WechatWebhook, EmailWebhook, OperatorsWebhook }.Where(u => !string.IsNullOrEmpty(u)).ToList();
        // A webhook that could not be signed (or with a guessable key) must not start: the provider could not trust it.
        if (configured.Count > 0 && (WebhookSecret?.Length ?? 0) < 32)
            yield return new ValidationResult("WebhookSecret must be at least 32 characters when a provider webhook is configured.", [nameof(WebhookSecret)]);
        foreach (var url in configured)
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http") || uri.UserInfo.Length > 0)
                yield return new ValidationResult($"Provider webhook '{url}' must be an absolute https URL without credentials.", ["Webhooks"]);
    }
}
