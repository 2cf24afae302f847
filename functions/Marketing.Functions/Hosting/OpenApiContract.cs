using System.Text.Json.Nodes;
using Marketing.Functions.Identity;
using Marketing.Functions.Promoters;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Infrastructure;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Marketing.Functions.Hosting;

/// <summary>
/// Completes the served OpenAPI document from each route's own metadata (its authorization policy, the headers and problems
/// it declares, its route values), so the document cannot drift from the routes: security (a bearer JWT scheme, the roles
/// each operation needs, read from the live authorization policy), the Idempotency-Key and If-Match headers, and the
/// problem+json answers with their stable types, and an example of each request body. docs/api.md explains the extensions.
/// </summary>
public static class OpenApiContract
{
    public const string BearerScheme = "bearer";
    public const string ProblemSchema = "Problem";
    public const string ProblemContentType = "application/problem+json";
    /// <summary>Operation extension: the roles, any one of which the caller's token must carry.</summary>
    public const string RolesExtension = "x-roles";
    /// <summary>Response extension: the problem types (full URNs) this status can carry on this operation.</summary>
    public const string ProblemTypesExtension = "x-problem-types";

    public const string ContinuationDescription =
        "Opaque page token: pass the continuationToken of the previous page unchanged (leave it out for the first page); "
        + "a null continuationToken in a page means the list ends. Any other value is 400 invalid-page-token.";

    public static OpenApiOptions AddContract(this OpenApiOptions options)
    {
        options.AddDocumentTransformer((document, _, _) =>
        {
            document.Components ??= new OpenApiComponents();
            document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
            document.Components.SecuritySchemes[BearerScheme] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http, Scheme = "bearer", BearerFormat = "JWT",
                Description = "A JWT whose roles claim names the caller's roles (customer, operator, admin, order_system; promoter is a registered customer). "
                    + "Locally: node scripts/token.mjs <role>.",
            };
            document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>();
            document.Components.Schemas[ProblemSchema] = Problem();
            // Every response member named continuationToken is the opaque page token.
            foreach (var schema in document.Components.Schemas.Values.OfType<OpenApiSchema>())
                if (schema.Properties?.TryGetValue(Paging.TokenParameter, out var token) == true && token is OpenApiSchema member)
                    member.Description = ContinuationDescription;
            return Task.CompletedTask;
        });
        options.AddOperationTransformer(async (operation, context, ct) =>
        {
            var metadata = context.Description.ActionDescriptor.EndpointMetadata;
            var hasRouteValues = context.Description.ParameterDescriptions.Any(p => p.Source == Microsoft.AspNetCore.Mvc.ModelBinding.BindingSource.Path);
            var problems = new SortedDictionary<int, SortedSet<string>>();
            void Add(int status, params string[] codes)
            {
                if (!problems.TryGetValue(status, out var set)) problems[status] = set = new SortedSet<string>(StringComparer.Ordinal);
                set.UnionWith(codes);
            }

            var roles = await RolesAsync(metadata, context.ApplicationServices);
            if (roles is not null)
            {
                operation.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, context.Document)] = [.. roles] }];
                operation.Extensions ??= new Dictionary<string, IOpenApiExtension>();
                operation.Extensions[RolesExtension] = new JsonNodeExtension(new JsonArray([.. roles.Select(r => JsonValue.Create(r))]));
                operation.Description = (operation.Description is null ? "" : operation.Description + " ")
                    + $"Needs a bearer token with one of the roles: {string.Join(", ", roles)}.";
                // Every protected route validates its input (route values, query, headers, body) and its caller.
                Add(400, ProblemTypes.ValidationFailed);
                Add(401, ProblemTypes.Unauthorized);
                Add(403, ProblemTypes.Forbidden);
                Add(503, ProblemTypes.Busy);
            }
            else
            {
                operation.Security = [];
            }
            if (operation.RequestBody is not null)
            {
                Add(400, ProblemTypes.ValidationFailed, ProblemTypes.MalformedJson);
                Add(413, ProblemTypes.PayloadTooLarge);
                Add(415, ProblemTypes.UnsupportedMediaType);
            }
            if (hasRouteValues) Add(404, ProblemTypes.NotFound);
            foreach (var parameter in operation.Parameters?.OfType<OpenApiParameter>() ?? [])
                if (parameter.Name == Paging.TokenParameter)
                {
                    parameter.Description = ContinuationDescription;
                    Add(400, ProblemTypes.InvalidPageToken);
                }
            foreach (var header in metadata.OfType<RequestHeader>())
            {
                operation.Parameters ??= [];
                operation.Parameters.Add(new OpenApiParameter
                {
                    Name = header.Name, In = ParameterLocation.Header, Required = header.Required, Description = header.Description,
                    Schema = new OpenApiSchema { Type = JsonSchemaType.String },
                });
            }
            foreach (var declared in metadata.OfType<ProblemResponse>()) Add(declared.Status, declared.Codes);

            // The route's example body, written exactly as the app writes JSON (names, enums, instants).
            if (metadata.OfType<RequestExample>().LastOrDefault() is { } example
                && operation.RequestBody?.Content?.TryGetValue("application/json", out var body) == true && body is OpenApiMediaType media)
            {
                var json = context.ApplicationServices.GetRequiredService<Microsoft.Extensions.Options.IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions>>().Value;
                media.Example = System.Text.Json.JsonSerializer.SerializeToNode(example.Body, example.Body.GetType(), json.SerializerOptions);
            }

            operation.Responses ??= new OpenApiResponses();
            foreach (var (status, codes) in problems)
            {
                var types = codes.Select(c => ProblemTypes.Prefix + c).ToArray();
                operation.Responses[status.ToString(System.Globalization.CultureInfo.InvariantCulture)] = new OpenApiResponse
                {
                    Description = $"Problem ({string.Join(", ", codes)}).",
                    Content = new Dictionary<string, OpenApiMediaType>
                    {
                        [ProblemContentType] = new() { Schema = new OpenApiSchemaReference(ProblemSchema, context.Document), Example = Example(status, types[0]) },
                    },
                    Extensions = new Dictionary<string, IOpenApiExtension>
                    {
                        [ProblemTypesExtension] = new JsonNodeExtension(new JsonArray([.. types.Select(t => JsonValue.Create(t))])),
                    },
                };
            }
        });
        return options;
    }

    /// <summary>
    /// The roles the route's policies admit (any one suffices), read from the registered policies themselves; null for an
    /// anonymous route. A route with several policies would need all of them: none does, and the test says so.
    /// </summary>
    private static async Task<string[]?> RolesAsync(IList<object> metadata, IServiceProvider services)
    {
        if (metadata.OfType<IAllowAnonymous>().Any()) return null;
        var authorize = metadata.OfType<IAuthorizeData>().ToArray();
        if (authorize.Length == 0) return null;
        var provider = services.GetRequiredService<IAuthorizationPolicyProvider>();
        var roles = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var data in authorize)
        {
            var policy = data.Policy is null ? await provider.GetDefaultPolicyAsync() : await provider.GetPolicyAsync(data.Policy);
            foreach (var requirement in policy?.Requirements ?? [])
            {
                if (requirement is RolesAuthorizationRequirement allowed) roles.UnionWith(allowed.AllowedRoles);
                if (requirement is PromoterRequirement) roles.Add(Roles.Promoter);
            }
        }
        return [.. roles];
    }

    /// <summary>An example answer for a problem status, with its first type (a 400 shows the shape of `errors`).</summary>
    private static JsonObject Example(int status, string type)
    {
        var example = new JsonObject { ["type"] = type, ["title"] = status == 400 ? "The request is not valid." : "See type.", ["status"] = status };
        if (type == ProblemTypes.Prefix + ProblemTypes.ValidationFailed)
        {
            example["detail"] = "See 'errors' for the fields to correct.";
            example["errors"] = new JsonObject { ["name"] = new JsonArray("Required."), ["extra"] = new JsonArray("Unknown field.") };
        }
        return example;
    }

    private static OpenApiSchema Problem() => new()
    {
        Type = JsonSchemaType.Object,
        Description = "RFC 9457 problem details. Branch on type (`urn:marketing:problem:{code}`), which never changes once published.",
        Required = new HashSet<string> { "type", "title", "status" },
        Properties = new Dictionary<string, IOpenApiSchema>
        {
            ["type"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "`urn:marketing:problem:{code}`; the list per answer is in x-problem-types." },
            ["title"] = new OpenApiSchema { Type = JsonSchemaType.String },
            ["status"] = new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int32" },
            ["detail"] = new OpenApiSchema { Type = JsonSchemaType.String | JsonSchemaType.Null },
            ["errors"] = new OpenApiSchema
            {
                Type = JsonSchemaType.Object | JsonSchemaType.Null,
                Description = "Every field error of the request at once: field path to messages.",
                AdditionalProperties = new OpenApiSchema { Type = JsonSchemaType.Array, Items = new OpenApiSchema { Type = JsonSchemaType.String } },
            },
        },
    };
}
