using System.Net;
using Marketing.Functions.Commissions;
using Marketing.Functions.Payouts;
using Marketing.Functions.Promoters;
using Marketing.Tests.Support;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The reconciliation that ops run (`reconcile-ledger`) finds nothing after a full life cycle — payments,
/// refunds before and after payout, release, a payout batch — and finds each kind of damage to the books.
/// </summary>
public sealed class LedgerReconciliationTests
{
    private static Task<List<string>> CheckAsync(TestApp app)
    {
        var s = app.Services;
        return LedgerReconciliation.CheckAsync(s.GetRequiredService<PromoterStore>(), s.GetRequiredService<LedgerStore>(),
            s.GetRequiredService<SettlementStore>(), s.GetRequiredService<PayoutStore>(), app.Clock.GetUtcNow(), TimeSpan.FromHours(1),
            CancellationToken.None);
    }

    private static Container Ledger(TestApp app) => app.Services.GetRequiredService<Database>().GetContainer("ledger");

    /// <summary>Two promoters (level 1 and its inviter), three buyers, paid orders, refunds, release and a payout.</summary>
    private static async Task<(TestApp App, string Level1, string Level2)> BooksAsync()
    {
        var app = await TestApp.StartAsync($"{Settings.Get("Cosmos__Database")}-recon-{Guid.NewGuid():N}"[..50]);
        await app.SetRulesAsync(1000, 300, new() { ["books"] = 500 });
        var level2 = Api.NewId("p2");
        var level1 = Api.NewId("p1");
        var level1Code = await app.RegisterPromoterAsync(level1, await app.RegisterPromoterAsync(level2));
        var buyers = new[] { Api.NewId("b"), Api.NewId("b"), Api.NewId("b") };
        foreach (var buyer in buyers) await (await app.VisitAsync(buyer, level1Code)).AssertStatusAsync(HttpStatusCode.OK);

        var now = app.Clock.GetUtcNow();
        var refundFirst = Distribution.OrderEvent("refunded", "o-1", buyers[0], now.AddMinutes(2), Distribution.Line("l1", "books", 2999));
        Assert.Equal("parked", await app.SettleAsync(refundFirst));
        Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("paid", "o-1", buyers[0], now.AddMinutes(1),
            Distribution.Line("l1", "books", 5999), Distribution.Line("l2", "toys", 12345))));
        Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("paid", "o-2", buyers[1], now.AddMinutes(3),
            Distribution.Line("l1", "toys", 100000))));
        app.Clock.Advance(TimeSpan.FromDays(8));
        await app.InvokeTimerAsync("ReleaseCommissions");
        Assert.Equal(HttpStatusCode.Created, (await app.PayoutAsync("batch-1", 1)).StatusCode);
        // After payout: a refund of o-2, and a new order still pending.
        Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("refunded", "o-2", buyers[1], app.Clock.GetUtcNow(),
            Distribution.Line("l1", "toys", 40000))));
        Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("paid", "o-3", buyers[2], app.Clock.GetUtcNow(),
            Distribution.Line("l1", "books", 8000))));
        return (app, level1, level2);
    }

    [Fact]
    public async Task After_a_whole_life_cycle_the_books_reconcile()
    {
        var (app, level1, level2) = await BooksAsync();
        await using var _ = app;
        Assert.Empty(await CheckAsync(app));
        // And the books are not empty: the check had something to check.
        var balance = await app.BalanceAsync(level1);
        Assert.True((long)balance["paid"]! > 0);
        Assert.True((long)balance["available"]! < 0); // the refund after payout
        Assert.True((long)balance["pending"]! > 0);   // o-3
        Assert.True((long)(await app.BalanceAsync(level2))["net"]! > 0);
    }

    [Fact]
    public async Task A_missing_a_changed_a_stray_and_an_unpaid_but_batched_entry_are_each_found()
    {
        var (app, level1, _) = await BooksAsync();
        await using var __ = app;
        var ledger = Ledger(app);
        var entries = (await app.Services.GetRequiredService<LedgerStore>().ListAllAsync(level1, null, CancellationToken.None))
            .OrderBy(e => e.Id, StringComparer.Ordinal).ToList();
        var pending = entries.First(e => e.Status == LedgerStatus.Pending);
        var paid = entries.First(e => e.Status == LedgerStatus.Paid);
        var reversal = entries.First(e => e.Kind == LedgerEntry.Reversal);

        await ledger.DeleteItemAsync<LedgerEntry>(pending.Id, new PartitionKey(level1));
        Assert.Contains(await CheckAsync(app), v => v.Contains(pending.Id) && v.Contains("missing from the ledger"));
        await ledger.CreateItemAsync(pending, new PartitionKey(level1));
        Assert.Empty(await CheckAsync(app));

        await ledger.PatchItemAsync<LedgerEntry>(reversal.Id, new PartitionKey(level1), [PatchOperation.Set("/amount", reversal.Amount - 1)]);
        Assert.Contains(await CheckAsync(app), v => v.Contains(reversal.Id) && v.Contains("record says"));
        await ledger.PatchItemAsync<LedgerEntry>(reversal.Id, new PartitionKey(level1), [PatchOperation.Set("/amount", reversal.Amount)]);

        var stray = pending with { Id = pending.Id + "-copy" };
        await ledger.CreateItemAsync(stray, new PartitionKey(level1));
        Assert.Contains(await CheckAsync(app), v => v.Contains(stray.Id) && v.Contains("not promised"));
        await ledger.DeleteItemAsync<LedgerEntry>(stray.Id, new PartitionKey(level1));

        await ledger.PatchItemAsync<LedgerEntry>(paid.Id, new PartitionKey(level1), [PatchOperation.Set("/status", "available")]);
        var found = await CheckAsync(app);
        Assert.Contains(found, v => v.Contains(paid.Id) && v.Contains("with batch"));
        Assert.Contains(found, v => v.Contains("batch batch-1") && v.Contains("paid in it"));
    }

    [Fact]
    public async Task A_payout_line_that_disagrees_with_the_ledger_or_with_its_parts_is_found()
    {
        var (app, level1, _) = await BooksAsync();
        await using var __ = app;
        var payouts = app.Services.GetRequiredService<Database>().GetContainer("payouts");
        var key = new PartitionKey("batch-1");
        var line = (await app.Services.GetRequiredService<PayoutStore>().FindLineAsync("batch-1", level1, CancellationToken.None))!;
        Assert.Equal((PayoutLine.Paid, 1), (line.State, line.Parts));
        var (amount, count) = await app.Services.GetRequiredService<LedgerStore>().PaidInBatchAsync(level1, "batch-1", CancellationToken.None);
        Assert.Equal((line.Amount, (long)line.Entries), (amount, count)); // the ledger's sum and count for the batch are the line's

        // The line says more than the ledger paid in the batch.
        await payouts.PatchItemAsync<PayoutLine>(line.Id, key, [PatchOperation.Set("/amount", line.Amount + 1)]);
        Assert.Contains(await CheckAsync(app), v => v.Contains("batch batch-1") && v.Contains("the ledger has"));
        await payouts.PatchItemAsync<PayoutLine>(line.Id, key, [PatchOperation.Set("/amount", line.Amount)]);
        Assert.Empty(await CheckAsync(app));

        // An entry marked paid in the batch that its line never listed (o-3, still pending, made "paid in batch-1").
        var stray = (await app.Services.GetRequiredService<LedgerStore>().ListAllAsync(level1, LedgerStatus.Pending, CancellationToken.None)).First();
        await Ledger(app).PatchItemAsync<LedgerEntry>(stray.Id, new PartitionKey(level1),
            [PatchOperation.Set("/status", "paid"), PatchOperation.Set("/payoutBatchId", "batch-1")]);
        Assert.Contains(await CheckAsync(app), v => v.Contains("batch batch-1") && v.Contains($"{line.Entries + 1} paid in it"));
        await Ledger(app).PatchItemAsync<LedgerEntry>(stray.Id, new PartitionKey(level1),
            [PatchOperation.Set("/status", "pending"), PatchOperation.Remove("/payoutBatchId")]);
        Assert.Empty(await CheckAsync(app));

        // A part that lost an id: the parts no longer add up to the line.
        var partId = PayoutPart.PartId(level1, line.PlanId!, 0);
        var part = (await payouts.ReadItemAsync<PayoutPart>(partId, key)).Resource;
        await payouts.PatchItemAsync<PayoutPart>(partId, key, [PatchOperation.Remove("/entryIds/0")]);
        Assert.Contains(await CheckAsync(app), v => v.Contains("the line's parts list") && v.Contains($"{line.Entries - 1} entries"));
        await payouts.PatchItemAsync<PayoutPart>(partId, key, [PatchOperation.Set("/entryIds", part.EntryIds)]);
        Assert.Empty(await CheckAsync(app));
    }

    [Fact]
    public async Task An_entry_left_pending_after_its_time_is_found()
    {
        var (app, level1, _) = await BooksAsync();
        await using var __ = app;
        // o-3 became due a week later, but the release timer never ran.
        app.Clock.Advance(TimeSpan.FromDays(8));
        Assert.Contains(await CheckAsync(app), v => v.Contains(level1) && v.Contains("still pending"));
        await app.InvokeTimerAsync("ReleaseCommissions");
        Assert.Empty(await CheckAsync(app));
    }

    [Fact]
    public async Task The_reconcile_ledger_command_exits_0_on_sound_books_and_1_on_damaged_ones()
    {
        var (app, level1, _) = await BooksAsync();
        await using var __ = app;
        async Task<int> RunAsync()
        {
            using var process = HandlerProcess.Start(["reconcile-ledger"], new Dictionary<string, string> { ["Cosmos__Database"] = app.Database });
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
            return process.ExitCode;
        }

        Assert.Equal(0, await RunAsync());
        var entry = (await app.Services.GetRequiredService<LedgerStore>().ListAllAsync(level1, LedgerStatus.Pending, CancellationToken.None)).First();
        await Ledger(app).DeleteItemAsync<LedgerEntry>(entry.Id, new PartitionKey(level1));
        Assert.Equal(1, await RunAsync());
    }
}
