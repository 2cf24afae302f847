using System.Text.Json;
using Marketing.Functions.Hosting;
using Microsoft.Extensions.Options;
using Marketing.Functions.Telemetry;

namespace Marketing.Functions.Notifications;

/// <summary>What one delivery of a queue message did.</summary>
public sealed record DeliveryOutcome(string Outcome, string? Note = null);

/// <summary>
/// Function DeliverNotifications: Service Bus trigger on the notifications queue (queue name from app setting
/// NotificationsQueue, identity-based connection ServiceBusConnection). A message is a <see cref="NotificationMessage"/>
/// whose record SendReminders wrote first. Service Bus delivers at least once, so the record decides:
/// - delivered or failed already: a redelivery; answered 200 without calling the provider;
/// - otherwise the message is posted to its channel's provider webhook (<see cref="ProviderWebhook"/>, signed, with
///   Idempotency-Key = record id, timeouts and retries with backoff). 2xx: the record is marked delivered. 4xx (or a
///   redirect): failed with the provider's status, 200, never retried. 5xx, 408, 429, timeout or a network error after
///   the retries: the attempt and its error are recorded and the answer is 503, so Service Bus delivers again, and
///   dead-letters after the queue's maxDeliveryCount;
/// - no webhook configured for the channel, or an address the SSRF guard refuses: failed, 200 (retrying cannot help).
/// A malformed message, one whose record is gone, or an in-app one, is completed (200) and logged: nothing to deliver.
/// The one gap: a provider call that succeeds while marking the record fails; the redelivery then calls the provider
/// again with the same Idempotency-Key, which the provider drops (docs/notifications.md, "Delivery").
/// </summary>
public static class DeliverNotifications
{
    public const string FunctionName = "DeliverNotifications";
    public const string QueueSetting = "NotificationsQueue";
    public const string Connection = "ServiceBusConnection";

    public static RouteHandlerBuilder MapDeliverNotifications(this IEndpointRouteBuilder routes) =>
        routes.MapServiceBusQueueFunction(FunctionName, $"%{QueueSetting}%", Connection, async (invocation, context) =>
        {
            var s = context.RequestServices;
            var result = new InvocationResult();
            var messageId = TryGet(() => invocation.GetMetadata<string>("MessageId")) ?? "(none)";
            var deliveryCount = TryGet(() => invocation.GetMetadata<int?>("DeliveryCount")) ?? 0;
            var message = Parse(Body(invocation), out var problem);
            if (message is null)
            {
                result.ReturnValue = new DeliveryOutcome("malformed", problem);
                result.Log($"Message {messageId} not a notification, completed: {problem}");
                LogEvents.LoggerOf(context, typeof(DeliverNotifications)).NotificationHandled(messageId, deliveryCount, null, null, "malformed");
                return result;
            }
            try
            {
                var outcome = await DeliverAsync(message, s.GetRequiredService<NotificationStore>(), s.GetRequiredService<ProviderWebhook>(),
                    s.GetRequiredService<IOptions<DeliveryOptions>>().Value, s.GetRequiredService<TimeProvider>(), context.RequestAborted);
                result.ReturnValue = outcome;
                result.Log($"Notification {message.RecordId} ({message.Channel}, delivery {deliveryCount}): {outcome.Outcome}{(outcome.Note is null ? "" : "; " + outcome.Note)}.");
                if (outcome.Outcome == "retry") result.Status = StatusCodes.Status503ServiceUnavailable;
                LogEvents.LoggerOf(context, typeof(DeliverNotifications)).NotificationHandled(messageId, deliveryCount, message.RecordId,
                    message.Channel.ToString().ToLowerInvariant(), outcome.Outcome);
                return result;
            }
            catch (Exception e) when (Platform.IsTransient(e, context.RequestAborted))
            {
                result.Status = StatusCodes.Status503ServiceUnavailable;
                result.ReturnValue = new DeliveryOutcome("retry", e.GetType().Name);
                result.Log($"Notification {message.RecordId} (delivery {deliveryCount}) not delivered, will be retried: {Failure.Of(e)}");
                LogEvents.LoggerOf(context, typeof(DeliverNotifications)).NotificationHandled(messageId, deliveryCount, message.RecordId,
                    message.Channel.ToString().ToLowerInvariant(), "retry");
                return result;
            }
        });

    public static async Task<DeliveryOutcome> DeliverAsync(NotificationMessage message, NotificationStore store, ProviderWebhook webhook,
        DeliveryOptions options, TimeProvider time, CancellationToken ct)
    {
        var record = await store.FindAsync(message.CustomerId, message.RecordId, ct);
        if (record is null) return new("unknown", "no such notification record");
        // An in-app message is delivered by being written; one on the queue has nothing to go to.
        if (record.Channel == NotificationChannel.Inapp) return new("ignored", "in-app messages are not sent to a provider");
        var before = record.Delivery ?? new DeliveryStatus(DeliveryState.Pending);
        if (before.State != DeliveryState.Pending) return new("duplicate", $"already {before.State.ToString().ToLowerInvariant()}");
        if (options.WebhookOf(record.Channel) is not { } url)
            return await FinalAsync(store, record, before with { State = DeliveryState.Failed, LastError = "no provider configured" }, "failed", ct);

        // The record's own content is what goes out (the queue message only names it): a message altered in the queue
        // cannot change what the customer receives.
        var sent = await webhook.PostAsync(url, NotificationMessage.Of(record), ct);
        var attempts = before.Attempts + 1;
        var now = time.GetUtcNow();
        switch (sent.Outcome)
        {
            case WebhookOutcome.Delivered:
                return await FinalAsync(store, record, new DeliveryStatus(DeliveryState.Delivered, attempts, before.LastError, now), "delivered", ct);
            case WebhookOutcome.Rejected:
            case WebhookOutcome.NotAllowed:
                return await FinalAsync(store, record, new DeliveryStatus(DeliveryState.Failed, attempts, sent.Error, now), "failed", ct);
            default:
                await store.TryMarkDeliveryAsync(record.CustomerId, record.Id, new DeliveryStatus(DeliveryState.Pending, attempts, sent.Error), ct);
                return new("retry", sent.Error);
        }
    }

    private static async Task<DeliveryOutcome> FinalAsync(NotificationStore store, NotificationRecord record, DeliveryStatus status, string outcome, CancellationToken ct)
        => await store.TryMarkDeliveryAsync(record.CustomerId, record.Id, status, ct)
            ? new(outcome, status.LastError)
            : new("duplicate", "another delivery of the message finished first");

    private static string? Body(InvocationRequest invocation)
    {
        if (!invocation.Data.TryGetValue(ServiceBusQueueFunction.MessageBinding, out var element)) return null;
        // The host sends a JSON body as a string holding the JSON (encoded a second time), or as the JSON itself.
        return element.ValueKind == JsonValueKind.String ? element.GetString() : element.GetRawText();
    }

    public static NotificationMessage? Parse(string? body, out string? problem)
    {
        problem = null;
        if (string.IsNullOrWhiteSpace(body))
        {
            problem = "empty message";
            return null;
        }
        try
        {
            var message = JsonSerializer.Deserialize<NotificationMessage>(body, Json.Messages);
            if (message is { RecordId.Length: > 0 and <= 255, CustomerId.Length: > 0 and <= 255 }) return message;
            problem = "recordId and customerId must be 1-255 characters";
        }
        catch (JsonException e)
        {
            problem = $"not a notification message: {e.Message.Split('\n')[0]}";
        }
        return null;
    }

    private static T? TryGet<T>(Func<T?> read)
    {
        try
        {
            return read();
        }
        catch (JsonException)
        {
            return default;
        }
    }
}
