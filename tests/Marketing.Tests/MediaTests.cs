using System.Diagnostics;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using SkiaSharp;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// Campaign media (docs/media.md) against Azurite: links from the app, bytes PUT straight to Azurite through them with a
/// plain HttpClient (as a browser or the console would), then complete. Azurite checks SAS times against the real clock,
/// so this app's clock is set to the real time before each link is asked for (and moved back to test expiry).
/// </summary>
public sealed class MediaTests : IAsyncLifetime
{
    private TestApp app = null!;
    private static readonly HttpClient Storage = new();

    public async Task InitializeAsync() => app = await TestApp.StartAsync();
    public async Task DisposeAsync() => await app.DisposeAsync();

    [Theory]
    [InlineData("banner", "image/png", 1600, 900)]
    [InlineData("thumbnail", "image/jpeg", 400, 400)]
    [InlineData("poster", "image/webp", 1200, 1800)]
    public async Task An_image_of_each_kind_is_published_as_webp_and_jpeg_renditions_with_long_cache_headers(string kind, string type, int width, int height)
    {
        var op = Operator();
        var campaign = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var bytes = Image(width, height, type);

        var link = await LinkAsync(op, campaign, kind, type, bytes.Length);
        var upload = new Uri((string)link["uploadUrl"]!);
        Assert.Equal(HttpStatusCode.Created, (await PutAsync(upload, bytes, type)).StatusCode);
        var media = (string)link["mediaId"]!;
        var ready = await (await op.PostAsync($"/api/campaigns/{campaign}/media/{media}/complete", null)).AssertStatusAsync(HttpStatusCode.OK);

        Assert.Equal("ready", (string?)ready["state"]);
        var renditions = ready["renditions"]!.AsArray();
        Assert.Equal(4, renditions.Count); // 1x and 2x, WebP and JPEG
        Assert.Equal(2, renditions.Count(r => (string?)r!["contentType"] == "image/webp"));
        Assert.Equal(2, renditions.Count(r => (string?)r!["contentType"] == "image/jpeg"));
        foreach (var rendition in renditions)
        {
            var response = await Storage.GetAsync((string)rendition!["url"]!);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("public, max-age=31536000, immutable", response.Headers.CacheControl?.ToString());
            Assert.Equal((string?)rendition["contentType"], response.Content.Headers.ContentType?.MediaType);
            var published = await response.Content.ReadAsByteArrayAsync();
            using var decoded = SKBitmap.Decode(published);
            Assert.Equal((int)rendition["width"]!, decoded.Width);
            Assert.Equal((long)rendition["bytes"]!, published.LongLength);
            Assert.True(decoded.Width <= width);
            Assert.Equal(Math.Round((double)height * decoded.Width / width), decoded.Height, 0);
            // Content-addressed: the name holds the SHA-256 of the bytes.
            var hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(published)).ToLowerInvariant();
            Assert.Contains(hash, (string)rendition["name"]!);
        }
        // The upload is gone once published.
        Assert.False(await UploadExistsAsync(upload));
        var listed = await (await op.GetAsync($"/api/campaigns/{campaign}/media")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(media, (string?)listed["items"]![0]!["mediaId"]);
    }

    [Fact]
    public async Task A_local_account_lets_the_consoles_origin_put_uploads_from_a_browser_and_no_other()
    {
        var blobs = app.Services.GetRequiredService<Marketing.Functions.Media.MediaBlobs>();
        var console = $"http://127.0.0.1:{Random.Shared.Next(20_000, 60_000)}";
        var other = $"http://127.0.0.1:{Random.Shared.Next(60_001, 65_000)}";
        await blobs.AllowBrowserUploadsAsync(console, CancellationToken.None);
        await blobs.AllowBrowserUploadsAsync(console, CancellationToken.None); // again: nothing changes

        // What a browser asks before its PUT with the link's headers (a CORS preflight), as Blob storage answers it.
        async Task<HttpResponseMessage> PreflightAsync(string origin)
        {
            using var preflight = new HttpRequestMessage(HttpMethod.Options, Settings.Get("Media__BlobEndpoint") + "/uploads/cmp_x/med_x");
            preflight.Headers.Add("Origin", origin);
            preflight.Headers.Add("Access-Control-Request-Method", "PUT");
            preflight.Headers.Add("Access-Control-Request-Headers", "content-type,x-ms-blob-type");
            return await Storage.SendAsync(preflight);
        }
        var allowed = await PreflightAsync(console);
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        Assert.Equal(console, allowed.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Contains("PUT", string.Join(",", allowed.Headers.GetValues("Access-Control-Allow-Methods")));
        Assert.False((await PreflightAsync(other)).Headers.Contains("Access-Control-Allow-Origin"), "an origin never allowed must not be");
        var rules = (await Blobs.Service.GetPropertiesAsync()).Value.Cors;
        Assert.Single(rules, r => r.AllowedMethods.Contains("PUT", StringComparison.Ordinal));
        Assert.Single(rules.Single(r => r.AllowedMethods.Contains("PUT", StringComparison.Ordinal)).AllowedOrigins.Split(','), o => o == console);
    }

    [Fact]
    public async Task A_rules_pdf_is_published_as_uploaded_under_its_hash()
    {
        var op = Operator();
        var campaign = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var pdf = Encoding.ASCII.GetBytes("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n");
        var media = await UploadAsync(op, campaign, "rules", "application/pdf", pdf);

        var ready = await (await op.PostAsync($"/api/campaigns/{campaign}/media/{media}/complete", null)).AssertStatusAsync(HttpStatusCode.OK);

        var rendition = Assert.Single(ready["renditions"]!.AsArray())!;
        Assert.Equal("application/pdf", (string?)rendition["contentType"]);
        var response = await Storage.GetAsync((string)rendition["url"]!);
        Assert.Equal(pdf, await response.Content.ReadAsByteArrayAsync());
        Assert.EndsWith(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(pdf)).ToLowerInvariant() + ".pdf", (string)rendition["name"]!);
    }

    [Fact]
    public async Task The_upload_link_writes_one_blob_of_the_uploads_container_and_nothing_else()
    {
        var op = Operator();
        var campaign = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var bytes = Image(64, 64, "image/png");
        var link = await LinkAsync(op, campaign, "thumbnail", "image/png", bytes.Length);
        var url = (string)link["uploadUrl"]!;
        Assert.Equal("PUT", (string?)link["method"]);
        Assert.Contains("sp=cw", url); // create and write, nothing more

        var uri = new Uri(url);
        var otherBlob = new UriBuilder(uri) { Path = uri.AbsolutePath + "-other" }.Uri;
        var otherContainer = new UriBuilder(uri) { Path = uri.AbsolutePath.Replace("/uploads/", "/media/") }.Uri;
        Assert.Equal(HttpStatusCode.Forbidden, (await PutAsync(otherBlob, bytes, "image/png")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await PutAsync(otherContainer, bytes, "image/png")).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await PutAsync(uri, bytes, "image/png")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await Storage.GetAsync(uri)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await Storage.DeleteAsync(uri)).StatusCode);
    }

    [Fact]
    public async Task An_upload_link_is_signed_on_the_apps_clock_and_refused_once_expired()
    {
        var op = Operator();
        var campaign = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var bytes = Image(64, 64, "image/png");
        // Issued "an hour ago" by the app's clock: valid 10 minutes from then, so expired for Azurite now.
        app.Clock.Set(DateTimeOffset.UtcNow.AddHours(-1));
        op = app.Operator(); // a token of that hour
        var link = await (await op.PostAsync($"/api/campaigns/{campaign}/media",
            Api.JsonContent(new { kind = "thumbnail", contentType = "image/png", length = bytes.Length }))).AssertStatusAsync(HttpStatusCode.Created);
        Assert.True(DateTimeOffset.Parse((string)link["expiresAt"]!) < DateTimeOffset.UtcNow);

        Assert.Equal(HttpStatusCode.Forbidden, (await PutAsync(new Uri((string)link["uploadUrl"]!), bytes, "image/png")).StatusCode);
        await (await op.PostAsync($"/api/campaigns/{campaign}/media/{link["mediaId"]}/complete", null))
            .AssertProblemAsync(HttpStatusCode.Conflict, "media-not-uploaded");
    }

    [Fact]
    public async Task Announcing_media_checks_every_field_at_once()
    {
        var op = Operator();
        var campaign = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var problem = await (await op.PostAsync($"/api/campaigns/{campaign}/media", Api.JsonContent(new { kind = "gif", contentType = "image/gif", length = 0 })))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(problem["errors"]!["kind"]);
        Assert.NotNull(problem["errors"]!["length"]);

        problem = await (await op.PostAsync($"/api/campaigns/{campaign}/media", Api.JsonContent(new { kind = "rules", contentType = "image/png", length = 20 * 1024 * 1024 })))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(problem["errors"]!["contentType"]);
        Assert.NotNull(problem["errors"]!["length"]);

        await (await op.PostAsync("/api/campaigns/cmp_unknown/media", Api.JsonContent(new { kind = "banner", contentType = "image/png", length = 10 })))
            .AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
    }

    public static TheoryData<string, string, string> Refusals() => new()
    {
        { "oversize", "image/png", "media-too-large" },
        { "elf", "image/png", "media-type-mismatch" },
        { "pe", "image/png", "media-type-mismatch" },
        { "png-as-jpeg", "image/jpeg", "media-type-mismatch" },
        { "empty", "image/png", "media-empty" },
        { "shorter", "image/png", "media-length-mismatch" },
        { "damaged", "image/png", "media-unreadable" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task A_refused_upload_is_deleted_and_the_answer_says_why_again_on_every_complete(string what, string declared, string type)
    {
        var op = Operator();
        var campaign = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var png = Image(300, 200, "image/png");
        byte[] bytes = what switch
        {
            "oversize" => [.. png, .. new byte[5 * 1024 * 1024 + 1 - png.Length]],
            "elf" => [0x7F, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0, .. new byte[4000]],
            "pe" => [(byte)'M', (byte)'Z', 0x90, 0, .. new byte[4000]],
            "png-as-jpeg" => png,
            "empty" => [],
            "shorter" => png,
            "damaged" => [.. png[..40], .. new byte[png.Length - 40]],
            _ => throw new ArgumentOutOfRangeException(nameof(what)),
        };
        var declaredLength = what switch { "empty" => 100, "shorter" => png.Length + 1, "oversize" => 5 * 1024 * 1024, _ => bytes.Length };
        var link = await LinkAsync(op, campaign, "banner", declared, declaredLength);
        var uri = new Uri((string)link["uploadUrl"]!);
        Assert.Equal(HttpStatusCode.Created, (await PutAsync(uri, bytes, declared)).StatusCode);

        var url = $"/api/campaigns/{campaign}/media/{link["mediaId"]}/complete";
        var first = await (await op.PostAsync(url, null)).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, type);
        var again = await (await op.PostAsync(url, null)).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, type);
        Assert.Equal((string?)first["detail"], (string?)again["detail"]);

        var listed = await (await op.GetAsync($"/api/campaigns/{campaign}/media")).AssertStatusAsync(HttpStatusCode.OK);
        var item = listed["items"]!.AsArray().Single(i => (string?)i!["mediaId"] == (string?)link["mediaId"])!;
        Assert.Equal("refused", (string?)item["state"]);
        Assert.Empty(item["renditions"]!.AsArray());
        Assert.False(await UploadExistsAsync(uri));
    }

    /// <summary>
    /// 20,000 × 20,000 pixels of zeros: about 400 KB as a PNG, 1.6 GB decoded. Refused from its header: the process's memory
    /// never grows by anything like a decoded image, and the upload's bytes are not all read.
    /// </summary>
    [Fact]
    public async Task A_png_bomb_is_refused_from_its_header_without_being_decoded()
    {
        var op = Operator();
        var campaign = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var bomb = PngBomb(20_000, 20_000);
        Assert.True(bomb.Length < 5 * 1024 * 1024, $"the bomb is {bomb.Length} bytes");
        var media = await UploadAsync(op, campaign, "poster", "image/png", bomb);

        using var process = Process.GetCurrentProcess();
        process.Refresh();
        var peakBefore = process.PeakWorkingSet64;
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        var problem = await (await op.PostAsync($"/api/campaigns/{campaign}/media/{media}/complete", null))
            .AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "media-dimensions-too-large");
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
        process.Refresh();
        var peakGrowth = process.PeakWorkingSet64 - peakBefore;

        Assert.Contains("20000 × 20000", (string?)problem["detail"]);
        // A decode needs 1.6 GB (native, so the working set would show it); the whole test process, other test classes
        // running beside this one included, allocates far less managed memory meanwhile than the 400 MB of raw rows.
        Assert.True(peakGrowth < 400L * 1024 * 1024, $"peak working set grew by {peakGrowth / 1024 / 1024} MB");
        Assert.True(allocated < 200L * 1024 * 1024, $"{allocated / 1024 / 1024} MB allocated");
    }

    [Fact]
    public async Task Exif_gps_of_a_jpeg_is_gone_from_every_rendition()
    {
        var op = Operator();
        var campaign = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var jpeg = WithGpsExif(Image(800, 600, "image/jpeg"));
        Assert.True(Contains(jpeg, "Exif\0\0"u8) && Contains(jpeg, GpsMark), "the upload carries the EXIF GPS block");
        var media = await UploadAsync(op, campaign, "banner", "image/jpeg", jpeg);

        var ready = await (await op.PostAsync($"/api/campaigns/{campaign}/media/{media}/complete", null)).AssertStatusAsync(HttpStatusCode.OK);

        foreach (var rendition in ready["renditions"]!.AsArray())
        {
            var published = await Storage.GetByteArrayAsync((string)rendition!["url"]!);
            Assert.False(Contains(published, "Exif\0\0"u8), $"{rendition["name"]} has an EXIF block");
            Assert.False(Contains(published, GpsMark), $"{rendition["name"]} has the GPS values");
        }
    }

    [Fact]
    public async Task Complete_twice_and_twice_at_once_answers_the_same_media()
    {
        var op = Operator();
        var campaign = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var media = await UploadAsync(op, campaign, "banner", "image/png", Image(1000, 500, "image/png"));
        var url = $"/api/campaigns/{campaign}/media/{media}/complete";

        var together = await Task.WhenAll(op.PostAsync(url, null), op.PostAsync(url, null));
        var answers = new List<JsonNode>();
        foreach (var response in together) answers.Add(await response.AssertStatusAsync(HttpStatusCode.OK));
        answers.Add(await (await op.PostAsync(url, null)).AssertStatusAsync(HttpStatusCode.OK));

        var names = answers.Select(a => string.Join(",", a["renditions"]!.AsArray().Select(r => (string?)r!["name"]))).Distinct().ToList();
        Assert.Single(names);
        Assert.All(answers, a => Assert.Equal("ready", (string?)a["state"]));
    }

    [Fact]
    public async Task Delete_removes_the_renditions_and_is_idempotent()
    {
        var op = Operator();
        var campaign = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var media = await UploadAsync(op, campaign, "thumbnail", "image/png", Image(320, 320, "image/png"));
        var ready = await (await op.PostAsync($"/api/campaigns/{campaign}/media/{media}/complete", null)).AssertStatusAsync(HttpStatusCode.OK);
        var urls = ready["renditions"]!.AsArray().Select(r => (string)r!["url"]!).ToList();

        await (await op.DeleteAsync($"/api/campaigns/{campaign}/media/{media}")).AssertStatusAsync(HttpStatusCode.NoContent);
        await (await op.DeleteAsync($"/api/campaigns/{campaign}/media/{media}")).AssertStatusAsync(HttpStatusCode.NoContent);

        foreach (var url in urls) Assert.Equal(HttpStatusCode.NotFound, (await Storage.GetAsync(url)).StatusCode);
        var listed = await (await op.GetAsync($"/api/campaigns/{campaign}/media")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Empty(listed["items"]!.AsArray());
        await (await op.PostAsync($"/api/campaigns/{campaign}/media/{media}/complete", null)).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
    }

    [Fact]
    public async Task Another_campaigns_route_never_reaches_a_campaigns_media()
    {
        var op = Operator();
        var a = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var b = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var media = await UploadAsync(op, a, "thumbnail", "image/png", Image(200, 200, "image/png"));

        await (await op.PostAsync($"/api/campaigns/{b}/media/{media}/complete", null)).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        var ready = await (await op.PostAsync($"/api/campaigns/{a}/media/{media}/complete", null)).AssertStatusAsync(HttpStatusCode.OK);
        await (await op.DeleteAsync($"/api/campaigns/{b}/media/{media}")).AssertStatusAsync(HttpStatusCode.NoContent);

        Assert.Equal(HttpStatusCode.OK, (await Storage.GetAsync((string)ready["renditions"]![0]!["url"]!)).StatusCode);
        var listed = await (await op.GetAsync($"/api/campaigns/{a}/media")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("ready", (string?)listed["items"]![0]!["state"]);
        Assert.Empty((await (await op.GetAsync($"/api/campaigns/{b}/media")).AssertStatusAsync(HttpStatusCode.OK))["items"]!.AsArray());
    }

    [Fact]
    public async Task Only_operators_and_admins_handle_media()
    {
        var op = Operator();
        var campaign = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var media = await UploadAsync(op, campaign, "thumbnail", "image/png", Image(100, 100, "image/png"));
        var body = new { kind = "thumbnail", contentType = "image/png", length = 100 };
        Func<HttpClient, Task<HttpResponseMessage>>[] routes =
        [
            c => c.PostAsync($"/api/campaigns/{campaign}/media", Api.JsonContent(body)),
            c => c.PostAsync($"/api/campaigns/{campaign}/media/{media}/complete", null),
            c => c.GetAsync($"/api/campaigns/{campaign}/media"),
            c => c.DeleteAsync($"/api/campaigns/{campaign}/media/{media}"),
        ];
        foreach (var route in routes)
        {
            await (await route(app.Anonymous())).AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
            await (await route(app.Customer(Api.NewId("c")))).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
            await (await route(app.As(Api.NewId("p"), "promoter"))).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        }
        // The media item is untouched by all of that; an admin may complete it.
        var ready = await (await app.As("root", "admin").PostAsync($"/api/campaigns/{campaign}/media/{media}/complete", null)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("ready", (string?)ready["state"]);
    }

    [Fact]
    public async Task A_campaigns_page_in_the_app_lists_its_ready_media_only()
    {
        var op = Operator();
        var campaign = await op.PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var banner = await UploadAsync(op, campaign, "banner", "image/png", Image(900, 300, "image/png"));
        var ready = await (await op.PostAsync($"/api/campaigns/{campaign}/media/{banner}/complete", null)).AssertStatusAsync(HttpStatusCode.OK);
        var refused = await UploadAsync(op, campaign, "thumbnail", "image/jpeg", Image(100, 100, "image/png"));
        await (await op.PostAsync($"/api/campaigns/{campaign}/media/{refused}/complete", null)).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "media-type-mismatch");
        await LinkAsync(op, campaign, "poster", "image/png", 1000); // pending: never uploaded

        var page = await (await app.Customer(Api.NewId("c")).GetAsync($"/api/campaigns/{campaign}/page")).AssertStatusAsync(HttpStatusCode.OK);

        Assert.Equal(campaign, (string?)page["campaign"]!["id"]);
        var media = Assert.Single(page["media"]!.AsArray())!;
        Assert.Equal(banner, (string?)media["mediaId"]);
        Assert.Equal("banner", (string?)media["kind"]);
        Assert.Equal(ready["renditions"]!.AsArray().Select(r => (string?)r!["url"]), media["renditions"]!.AsArray().Select(r => (string?)r!["url"]));

        // A draft has no page for customers, media or not.
        var draft = await op.CreateCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        await (await app.Customer(Api.NewId("c")).GetAsync($"/api/campaigns/{draft}/page")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
    }

    [Fact]
    public async Task Urls_follow_the_public_base_url_setting_also_for_media_published_before_it_was_set()
    {
        var op = Operator();
        var campaign = await op.PublishedCampaignAsync(Api.Terms(app.Clock.GetUtcNow()));
        var media = await UploadAsync(op, campaign, "thumbnail", "image/png", Image(200, 100, "image/png"));
        var ready = await (await op.PostAsync($"/api/campaigns/{campaign}/media/{media}/complete", null)).AssertStatusAsync(HttpStatusCode.OK);
        var names = ready["renditions"]!.AsArray().Select(r => (string)r!["name"]!).ToList();
        Assert.All(ready["renditions"]!.AsArray(), r => Assert.StartsWith(Settings.Get("Media__BlobEndpoint") + "/media/", (string)r!["url"]!));

        // A CDN put in front of the media container afterwards: another instance with the setting answers its URLs.
        await using var behindCdn = await TestApp.StartAsync(customize: b => b.UseSetting("Media:PublicBaseUrl", "https://cdn.example.test/media/"));
        behindCdn.Clock.Set(app.Clock.GetUtcNow());
        var listed = await (await behindCdn.Operator().GetAsync($"/api/campaigns/{campaign}/media")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(names.Select(n => "https://cdn.example.test/media/" + n), listed["items"]![0]!["renditions"]!.AsArray().Select(r => (string?)r!["url"]));
        var page = await (await behindCdn.Customer(Api.NewId("c")).GetAsync($"/api/campaigns/{campaign}/page")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(names.Select(n => "https://cdn.example.test/media/" + n), page["media"]![0]!["renditions"]!.AsArray().Select(r => (string?)r!["url"]));
    }

    [Fact]
    public async Task With_scanning_on_complete_waits_for_a_clean_verdict_and_refuses_a_malicious_upload()
    {
        await using var scanning = await TestApp.StartAsync(customize: b => b.UseSetting("Media:ScanUploads", "true"));
        scanning.Clock.Set(DateTimeOffset.UtcNow); // Azurite judges links by the real clock
        var op = scanning.Operator();
        var campaign = await op.PublishedCampaignAsync(Api.Terms(scanning.Clock.GetUtcNow()));

        // Not scanned yet: no tag is never "clean".
        var link = await LinkAsync(op, campaign, "banner", "image/png", Image(400, 200, "image/png").Length);
        var uploaded = new Uri((string)link["uploadUrl"]!);
        Assert.Equal(HttpStatusCode.Created, (await PutAsync(uploaded, Image(400, 200, "image/png"), "image/png")).StatusCode);
        var media = (string)link["mediaId"]!;
        var pending = await op.PostAsync($"/api/campaigns/{campaign}/media/{media}/complete", null);
        await pending.AssertProblemAsync(HttpStatusCode.Conflict, "media-scan-pending");
        Assert.NotNull(pending.Headers.RetryAfter);
        // Defender's verdict arrives as the blob index tag.
        await TagAsync(uploaded, Marketing.Functions.Media.MalwareScan.NoThreatsFound);
        var ready = await (await op.PostAsync($"/api/campaigns/{campaign}/media/{media}/complete", null)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("ready", (string?)ready["state"]);

        var bad = await LinkAsync(op, campaign, "banner", "image/png", Image(400, 200, "image/png").Length);
        var badUpload = new Uri((string)bad["uploadUrl"]!);
        Assert.Equal(HttpStatusCode.Created, (await PutAsync(badUpload, Image(400, 200, "image/png"), "image/png")).StatusCode);
        await TagAsync(badUpload, Marketing.Functions.Media.MalwareScan.MaliciousResult);
        for (var attempt = 0; attempt < 2; attempt++)
            await (await op.PostAsync($"/api/campaigns/{campaign}/media/{(string)bad["mediaId"]!}/complete", null))
                .AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "media-malicious");
        Assert.False(await UploadExistsAsync(badUpload));
    }

    private static async Task TagAsync(Uri link, string result)
    {
        var blob = new Azure.Storage.Blobs.BlobClient(new UriBuilder(link) { Query = "" }.Uri,
            new Azure.Storage.StorageSharedKeyCredential("devstoreaccount1", Settings.Get("Media__AccountKey")));
        await blob.SetTagsAsync(new Dictionary<string, string> { [Marketing.Functions.Media.MalwareScan.ResultTag] = result });
    }

    // --- helpers ---

    private HttpClient Operator()
    {
        // Azurite judges a link's times by the real clock: the app signs with its own, set to now.
        app.Clock.Set(DateTimeOffset.UtcNow);
        return app.Operator();
    }

    private static async Task<JsonNode> LinkAsync(HttpClient op, string campaign, string kind, string type, long length)
    {
        var link = await (await op.PostAsync($"/api/campaigns/{campaign}/media", Api.JsonContent(new { kind, contentType = type, length })))
            .AssertStatusAsync(HttpStatusCode.Created);
        Assert.Equal("BlockBlob", (string?)link["headers"]!["x-ms-blob-type"]);
        Assert.Equal(type, (string?)link["headers"]!["Content-Type"]);
        return link;
    }

    private static async Task<string> UploadAsync(HttpClient op, string campaign, string kind, string type, byte[] bytes)
    {
        var link = await LinkAsync(op, campaign, kind, type, bytes.Length);
        var put = await PutAsync(new Uri((string)link["uploadUrl"]!), bytes, type);
        Assert.True(put.StatusCode == HttpStatusCode.Created, $"PUT answered {(int)put.StatusCode}: {await put.Content.ReadAsStringAsync()}");
        return (string)link["mediaId"]!;
    }

    /// <summary>A PUT as the link's headers say, from a plain HTTP client.</summary>
    private static Task<HttpResponseMessage> PutAsync(Uri url, byte[] bytes, string type)
    {
        var request = new HttpRequestMessage(HttpMethod.Put, url) { Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(type);
        request.Headers.Add("x-ms-blob-type", "BlockBlob");
        return Storage.SendAsync(request);
    }

    /// <summary>Whether the upload blob is there, asked with the account key (the uploads container is private).</summary>
    private static async Task<bool> UploadExistsAsync(Uri link)
    {
        var blob = new Azure.Storage.Blobs.BlobClient(new UriBuilder(link) { Query = "" }.Uri,
            new Azure.Storage.StorageSharedKeyCredential("devstoreaccount1", Settings.Get("Media__AccountKey")));
        return (await blob.ExistsAsync()).Value;
    }

    /// <summary>An image with something on it (a gradient and a circle), encoded as <paramref name="type"/>.</summary>
    private static byte[] Image(int width, int height, string type)
    {
        using var bitmap = new SKBitmap(width, height);
        using (var canvas = new SKCanvas(bitmap))
        {
            using var paint = new SKPaint
            {
                Shader = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(width, height), [SKColors.Orange, SKColors.SteelBlue], SKShaderTileMode.Clamp),
            };
            canvas.DrawRect(0, 0, width, height, paint);
            using var circle = new SKPaint { Color = SKColors.White, IsAntialias = true };
            canvas.DrawCircle(width / 2f, height / 2f, Math.Min(width, height) / 4f, circle);
        }
        var format = type switch { "image/png" => SKEncodedImageFormat.Png, "image/jpeg" => SKEncodedImageFormat.Jpeg, _ => SKEncodedImageFormat.Webp };
        using var data = bitmap.Encode(format, 90);
        return data.ToArray();
    }

    private static readonly byte[] GpsMark = Encoding.ASCII.GetBytes("GPS-SECRET-48.8584N");

    /// <summary>The JPEG with an APP1 EXIF block right after its SOI: IFD0 pointing at a GPS IFD (latitude ref and a marker string).</summary>
    private static byte[] WithGpsExif(byte[] jpeg)
    {
        var tiff = new List<byte>();
        void U16(int v) { tiff.Add((byte)v); tiff.Add((byte)(v >> 8)); }
        void U32(int v) { U16(v & 0xFFFF); U16(v >> 16); }
        tiff.AddRange("II*\0"u8.ToArray()); U32(8);                  // little-endian TIFF, IFD0 at 8
        U16(1); U16(0x8825); U16(4); U32(1); U32(26); U32(0);        // IFD0: GPSInfo → 26; no next IFD
        U16(2);                                                      // GPS IFD at 26: two entries
        U16(0x0001); U16(2); U32(2); tiff.AddRange("N\0\0\0"u8.ToArray());                 // GPSLatitudeRef "N"
        U16(0x001B); U16(7); U32(GpsMark.Length); U32(26 + 2 + 2 * 12 + 4);                // GPSProcessingMethod → data
        U32(0);
        tiff.AddRange(GpsMark);
        byte[] app1 = [.. "Exif\0\0"u8.ToArray(), .. tiff];
        var length = app1.Length + 2;
        return [0xFF, 0xD8, 0xFF, 0xE1, (byte)(length >> 8), (byte)length, .. app1, .. jpeg[2..]];
    }

    /// <summary>A valid grayscale PNG of zeros: rows of a filter byte and <paramref name="width"/> zero bytes, deflated.</summary>
    private static byte[] PngBomb(int width, int height)
    {
        var compressed = new MemoryStream();
        using (var zlib = new ZLibStream(compressed, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            var row = new byte[width + 1];
            for (var y = 0; y < height; y++) zlib.Write(row);
        }
        var png = new MemoryStream();
        png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; // bit depth; colour type 0 (grey), compression, filter, interlace 0
        Chunk(png, "IHDR", ihdr);
        Chunk(png, "IDAT", compressed.ToArray());
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void Chunk(Stream png, string type, byte[] data)
    {
        var header = new byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header, data.Length);
        Encoding.ASCII.GetBytes(type, header.AsSpan(4));
        png.Write(header);
        png.Write(data);
        var crc = new byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32([.. header[4..], .. data]));
        png.Write(crc);
    }

    private static uint Crc32(byte[] bytes)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in bytes)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }

    private static bool Contains(byte[] haystack, ReadOnlySpan<byte> needle) => haystack.AsSpan().IndexOf(needle) >= 0;
}
