using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Marketing.Functions.Commissions;
using Marketing.Tests.Support;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// Commission rules at scale (issue 11): one small document per version, whatever the number of versions; the
/// version in force at a payment's time held per instance, so payments do not read the rules each time, and
/// still exact across instances; the single document of the earlier shape copied over once.
/// Every test has its own database (the rules are one programme per database).
/// </summary>
public sealed class CommissionRulesScaleTests
{
    private const string Container = "commission-rule-versions";

    private static string NewDatabase(string name)
    {
        var database = $"{Settings.Get("Cosmos__Database")}-rules-{name}-{Guid.NewGuid():N}";
        return database[..Math.Min(60, database.Length)];
    }

    private static Task<TestApp> StartAsync(string database, RequestHandler? handler = null)
        => TestApp.StartAsync(database, handler is null ? null : b => b.ConfigureServices(s => s.AddSingleton(handler)));

    private static long Commission(long amount, int bps) => amount * bps / 10_000;

    [Fact]
    public async Task A_hundred_versions_are_a_hundred_small_documents_of_the_same_size_and_each_payment_uses_the_version_of_its_time()
    {
        await using var app = await StartAsync(NewDatabase("hundred"));
        var t0 = app.Clock.GetUtcNow();
        for (var i = 0; i < 100; i++)
            await app.SetRulesAsync(1000 + i, 300, new() { ["books"] = 2000 + i }, from: t0.AddHours(i));

        // What is stored: 100 documents, none larger than a single version, however many there are.
        var sizes = await DocumentSizesAsync(app.Database);
        Assert.Equal(100, sizes.Count);
        Assert.True(sizes.Max() < 1024, $"largest version document {sizes.Max()} bytes");
        Assert.True(sizes.Max() - sizes.Min() <= 8, $"version documents from {sizes.Min()} to {sizes.Max()} bytes: they must not grow");

        var rules = await (await app.Operator().GetAsync("/api/commission-rules")).AssertStatusAsync(HttpStatusCode.OK);
        var versions = rules["versions"]!.AsArray();
        Assert.Equal(100, versions.Count);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => Api.Instant(t0.AddHours(i))), versions.Select(v => (string)v!["effectiveFrom"]!));
        Assert.Equal(1000, (int)rules["inForce"]!["level1"]!["defaultBps"]!);

        var (promoter, buyer) = await ReferrerAsync(app);
        app.Clock.Set(t0.AddHours(100));
        foreach (var hour in new[] { 0, 1, 49, 99 })
            await PaidAsync(app, buyer, $"o-{hour}", t0.AddHours(hour).AddMinutes(30));
        var ledger = await Level1Async(app, promoter);
        foreach (var hour in new[] { 0, 1, 49, 99 })
            Assert.Equal(Commission(10_000, 2000 + hour), ledger[$"o-{hour}"]);
    }

    [Fact]
    public async Task Payments_made_before_the_instance_last_looked_read_no_rules_and_a_later_one_costs_one_small_query()
    {
        var traffic = new ContainerTraffic(Container);
        await using var app = await StartAsync(NewDatabase("cached"), traffic);
        var t0 = app.Clock.GetUtcNow();
        await app.SetRulesAsync(1000, 300, new() { ["books"] = 1500 });
        await app.SetRulesAsync(2000, 300, new() { ["books"] = 2500 }, from: t0.AddHours(1));
        var (promoter, buyer) = await ReferrerAsync(app);
        app.Clock.Set(t0.AddHours(2));

        // The instance's first payment looks once (newest versions first, down to the one in force).
        traffic.Reset();
        await PaidAsync(app, buyer, "o-first", t0.AddMinutes(10));
        Assert.Equal(1, traffic.Requests);

        // Twenty payments made before that look, on either side of the second version: no rules read at all.
        traffic.Reset();
        for (var i = 0; i < 20; i++)
            await PaidAsync(app, buyer, $"o-{i}", t0.AddMinutes(6 * i + 1));
        Assert.Equal(0, traffic.Requests);

        // A payment made after the look: one query for the versions taking effect since, which finds none.
        app.Clock.Advance(TimeSpan.FromMinutes(10));
        traffic.Reset();
        await PaidAsync(app, buyer, "o-later", app.Clock.GetUtcNow().AddMinutes(-1));
        Assert.Equal(1, traffic.Requests);
        Assert.Equal(0, traffic.DocumentsReturned);

        var ledger = await Level1Async(app, promoter);
        Assert.Equal(Commission(10_000, 1500), ledger["o-first"]);
        for (var i = 0; i < 20; i++)
            Assert.Equal(Commission(10_000, 6 * i + 1 < 60 ? 1500 : 2500), ledger[$"o-{i}"]);
        Assert.Equal(Commission(10_000, 2500), ledger["o-later"]);
    }

    [Fact]
    public async Task A_version_set_or_replaced_on_another_instance_applies_to_every_payment_made_from_its_instant_on()
    {
        await using var a = await StartAsync(NewDatabase("instances"));
        await using var b = await TestApp.StartAsync(a.Database); // a second function instance over the same database
        var t0 = a.Clock.GetUtcNow();
        await a.SetRulesAsync(1000, 300, new() { ["books"] = 1000 });
        var (promoter, buyer) = await ReferrerAsync(a);

        // Instance a looks at t0+10min.
        a.Clock.Set(t0.AddMinutes(10));
        await PaidAsync(a, buyer, "o-05", t0.AddMinutes(5));
        // At t0+20min instance b sets a version from now and schedules another from t0+35min.
        b.Clock.Set(t0.AddMinutes(20));
        await b.SetRulesAsync(2000, 300, new() { ["books"] = 2000 });
        await b.SetRulesAsync(3000, 300, new() { ["books"] = 3000 }, from: t0.AddMinutes(35));
        // Instance a at t0+30min: a payment after b's version gets it; one before a's look keeps the first.
        a.Clock.Set(t0.AddMinutes(30));
        await PaidAsync(a, buyer, "o-25", t0.AddMinutes(25));
        await PaidAsync(a, buyer, "o-08", t0.AddMinutes(8));
        // At t0+31min b replaces the scheduled version (not in force yet): a uses the replacement.
        b.Clock.Set(t0.AddMinutes(31));
        await b.SetRulesAsync(3500, 300, new() { ["books"] = 3500 }, from: t0.AddMinutes(35));
        a.Clock.Set(t0.AddMinutes(40));
        await PaidAsync(a, buyer, "o-36", t0.AddMinutes(36));
        await PaidAsync(a, buyer, "o-34", t0.AddMinutes(34));

        var ledger = await Level1Async(a, promoter);
        Assert.Equal(Commission(10_000, 1000), ledger["o-05"]);
        Assert.Equal(Commission(10_000, 2000), ledger["o-25"]);
        Assert.Equal(Commission(10_000, 1000), ledger["o-08"]);
        Assert.Equal(Commission(10_000, 3500), ledger["o-36"]);
        Assert.Equal(Commission(10_000, 2000), ledger["o-34"]);
    }

    [Fact]
    public async Task Rules_stored_as_one_document_before_are_copied_once_into_version_documents_and_used()
    {
        var database = NewDatabase("legacy");
        await using var first = await StartAsync(database);
        var t0 = first.Clock.GetUtcNow();
        // The shape before issue 11, as an environment deployed then holds it.
        using var cosmos = TestCosmos.Client();
        var legacy = (await cosmos.GetDatabase(database).CreateContainerIfNotExistsAsync(LegacyCommissionRules.Container, "/id")).Container;
        JsonObject Version(DateTimeOffset from, int books) => new()
        {
            ["effectiveFrom"] = Api.Instant(from),
            ["level1"] = new JsonObject { ["defaultBps"] = 500, ["categoryBps"] = new JsonObject { ["books"] = books } },
            ["level2"] = new JsonObject { ["defaultBps"] = 100, ["categoryBps"] = new JsonObject() },
            ["setBy"] = "olivia",
            ["setAt"] = Api.Instant(from.AddDays(-1)),
        };
        var old = new JsonObject
        {
            ["id"] = LegacyCommissionRules.DocumentId,
            ["versions"] = new JsonArray(Version(t0.AddDays(-30), 600), Version(t0.AddDays(-10), 800), Version(t0.AddDays(1), 1200)),
            ["writeStamp"] = "before-issue-11",
        };
        await legacy.CreateItemStreamAsync(new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(old)), new PartitionKey(LegacyCommissionRules.DocumentId));

        var rules = await (await first.Operator().GetAsync("/api/commission-rules")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(new[] { t0.AddDays(-30), t0.AddDays(-10), t0.AddDays(1) }.Select(Api.Instant),
            rules["versions"]!.AsArray().Select(v => (string)v!["effectiveFrom"]!));
        Assert.Equal(800, (int)rules["inForce"]!["level1"]!["categoryBps"]!["books"]!);
        Assert.Equal(3, (await DocumentSizesAsync(database)).Count);
        // Marked, so later instances stop at one read; otherwise kept as it was (a rollback still finds its rules).
        var marked = JsonNode.Parse(await ReadAsync(legacy, LegacyCommissionRules.DocumentId))!;
        Assert.NotNull((string?)marked["migratedAt"]);
        Assert.Equal(3, marked["versions"]!.AsArray().Count);

        // Another instance replaces the scheduled version: the copy never overwrites it, the replacement stands.
        await using var second = await TestApp.StartAsync(database);
        await second.SetRulesAsync(500, 100, new() { ["books"] = 1500 }, from: t0.AddDays(1));
        var after = await (await second.Operator().GetAsync("/api/commission-rules")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(3, after["versions"]!.AsArray().Count);
        Assert.Equal(1500, (int)after["versions"]![2]!["level1"]!["categoryBps"]!["books"]!);

        // Payments use the copied versions.
        var (promoter, buyer) = await ReferrerAsync(first);
        first.Clock.Set(t0.AddDays(2));
        await PaidAsync(first, buyer, "o-today", t0.AddHours(1));
        await PaidAsync(first, buyer, "o-tomorrow", t0.AddDays(1).AddHours(1));
        var ledger = await Level1Async(first, promoter);
        Assert.Equal(Commission(10_000, 800), ledger["o-today"]);
        Assert.Equal(Commission(10_000, 1500), ledger["o-tomorrow"]);
    }

    // ---- helpers

    /// <summary>The UTF-8 size of every stored version document (as Cosmos DB holds it, system properties included).</summary>
    private static async Task<List<int>> DocumentSizesAsync(string database)
    {
        using var cosmos = TestCosmos.Client();
        var container = cosmos.GetDatabase(database).GetContainer(Container);
        var sizes = new List<int>();
        using var iterator = container.GetItemQueryStreamIterator(new QueryDefinition("SELECT * FROM c WHERE c.programme = @p")
            .WithParameter("@p", CommissionRulesStore.Programme), requestOptions: new QueryRequestOptions { PartitionKey = new PartitionKey(CommissionRulesStore.Programme) });
        while (iterator.HasMoreResults)
        {
            using var page = await iterator.ReadNextAsync();
            page.EnsureSuccessStatusCode();
            using var json = await JsonDocument.ParseAsync(page.Content);
            sizes.AddRange(json.RootElement.GetProperty("Documents").EnumerateArray().Select(d => System.Text.Encoding.UTF8.GetByteCount(d.GetRawText())));
        }
        return sizes;
    }

    private static async Task<string> ReadAsync(Container container, string id)
    {
        using var response = await container.ReadItemStreamAsync(id, new PartitionKey(id));
        response.EnsureSuccessStatusCode();
        return await new StreamReader(response.Content).ReadToEndAsync();
    }

    /// <summary>A registered promoter and a buyer bound to them from now.</summary>
    private static async Task<(string Promoter, string Buyer)> ReferrerAsync(TestApp app)
    {
        var promoter = Api.NewId("p");
        var buyer = Api.NewId("b");
        var visit = await (await app.VisitAsync(buyer, await app.RegisterPromoterAsync(promoter))).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("bound", (string?)visit["status"]);
        return (promoter, buyer);
    }

    private static async Task PaidAsync(TestApp app, string buyer, string orderId, DateTimeOffset at)
        => Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("paid", orderId, buyer, at, Distribution.Line("l1", "books", 10_000))));

    /// <summary>The promoter's level-1 commission per order.</summary>
    private static async Task<Dictionary<string, long>> Level1Async(TestApp app, string promoterId)
        => (await app.CommissionsAsync(promoterId)).Where(e => (int)e["level"]! == 1)
            .ToDictionary(e => (string)e["orderId"]!, e => (long)e["amount"]!);
}
