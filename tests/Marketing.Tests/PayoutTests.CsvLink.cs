using System.Net;
using Marketing.Functions.Payouts;
using Marketing.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The batch's CSV on Blob storage (Azurite) and finance's short-lived read link to it: the link downloads exactly
/// the CSV the API answers, reads nothing else, writes nothing, and expires (signed on the app's clock, which the
/// tests set to the real time or before it: Azurite checks a link against its own, real, clock).
/// </summary>
public sealed partial class PayoutTests
{
    private static readonly HttpClient Storage = new();

    private static async Task<(string BatchId, string Csv)> CompletedBatchAsync(TestApp app)
    {
        await app.SetRulesAsync(1000, 0);
        var promoter = await ReferrerAsync(app, id: "=cmd-" + Guid.NewGuid().ToString("N")[..8]);
        var other = await ReferrerAsync(app);
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        var paidAt = app.Clock.GetUtcNow();
        await PaidAsync(app, promoter.Buyer, Api.NewId("o"), paidAt, Distribution.Line("l1", "books", 12000));
        await PaidAsync(app, other.Buyer, Api.NewId("o"), paidAt, Distribution.Line("l1", "toys", 30000));
        app.Clock.Set(paidAt + Holding);
        await ReleaseAsync(app);
        var batchId = Api.NewId("csv");
        var batch = await RunBatchAsync(app, batchId, 1);
        Assert.Equal(2, Rows(batchId, batch.Csv).Count);
        return (batchId, batch.Csv);
    }

    private static async Task<(Uri Url, DateTimeOffset ExpiresAt)> LinkAsync(TestApp app, string batchId, string role = "finance")
    {
        var link = await (await app.As("fiona", role).GetAsync($"/api/payouts/{batchId}/csv-link")).AssertStatusAsync(HttpStatusCode.OK);
        return (new Uri((string)link["url"]!), DateTimeOffset.Parse((string)link["expiresAt"]!, System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Finance_gets_a_read_only_link_that_downloads_exactly_the_batch_csv_and_nothing_else()
    {
        await using var app = await StartAsync("csv-link");
        var (batchId, csv) = await CompletedBatchAsync(app);
        app.Clock.Set(DateTimeOffset.UtcNow);

        var (url, expiresAt) = await LinkAsync(app, batchId);
        var signedAt = app.Clock.GetUtcNow();
        Assert.Equal(signedAt.AddTicks(-(signedAt.UtcTicks % TimeSpan.TicksPerSecond)) + GetPayoutCsvLink.Lifetime, expiresAt); // SAS times are whole seconds
        var download = await Storage.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, download.StatusCode);
        Assert.Equal(csv, await download.Content.ReadAsStringAsync());
        Assert.Equal("text/csv", download.Content.Headers.ContentType?.MediaType);
        Assert.Contains("'=cmd-", csv); // the spreadsheet-formula defence is in the stored file too

        // Asked again a second later (and by an admin): a new link to the same, unchanged file.
        app.Clock.Advance(TimeSpan.FromSeconds(1));
        var (again, _) = await LinkAsync(app, batchId, "admin");
        Assert.NotEqual(url, again);
        Assert.Equal(csv, await Storage.GetStringAsync(again));

        // The link writes nothing: no overwrite, no delete, no tags.
        var overwrite = new HttpRequestMessage(HttpMethod.Put, url) { Content = new StringContent("batch_id\r\nforged\r\n") };
        overwrite.Headers.Add("x-ms-blob-type", "BlockBlob");
        Assert.Equal(HttpStatusCode.Forbidden, (await Storage.SendAsync(overwrite)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await Storage.SendAsync(new HttpRequestMessage(HttpMethod.Delete, url))).StatusCode);
        Assert.Equal(csv, await Storage.GetStringAsync(again));

        // Its signature reaches no other blob: another batch's file in the same container, or another container's.
        var neighbour = Blobs.Container(PayoutFiles.ContainerName).GetBlobClient($"{batchId}/neighbour.csv");
        await neighbour.UploadAsync(BinaryData.FromString("batch_id\r\nsecret\r\n"), overwrite: true);
        var elsewhere = new UriBuilder(url) { Path = neighbour.Uri.AbsolutePath };
        Assert.Equal(HttpStatusCode.Forbidden, (await Storage.GetAsync(elsewhere.Uri)).StatusCode);
        var otherContainer = Blobs.Container("scan-tests").GetBlobClient($"{batchId}.csv");
        await otherContainer.UploadAsync(BinaryData.FromString("secret"), overwrite: true);
        Assert.Equal(HttpStatusCode.Forbidden, (await Storage.GetAsync(new UriBuilder(url) { Path = otherContainer.Uri.AbsolutePath }.Uri)).StatusCode);
    }

    [Fact]
    public async Task A_csv_link_expires_after_its_minutes()
    {
        await using var app = await StartAsync("csv-expiry");
        var (batchId, csv) = await CompletedBatchAsync(app);

        // Signed 11 minutes ago: a 10-minute link is dead now.
        app.Clock.Set(DateTimeOffset.UtcNow - GetPayoutCsvLink.Lifetime - TimeSpan.FromMinutes(1));
        var (expired, expiresAt) = await LinkAsync(app, batchId);
        Assert.True(expiresAt < DateTimeOffset.UtcNow);
        Assert.Equal(HttpStatusCode.Forbidden, (await Storage.GetAsync(expired)).StatusCode);

        // Signed 9 minutes ago: still good for a minute.
        app.Clock.Set(DateTimeOffset.UtcNow - GetPayoutCsvLink.Lifetime + TimeSpan.FromMinutes(1));
        var (fresh, _) = await LinkAsync(app, batchId);
        Assert.Equal(csv, await Storage.GetStringAsync(fresh));
    }

    [Fact]
    public async Task Only_finance_and_admins_get_csv_links_and_only_for_completed_batches()
    {
        await using var app = await StartAsync("csv-roles");
        var (batchId, _) = await CompletedBatchAsync(app);
        app.Clock.Set(DateTimeOffset.UtcNow);
        var path = $"/api/payouts/{batchId}/csv-link";

        await (await app.Anonymous().GetAsync(path)).AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
        foreach (var role in new[] { "operator", "customer", "promoter", "order_system" })
            await (await app.As("mallory", role).GetAsync(path)).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await app.As("fiona", "finance").GetAsync("/api/payouts/unknown/csv-link")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        await (await app.As("fiona", "finance").GetAsync("/api/payouts/Bad%20Id!/csv-link")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");

        // A batch still being paid has no final CSV: nothing is stored for it.
        var building = new PayoutBatch
        {
            BatchId = Api.NewId("building"), Minimum = 1, Currency = "CNY", State = PayoutBatch.Building, CreatedBy = "olivia",
            CreatedAt = app.Clock.GetUtcNow(),
        };
        var store = app.Services.GetRequiredService<PayoutStore>();
        Assert.True(await store.TryCreateAsync(building, CancellationToken.None));
        await (await app.As("fiona", "finance").GetAsync($"/api/payouts/{building.BatchId}/csv-link"))
            .AssertProblemAsync(HttpStatusCode.Conflict, "payout-batch-not-completed");
        var files = app.Services.GetRequiredService<PayoutFiles>();
        Assert.False((await files.CsvOf(building).ExistsAsync()).Value);

        // The existing CSV route is unchanged for operators.
        Assert.StartsWith("batch_id,promoter_id,currency,amount_minor,entries\r\n", await BatchCsvAsync(app, batchId));
    }
}
