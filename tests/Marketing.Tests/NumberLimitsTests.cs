using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Commissions;
using Marketing.Functions.Hosting;
using Marketing.Tests.Support;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// Cosmos DB keeps numbers as doubles (exact integers only up to 2^53 − 1). Every amount the API accepts is capped at
/// Limits.MaxMoney, checked with the other fields (all errors at once); nothing unstorable is written; and a document
/// that cannot be read anyway is skipped by lists instead of turning every list into a 500.
/// </summary>
public sealed class NumberLimitsTests(TestApp app) : IClassFixture<TestApp>
{
    private const long Max = Limits.MaxMoney;
    private DateTimeOffset Now => app.Clock.GetUtcNow();

    private static void PercentOff(JsonObject t)
    {
        t["kind"] = "percent_off";
        t["percentOff"] = 10;
        t.Remove("amountOff");
    }

    public static TheoryData<string, bool> MoneyFields() => new()
    {
        { "amountOff", false }, { "minimumSpend", false }, { "budget", false }, { "maxDiscount", true },
    };

    [Theory]
    [MemberData(nameof(MoneyFields))]
    public async Task Each_campaign_amount_accepts_the_maximum_and_refuses_one_more_naming_the_field(string field, bool percentOff)
    {
        JsonObject Terms(long value) => Api.Terms(Now, t =>
        {
            if (percentOff) PercentOff(t);
            t[field] = value;
        });
        var op = app.Operator();

        var id = await op.CreateCampaignAsync(Terms(Max));
        var read = await (await op.GetAsync($"/api/campaigns/{id}")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(Max, (long)read["terms"]![field]!);

        var refused = await (await op.PostAsync("/api/campaigns", Api.JsonContent(Terms(Max + 1)))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.Equal([field], refused["errors"]!.AsObject().Select(e => e.Key));
        Assert.Contains(Max.ToString(), (string?)refused["errors"]![field]![0]);
        // The same on update.
        await (await op.PutAsync($"/api/campaigns/{id}", Api.JsonContent(Terms(Max + 1)))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
    }

    [Fact]
    public async Task Every_amount_out_of_range_is_named_at_once()
    {
        var terms = Api.Terms(Now, t =>
        {
            t["amountOff"] = Max + 1;
            t["minimumSpend"] = long.MaxValue;
            t["budget"] = Max + 1;
            t["totalQuantity"] = 0;
        });

        var problem = await (await app.Operator().PostAsync("/api/campaigns", Api.JsonContent(terms))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");

        Assert.Equal(["amountOff", "budget", "minimumSpend", "totalQuantity"], problem["errors"]!.AsObject().Select(e => e.Key).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("9223372036854775807")]  // long.MaxValue: was stored, then every list answered 500
    [InlineData("9007199254740993")]     // 2^53 + 1: Cosmos DB would round it
    [InlineData("9223372036854775808")]  // beyond a long
    [InlineData("1e300")]
    public async Task The_original_repro_is_a_400_nothing_is_stored_and_the_list_still_answers(string amountOff)
    {
        var name = "repro " + Guid.NewGuid().ToString("N");
        var terms = Api.Terms(Now, t => t["name"] = name);
        terms["amountOff"] = JsonNode.Parse(amountOff);

        var problem = await (await app.Operator().PostAsync("/api/campaigns", Api.JsonContent(terms))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");

        Assert.NotNull(problem["errors"]!["amountOff"]);
        Assert.Empty(await StoredNamedAsync(name));
        await (await app.Operator().GetAsync("/api/campaigns?limit=200")).AssertStatusAsync(HttpStatusCode.OK);
        // (The look-up does find a campaign of that name once one is stored.)
        var id = await app.Operator().CreateCampaignAsync(Api.Terms(Now, t => t["name"] = name));
        Assert.Equal([id], await StoredNamedAsync(name));
    }

    private async Task<List<string>> StoredNamedAsync(string name)
    {
        using var stored = app.Services.GetRequiredService<Database>().GetContainer(CampaignStore.Spec.Name).GetItemQueryIterator<string>(
            new QueryDefinition("SELECT VALUE c.id FROM c WHERE c.catalog = @catalog AND c.terms.name = @name")
                .WithParameter("@catalog", CampaignStore.DefaultCatalog).WithParameter("@name", name),
            requestOptions: new QueryRequestOptions { PartitionKey = new PartitionKey(CampaignStore.DefaultCatalog) });
        var ids = new List<string>();
        while (stored.HasMoreResults)
            ids.AddRange(await stored.ReadNextAsync());
        return ids;
    }

    [Fact]
    public async Task A_top_up_may_fill_the_budget_to_the_maximum_not_past_it()
    {
        var campaign = await app.Operator().PublishedCampaignAsync(Api.Terms(Now, t => t["budget"] = Max - 100));
        var key = Guid.NewGuid().ToString();

        var full = await (await TopUpAsync(campaign, key, 100)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(Max, (long)full["total"]!);

        var past = await (await TopUpAsync(campaign, Guid.NewGuid().ToString(), 1)).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.Contains("at most 0 more", (string?)past["errors"]!["amount"]![0]);
        var huge = await (await TopUpAsync(campaign, Guid.NewGuid().ToString(), Max + 1)).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(huge["errors"]!["amount"]);
        // A retry of the top-up that filled it still gets its answer, and nothing was added since.
        var replay = await TopUpAsync(campaign, key, 100);
        Assert.Equal(Max, (long)(await replay.AssertStatusAsync(HttpStatusCode.OK))["total"]!);
        Assert.Equal("true", replay.Headers.GetValues("Idempotent-Replayed").Single());
        var budget = (await app.Services.GetRequiredService<StockStore>().FindBudgetAsync(campaign))!;
        Assert.Equal((Max, Max), (budget.Budget, budget.Left));
    }

    public static TheoryData<long, int, long, string?> OrderLines() => new()
    {
        { Max, 1, 0, null },                          // the most a line may cost
        { Max + 1, 1, 0, "lines[0].unitPrice" },
        { Max / 2 + 1, 2, 0, "lines[0]" },            // the line's total is over
        { Max, 1, 1, "lines" },                       // the order's total is over
        { long.MaxValue, 10_000, 0, "lines[0].unitPrice" },
    };

    [Theory]
    [MemberData(nameof(OrderLines))]
    public async Task Order_lines_are_capped_per_price_per_line_and_in_total(long unitPrice, int quantity, long secondLine, string? field)
    {
        var draft = new JsonObject
        {
            ["channel"] = "app",
            ["currency"] = "CNY",
            ["lines"] = new JsonArray(
                new JsonObject { ["sku"] = "a", ["category"] = "toys", ["unitPrice"] = unitPrice, ["quantity"] = quantity },
                new JsonObject { ["sku"] = "b", ["category"] = "toys", ["unitPrice"] = secondLine, ["quantity"] = 1 }),
        };

        var quote = await app.Customer(Api.NewId("c")).PostAsync("/api/redemptions/quote", Api.JsonContent(draft));
        var locked = await app.OrderSystem().LockAsync(Api.NewId("o"), Api.NewId("c"), "cpn_unknown", draft);

        if (field is null)
        {
            await quote.AssertStatusAsync(HttpStatusCode.OK);
            await locked.AssertProblemAsync(HttpStatusCode.NotFound, "not-found"); // valid: it got as far as looking for the coupon
            return;
        }
        var problem = await quote.AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(problem["errors"]![field]);
        problem = await locked.AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.NotNull(problem["errors"]!["order." + field]);
    }

    [Fact]
    public async Task A_payout_minimum_beyond_the_maximum_is_refused()
    {
        var problem = await (await app.PayoutAsync(Api.NewId("b"), Max + 1)).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
        Assert.Contains(Max.ToString(), (string?)problem["errors"]!["minimum"]![0]);
    }

    [Fact]
    public async Task Order_events_with_amounts_beyond_the_maximum_are_quarantined()
    {
        var buyer = Api.NewId("b");
        foreach (var amount in new[] { "1000000000001", "9223372036854775807", "9223372036854775808" })
        {
            var orderEvent = Distribution.OrderEvent("paid", Api.NewId("o"), buyer, Now, Distribution.Line("l1", "toys", 1));
            var body = orderEvent.ToJsonString().Replace("\"amount\":1", "\"amount\":" + amount);

            var answer = await (await app.DeliverAsync(body)).AssertStatusAsync(HttpStatusCode.OK);

            Assert.Equal("quarantined", (string?)answer["ReturnValue"]!["Outcome"]);
        }
    }

    [Fact]
    public async Task Nothing_is_written_that_could_not_be_read_back()
    {
        var container = app.Services.GetRequiredService<Database>().GetContainer(CampaignStore.Spec.Name);
        var partition = "scratch-" + Guid.NewGuid().ToString("N");
        var id = Api.NewId("x");

        await Assert.ThrowsAsync<UnstorableNumberException>(() => container.CreateItemAsync(
            new Dictionary<string, object> { ["id"] = id, ["catalog"] = partition, ["amountOff"] = long.MaxValue }, new PartitionKey(partition)));
        await Assert.ThrowsAsync<UnstorableNumberException>(() => container.UpsertItemAsync(
            new Dictionary<string, object> { ["id"] = id, ["catalog"] = partition, ["nested"] = new[] { -Limits.MaxSafeInteger - 1 } }, new PartitionKey(partition)));
        using (var missing = await container.ReadItemStreamAsync(id, new PartitionKey(partition)))
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);

        // The largest exact integer (and doubles) are fine, and read back as they were.
        await container.CreateItemAsync(new Dictionary<string, object> { ["id"] = id, ["catalog"] = partition, ["n"] = Limits.MaxSafeInteger, ["d"] = 0.5 },
            new PartitionKey(partition));
        var read = await container.ReadItemAsync<JsonObject>(id, new PartitionKey(partition));
        Assert.Equal(Limits.MaxSafeInteger, (long)read.Resource["n"]!);
        await container.DeleteItemAsync<JsonObject>(id, new PartitionKey(partition));
    }

    [Fact]
    public async Task Unreadable_documents_are_skipped_by_lists_which_keep_answering_200()
    {
        // Its own database: an unreadable campaign in the shared catalog would trouble other tests' timers.
        await using var own = await TestApp.StartAsync($"{Settings.Get("Cosmos__Database")}-unreadable-{Guid.NewGuid():N}"[..40]);
        var op = own.Operator();
        var now = own.Clock.GetUtcNow();
        var good = new List<string>();
        for (var i = 0; i < 3; i++) good.Add(await op.PublishedCampaignAsync(Api.Terms(now)));
        var database = own.Services.GetRequiredService<Database>();
        var campaigns = database.GetContainer(CampaignStore.Spec.Name);
        var valid = (await (await op.GetAsync($"/api/campaigns/{good[0]}")).AssertStatusAsync(HttpStatusCode.OK)).AsObject();
        // Written raw, past the app's serializer, as data from an older version or another writer might be.
        var wrongType = Stored(valid, "cmp_wrongtype", t => t["terms"]!["amountOff"] = "abc");
        var missingMember = Stored(valid, "cmp_noterms", t => t.Remove("terms"));
        var wrongEnum = Stored(valid, "cmp_badstatus", t => t["terms"]!["kind"] = "free_lunch");
        foreach (var document in new[] { wrongType, missingMember, wrongEnum })
            using (var written = await campaigns.CreateItemStreamAsync(new MemoryStream(Encoding.UTF8.GetBytes(document.ToJsonString())),
                       new PartitionKey(CampaignStore.DefaultCatalog)))
                Assert.True(written.IsSuccessStatusCode, written.ErrorMessage);

        // Every list of campaigns answers, without the unreadable ones; pages are still filled.
        var listed = (await (await op.GetAsync("/api/campaigns?limit=200")).AssertStatusAsync(HttpStatusCode.OK))["items"]!.AsArray()
            .Select(c => (string)c!["id"]!).ToList();
        Assert.Equal(good.Order(StringComparer.Ordinal), listed.Order(StringComparer.Ordinal));
        var published = (await (await op.GetAsync("/api/campaigns?status=published&limit=2")).AssertStatusAsync(HttpStatusCode.OK))["items"]!.AsArray();
        Assert.Equal(2, published.Count);
        var claimable = (await (await own.Customer(Api.NewId("c")).GetAsync("/api/campaigns/claimable?channel=app")).AssertStatusAsync(HttpStatusCode.OK))["items"]!
            .AsArray().Select(c => (string)c!["id"]!).ToList();
        Assert.Equal(good.Order(StringComparer.Ordinal), claimable.Order(StringComparer.Ordinal));

        // A wallet with one unreadable coupon still lists (and quotes) the others.
        var customerId = Api.NewId("c");
        var customer = own.Customer(customerId);
        var claimed = await (await customer.ClaimAsync(good[0])).AssertStatusAsync(HttpStatusCode.Created);
        var wallets = database.GetContainer(Marketing.Functions.Wallet.WalletStore.Spec.Name);
        var brokenWallet = new JsonObject
        {
            ["id"] = good[1], ["customerId"] = customerId, ["type"] = "wallet", ["campaignId"] = good[1], ["keys"] = new JsonArray("k1"),
            ["coupons"] = new JsonArray(new JsonObject { ["id"] = "cpn_broken", ["campaignId"] = good[1], ["amountOff"] = "abc" }),
        };
        using (var written = await wallets.CreateItemStreamAsync(new MemoryStream(Encoding.UTF8.GetBytes(brokenWallet.ToJsonString())), new PartitionKey(customerId)))
            Assert.True(written.IsSuccessStatusCode, written.ErrorMessage);
        var coupons = (await (await customer.GetAsync("/api/me/coupons")).AssertStatusAsync(HttpStatusCode.OK))["items"]!.AsArray();
        Assert.Equal((string?)claimed["id"], (string?)Assert.Single(coupons)!["id"]);
        await (await customer.PostAsync("/api/redemptions/quote", Api.JsonContent(Orders.Draft()))).AssertStatusAsync(HttpStatusCode.OK);

        // A promoter's list skips an unreadable entry and still fills its pages.
        var promoterId = Api.NewId("p");
        await own.RegisterPromoterAsync(promoterId);
        var ledger = own.Services.GetRequiredService<LedgerStore>();
        for (var i = 0; i < 3; i++)
            await ledger.CreateIfAbsentAsync(new LedgerEntry
            {
                Id = $"e{i}", PromoterId = promoterId, OrderId = "o" + i, EventId = "ev" + i, LineId = "l1", Category = "toys", Level = 1,
                Kind = LedgerEntry.Commission, Amount = 100, Currency = "CNY", Status = LedgerStatus.Pending,
                AvailableAt = now.AddDays(7), CreatedAt = now.AddMinutes(i * 2),
            }, CancellationToken.None);
        var brokenEntry = new JsonObject
        {
            ["id"] = "e-broken", ["promoterId"] = promoterId, ["amount"] = "abc", ["createdAt"] = Api.Instant(now.AddMinutes(1)),
        };
        using (var written = await database.GetContainer(LedgerStore.Spec.Name).CreateItemStreamAsync(
                   new MemoryStream(Encoding.UTF8.GetBytes(brokenEntry.ToJsonString())), new PartitionKey(promoterId)))
            Assert.True(written.IsSuccessStatusCode, written.ErrorMessage);
        var promoter = own.Customer(promoterId);
        var first = await (await promoter.GetAsync("/api/promoters/me/commissions?limit=2")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(["e2", "e1"], first["items"]!.AsArray().Select(e => (string)e!["id"]!));
        var second = await (await promoter.GetAsync("/api/promoters/me/commissions?limit=2&continuationToken="
            + Uri.EscapeDataString((string)first["continuationToken"]!))).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(["e0"], second["items"]!.AsArray().Select(e => (string)e!["id"]!));
        Assert.Null((string?)second["continuationToken"]);
    }

    [Fact]
    public async Task A_limit_that_is_not_a_number_is_a_field_error_beside_the_others_on_every_paged_list()
    {
        static async Task<string[]> FieldsAsync(HttpResponseMessage response)
            => [.. (await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed"))["errors"]!.AsObject().Select(e => e.Key).Order()];

        Assert.Equal(["limit", "status"], await FieldsAsync(await app.As(Api.NewId("p"), "promoter").GetAsync("/api/promoters/me/commissions?status=owed&limit=ten")));
        Assert.Equal(["limit"], await FieldsAsync(await app.Customer(Api.NewId("c")).GetAsync("/api/me/notifications?limit=ten")));
        Assert.Equal(["limit"], await FieldsAsync(await app.Operator().GetAsync($"/api/campaigns/{Api.NewId("cmp")}/budget?limit=1.5")));
    }

    /// <summary>A campaign document like <paramref name="valid"/> (as the API shows it) under another id, changed by <paramref name="change"/>.</summary>
    private static JsonObject Stored(JsonObject valid, string id, Action<JsonObject> change)
    {
        var document = (JsonObject)valid.DeepClone();
        document["id"] = id;
        document["catalog"] = CampaignStore.DefaultCatalog;
        change(document);
        return document;
    }

    private Task<HttpResponseMessage> TopUpAsync(string campaign, string key, long amount)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{campaign}/budget") { Content = Api.JsonContent(new { amount, reason = "limits" }) };
        request.Headers.Add("Idempotency-Key", key);
        return app.Operator().SendAsync(request);
    }
}
