using System.Text.Json;
using System.Text.Json.Serialization;

namespace Marketing.Functions.Hosting;

/// <summary>
/// The custom-handler payload for non-HTTP triggers: the host POSTs {"Data":{...},"Metadata":{...}}
/// to /{FunctionName}. Trigger values often arrive as strings holding JSON (encoded a second time);
/// <see cref="GetData{T}"/> accepts both forms.
/// </summary>
public sealed class InvocationRequest
{
    public Dictionary<string, JsonElement> Data { get; init; } = [];
    public Dictionary<string, JsonElement> Metadata { get; init; } = [];

    public T? GetData<T>(string name) => Decode<T>(Data, name);
    public T? GetMetadata<T>(string name) => Decode<T>(Metadata, name);

    private static readonly JsonSerializerOptions Lenient = new(JsonSerializerDefaults.Web);

    private static T? Decode<T>(Dictionary<string, JsonElement> values, string name)
    {
        if (!values.TryGetValue(name, out var element) || element.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
            return default;
        if (element.ValueKind == JsonValueKind.String && typeof(T) != typeof(string))
            return JsonSerializer.Deserialize<T>(element.GetString()!, Lenient);
        return element.Deserialize<T>(Lenient);
    }

    public static async Task<(InvocationRequest? Request, Problem? Problem)> ReadAsync(HttpRequest request)
    {
        try
        {
            var payload = await JsonSerializer.DeserializeAsync<InvocationRequest>(request.Body, Lenient, request.HttpContext.RequestAborted);
            return payload is null ? (null, Problem.Validation("$", "Expected an invocation payload.")) : (payload, null);
        }
        catch (JsonException e)
        {
            return (null, Problem.Of(ProblemTypes.MalformedJson, 400, "The invocation payload is not valid JSON.", e.Message));
        }
    }
}

/// <summary>The handler's answer to the host: output binding values, log lines, and a return value.</summary>
public sealed class InvocationResult
{
    public static readonly JsonSerializerOptions JsonOptions = new(Json.Options) { PropertyNamingPolicy = null };

    public Dictionary<string, object?> Outputs { get; init; } = [];
    public List<string> Logs { get; init; } = [];
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public object? ReturnValue { get; set; }

    /// <summary>
    /// The HTTP status of the answer (not part of the payload). Anything but 2xx fails the invocation: for a
    /// queue trigger the host abandons the message and it is delivered again.
    /// </summary>
    [JsonIgnore]
    public int Status { get; set; } = StatusCodes.Status200OK;

    public InvocationResult Log(string line)
    {
        Logs.Add(line);
        return this;
    }
}

/// <summary>The timer trigger's value as the host sends it.</summary>
public sealed record TimerInfo(TimerScheduleStatus? ScheduleStatus, bool IsPastDue);

public sealed record TimerScheduleStatus(DateTimeOffset Last, DateTimeOffset Next, DateTimeOffset LastUpdated);
