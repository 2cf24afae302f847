using System.Net;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Commissions;
using Marketing.Functions.Expiry;
using Marketing.Functions.Payouts;
using Marketing.Functions.Promoters;
using Marketing.Functions.Redemption;
using Marketing.Functions.Stats;
using Marketing.Functions.Telemetry;
using Marketing.Functions.Wallet;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.Azure.Cosmos;
using Scalar.AspNetCore;

namespace Marketing.Functions.Hosting;

/// <summary>The health route's answer, {"status":"ok"}. A named type: the compile-time request delegate generator
/// (see the project file) cannot write code for a handler returning an anonymous type.</summary>
public sealed record HealthStatus(string Status);

/// <summary>Cross-cutting wiring: the custom-handler listener, JSON, errors, OpenAPI, health.</summary>
public static class Platform
{
    /// <summary>Port when run without the Functions host (the host sets FUNCTIONS_CUSTOMHANDLER_PORT).</summary>
    public const int DefaultPort = 7071;

    public const string OpenApiPath = "/api/openapi.json";

    /// <summary>The API reference page (docs/api.md) and the function that serves it with its scripts.</summary>
    public const string ReferencePath = "/api/reference", ApiReference = "ApiReference";

    public static WebApplicationBuilder AddPlatform(this WebApplicationBuilder builder)
    {
        // The Functions host passes the port; we listen on loopback only, never on all interfaces.
        var port = int.TryParse(Environment.GetEnvironmentVariable("FUNCTIONS_CUSTOMHANDLER_PORT"), out var p) ? p : DefaultPort;
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = JsonBody.MaxBytes);

        // Route and query binding failures throw, so the exception handler answers them as problem+json.
        builder.Services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        builder.Services.ConfigureHttpJsonOptions(o => Json.Configure(o.SerializerOptions, strict: true));
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddOptions<TimerOptions>().BindConfiguration(TimerOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOpenApi("v1", o => o.AddDocumentTransformer((document, _, _) =>
        {
            document.Info = new() { Title = "Marketing platform", Version = "v1",
                Description = "Coupon campaigns, claiming, wallets, redemption and distribution (promoters, commissions, payouts). Errors are RFC 9457 problem+json with type `urn:marketing:problem:{code}`. "
                    + $"Money is an integer in minor units, at most {Limits.MaxMoney} in any field (sums included: see docs/api.md). "
                    + "Page tokens (continuationToken) are opaque and only fit the list they came from." };
            return Task.CompletedTask;
        }).AddContract());
        return builder;
    }

    public static WebApplication UsePlatform(this WebApplication app)
    {
        // The middleware's own error log carries the exception's message, which can quote a body (Cosmos puts the server's
        // answer in it, a binding failure the value it could not bind): WriteUnhandledAsync logs the failure without it.
        app.UseExceptionHandler(new ExceptionHandlerOptions { ExceptionHandler = WriteUnhandledAsync, SuppressDiagnosticsCallback = _ => true });
        // Answers that routing produces without a body (unknown route 404, wrong method 405, wrong media
        // type 415) get a problem+json body too, so clients parse one error shape.
        app.UseStatusCodePages(context => ProblemResult.WriteAsync(context.HttpContext, context.HttpContext.Response.StatusCode switch
        {
            404 => Problem.NotFound("This resource"),
            405 => Problem.Of(ProblemTypes.MethodNotAllowed, 405, "This method is not allowed here."),
            415 => Problem.Of(ProblemTypes.UnsupportedMediaType, 415, "The body must be application/json."),
            var status => Problem.Of(status < 500 ? ProblemTypes.ValidationFailed : ProblemTypes.Internal, status, "The request failed."),
        }));
        app.UseAuthentication();
        app.UseAuthorization();
        return app;
    }

    public static IEndpointRouteBuilder MapPlatform(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/health", () => TypedResults.Ok(new HealthStatus("ok")))
            .AsFunction("Health").AllowAnonymous().WithTags("Platform").WithSummary("Liveness.");
        routes.MapOpenApi(OpenApiPath)
            .AsFunction("OpenApi").AllowAnonymous();
        // The readable reference page (Scalar) over the same document, with its scripts served by the app itself (they
        // are embedded in the package): no CDN, no fonts or telemetry from elsewhere, no AI agent. One function fronts
        // the page and its scripts, so the host forwards everything under /api/reference to us. Not in Production
        // (Azure, where no environment name is set), as the ASP.NET Core templates do: there the document is served
        // for tools and clients, while a browsable console for the public and four endpoints built by reflection on
        // every cold start (the package's handlers are not compiled ahead of time) buy nobody anything.
        if (routes.ServiceProvider.GetRequiredService<IHostEnvironment>().IsProduction()) return routes;
        routes.MapScalarApiReference(ReferencePath, o => o
                .WithTitle("Marketing platform API")
                .WithOpenApiRoutePattern(OpenApiPath)
                .DisableDefaultFonts()
                .DisableTelemetry()
                .DisableAgent()
                .DisableMcp()
                .HideDeveloperTools()
                .AddPreferredSecuritySchemes(OpenApiContract.BearerScheme))
            .WithMetadata(new HttpFunction(ApiReference, HostRoute: ReferencePath[1..] + "/{*path}"))
            .AllowAnonymous();
        return routes;
    }

    /// <summary>Every container the app uses, with its partition key (provisioning and infra tests read this).</summary>
    public static IEnumerable<ContainerSpec> Containers =>
        [
            .. CampaignsModule.Containers, .. WalletModule.Containers, .. RedemptionModule.Containers, .. ExpiryModule.Containers,
            .. PromotersModule.Containers, .. CommissionsModule.Containers, .. PayoutsModule.Containers, .. StatsModule.Containers,
            .. Notifications.NotificationsModule.Containers, .. Media.MediaModule.Containers, .. Audit.AuditModule.Containers,
        ];

    private static Task WriteUnhandledAsync(HttpContext context)
    {
        var failure = context.Features.Get<IExceptionHandlerFeature>();
        var error = failure?.Error;
        if (context.RequestAborted.IsCancellationRequested)
        {
            context.Response.StatusCode = 499; // the client went away; nobody reads this answer
            return Task.CompletedTask;
        }
        if (error is not null && error is not BadHttpRequestException and not InvalidPageTokenException)
            LogEvents.LoggerOf(context, typeof(Platform)).RequestFailed(context.Request.Method,
                (failure?.Endpoint as RouteEndpoint)?.RoutePattern.RawText ?? "(no route)", context.TraceIdentifier, error);
        var problem = error switch
        {
            // Binding failures of route/query values and Kestrel's own limits are the caller's mistakes.
            BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } =>
                Problem.Of(ProblemTypes.PayloadTooLarge, 413, "The body is too large."),
            BadHttpRequestException bad => Problem.Of(ProblemTypes.ValidationFailed, bad.StatusCode, "The request is not valid.", bad.Message),
            // Every paged list reads through Paging, which refuses foreign or damaged tokens with this.
            InvalidPageTokenException invalid => Problem.InvalidPageToken(invalid.Message),
            // Cosmos still throttling or unavailable after the SDK's own retries, our own deadline passed, or the
            // connection dropped: tell the client to come back, don't blame it (every write path is safe to retry).
            _ when IsTransient(error, context.RequestAborted) => Busy(context, (error as CosmosException)?.RetryAfter),
            _ => Problem.Of(ProblemTypes.Internal, 500, "Something went wrong on our side.", $"Trace id {context.TraceIdentifier}."),
        };
        return ProblemResult.WriteAsync(context, problem);
    }

    /// <summary>
    /// A failure worth retrying as it is: the database throttling or unavailable after the SDK's retries, a
    /// deadline of ours (not the caller's <paramref name="aborted"/>), or a dropped connection.
    /// </summary>
    public static bool IsTransient(Exception? error, CancellationToken aborted) => error switch
    {
        CosmosException { StatusCode: HttpStatusCode.TooManyRequests or HttpStatusCode.ServiceUnavailable or HttpStatusCode.RequestTimeout or HttpStatusCode.Gone } => true,
        HttpRequestException or CosmosException { InnerException: HttpRequestException } => true,
        OperationCanceledException => !aborted.IsCancellationRequested,
        RetryLaterException => true,
        _ => false,
    };

    private static Problem Busy(HttpContext context, TimeSpan? retryAfter)
    {
        context.Response.Headers.RetryAfter = ((int)Math.Ceiling((retryAfter ?? TimeSpan.FromSeconds(1)).TotalSeconds)).ToString();
        return Problem.Of(ProblemTypes.Busy, 503, "The platform is busy; retry shortly.");
    }
}

/// <summary>
/// Nothing is wrong with the request and nothing was changed, but it cannot be served right now (e.g. every budget
/// shard that could cover a discount is at its cap of open reservations): answered 503 busy, to be retried as it is.
/// </summary>
public class RetryLaterException(string message) : Exception(message);
