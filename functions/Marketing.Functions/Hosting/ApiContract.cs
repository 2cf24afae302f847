namespace Marketing.Functions.Hosting;

/// <summary>
/// A request header a route reads (Idempotency-Key, If-Match). Declared on the route next to the code that reads it, so
/// the OpenAPI document (<see cref="OpenApiContract"/>) lists the header from the route itself, not from a second list.
/// </summary>
public sealed record RequestHeader(string Name, bool Required, string Description)
{
    public static RequestHeader IdempotencyKey(bool required) => new("Idempotency-Key", required,
        $"A key of 1 to 64 characters chosen by the caller for this one operation: sending it again with the same request replays "
        + "the first answer instead of acting twice; the same key with a different request is 422 idempotency-key-reused.");

    public static readonly RequestHeader IfMatch = new("If-Match", false,
        "The ETag of the resource as last read: the change applies only if nobody changed it since, else 412 precondition-failed.");
}

/// <summary>
/// Problem answers a route can give beyond the ones every route of its kind gives (400 validation, 401, 403, 404 by id:
/// see <see cref="OpenApiContract"/>), with the stable problem codes (<see cref="ProblemTypes"/>) it can carry.
/// </summary>
public sealed record ProblemResponse(int Status, string[] Codes);

/// <summary>
/// An example body for the route's request, shown in the OpenAPI document as the server would read it (serialized with
/// the app's own JSON options). OpenApiContractTests sends every example to its route: none may fail validation.
/// </summary>
public sealed record RequestExample(object Body);

public static class ApiContractExtensions
{
    /// <summary>The route reads a JSON body of <typeparamref name="T"/>; <paramref name="example"/> is one the route accepts.</summary>
    public static RouteHandlerBuilder AcceptsJson<T>(this RouteHandlerBuilder builder, T example, bool isOptional = false) where T : notnull
        => builder.Accepts<T>(isOptional, "application/json").WithMetadata(new RequestExample(example));

    /// <summary>The route reads this header (see <see cref="RequestHeader"/>).</summary>
    public static TBuilder WithHeader<TBuilder>(this TBuilder builder, RequestHeader header) where TBuilder : IEndpointConventionBuilder
        => builder.WithMetadata(header);

    /// <summary>The route can answer <paramref name="status"/> with these problem codes.</summary>
    public static TBuilder WithProblems<TBuilder>(this TBuilder builder, int status, params string[] codes) where TBuilder : IEndpointConventionBuilder
        => builder.WithMetadata(new ProblemResponse(status, codes));
}
