using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Media;
using Microsoft.AspNetCore.StaticFiles;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace Marketing.Functions.OperatorConsole;

/// <summary>
/// GET /console/...: the operator console (console/, a Vite + React single-page app, docs/console.md) served by the function
/// app itself, so the console and the API it calls are one deployable on one origin. One function fronts every file under
/// the host route <c>console/{*path}</c> (host.json's routePrefix is empty, so the Functions host routes it as it routes
/// <c>api/...</c>). The scripts build the app into console/dist; the project copies that into <c>console/</c> next to the
/// handler (build and publish output alike).
/// </summary>
public static class ConsoleFiles
{
    public const string FunctionName = "OperatorConsole", Path = "/console";

    /// <summary>The host route: everything under /console, the bare /console included.</summary>
    public const string HostRoute = "console/{*path}";

    /// <summary>
    /// Only this origin's scripts, styles and API; no inline script, no framing, no plugins. The app loads nothing from
    /// elsewhere (no CDN, no fonts), so nothing else needs allowing. img-src allows data: for the blank favicon and blob: for
    /// previews of media being uploaded. Computed once at startup (<see cref="MapConsole"/>): the only origins added are the
    /// ones the settings name: the media origins (<see cref="MediaSources"/>) and, with Entra ID sign-in (Auth:Authority
    /// set), the authority's origin in connect-src, where MSAL in the page fetches its metadata and redeems the
    /// authorization code (the sign-in page itself is a top-level navigation, which connect-src does not govern).
    /// </summary>
    public static string ContentSecurityPolicy(MediaOptions media, string? authorityOrigin = null)
    {
        var (upload, renditions) = MediaSources(media);
        var connect = authorityOrigin is null ? upload : $"{upload} {authorityOrigin}";
        return $"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: {renditions}; "
            + $"connect-src 'self' {connect}; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";
    }

    /// <summary>
    /// Campaign media (docs/media.md): the campaign page PUTs an upload straight to the media storage account
    /// (connect-src: the origin of Media:BlobEndpoint, where upload links point) and shows the published renditions
    /// (img-src: the origin of Media:PublicBaseUrl when a CDN serves them, else the same account). Origins only (scheme,
    /// host, port): a path in a CSP source would also allow whatever follows it, and the links differ per upload anyway.
    /// </summary>
    public static (string Upload, string Renditions) MediaSources(MediaOptions media)
    {
        static string Origin(string url) => new Uri(url).GetLeftPart(UriPartial.Authority);
        var upload = Origin(media.BlobEndpoint);
        return (upload, string.IsNullOrEmpty(media.PublicBaseUrl) ? upload : Origin(media.PublicBaseUrl));
    }

    private static readonly FileExtensionContentTypeProvider ContentTypes = new();

    /// <summary>The console's Entra ID sign-in settings (<see cref="ConsoleOptions"/>), checked at start like every other setting.</summary>
    public static IServiceCollection AddConsole(this IServiceCollection services)
    {
        services.AddOptions<ConsoleOptions>().BindConfiguration(ConsoleOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        return services;
    }

    public static IEndpointRouteBuilder MapConsole(this IEndpointRouteBuilder routes)
    {
        // A build without the console (dotnet build alone) has no folder: every path is then a 404. Nothing is created, as
        // the deployed folder is read-only in Azure (run from package).
        var folder = System.IO.Path.Combine(AppContext.BaseDirectory, "console");
        IFileProvider files = Directory.Exists(folder) ? new PhysicalFileProvider(folder) : new NullFileProvider();
        // Made once, from settings validated when the app starts (ValidateOnStart); on first use, not here, because commands
        // map the routes too (functions-json at build time) without any Media settings.
        var services = routes.ServiceProvider;
        var policy = new Lazy<string>(() =>
        {
            var auth = new AuthOptions();
            services.GetRequiredService<IConfiguration>().GetSection(AuthOptions.Section).Bind(auth);
            return ContentSecurityPolicy(services.GetRequiredService<IOptions<MediaOptions>>().Value, GetConsoleConfig.AuthorityOrigin(auth));
        });
        // One endpoint: a catch-all matches the bare /console too (ASP.NET Core routing ignores a trailing slash).
        routes.MapGet(Path + "/{*path}", (HttpContext context, string? path) => Serve(context, files, policy, path ?? ""))
            .WithMetadata(new HttpFunction(FunctionName, HostRoute: HostRoute))
            .AllowAnonymous()
            .ExcludeFromDescription();
        routes.MapConsoleConfig();
        return routes;
    }

    private static IResult Serve(HttpContext context, IFileProvider files, Lazy<string> policy, string path)
    {
        // The bare /console: send the browser to /console/, the app's base, so its addresses and history line up.
        if (!context.Request.Path.Value!.EndsWith('/') && path.Length == 0)
            return TypedResults.Redirect(Path + "/" + context.Request.QueryString);
        var headers = context.Response.Headers;
        headers[HeaderNames.ContentSecurityPolicy] = policy.Value;
        headers[HeaderNames.XContentTypeOptions] = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";

        // The provider refuses paths that climb out of its folder ("..", absolute paths): they are simply not found.
        var file = path.Length == 0 ? null : files.GetFileInfo(path);
        if (file is { Exists: true, IsDirectory: false, PhysicalPath: not null } && ContentTypes.TryGetContentType(file.Name, out var type))
        {
            // Vite names every asset by its content's hash: a name never changes content, so browsers may keep it for a year.
            headers[HeaderNames.CacheControl] = path.StartsWith("assets/", StringComparison.Ordinal)
                ? "public, max-age=31536000, immutable"
                : "no-cache";
            return TypedResults.PhysicalFile(file.PhysicalPath, type, lastModified: file.LastModified, enableRangeProcessing: false);
        }

        // A missing file (anything with an extension, or under assets/) is a 404; any other path is a page of the app,
        // which routes in the browser: answer with index.html (always revalidated, so a deployment shows at once).
        var lastSegment = path[(path.LastIndexOf('/') + 1)..];
        var index = files.GetFileInfo("index.html");
        if (path.StartsWith("assets/", StringComparison.Ordinal) || lastSegment.Contains('.') || !index.Exists || index.PhysicalPath is null)
            return Problem.NotFound(index.Exists ? "This file" : "The console (not built: the scripts build it, docs/console.md)").ToResult();
        headers[HeaderNames.CacheControl] = "no-cache";
        return TypedResults.PhysicalFile(index.PhysicalPath, "text/html; charset=utf-8", lastModified: index.LastModified);
    }
}
