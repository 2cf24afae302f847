using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Xunit;

namespace Marketing.Tests.Support;

public static class Timers
{
    /// <summary>Invokes a timer function the way the Functions host does (custom handler payload, realistic timer value).</summary>
    public static async Task<JsonNode> InvokeTimerAsync(this TestApp app, string function)
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
        var response = await app.Anonymous().PostAsJsonAsync("/" + function, payload);
        var body = await response.AssertStatusAsync(HttpStatusCode.OK);
        Assert.NotNull(body["Outputs"]);
        Assert.NotNull(body["Logs"]);
        Assert.NotNull(body["ReturnValue"]);
        return body;
    }
}
