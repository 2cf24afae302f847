using System.Net;
using System.Reflection;
using System.Text.Json.Nodes;
using Marketing.Functions.Hosting;
using Marketing.Functions.Promoters;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The served OpenAPI document against the routes themselves (issue 12 item 9): every route an operation, its security
/// and roles those of the route's live authorization policy, its request body's required-ness that of the route, its
/// headers, and a problem+json answer for every 4xx it can give, with the problem types listed.
/// </summary>
public sealed class OpenApiContractTests(TestApp app) : IClassFixture<TestApp>
{
    private static readonly HashSet<string> KnownProblemTypes = typeof(ProblemTypes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Where(f => f.IsLiteral && f.Name != nameof(ProblemTypes.Prefix))
        .Select(f => ProblemTypes.Prefix + (string)f.GetRawConstantValue()!).ToHashSet();

    private async Task<JsonNode> DocumentAsync()
        => await (await app.Anonymous().GetAsync("/api/openapi.json")).AssertStatusAsync(HttpStatusCode.OK);

    private IEnumerable<(RouteEndpoint Endpoint, string Name, string Path, string Method)> Routes()
        => app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<HttpFunction>() is { Name: not "OpenApi", HostRoute: null } && e.RoutePattern.RawText!.StartsWith("/api", StringComparison.Ordinal))
            .Select(e => (e, e.Metadata.GetMetadata<HttpFunction>()!.Name, "/" + e.RoutePattern.RawText!.Trim('/'),
                e.Metadata.GetMetadata<HttpMethodMetadata>()!.HttpMethods[0].ToLowerInvariant()));

    /// <summary>The roles the route's policy admits, read from the registered policy (not from the document's code).</summary>
    private async Task<string[]?> PolicyRolesAsync(RouteEndpoint endpoint)
    {
        if (endpoint.Metadata.GetMetadata<IAllowAnonymous>() is not null) return null;
        var authorize = endpoint.Metadata.GetOrderedMetadata<IAuthorizeData>();
        if (authorize.Count == 0) return null;
        Assert.Single(authorize); // one policy per route: the document's roles are "any one of"
        var provider = app.Services.GetRequiredService<IAuthorizationPolicyProvider>();
        var policy = authorize[0].Policy is { } name ? await provider.GetPolicyAsync(name) : await provider.GetDefaultPolicyAsync();
        Assert.NotNull(policy);
        var roles = policy!.Requirements.OfType<RolesAuthorizationRequirement>().SelectMany(r => r.AllowedRoles)
            .Concat(policy.Requirements.OfType<PromoterRequirement>().Select(_ => "promoter"));
        return [.. roles.Distinct().Order(StringComparer.Ordinal)];
    }

    private static string[] Strings(JsonNode? array) => array?.AsArray().Select(n => (string)n!).ToArray() ?? [];

    [Fact]
    public async Task The_document_declares_a_bearer_JWT_scheme_and_a_problem_schema()
    {
        var document = await DocumentAsync();
        Assert.StartsWith("3.1", (string?)document["openapi"]);
        var bearer = document["components"]!["securitySchemes"]!["bearer"]!;
        Assert.Equal("http", (string?)bearer["type"]);
        Assert.Equal("bearer", (string?)bearer["scheme"]);
        Assert.Equal("JWT", (string?)bearer["bearerFormat"]);
        var problem = document["components"]!["schemas"]!["Problem"]!;
        foreach (var member in new[] { "type", "title", "status", "detail", "errors" })
            Assert.NotNull(problem["properties"]![member]);
        Assert.Equal(["status", "title", "type"], Strings(problem["required"]).Order().ToArray());
    }

    [Fact]
    public async Task Every_route_is_an_operation_with_the_security_and_roles_of_its_policy()
    {
        var document = await DocumentAsync();
        var routes = Routes().ToList();
        Assert.True(routes.Count > 25, "the app's routes were found");
        foreach (var (endpoint, name, path, method) in routes)
        {
            var operation = document["paths"]?[path]?[method];
            Assert.True(operation is not null, $"{name}: {method} {path} is an operation");
            Assert.Equal(name, (string?)operation!["operationId"]);
            var roles = await PolicyRolesAsync(endpoint);
            var security = operation["security"]?.AsArray() ?? [];
            if (roles is null)
            {
                Assert.True(security.Count == 0, $"{name} is anonymous: no security");
                Assert.Null(operation["x-roles"]);
                continue;
            }
            Assert.True(security.Count == 1, $"{name}: one security requirement");
            var requirement = security[0]!.AsObject();
            Assert.Equal("bearer", Assert.Single(requirement).Key);
            Assert.Equal(roles, Strings(requirement["bearer"]).Order(StringComparer.Ordinal).ToArray());
            Assert.Equal(roles, Strings(operation["x-roles"]).Order(StringComparer.Ordinal).ToArray());
            Assert.Contains("Needs a bearer token with one of the roles: " + string.Join(", ", roles), (string?)operation["description"]);
        }
    }

    [Fact]
    public async Task Every_request_body_is_required_exactly_when_the_route_requires_it()
    {
        var document = await DocumentAsync();
        foreach (var (endpoint, name, path, method) in Routes())
        {
            var body = document["paths"]![path]![method]!["requestBody"];
            var accepts = endpoint.Metadata.GetMetadata<IAcceptsMetadata>();
            if (accepts is null)
            {
                Assert.True(body is null, $"{name} takes no body");
                continue;
            }
            Assert.True(body is not null, $"{name} documents its body");
            Assert.Equal(!accepts.IsOptional, (bool?)body!["required"] ?? false);
            foreach (var contentType in accepts.ContentTypes)
                Assert.True(body["content"]?[contentType] is not null, $"{name} accepts {contentType}");
            if (accepts.RequestType is { } type)
            {
                var reference = (string?)body["content"]![accepts.ContentTypes[0]]!["schema"]!["$ref"];
                Assert.Equal("#/components/schemas/" + type.Name, reference);
            }
        }
    }

    [Fact]
    public async Task Every_operation_lists_its_problem_answers_with_their_types()
    {
        var document = await DocumentAsync();
        foreach (var (endpoint, name, path, method) in Routes())
        {
            var responses = document["paths"]![path]![method]!["responses"]!;
            var expected = new Dictionary<int, HashSet<string>>();
            void Expect(int status, params string[] codes)
            {
                if (!expected.TryGetValue(status, out var set)) expected[status] = set = [];
                set.UnionWith(codes.Select(c => ProblemTypes.Prefix + c));
            }
            if (await PolicyRolesAsync(endpoint) is not null)
            {
                Expect(400, ProblemTypes.ValidationFailed);
                Expect(401, ProblemTypes.Unauthorized);
                Expect(403, ProblemTypes.Forbidden);
            }
            if (endpoint.Metadata.GetMetadata<IAcceptsMetadata>() is not null) Expect(400, ProblemTypes.MalformedJson);
            if (endpoint.RoutePattern.Parameters.Count > 0) Expect(404, ProblemTypes.NotFound);
            foreach (var declared in endpoint.Metadata.GetOrderedMetadata<ProblemResponse>()) Expect(declared.Status, declared.Codes);

            foreach (var (status, types) in expected)
            {
                var response = responses[status.ToString()];
                Assert.True(response is not null, $"{name} documents {status}");
                Assert.Equal("#/components/schemas/Problem", (string?)response!["content"]!["application/problem+json"]!["schema"]!["$ref"]);
                var listed = Strings(response["x-problem-types"]).ToHashSet();
                var example = response["content"]!["application/problem+json"]!["example"];
                Assert.True(example is not null && (int?)example["status"] == status && listed.Contains((string?)example["type"] ?? ""), $"{name} {status} has an example of its own");
                Assert.True(types.IsSubsetOf(listed), $"{name} {status} lists {string.Join(", ", types.Except(listed))}");
            }
            foreach (var (status, response) in responses.AsObject().Where(r => r.Key.StartsWith('4')))
                foreach (var type in Strings(response!["x-problem-types"]))
                    Assert.True(KnownProblemTypes.Contains(type), $"{name} {status}: {type} is a published problem type");
        }
    }

    [Fact]
    public async Task Idempotency_key_and_if_match_headers_are_parameters_where_routes_read_them()
    {
        var document = await DocumentAsync();
        foreach (var (endpoint, name, path, method) in Routes())
        {
            var parameters = document["paths"]![path]![method]!["parameters"]?.AsArray() ?? [];
            foreach (var header in endpoint.Metadata.GetOrderedMetadata<RequestHeader>())
            {
                var parameter = parameters.SingleOrDefault(p => (string?)p!["name"] == header.Name && (string?)p["in"] == "header");
                Assert.True(parameter is not null, $"{name} documents {header.Name}");
                Assert.Equal(header.Required, (bool?)parameter!["required"] ?? false);
            }
        }
        // Pinned: the routes that read these headers (removing the declaration from a route fails here).
        bool Has(string path, string method, string header, bool required) =>
            (document["paths"]![path]![method]!["parameters"]?.AsArray() ?? []).Any(p =>
                (string?)p!["name"] == header && ((bool?)p["required"] ?? false) == required);
        Assert.True(Has("/api/campaigns/{id}/claims", "post", "Idempotency-Key", required: true));
        Assert.True(Has("/api/campaigns/{id}/budget", "post", "Idempotency-Key", required: true));
        Assert.True(Has("/api/campaigns/{id}", "put", "If-Match", required: false));
    }

    [Fact]
    public async Task Continuation_tokens_are_described_as_opaque_in_queries_and_pages()
    {
        var document = await DocumentAsync();
        var paged = 0;
        foreach (var (_, name, path, method) in Routes())
        {
            var operation = document["paths"]![path]![method]!;
            var token = (operation["parameters"]?.AsArray() ?? []).SingleOrDefault(p => (string?)p!["name"] == "continuationToken");
            if (token is null) continue;
            paged++;
            Assert.Contains("Opaque", (string?)token["description"]);
            Assert.Contains(ProblemTypes.Prefix + ProblemTypes.InvalidPageToken, Strings(operation["responses"]!["400"]!["x-problem-types"]));
        }
        Assert.True(paged >= 3, "the paged lists were found");
        var pages = document["components"]!["schemas"]!.AsObject()
            .Where(s => s.Value?["properties"]?["continuationToken"] is not null).ToList();
        Assert.NotEmpty(pages);
        foreach (var (schema, page) in pages)
            Assert.Contains("Opaque", (string?)page!["properties"]!["continuationToken"]!["description"]);
    }

    /// <summary>
    /// docs/api.md's route table names who may call each function; the document's roles must be the same (an operator route
    /// admits admins too, as the docs say). Changing a route's policy without its documentation fails here.
    /// </summary>
    [Fact]
    public async Task The_roles_in_docs_api_md_are_the_roles_in_the_document()
    {
        var document = await DocumentAsync();
        var known = new[] { "customer", "operator", "admin", "order_system", "promoter", "finance", "approver", "anyone" };
        var rows = File.ReadAllLines(Path.Combine(Repo.Root, "docs", "api.md"))
            .SkipWhile(l => !l.StartsWith("| function |", StringComparison.Ordinal)).Skip(2)
            .TakeWhile(l => l.StartsWith('|')).Select(l => l.Replace("\\|", "", StringComparison.Ordinal).Split('|', StringSplitOptions.TrimEntries)).ToList();
        var documented = new Dictionary<string, string[]?>();
        foreach (var cells in rows)
        {
            var who = System.Text.RegularExpressions.Regex.Matches(cells[3], "[a-z_]+").Select(m => m.Value).Where(known.Contains).ToHashSet();
            if (who.Remove("operator")) who.UnionWith(["operator", "admin"]);
            foreach (var function in cells[1].Split('/', StringSplitOptions.TrimEntries))
                documented[function] = who.Contains("anyone") ? null : [.. who.Order(StringComparer.Ordinal)];
        }
        foreach (var (_, name, path, method) in Routes())
        {
            Assert.True(documented.ContainsKey(name), $"{name} is in docs/api.md's route table");
            var roles = document["paths"]![path]![method]!["x-roles"];
            if (documented[name] is null) Assert.Null(roles);
            else Assert.Equal(documented[name]!, Strings(roles).Order(StringComparer.Ordinal).ToArray());
        }
    }

    /// <summary>
    /// Each request schema's required members (nested objects included) are the ones the server answers "Required." for:
    /// a `required` member or a constructor parameter without a default (JsonBody's rule), and no others.
    /// </summary>
    [Fact]
    public async Task Request_schemas_require_exactly_the_members_the_server_requires()
    {
        var document = await DocumentAsync();
        var schemas = document["components"]!["schemas"]!;
        var seen = new HashSet<Type>();
        var pending = new Queue<Type>(Routes().Select(r => r.Endpoint.Metadata.GetMetadata<IAcceptsMetadata>()?.RequestType).OfType<Type>());
        while (pending.TryDequeue(out var type))
        {
            if (!seen.Add(type)) continue;
            var info = Json.Options.GetTypeInfo(type);
            if (info.Kind != System.Text.Json.Serialization.Metadata.JsonTypeInfoKind.Object) continue;
            var schema = schemas[type.Name];
            Assert.True(schema is not null, $"{type.Name} is a component schema");
            var required = info.Properties.Where(p => p.IsRequired || p.AssociatedParameter is { HasDefaultValue: false, IsMemberInitializer: false })
                .Select(p => p.Name).Order(StringComparer.Ordinal).ToArray();
            Assert.True(required.SequenceEqual(Strings(schema!["required"]).Order(StringComparer.Ordinal)),
                $"{type.Name}: required [{string.Join(", ", required)}], documented [{string.Join(", ", Strings(schema["required"]))}]");
            foreach (var property in info.Properties)
            {
                var nested = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
                if (nested.IsClass && nested != typeof(string) && !nested.IsArray && !nested.IsGenericType) pending.Enqueue(nested);
                if (nested.IsGenericType && nested.GetGenericArguments() is [var item] && item.IsClass && item != typeof(string)) pending.Enqueue(item);
            }
        }
        Assert.True(seen.Count > 8, "the request types were walked");
    }

    /// <summary>
    /// What the server really answers is in the document: every route called without a token, and with its own roles on
    /// unknown ids with a malformed and an empty body, answers a 4xx whose problem type the operation lists for that status.
    /// </summary>
    [Fact]
    public async Task The_problems_routes_really_answer_are_listed_for_their_status()
    {
        var document = await DocumentAsync();
        var checkedAnswers = 0;
        foreach (var (endpoint, name, path, method) in Routes())
        {
            var roles = await PolicyRolesAsync(endpoint);
            if (roles is null) continue;
            var url = System.Text.RegularExpressions.Regex.Replace(path, "{[^}]+}", "unknown-" + Guid.NewGuid().ToString("N")[..8]);
            var bodies = endpoint.Metadata.GetMetadata<IAcceptsMetadata>() is null ? new string?[] { null } : ["{", "{}"];
            var calls = new List<(HttpClient Client, string? Body)> { (app.Anonymous(), bodies[0]) };
            calls.AddRange(bodies.Select(b => (app.As(Api.NewId("caller"), roles), b)));
            foreach (var (client, body) in calls)
            {
                using var request = new HttpRequestMessage(new HttpMethod(method.ToUpperInvariant()), url);
                if (body is not null) request.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
                var response = await client.SendAsync(request);
                var status = (int)response.StatusCode;
                if (status is < 400 or >= 500) continue;
                var problem = await response.ReadJsonAsync();
                var listed = Strings(document["paths"]![path]![method]!["responses"]![status.ToString()]?["x-problem-types"]);
                Assert.True(listed.Contains((string?)problem["type"]), $"{name} answered {status} {problem["type"]}, the document lists [{string.Join(", ", listed)}]");
                checkedAnswers++;
            }
        }
        Assert.True(checkedAnswers > 50, $"{checkedAnswers} problem answers checked");
    }

    /// <summary>
    /// Every operation with a JSON body shows an example, and the example, sent as the document shows it by a caller with
    /// the operation's first role, is well-formed for the server: whatever the route then answers (the ids in it name nothing
    /// here), it is never 400 validation-failed or a server error. An app over its own database: the examples create things.
    /// </summary>
    [Fact]
    public async Task Every_request_example_is_one_the_route_accepts()
    {
        await using var own = await TestApp.StartAsync(database: "openapi-examples-" + Guid.NewGuid().ToString("N")[..8]);
        var document = await (await own.Anonymous().GetAsync("/api/openapi.json")).AssertStatusAsync(HttpStatusCode.OK);
        var sent = 0;
        foreach (var (endpoint, name, path, method) in Routes())
        {
            if (endpoint.Metadata.GetMetadata<IAcceptsMetadata>() is null) continue;
            var content = document["paths"]![path]![method]!["requestBody"]?["content"]?["application/json"];
            var schema = (string?)content?["schema"]?["$ref"] is { } reference ? document["components"]!["schemas"]![reference.Split('/')[^1]] : content?["schema"];
            if (schema?["properties"] is not JsonObject { Count: > 0 }) continue; // an empty object (publish, pause, ...): nothing to show
            var example = content!["example"];
            Assert.True(example is not null, $"{name} shows no example body");
            // The first role the operation admits (a quote's example is a customer's, who sends no customerId).
            var roles = (await PolicyRolesAsync(endpoint) ?? []).Take(1).ToArray();
            var url = System.Text.RegularExpressions.Regex.Replace(path, "{[^}]+}", "example-" + Guid.NewGuid().ToString("N")[..8]);
            using var request = new HttpRequestMessage(new HttpMethod(method.ToUpperInvariant()), url)
            {
                Content = new StringContent(example!.ToJsonString(), System.Text.Encoding.UTF8, "application/json"),
            };
            request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
            var response = await own.As(Api.NewId("caller"), roles).SendAsync(request);
            var status = (int)response.StatusCode;
            Assert.True(status < 500, $"{name} answered its example {status}");
            if (status >= 400)
            {
                var problem = await response.ReadJsonAsync();
                Assert.True((string?)problem["type"] != ProblemTypes.Prefix + ProblemTypes.ValidationFailed,
                    $"{name} refused its own example: {problem.ToJsonString()}");
            }
            sent++;
        }
        Assert.Equal(Routes().Count(r => r.Endpoint.Metadata.GetMetadata<RequestExample>() is not null), sent);
        Assert.True(sent >= 13, $"{sent} examples sent");
    }
}
