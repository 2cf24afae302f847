using System.Text.Json;
using System.Text.Json.Nodes;
using Marketing.Functions.Telemetry;

namespace Marketing.Functions.Hosting;

/// <summary>
/// How a function is triggered. Each function is declared exactly once, on its endpoint, and
/// <see cref="FunctionJson"/> writes the host's <c>function.json</c> files from these declarations,
/// so a route and its function can never disagree.
/// </summary>
public abstract record FunctionDeclaration(string Name)
{
    /// <summary>
    /// Service Bus output bindings (timer and queue functions only: an HTTP function must keep exactly its trigger and http
    /// out, or the host stops proxying it). The handler fills them through <see cref="InvocationResult.Outputs"/>[name].
    /// </summary>
    public IReadOnlyList<ServiceBusOutput> Outputs { get; init; } = [];
}

/// <summary>
/// A Service Bus queue output binding: what the handler puts in <c>Outputs[Name]</c> (one message body, or an array of
/// them) is sent to <paramref name="QueueName"/> (usually %Setting%) over the identity-based <paramref name="Connection"/>.
/// Custom handlers can set only the body: no MessageId, session or properties (docs/notifications.md).
/// </summary>
public sealed record ServiceBusOutput(string Name, string QueueName, string Connection);

/// <summary>
/// An HTTP function. The host proxies the original request (enableProxyingHttpRequest), so the route
/// and methods are the endpoint's own; only the name and the host-level auth level are declared here.
/// Authorization is the handler's job (JWT roles), so the host-level level is anonymous by default.
/// <paramref name="HostRoute"/> is for one function that fronts several endpoints of a library (the API reference
/// page and its scripts): the host forwards everything under that route, and our routing picks the endpoint.
/// </summary>
public sealed record HttpFunction(string Name, string AuthLevel = "anonymous", string? HostRoute = null) : FunctionDeclaration(Name);

/// <summary>A timer function; <paramref name="Schedule"/> is usually an app setting reference like %X%.</summary>
public sealed record TimerFunction(string Name, string Schedule, bool RunOnStartup = false) : FunctionDeclaration(Name);

/// <summary>
/// A Service Bus queue function. <paramref name="QueueName"/> is usually an app setting reference like %X%;
/// <paramref name="Connection"/> names the settings prefix of an identity-based connection
/// (Connection__fullyQualifiedNamespace, __credential, __clientId). The message arrives as Data.message.
/// </summary>
public sealed record ServiceBusQueueFunction(string Name, string QueueName, string Connection) : FunctionDeclaration(Name)
{
    public const string MessageBinding = "message";
}

public static class FunctionEndpointExtensions
{
    public const string ApiPrefix = "/api/";

    /// <summary>Declares the endpoint as the HTTP function <paramref name="name"/>.</summary>
    public static TBuilder AsFunction<TBuilder>(this TBuilder builder, string name) where TBuilder : IEndpointConventionBuilder
        => builder.WithMetadata(new HttpFunction(name)).WithName(name);

    /// <summary>
    /// Maps a timer function at POST /{name}, the address the host calls with the payload protocol.
    /// The endpoint is excluded from OpenAPI: it is the host's, not a client's.
    /// Every run is counted here (marketing.timer.runs) from its report (<see cref="ITimerReport"/>): failed when it threw
    /// or reported failures, stopped when its time ran out with work left, else completed; a report with a due list also
    /// sets the timer's backlog gauges. One place, so no timer can forget.
    /// </summary>
    public static RouteHandlerBuilder MapTimerFunction(this IEndpointRouteBuilder routes, string name, string schedule,
        Func<InvocationRequest, HttpContext, Task<InvocationResult>> handler, IReadOnlyList<ServiceBusOutput>? outputs = null)
        => routes.MapInvocation(new TimerFunction(name, schedule) { Outputs = outputs ?? [] }, async (request, context) =>
        {
            InvocationResult result;
            try
            {
                result = await handler(request, context);
            }
            catch
            {
                Metrics.TimerRun(name, Metrics.TimerOutcomes.Failed);
                throw;
            }
            var report = result.ReturnValue as ITimerReport;
            Metrics.TimerRun(name, result.Status is < 200 or >= 300 || report is { Failed: true } ? Metrics.TimerOutcomes.Failed
                : report is { Stopped: true } ? Metrics.TimerOutcomes.Stopped : Metrics.TimerOutcomes.Completed);
            if (report?.Backlog is { } backlog)
                Metrics.TimerBacklogAtEnd(name, backlog.Count, backlog.AgeSeconds(context.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow()));
            return result;
        });

    /// <summary>
    /// Maps a Service Bus queue function at POST /{name}. A 2xx answer completes the message; any other answer
    /// fails the invocation, so the host abandons the message and Service Bus delivers it again (up to the
    /// queue's maxDeliveryCount, then dead-letters it). Answer non-2xx only for failures worth retrying.
    /// </summary>
    public static RouteHandlerBuilder MapServiceBusQueueFunction(this IEndpointRouteBuilder routes, string name, string queueName,
        string connection, Func<InvocationRequest, HttpContext, Task<InvocationResult>> handler)
        => routes.MapInvocation(new ServiceBusQueueFunction(name, queueName, connection), handler);

    private static RouteHandlerBuilder MapInvocation(this IEndpointRouteBuilder routes, FunctionDeclaration declaration,
        Func<InvocationRequest, HttpContext, Task<InvocationResult>> handler)
        => routes.MapPost("/" + declaration.Name, async (HttpContext context) =>
            {
                var (request, problem) = await InvocationRequest.ReadAsync(context.Request);
                if (problem is not null) return (IResult)problem.ToResult();
                var result = await handler(request!, context);
                return Results.Json(result, InvocationResult.JsonOptions, statusCode: result.Status);
            })
            .WithMetadata(declaration)
            .WithName(declaration.Name)
            .ExcludeFromDescription();
}

/// <summary>Writes <c>function.json</c> files from the endpoints' declarations.</summary>
public static class FunctionJson
{
    public static IReadOnlyDictionary<string, JsonObject> Build(EndpointDataSource endpoints)
    {
        var functions = new SortedDictionary<string, JsonObject>(StringComparer.Ordinal);
        foreach (var endpoint in endpoints.Endpoints.OfType<RouteEndpoint>())
        {
            var declaration = endpoint.Metadata.GetMetadata<FunctionDeclaration>();
            if (declaration is null) continue;
            // A function fronting several endpoints (one declaration, its own host route) is written once.
            if (declaration is HttpFunction { HostRoute: not null } && functions.ContainsKey(declaration.Name)) continue;
            if (functions.ContainsKey(declaration.Name))
                throw new InvalidOperationException($"Function '{declaration.Name}' is declared twice.");
            functions[declaration.Name] = declaration switch
            {
                HttpFunction http => HttpBindings(http, endpoint),
                TimerFunction timer => new JsonObject
                {
                    ["bindings"] = WithOutputs(timer, new JsonObject
                    {
                        ["type"] = "timerTrigger",
                        ["direction"] = "in",
                        ["name"] = "timer",
                        ["schedule"] = timer.Schedule,
                        ["runOnStartup"] = timer.RunOnStartup,
                    }),
                },
                ServiceBusQueueFunction queue => new JsonObject
                {
                    ["bindings"] = WithOutputs(queue, new JsonObject
                    {
                        ["type"] = "serviceBusTrigger",
                        ["direction"] = "in",
                        ["name"] = ServiceBusQueueFunction.MessageBinding,
                        ["queueName"] = queue.QueueName,
                        ["connection"] = queue.Connection,
                    }),
                },
                _ => throw new InvalidOperationException($"Unknown declaration {declaration.GetType().Name}."),
            };
        }
        return functions;
    }

    /// <summary>The trigger's binding followed by the declaration's Service Bus output bindings.</summary>
    private static JsonArray WithOutputs(FunctionDeclaration declaration, JsonObject trigger)
    {
        var bindings = new JsonArray(trigger);
        foreach (var output in declaration.Outputs)
            bindings.Add(new JsonObject
            {
                ["type"] = "serviceBus",
                ["direction"] = "out",
                ["name"] = output.Name,
                ["queueName"] = output.QueueName,
                ["connection"] = output.Connection,
            });
        return bindings;
    }

    /// <summary>Writes one folder per function with its function.json under <paramref name="directory"/>.</summary>
    public static int Write(EndpointDataSource endpoints, string directory)
    {
        var functions = Build(endpoints);
        foreach (var (name, json) in functions)
        {
            var folder = Path.Combine(directory, name);
            Directory.CreateDirectory(folder);
            File.WriteAllText(Path.Combine(folder, "function.json"),
                json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        }
        return functions.Count;
    }

    /// <summary>
    /// The route as the host expects it: the endpoint's own, without the leading slash. host.json's routePrefix is empty,
    /// so the host serves /api/... and the console's /console/... alike, and proxies each request with its path unchanged.
    /// </summary>
    public static string HostRoute(RouteEndpoint endpoint)
    {
        var pattern = "/" + endpoint.RoutePattern.RawText!.Trim('/');
        if (!pattern.StartsWith(FunctionEndpointExtensions.ApiPrefix, StringComparison.Ordinal))
            throw new InvalidOperationException($"HTTP function route '{pattern}' must start with {FunctionEndpointExtensions.ApiPrefix} "
                + "(or declare its own host route, as the console does).");
        return pattern[1..];
    }

    private static JsonObject HttpBindings(HttpFunction function, RouteEndpoint endpoint)
    {
        if (function.Outputs.Count > 0)
            throw new InvalidOperationException($"HTTP function '{function.Name}' declares output bindings: the host would stop proxying it.");
        var methods = endpoint.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods
            ?? throw new InvalidOperationException($"HTTP function '{function.Name}' has no HTTP method.");
        // Proxying only applies to functions whose only bindings are httpTrigger in and http out.
        return new JsonObject
        {
            ["bindings"] = new JsonArray(
                new JsonObject
                {
                    ["type"] = "httpTrigger",
                    ["direction"] = "in",
                    ["name"] = "req",
                    ["authLevel"] = function.AuthLevel,
                    ["methods"] = new JsonArray(methods.Select(m => (JsonNode)JsonValue.Create(m.ToLowerInvariant())!).ToArray()),
                    ["route"] = function.HostRoute ?? HostRoute(endpoint),
                },
                new JsonObject { ["type"] = "http", ["direction"] = "out", ["name"] = "res" }),
        };
    }
}
