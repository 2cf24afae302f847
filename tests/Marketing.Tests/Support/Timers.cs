using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Marketing.Functions.Hosting;
using Marketing.Functions.Notifications;
using Xunit;

namespace Marketing.Tests.Support;

public static class Timers
{
    /// <summary>
    /// Invokes a timer function the way the Functions host does (custom handler payload, realistic timer value), through
    /// <paramref name="host"/> when given (a client carrying the host's headers).
    /// </summary>
    public static async Task<JsonNode> InvokeTimerAsync(this TestApp app, string function, HttpClient? host = null)
    {
        var response = await app.PostTimerAsync(function, host);
        var body = await response.AssertStatusAsync(HttpStatusCode.OK);
        Assert.NotNull(body["Outputs"]);
        Assert.NotNull(body["Logs"]);
        Assert.NotNull(body["ReturnValue"]);
        return body;
    }

    /// <summary>The host's call of a timer function (as <see cref="InvokeTimerAsync"/>), answered as it is: also a failed invocation.</summary>
    public static Task<HttpResponseMessage> PostTimerAsync(this TestApp app, string function, HttpClient? host = null)
    {
        var now = app.Clock.GetUtcNow();
        var timer = new JsonObject
        {
            ["Schedule"] = new JsonObject { ["AdjustForDST"] = true },
            ["ScheduleStatus"] = new JsonObject
            {
                ["Last"] = now.AddMinutes(-5).ToString("O"),
                ["Next"] = now.AddMinutes(5).ToString("O"),
                ["LastUpdated"] = now.AddMinutes(-5).ToString("O"),
            },
            ["IsPastDue"] = false,
        };
        var payload = new JsonObject
        {
            // The host sends the trigger value as a JSON string (encoded a second time).
            ["Data"] = new JsonObject { ["timer"] = timer.ToJsonString() },
            ["Metadata"] = new JsonObject
            {
                ["timer"] = timer.ToJsonString(),
                ["sys"] = new JsonObject
                {
                    ["MethodName"] = function,
                    ["UtcNow"] = now.ToString("O"),
                    ["RandGuid"] = Guid.NewGuid().ToString(),
                },
            },
        };
        return (host ?? app.Anonymous()).PostAsJsonAsync("/" + function, payload);
    }

    /// <summary>
    /// A notifications queue message delivered to DeliverNotifications as the Functions host delivers it: the JSON body as a
    /// string in Data.message, and the Service Bus metadata (its MessageId is not ours: the output binding cannot set one).
    /// </summary>
    public static Task<HttpResponseMessage> DeliverNotificationAsync(this TestApp app, NotificationMessage message, int deliveryCount = 1)
    {
        var now = app.Clock.GetUtcNow();
        var payload = new JsonObject
        {
            ["Data"] = new JsonObject { ["message"] = JsonSerializer.Serialize(message, Json.Options) },
            ["Metadata"] = new JsonObject
            {
                ["MessageId"] = Guid.NewGuid().ToString("N"),
                ["DeliveryCount"] = deliveryCount,
                ["SequenceNumber"] = Random.Shared.NextInt64(1, long.MaxValue),
                ["EnqueuedTimeUtc"] = now.UtcDateTime.ToString("O"),
                ["LockToken"] = Guid.NewGuid().ToString(),
                ["ContentType"] = "application/json",
                ["ApplicationProperties"] = new JsonObject(),
                ["sys"] = new JsonObject { ["MethodName"] = DeliverNotifications.FunctionName, ["UtcNow"] = now.UtcDateTime.ToString("O") },
            },
        };
        return app.Anonymous().PostAsJsonAsync("/" + DeliverNotifications.FunctionName, payload);
    }
}
