using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Marketing.Functions.Commissions;
using Marketing.Functions.Expiry;
using Marketing.Functions.Hosting;
using Marketing.Functions.Payouts;
using Marketing.Functions.Promoters;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// From commission to money: the holding period and the ReleaseCommissions timer, payout batches (idempotent,
/// exclusive per promoter, netting refunds, resumable), and who may read and pay what. Each test has its own
/// database: the commission rules are one document per database, a payout batch walks every promoter in the
/// database, and the release timer reads every settlement record with a release due, so nothing may leak between tests.
/// </summary>
public sealed partial class PayoutTests
{
    private static readonly TimeSpan Holding = TimeSpan.FromDays(7); // Commissions:HoldingDays in the test settings

    private static Task<TestApp> StartAsync(string name) => TestApp.StartAsync($"{Settings.Get("Cosmos__Database")}-payout-{name}-{Guid.NewGuid():N}"[..60]);

    [Fact]
    public async Task Commissions_stay_pending_until_availableAt_and_one_run_at_that_very_instant_releases_every_entry()
    {
        await using var app = await StartAsync("holding");
        await app.SetRulesAsync(1000, 500);
        var parent = Api.NewId("p2");
        var promoter = await ReferrerAsync(app, await app.RegisterPromoterAsync(parent));
        var secondBuyer = Api.NewId("b");
        await (await app.VisitAsync(secondBuyer, promoter.Code)).AssertStatusAsync(HttpStatusCode.OK);
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        var paidAt = app.Clock.GetUtcNow();
        // Two orders paid at the same instant: six ledger entries (three lines, two levels), found through the two
        // orders' settlement records, which promise their release at availableAt.
        await PaidAsync(app, promoter.Buyer, Api.NewId("o"), paidAt, Distribution.Line("l1", "books", 12345), Distribution.Line("l2", "toys", 9999));
        await PaidAsync(app, secondBuyer, Api.NewId("o"), paidAt, Distribution.Line("l1", "food", 2500));
        const long level1 = 1234 + 999 + 250; // floor(amount × 1000 / 10000) per line
        const long level2 = 617 + 499 + 125;  // floor(amount × 500 / 10000) per line
        var availableAt = paidAt + Holding;

        Assert.Equal(new Money(level1, 0, 0), await BalanceOfAsync(app, promoter.Id));
        Assert.Equal(new Money(level2, 0, 0), await BalanceOfAsync(app, parent));
        var entries = (await app.CommissionsAsync(promoter.Id)).Concat(await app.CommissionsAsync(parent)).ToList();
        Assert.Equal(6, entries.Count);
        Assert.All(entries, e => Assert.Equal(("pending", Api.Instant(availableAt)), ((string?)e["status"], (string?)e["availableAt"])));

        // A day early, and one millisecond early, the run reads nothing at all.
        app.Clock.Set(availableAt.AddDays(-1));
        Assert.Equal(new Release(0, 0), await ReleaseAsync(app));
        app.Clock.Set(availableAt.AddMilliseconds(-1));
        Assert.Equal(new Release(0, 0), await ReleaseAsync(app));
        Assert.Equal(new Money(level1, 0, 0), await BalanceOfAsync(app, promoter.Id));
        Assert.Equal(new Money(level2, 0, 0), await BalanceOfAsync(app, parent));

        // At availableAt itself, one run releases all six, reading the two records.
        app.Clock.Set(availableAt);
        Assert.Equal(new Release(6, 2), await ReleaseAsync(app));
        Assert.Equal(new Money(0, level1, 0), await BalanceOfAsync(app, promoter.Id));
        Assert.Equal(new Money(0, level2, 0), await BalanceOfAsync(app, parent));
        var released = (await app.CommissionsAsync(promoter.Id)).Concat(await app.CommissionsAsync(parent)).ToList();
        Assert.Equal(6, released.Count);
        Assert.All(released, e => Assert.Equal("available", (string?)e["status"]));
        // Records whose release is done are not read (or released) again.
        Assert.Equal(new Release(0, 0), await ReleaseAsync(app));
    }

    [Fact]
    public async Task Overlapping_release_runs_on_two_instances_release_every_entry_exactly_once()
    {
        await using var first = await StartAsync("overlap");
        await using var second = await TestApp.StartAsync(first.Database); // a second function instance over the same database
        await first.SetRulesAsync(1000, 300);
        var parent = Api.NewId("p2");
        var promoter = await ReferrerAsync(first, await first.RegisterPromoterAsync(parent));
        long level1 = 0, level2 = 0;
        for (var round = 0; round < 3; round++)
        {
            // 12 orders ten minutes apart (so over more than one hour bucket), two lines each, two levels: 48 entries.
            var start = first.Clock.GetUtcNow().AddMinutes(5);
            for (var i = 0; i < 12; i++)
            {
                var at = start.AddMinutes(10 * i);
                first.Clock.Set(at);
                long books = 1000 + 137 * i + round, toys = 5003 * (i + 1);
                await PaidAsync(first, promoter.Buyer, Api.NewId("o"), at, Distribution.Line("l1", "books", books), Distribution.Line("l2", "toys", toys));
                level1 += books * 1000 / 10000 + toys * 1000 / 10000;
                level2 += books * 300 / 10000 + toys * 300 / 10000;
            }
            var due = first.Clock.GetUtcNow() + Holding + TimeSpan.FromMinutes(1);
            first.Clock.Set(due);
            second.Clock.Set(due);

            // Four runs at once, two per instance: each reads the same due entries and tries every release.
            var runs = await Task.WhenAll(ReleaseAsync(first), ReleaseAsync(second), ReleaseAsync(first), ReleaseAsync(second));

            Assert.Equal(48, runs.Sum(r => r.EntriesReleased));
            Assert.Equal(new Money(0, level1, 0), await BalanceOfAsync(first, promoter.Id));
            Assert.Equal(new Money(0, level2, 0), await BalanceOfAsync(first, parent));
            Assert.Equal(0, (await ReleaseAsync(second)).EntriesReleased);
        }
    }

    [Fact]
    public async Task A_release_run_reads_only_the_records_that_are_due_and_a_released_record_is_not_read_again()
    {
        await using var app = await StartAsync("reads");
        await app.SetRulesAsync(1000, 0);
        var promoter = await ReferrerAsync(app);
        var day = new DateTimeOffset(2026, 11, 21, 0, 0, 0, TimeSpan.Zero);
        async Task PaidAtAsync(TimeSpan time, long books, long toys)
        {
            app.Clock.Set(day + time);
            await PaidAsync(app, promoter.Buyer, Api.NewId("o"), day + time, Distribution.Line("l1", "books", books), Distribution.Line("l2", "toys", toys));
        }
        // Two entries per order; due a week later at 02:05, 02:50 and 05:05.
        await PaidAtAsync(new TimeSpan(2, 5, 0), 1000, 2000);  // 100 + 200
        await PaidAtAsync(new TimeSpan(2, 50, 0), 3000, 4000); // 300 + 400
        await PaidAtAsync(new TimeSpan(5, 5, 0), 5000, 6000);  // 500 + 600
        var due = day + Holding;
        async Task<Release> RunAtAsync(TimeSpan time)
        {
            app.Clock.Set(due + time);
            return await ReleaseAsync(app);
        }

        // 02:30: only the 02:05 order is read; 02:50 and 05:05 are not due.
        Assert.Equal(new Release(2, 1), await RunAtAsync(new TimeSpan(2, 30, 0)));
        Assert.Equal(new Money(700 + 1100, 300, 0), await BalanceOfAsync(app, promoter.Id));
        // Its release is closed: it is not read again, and 02:50 is not due a millisecond before.
        Assert.Equal(new Release(0, 0), await RunAtAsync(new TimeSpan(0, 2, 49, 59, 999)));
        Assert.Equal(new Release(2, 1), await RunAtAsync(new TimeSpan(3, 0, 0)));
        Assert.Equal(new Release(0, 0), await RunAtAsync(new TimeSpan(4, 59, 0)));
        Assert.Equal(new Release(0, 0), await RunAtAsync(new TimeSpan(0, 5, 4, 59, 999)));
        Assert.Equal(new Release(2, 1), await RunAtAsync(new TimeSpan(5, 5, 0)));
        Assert.Equal(new Release(0, 0), await RunAtAsync(new TimeSpan(6, 0, 0)));
        Assert.Equal(new Money(0, 2100, 0), await BalanceOfAsync(app, promoter.Id));
    }

    [Fact]
    public async Task A_payout_batch_pays_once_per_batch_id_and_promoters_under_the_minimum_keep_their_balance()
    {
        await using var app = await StartAsync("idempotent");
        await app.SetRulesAsync(1000, 0);
        // A promoter id that a spreadsheet would run as a formula: the CSV must defuse it.
        var formula = await ReferrerAsync(app, id: "=cmd-" + Guid.NewGuid().ToString("N")[..8]);
        var exact = await ReferrerAsync(app);
        var small = await ReferrerAsync(app);
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        var paidAt = app.Clock.GetUtcNow();
        await PaidAsync(app, formula.Buyer, Api.NewId("o"), paidAt, Distribution.Line("l1", "books", 12000), Distribution.Line("l2", "toys", 8000)); // 1200 + 800
        await PaidAsync(app, exact.Buyer, Api.NewId("o"), paidAt, Distribution.Line("l1", "books", 10009)); // 1000: exactly the minimum
        await PaidAsync(app, small.Buyer, Api.NewId("o"), paidAt, Distribution.Line("l1", "books", 9999));  // 999: one under it
        app.Clock.Set(paidAt + Holding);
        Assert.Equal(4, (await ReleaseAsync(app)).EntriesReleased);
        // A newer order is still pending: a batch pays available entries only.
        await PaidAsync(app, formula.Buyer, Api.NewId("o"), app.Clock.GetUtcNow(), Distribution.Line("l1", "books", 5000)); // 500 pending
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        var batchTime = app.Clock.GetUtcNow();

        var first = await RunBatchAsync(app, "payout-1", 1000);

        Assert.Equal((HttpStatusCode.Created, false, "/api/payouts/payout-1"), (first.Status, first.Replayed, first.Location));
        Assert.Contains($"\r\npayout-1,'{formula.Id},CNY,2000,2\r\n", first.Csv);
        Assert.Equal([("'" + formula.Id, new CsvLine(2000, 2)), (exact.Id, new CsvLine(1000, 1))], Rows("payout-1", first.Csv));

        // The same request again, later: the same CSV, marked as a replay, and nothing paid a second time.
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        var again = await RunBatchAsync(app, "payout-1", 1000);
        Assert.Equal((HttpStatusCode.OK, true), (again.Status, again.Replayed));
        Assert.Equal(first.Csv, again.Csv);

        Assert.Equal(new Money(500, 0, 2000), await BalanceOfAsync(app, formula.Id));
        Assert.Equal(new Money(0, 0, 1000), await BalanceOfAsync(app, exact.Id));
        Assert.Equal(new Money(0, 999, 0), await BalanceOfAsync(app, small.Id)); // under the minimum: not paid, still available
        foreach (var id in new[] { formula.Id, exact.Id })
            Assert.All((await app.CommissionsAsync(id)).Where(e => (string?)e["status"] != "pending"), e =>
                Assert.Equal(("paid", "payout-1", Api.Instant(batchTime)), ((string?)e["status"], (string?)e["payoutBatchId"], (string?)e["paidAt"])));
        var stillPending = Assert.Single(await app.CommissionsAsync(formula.Id, "pending"));
        Assert.Null(stillPending["payoutBatchId"]);

        var view = await BatchViewAsync(app, "payout-1");
        Assert.Equal(("payout-1", "completed", 1000L, "CNY", 3000L, 2), ((string?)view["batchId"], (string?)view["state"], (long)view["minimum"]!,
            (string?)view["currency"], (long)view["total"]!, (int)view["promoters"]!));
        Assert.Equal([(formula.Id, 2000L, 2, "paid"), (exact.Id, 1000L, 1, "paid")], Lines(view));
        Assert.Empty(view["skipped"]!.AsArray());
        Assert.Equal(first.Csv, await BatchCsvAsync(app, "payout-1"));

        // The batch id with another minimum is another batch under a used key: refused, and nothing changes.
        await (await app.PayoutAsync("payout-1", 500)).AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "idempotency-key-reused");
        Assert.Equal(new Money(0, 999, 0), await BalanceOfAsync(app, small.Id));
        Assert.Equal(1000L, (long)(await BatchViewAsync(app, "payout-1"))["minimum"]!);

        // A new batch with a lower minimum pays the small one, and nobody twice.
        var next = await RunBatchAsync(app, "payout-2", 999);
        Assert.Equal([(small.Id, new CsvLine(999, 1))], Rows("payout-2", next.Csv));
        Assert.Equal(new Money(500, 0, 2000), await BalanceOfAsync(app, formula.Id));
        await AssertBooksReconcileAsync(app);
    }

    [Fact]
    public async Task Two_simultaneous_requests_with_one_batch_id_pay_once_and_answer_the_same_csv()
    {
        await using var app = await StartAsync("same-id");
        await app.SetRulesAsync(1000, 0);
        var promoters = new List<Referrer>();
        for (var i = 0; i < 10; i++) promoters.Add(await ReferrerAsync(app));
        var paidAt = app.Clock.GetUtcNow().AddMinutes(5);
        app.Clock.Set(paidAt);
        for (var i = 0; i < promoters.Count; i++)
            await PaidAsync(app, promoters[i].Buyer, Api.NewId("o"), paidAt, Distribution.Line("l1", "books", 10000 + 10 * i), Distribution.Line("l2", "toys", 777));
        app.Clock.Set(paidAt + Holding);
        Assert.Equal(20, (await ReleaseAsync(app)).EntriesReleased);

        var answers = await Task.WhenAll(RunBatchAsync(app, "payout-twice", 1), RunBatchAsync(app, "payout-twice", 1));

        // One created it, the other joined it (a replay); both answer every line.
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.Created], answers.Select(a => a.Status).Order());
        Assert.Equal(answers[0].Csv, answers[1].Csv);
        var expected = promoters.Select((p, i) => (p.Id, new CsvLine(1000 + i + 77, 2))).OrderBy(r => r.Id, StringComparer.Ordinal).ToList();
        Assert.Equal(expected, Rows("payout-twice", answers[0].Csv));
        for (var i = 0; i < promoters.Count; i++)
            Assert.Equal(new Money(0, 0, 1000 + i + 77), await BalanceOfAsync(app, promoters[i].Id));
        var view = await BatchViewAsync(app, "payout-twice");
        Assert.Equal("completed", (string?)view["state"]);
        Assert.All(Lines(view), l => Assert.Equal("paid", l.State));
        await AssertBooksReconcileAsync(app);
    }

    [Fact]
    public async Task Two_concurrent_batches_never_pay_the_same_promoter_or_entry_twice()
    {
        await using var first = await StartAsync("race");
        await using var second = await TestApp.StartAsync(first.Database); // the second batch runs on another instance
        await first.SetRulesAsync(1000, 0);
        var promoters = new List<Referrer>();
        for (var i = 0; i < 30; i++) promoters.Add(await ReferrerAsync(first));
        var paidSoFar = promoters.ToDictionary(p => p.Id, _ => 0L);

        for (var round = 1; round <= 3; round++)
        {
            var paidAt = first.Clock.GetUtcNow().AddMinutes(5);
            first.Clock.Set(paidAt);
            await Task.WhenAll(promoters.Select((p, i) => PaidAsync(first, p.Buyer, Api.NewId("o"), paidAt,
                Distribution.Line("l1", "books", 1000 + 100 * i + round), Distribution.Line("l2", "toys", 2000 + 70 * i))));
            first.Clock.Set(paidAt + Holding);
            second.Clock.Set(paidAt + Holding);
            Assert.Equal(60, (await ReleaseAsync(first)).EntriesReleased);
            var before = new Dictionary<string, long>();
            foreach (var p in promoters) before[p.Id] = (await BalanceOfAsync(first, p.Id)).Available;
            Assert.All(before.Values, available => Assert.True(available > 0));

            var (a, b) = ($"race-{round}-a", $"race-{round}-b");
            var batches = await Task.WhenAll(RunBatchAsync(first, a, 1), RunBatchAsync(second, b, 1));

            Assert.All(batches, x => Assert.Equal(HttpStatusCode.Created, x.Status));
            var rowsA = Rows(a, batches[0].Csv).ToDictionary(r => r.Promoter, r => r.Line);
            var rowsB = Rows(b, batches[1].Csv).ToDictionary(r => r.Promoter, r => r.Line);
            // Every promoter is in exactly one of the two batches, for exactly what they had available.
            Assert.Empty(rowsA.Keys.Intersect(rowsB.Keys));
            Assert.Equal(promoters.Select(p => p.Id).Order(StringComparer.Ordinal), rowsA.Keys.Concat(rowsB.Keys).Order(StringComparer.Ordinal));
            Assert.Equal(before.Values.Sum(), rowsA.Values.Concat(rowsB.Values).Sum(l => l.Amount));
            foreach (var p in promoters)
            {
                var (batch, line) = rowsA.TryGetValue(p.Id, out var inA) ? (a, inA) : (b, rowsB[p.Id]);
                Assert.Equal(before[p.Id], line.Amount);
                // Each of this round's entries is paid once, by the batch whose CSV lists the promoter.
                var thisRound = (await first.CommissionsAsync(p.Id)).Where(e => ((string?)e["payoutBatchId"])?.StartsWith($"race-{round}-", StringComparison.Ordinal) == true).ToList();
                Assert.All(thisRound, e => Assert.Equal(("paid", batch), ((string?)e["status"], (string?)e["payoutBatchId"])));
                Assert.Equal((line.Entries, line.Amount), (thisRound.Count, thisRound.Sum(e => (long)e["amount"]!)));
                paidSoFar[p.Id] += line.Amount;
                Assert.Equal(new Money(0, 0, paidSoFar[p.Id]), await BalanceOfAsync(first, p.Id));
            }
            // A batch skips only promoters that the other batch was paying.
            Assert.All((await BatchViewAsync(first, a))["skipped"]!.AsArray(), s => Assert.Contains((string)s!, rowsB.Keys));
            Assert.All((await BatchViewAsync(first, b))["skipped"]!.AsArray(), s => Assert.Contains((string)s!, rowsA.Keys));
            await AssertBooksReconcileAsync(first);
        }
    }

    [Fact]
    public async Task A_refund_after_payout_is_netted_against_later_earnings_and_a_negative_balance_is_never_paid()
    {
        await using var app = await StartAsync("netting");
        await app.SetRulesAsync(1000, 0);
        var promoter = await ReferrerAsync(app);
        var other = await ReferrerAsync(app); // plain earnings: shows each batch does pay someone
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        var refunded = Api.NewId("o");
        await PaidAsync(app, promoter.Buyer, refunded, app.Clock.GetUtcNow(), Distribution.Line("l1", "books", 10000)); // +1000
        await PaidAsync(app, other.Buyer, Api.NewId("o"), app.Clock.GetUtcNow(), Distribution.Line("l1", "books", 3000)); // +300
        app.Clock.Advance(Holding);
        Assert.Equal(2, (await ReleaseAsync(app)).EntriesReleased);
        Assert.Equal([(promoter.Id, new CsvLine(1000, 1)), (other.Id, new CsvLine(300, 1))],
            Rows("net-1", (await RunBatchAsync(app, "net-1", 1)).Csv).OrderBy(r => r.Promoter == other.Id));

        // Refunded after payout: the reversal is available at once (the holding period is over), so the balance goes negative.
        Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("refunded", refunded, promoter.Buyer, app.Clock.GetUtcNow(),
            Distribution.Line("l1", "books", 10000))));
        Assert.Equal(new Money(0, -1000, 1000), await BalanceOfAsync(app, promoter.Id));
        // New earnings, pending for now.
        await PaidAsync(app, promoter.Buyer, Api.NewId("o"), app.Clock.GetUtcNow(), Distribution.Line("l1", "books", 5000)); // +500
        await PaidAsync(app, other.Buyer, Api.NewId("o"), app.Clock.GetUtcNow(), Distribution.Line("l1", "books", 2000));   // +200

        // A debt is never paid out, even with minimum 1 (and is not "skipped" either: there is nothing to pay).
        var net2 = await RunBatchAsync(app, "net-2", 1);
        Assert.Empty(Rows("net-2", net2.Csv));
        Assert.Empty((await BatchViewAsync(app, "net-2"))["skipped"]!.AsArray());

        // Earnings smaller than the debt only shrink it.
        app.Clock.Advance(Holding);
        Assert.Equal(2, (await ReleaseAsync(app)).EntriesReleased);
        Assert.Equal(new Money(0, -500, 1000), await BalanceOfAsync(app, promoter.Id));
        Assert.Equal([(other.Id, new CsvLine(200, 1))], Rows("net-3", (await RunBatchAsync(app, "net-3", 1)).Csv));
        Assert.Empty((await BatchViewAsync(app, "net-3"))["skipped"]!.AsArray());
        Assert.Equal(new Money(0, -500, 1000), await BalanceOfAsync(app, promoter.Id));

        // Earnings that exceed the debt: the batch pays the net, the reversal and the commissions together.
        await PaidAsync(app, promoter.Buyer, Api.NewId("o"), app.Clock.GetUtcNow(), Distribution.Line("l1", "books", 8000)); // +800
        await PaidAsync(app, other.Buyer, Api.NewId("o"), app.Clock.GetUtcNow(), Distribution.Line("l1", "books", 1000));   // +100
        app.Clock.Advance(Holding);
        Assert.Equal(2, (await ReleaseAsync(app)).EntriesReleased);
        Assert.Equal(new Money(0, 300, 1000), await BalanceOfAsync(app, promoter.Id));
        Assert.Equal([(promoter.Id, new CsvLine(300, 3)), (other.Id, new CsvLine(100, 1))],
            Rows("net-4", (await RunBatchAsync(app, "net-4", 1)).Csv).OrderBy(r => r.Promoter == other.Id));

        Assert.Equal(new Money(0, 0, 1300), await BalanceOfAsync(app, promoter.Id));
        var entries = await app.CommissionsAsync(promoter.Id);
        Assert.Equal([("net-1", 1000L), ("net-4", -1000L), ("net-4", 500L), ("net-4", 800L)],
            entries.Select(e => ((string)e["payoutBatchId"]!, (long)e["amount"]!)).Order());
        await AssertBooksReconcileAsync(app);
    }

    [Fact]
    public async Task A_batch_killed_part_way_is_finished_by_repeating_the_request_with_the_lines_it_already_wrote()
    {
        await using var app = await StartAsync("resume");
        await app.SetRulesAsync(1000, 0);
        // More promoters than the batch pays at once (8), so a crash lands between promoters paid and not reached.
        var promoters = new List<Referrer>();
        for (var i = 0; i < 20; i++) promoters.Add(await ReferrerAsync(app));
        var start = app.Clock.GetUtcNow().AddMinutes(5);
        app.Clock.Set(start);
        // First earnings (two entries each), available when the batch starts.
        foreach (var (p, i) in promoters.Select((p, i) => (p, i)))
            await PaidAsync(app, p.Buyer, Api.NewId("o"), start, Distribution.Line("l1", "books", 1000 + 10 * i), Distribution.Line("l2", "toys", 2000));
        var firstEarnings = promoters.Select((p, i) => (p.Id, Amount: 100L + i + 200)).ToDictionary(x => x.Id, x => x.Amount);
        // Second earnings a day later: pending when the batch starts, released while it lies interrupted.
        app.Clock.Set(start.AddDays(1));
        foreach (var p in promoters)
            await PaidAsync(app, p.Buyer, Api.NewId("o"), start.AddDays(1), Distribution.Line("l1", "books", 4000)); // 400
        app.Clock.Set(start + Holding);
        Assert.Equal(40, (await ReleaseAsync(app)).EntriesReleased);

        // The same app, but its Cosmos requests fail after a count: the instance "dies" there.
        var crash = new Crash();
        await using var crashing = app.WithWebHostBuilder(b => b.ConfigureServices(services =>
        {
            services.RemoveAll<CosmosClient>();
            services.AddSingleton(_ => TestCosmos.Client(crash));
        }));
        HttpClient CrashingOperator()
        {
            var client = crashing.CreateClient();
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", app.Token("olivia", ["operator"]));
            return client;
        }
        // Warm up (container metadata) before counting.
        await (await CrashingOperator().GetAsync("/api/payouts/none")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");

        // Crash after 3, 10, 17, ... requests: each attempt resumes the batch and dies further on, until one gets through.
        Dictionary<string, long>? linesAtInterruption = null;
        HttpResponseMessage? finished = null;
        var seen = new List<string>();
        for (var crashAfter = 3; crashAfter < 1000; crashAfter += 7)
        {
            crash.Arm(crashAfter);
            var response = await CrashingOperator().PostAsync("/api/payouts", Api.JsonContent(new { batchId = "resume-1", minimum = 1 }));
            crash.Disarm();
            if (response.IsSuccessStatusCode)
            {
                finished = response;
                break;
            }
            Assert.True((int)response.StatusCode >= 500, $"after {crashAfter} requests: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            if (linesAtInterruption is not null) continue;
            var view = await BatchViewAsync(app, "resume-1");
            Assert.Equal("building", (string?)view["state"]);
            var lines = Lines(view);
            seen.Add($"{crashAfter}:{lines.Count}");
            if (lines.Count is > 0 and < 20)
            {
                // Interrupted midway: some promoters have their line, others not yet. The second earnings become
                // available now; the lines already written must not take them in, the others must.
                linesAtInterruption = lines.ToDictionary(l => l.Promoter, l => l.Amount);
                Assert.All(linesAtInterruption, l => Assert.Equal(firstEarnings[l.Key], l.Value));
                app.Clock.Set(start.AddDays(1) + Holding);
                Assert.Equal(20, (await ReleaseAsync(app)).EntriesReleased);
            }
        }
        Assert.True(linesAtInterruption is not null, "no crash landed between lines: " + string.Join(", ", seen));
        Assert.True(finished is not null, "the batch never got through");

        var done = await ReadBatchAsync(finished);
        Assert.Equal((HttpStatusCode.OK, true), (done.Status, done.Replayed)); // resumed, not created anew
        var rows = Rows("resume-1", done.Csv).ToDictionary(r => r.Promoter, r => r.Line);
        Assert.Equal(20, rows.Count);
        foreach (var p in promoters)
        {
            if (linesAtInterruption.TryGetValue(p.Id, out var written))
            {
                // Paid what its line said when it was written; the later entry waits for the next batch.
                Assert.Equal(new CsvLine(written, 2), rows[p.Id]);
                Assert.Equal(new Money(0, 400, written), await BalanceOfAsync(app, p.Id));
            }
            else
            {
                Assert.Equal(new CsvLine(firstEarnings[p.Id] + 400, 3), rows[p.Id]);
                Assert.Equal(new Money(0, 0, firstEarnings[p.Id] + 400), await BalanceOfAsync(app, p.Id));
            }
        }
        var view2 = await BatchViewAsync(app, "resume-1");
        Assert.Equal("completed", (string?)view2["state"]);
        Assert.Empty(view2["skipped"]!.AsArray()); // its own holds from the killed runs do not lock it out
        Assert.All(Lines(view2), l => Assert.Equal("paid", l.State));
        // Replayed once more on a healthy instance: the same CSV.
        var replay = await RunBatchAsync(app, "resume-1", 1);
        Assert.Equal((HttpStatusCode.OK, true, done.Csv), (replay.Status, replay.Replayed, replay.Csv));
        // Every paid entry is in its line, line amounts are their entries' sum, and no promoter is left held.
        await AssertBooksReconcileAsync(app);
    }

    [Fact]
    public async Task A_promoter_with_two_thousand_entries_is_paid_exactly_once_in_a_batch_killed_part_way_and_no_payout_document_grows_with_them()
    {
        await using var app = await StartAsync("many");
        await app.SetRulesAsync(1000, 0);
        var promoter = await ReferrerAsync(app);
        var other = await ReferrerAsync(app);
        var start = app.Clock.GetUtcNow().AddMinutes(5);
        app.Clock.Set(start);
        // 2,000 entries for one promoter: four orders of 500 lines (the most an order event may have), each line its own amount.
        const int Orders = 4, PerOrder = 500;
        long total = 0;
        for (var o = 0; o < Orders; o++)
        {
            var lines = Enumerable.Range(0, PerOrder).Select(l => Distribution.Line($"l{l}", "books", 1000 + 7 * l + o)).ToArray();
            total += lines.Sum(l => (long)l["amount"]! * 1000 / 10000);
            await PaidAsync(app, promoter.Buyer, Api.NewId("o"), start, lines);
        }
        await PaidAsync(app, other.Buyer, Api.NewId("o"), start, Distribution.Line("l1", "books", 5000)); // 500
        // One more order a day later: pending when the batch starts, released while it lies interrupted.
        await PaidAsync(app, promoter.Buyer, Api.NewId("o"), start.AddDays(1), Distribution.Line("l1", "toys", 9000)); // 900
        app.Clock.Set(start + Holding);
        Assert.Equal(Orders * PerOrder + 1, (await ReleaseAsync(app)).EntriesReleased);
        Assert.Equal(new Money(900, total, 0), await BalanceOfAsync(app, promoter.Id));

        // The batch dies while paying the promoter's entries (after its line, and part of its entries, are written).
        var crash = new Crash();
        await using var crashing = app.WithWebHostBuilder(b => b.ConfigureServices(services =>
        {
            services.RemoveAll<CosmosClient>();
            services.AddSingleton(_ => TestCosmos.Client(crash));
        }));
        var client = crashing.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", app.Token("olivia", ["operator"]));
        await (await client.GetAsync("/api/payouts/none")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found"); // warm up
        crash.Arm(1500);
        var killed = await client.PostAsync("/api/payouts", Api.JsonContent(new { batchId = "many-1", minimum = 1 }));
        crash.Disarm();
        Assert.True((int)killed.StatusCode >= 500, $"{(int)killed.StatusCode} {await killed.Content.ReadAsStringAsync()}");
        var interrupted = Lines(await BatchViewAsync(app, "many-1")).Single(l => l.Promoter == promoter.Id);
        Assert.Equal((total, Orders * PerOrder, "paying"), (interrupted.Amount, interrupted.Entries, interrupted.State));
        var paidSoFar = await BalanceOfAsync(app, promoter.Id);
        Assert.True(paidSoFar.Paid > 0 && paidSoFar.Available > 0, $"not interrupted while paying: {paidSoFar}");
        app.Clock.Set(start.AddDays(1) + Holding);
        Assert.Equal(1, (await ReleaseAsync(app)).EntriesReleased);

        // Repeated on a healthy instance: the line pays what it fixed, all of it, once; the later entry waits.
        var done = await RunBatchAsync(app, "many-1", 1);
        Assert.Equal((HttpStatusCode.OK, true), (done.Status, done.Replayed));
        Assert.Equal([(other.Id, new CsvLine(500, 1)), (promoter.Id, new CsvLine(total, Orders * PerOrder))],
            Rows("many-1", done.Csv).OrderBy(r => r.Promoter == promoter.Id));
        Assert.Equal(new Money(0, 900, total), await BalanceOfAsync(app, promoter.Id));
        var entries = await app.CommissionsAsync(promoter.Id);
        Assert.Equal(Orders * PerOrder, entries.Count(e => (string?)e["payoutBatchId"] == "many-1" && (string?)e["status"] == "paid"));
        await AssertBooksReconcileAsync(app);

        // No document of the batch grows with the entries: the line is a few hundred bytes, and each part of it
        // lists at most 500 ids (2,000 ids in one document, as lines used to hold them, are ~80 KB here, and
        // reach Cosmos DB's 2 MB at ~10k-40k entries).
        var documents = await BatchDocumentsAsync(app, "many-1");
        var line = documents.Single(d => d.Id == PayoutLine.LineId(promoter.Id));
        Assert.True(line.Bytes < 1024, $"line: {line.Bytes} bytes");
        var parts = documents.Where(d => d.Id.StartsWith("part:" + promoter.Id + ":", StringComparison.Ordinal)).ToList();
        Assert.True(parts.Count >= Orders * PerOrder / PayoutPart.MaxEntries, $"{parts.Count} parts");
        Assert.All(documents, d => Assert.True(d.Bytes <= 32 * 1024, $"{d.Id}: {d.Bytes} bytes"));
    }

    /// <summary>Every document of a payout batch (header, lines, parts) as stored: its id and its size in bytes (UTF-8 JSON).</summary>
    private static async Task<List<(string Id, int Bytes)>> BatchDocumentsAsync(TestApp app, string batchId)
    {
        var results = new List<(string, int)>();
        using var iterator = app.Services.GetRequiredService<Database>().GetContainer("payouts").GetItemQueryIterator<System.Text.Json.JsonElement>(
            new QueryDefinition("SELECT * FROM c WHERE c.batchId = @b").WithParameter("@b", batchId),
            requestOptions: new QueryRequestOptions { PartitionKey = new PartitionKey(batchId) });
        while (iterator.HasMoreResults)
            foreach (var document in await iterator.ReadNextAsync())
                results.Add((document.GetProperty("id").GetString()!, System.Text.Encoding.UTF8.GetByteCount(document.GetRawText())));
        return results;
    }

    [Fact]
    public async Task A_promoter_reads_only_their_own_ledger_and_nobody_but_operators_reaches_operator_routes()
    {
        await using var app = await StartAsync("bola");
        await app.SetRulesAsync(1000, 0);
        var alice = await ReferrerAsync(app);
        var bob = await ReferrerAsync(app);
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        await PaidAsync(app, alice.Buyer, Api.NewId("o"), app.Clock.GetUtcNow(), Distribution.Line("l1", "books", 10000), Distribution.Line("l2", "toys", 5000));
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        await PaidAsync(app, alice.Buyer, Api.NewId("o"), app.Clock.GetUtcNow(), Distribution.Line("l1", "books", 7000));
        await PaidAsync(app, bob.Buyer, Api.NewId("o"), app.Clock.GetUtcNow(), Distribution.Line("l1", "books", 3000));
        var aliceIds = (await app.CommissionsAsync(alice.Id)).Select(e => (string)e["id"]!).ToList();
        Assert.Equal(3, aliceIds.Count);

        // Alice pages through her own entries one at a time, newest first.
        var pages = new List<JsonNode>();
        string? token = null;
        do
        {
            var page = await (await app.Customer(alice.Id).GetAsync("/api/promoters/me/commissions?limit=1"
                + (token is null ? "" : "&continuationToken=" + Uri.EscapeDataString(token)))).AssertStatusAsync(HttpStatusCode.OK);
            pages.Add(Assert.Single(page["items"]!.AsArray())!);
            token = (string?)page["continuationToken"];
        } while (token is not null && pages.Count < 10);
        Assert.Equal(aliceIds.Order(), pages.Select(e => (string)e["id"]!).Order());
        Assert.Equal(700L, (long)pages[0]["amount"]!); // the later order first
        Assert.Equal(pages.Select(e => (string)e["createdAt"]!).OrderDescending(StringComparer.Ordinal), pages.Select(e => (string)e["createdAt"]!));

        // The promoter is the token's subject; there is no id to change, and a query parameter naming another is ignored.
        var bobs = await app.CommissionsAsync(bob.Id);
        var bobsEntry = Assert.Single(bobs);
        Assert.Equal(300L, (long)bobsEntry["amount"]!);
        var smuggled = await (await app.Customer(bob.Id).GetAsync($"/api/promoters/me/commissions?promoterId={alice.Id}&promoter={alice.Id}"))
            .AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal([(string)bobsEntry["id"]!], smuggled["items"]!.AsArray().Select(e => (string)e!["id"]!));
        Assert.Equal(new Money(300, 0, 0), await BalanceOfAsync(app, bob.Id));
        // Alice's continuation token does not open Alice's ledger to Bob.
        var alicePage = await (await app.Customer(alice.Id).GetAsync("/api/promoters/me/commissions?limit=1")).AssertStatusAsync(HttpStatusCode.OK);
        var aliceToken = (string?)alicePage["continuationToken"];
        Assert.NotNull(aliceToken);
        var withToken = await app.Customer(bob.Id).GetAsync("/api/promoters/me/commissions?limit=1&continuationToken=" + Uri.EscapeDataString(aliceToken));
        var withTokenBody = await withToken.Content.ReadAsStringAsync();
        // Page tokens are bound to the list they came from (its query and partition): Bob's list refuses Alice's.
        await withToken.AssertProblemAsync(HttpStatusCode.BadRequest, "invalid-page-token");
        Assert.DoesNotContain(aliceIds, id => withTokenBody.Contains(id, StringComparison.Ordinal));

        // A customer who never registered is not a promoter.
        var stranger = Api.NewId("c");
        await (await app.Customer(stranger).GetAsync("/api/promoters/me/commissions")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await app.Customer(stranger).GetAsync("/api/promoters/me/balance")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        // A token with role "promoter" only (no customer role) is enough, and acts on its own subject.
        var asPromoter = await (await app.As(alice.Id, "promoter").GetAsync("/api/promoters/me/commissions")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(aliceIds.Order(), asPromoter["items"]!.AsArray().Select(e => (string)e!["id"]!).Order());
        var promoterBalance = await (await app.As(alice.Id, "promoter").GetAsync("/api/promoters/me/balance")).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(1000L + 500 + 700, (long)promoterBalance["pending"]!);

        // Operator routes: customers, registered promoters and promoter tokens are all refused.
        var rulesBefore = (await (await app.Operator().GetAsync("/api/commission-rules")).AssertStatusAsync(HttpStatusCode.OK)).ToJsonString();
        var rules = new JsonObject { ["level1"] = new JsonObject { ["defaultBps"] = 9000 }, ["level2"] = new JsonObject { ["defaultBps"] = 1000 } };
        foreach (var client in new[] { app.Customer(stranger), app.Customer(alice.Id), app.As(bob.Id, "promoter"), app.As(bob.Id, "promoter", "customer") })
        {
            await (await client.PostAsync("/api/payouts", Api.JsonContent(new { batchId = "stolen", minimum = 1 }))).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
            await (await client.GetAsync("/api/payouts/stolen")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
            await (await client.PutAsync("/api/commission-rules", Api.JsonContent(rules))).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
            await (await client.GetAsync("/api/commission-rules")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
            await (await client.GetAsync("/api/order-events/quarantine")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        }
        await (await app.Anonymous().PostAsync("/api/payouts", Api.JsonContent(new { batchId = "stolen", minimum = 1 }))).AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
        // Nothing happened: no batch, the same rules, the entries untouched.
        await (await app.Operator().GetAsync("/api/payouts/stolen")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        Assert.Equal(rulesBefore, (await (await app.Operator().GetAsync("/api/commission-rules")).AssertStatusAsync(HttpStatusCode.OK)).ToJsonString());
        Assert.Equal(new Money(2200, 0, 0), await BalanceOfAsync(app, alice.Id));
    }

    [Fact]
    public async Task Bad_input_on_payout_and_rules_routes_is_refused_as_problem_json_and_writes_nothing()
    {
        await using var app = await StartAsync("bad-input");
        await app.SetRulesAsync(1000, 200);
        var promoter = await ReferrerAsync(app);
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        await PaidAsync(app, promoter.Buyer, Api.NewId("o"), app.Clock.GetUtcNow(), Distribution.Line("l1", "books", 10000));
        app.Clock.Advance(Holding);
        Assert.Equal(1, (await ReleaseAsync(app)).EntriesReleased);
        var op = app.Operator();

        // (body, batch id to look for afterwards, the field the error names)
        var payouts = new (string Body, string? BatchId, string? Field)[]
        {
            ("{\"batchId\":\"Bad Id!\",\"minimum\":100}", null, "batchId"),
            ("{\"batchId\":\"UPPER\",\"minimum\":100}", null, "batchId"),
            ("{\"batchId\":\"" + new string('a', 65) + "\",\"minimum\":100}", null, "batchId"),
            ("{\"batchId\":\"\",\"minimum\":100}", null, "batchId"),
            ("{\"batchId\":\"zero-minimum\",\"minimum\":0}", "zero-minimum", "minimum"),
            ("{\"batchId\":\"negative-minimum\",\"minimum\":-5}", "negative-minimum", "minimum"),
            ("{\"batchId\":\"huge-minimum\",\"minimum\":1000000000001}", "huge-minimum", "minimum"),
            ("{\"batchId\":\"text-minimum\",\"minimum\":\"100\"}", "text-minimum", null),
            ("{\"batchId\":\"fraction-minimum\",\"minimum\":1.5}", "fraction-minimum", null),
            ("{\"minimum\":100}", null, "batchId"),
            ("{\"batchId\":\"no-minimum\"}", "no-minimum", "minimum"),
            ("{\"batchId\":\"extra-field\",\"minimum\":1,\"promoterId\":\"x\"}", "extra-field", null),
            ("{\"batchId\":null,\"minimum\":1}", null, null),
            ("[]", null, null),
        };
        foreach (var (body, batchId, field) in payouts)
        {
            var problem = await (await op.PostAsync("/api/payouts", Api.JsonContent(body))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
            if (field is not null) Assert.True(problem["errors"]?[field] is not null, $"{body}: {problem.ToJsonString()}");
            if (batchId is not null) await (await op.GetAsync($"/api/payouts/{batchId}")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        }
        await (await op.PostAsync("/api/payouts", Api.JsonContent("{\"batchId\":"))).AssertProblemAsync(HttpStatusCode.BadRequest, "malformed-json");
        await (await op.PostAsync("/api/payouts", new StringContent("{\"batchId\":\"as-text\",\"minimum\":1}", System.Text.Encoding.UTF8, "text/plain")))
            .AssertProblemAsync(HttpStatusCode.UnsupportedMediaType, "unsupported-media-type");
        await (await op.GetAsync("/api/payouts/as-text")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        await (await op.GetAsync("/api/payouts/unknown")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        await (await op.GetAsync("/api/payouts/Bad%20Id!")).AssertProblemAsync(HttpStatusCode.NotFound, "not-found");
        // Nothing was paid by any of them.
        Assert.Equal(new Money(0, 1000, 0), await BalanceOfAsync(app, promoter.Id));
        // The promoter's own list refuses what it cannot use, as problem+json too.
        foreach (var (query, field, type) in new[] { ("status=bogus", "status", "validation-failed"), ("limit=0", "limit", "validation-failed"),
                     ("limit=201", "limit", "validation-failed"), ("continuationToken=not-a-token", "continuationToken", "invalid-page-token") })
        {
            var problem = await (await app.Customer(promoter.Id).GetAsync("/api/promoters/me/commissions?" + query))
                .AssertProblemAsync(HttpStatusCode.BadRequest, type);
            Assert.True(problem["errors"]?[field] is not null, $"{query}: {problem.ToJsonString()}");
        }

        var rulesBefore = (await (await op.GetAsync("/api/commission-rules")).AssertStatusAsync(HttpStatusCode.OK)).ToJsonString();
        var now = app.Clock.GetUtcNow();
        JsonObject Table(int bps, string? category = null, int categoryBps = 0)
            => category is null ? new() { ["defaultBps"] = bps } : new() { ["defaultBps"] = bps, ["categoryBps"] = new JsonObject { [category] = categoryBps } };
        var badRules = new (JsonObject Body, string? Field)[]
        {
            (new() { ["level1"] = Table(10001), ["level2"] = Table(0) }, "level1.defaultBps"),
            (new() { ["level1"] = Table(-1), ["level2"] = Table(0) }, "level1.defaultBps"),
            (new() { ["level1"] = Table(100), ["level2"] = Table(100, "books", 10001) }, "level2.categoryBps.books"),
            (new() { ["level1"] = Table(6000), ["level2"] = Table(4001) }, "defaultBps"),
            (new() { ["level1"] = Table(1000, "books", 8000), ["level2"] = Table(1000, "books", 2001) }, "categoryBps.books"),
            (new() { ["level1"] = Table(1000), ["level2"] = Table(100), ["effectiveFrom"] = Api.Instant(now.AddSeconds(-1)) }, "effectiveFrom"),
            (new() { ["level1"] = Table(1000) }, "level2"),
            (new() { ["level1"] = Table(1000), ["level2"] = Table(100), ["setBy"] = "mallory" }, null),
        };
        foreach (var (body, field) in badRules)
        {
            var problem = await (await op.PutAsync("/api/commission-rules", Api.JsonContent(body))).AssertProblemAsync(HttpStatusCode.BadRequest, "validation-failed");
            if (field is not null) Assert.True(problem["errors"]?[field] is not null, $"{body.ToJsonString()}: {problem.ToJsonString()}");
        }
        Assert.Equal(rulesBefore, (await (await op.GetAsync("/api/commission-rules")).AssertStatusAsync(HttpStatusCode.OK)).ToJsonString());
        // The limits are where they say: exactly 10000 together, from now, is accepted.
        var accepted = await (await op.PutAsync("/api/commission-rules", Api.JsonContent(new JsonObject
        {
            ["level1"] = Table(7000, "books", 9000), ["level2"] = Table(3000, "books", 1000), ["effectiveFrom"] = Api.Instant(now),
        }))).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal(7000, (int)accepted["inForce"]!["level1"]!["defaultBps"]!);
    }


    // ---- helpers ----

    /// <summary>A registered promoter and a buyer bound to them by a referral visit.</summary>
    private sealed record Referrer(string Id, string Code, string Buyer);

    private static async Task<Referrer> ReferrerAsync(TestApp app, string? inviterCode = null, string? id = null)
    {
        id ??= Api.NewId("p");
        var code = await app.RegisterPromoterAsync(id, inviterCode);
        var buyer = Api.NewId("b");
        var visit = await (await app.VisitAsync(buyer, code)).AssertStatusAsync(HttpStatusCode.OK);
        Assert.Equal("bound", (string?)visit["status"]);
        return new(id, code, buyer);
    }

    private static async Task PaidAsync(TestApp app, string buyer, string orderId, DateTimeOffset at, params JsonObject[] lines)
        => Assert.Equal("applied", await app.SettleAsync(Distribution.OrderEvent("paid", orderId, buyer, at, lines)));

    private sealed record Money(long Pending, long Available, long Paid);

    private static async Task<Money> BalanceOfAsync(TestApp app, string promoterId)
    {
        var balance = await app.BalanceAsync(promoterId);
        var money = new Money((long)balance["pending"]!, (long)balance["available"]!, (long)balance["paid"]!);
        Assert.Equal(money.Pending + money.Available + money.Paid, (long)balance["net"]!);
        Assert.Equal("CNY", (string?)balance["currency"]);
        return money;
    }

    /// <summary>
    /// What a ReleaseCommissions run reports: entries released and settlement records read (it must report no failures,
    /// and read no due-index entry: payments settled now promise their release in their record, never in the due index).
    /// </summary>
    private sealed record Release(int EntriesReleased, int RecordsRead);

    private static async Task<Release> ReleaseAsync(TestApp app)
    {
        var report = (await app.InvokeTimerAsync("ReleaseCommissions"))["ReturnValue"]!;
        Assert.Empty(report["Failures"]!.AsArray());
        Assert.Equal(0, (int)report["EntriesRead"]!);
        return new((int)report["EntriesReleased"]!, (int)report["RecordsRead"]!);
    }

    private sealed record BatchAnswer(HttpStatusCode Status, string Csv, bool Replayed, string? Location);

    private static async Task<BatchAnswer> RunBatchAsync(TestApp app, string batchId, long minimum) => await ReadBatchAsync(await app.PayoutAsync(batchId, minimum));

    private static async Task<BatchAnswer> ReadBatchAsync(HttpResponseMessage response)
    {
        var csv = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode is HttpStatusCode.Created or HttpStatusCode.OK, $"{(int)response.StatusCode}: {csv}");
        Assert.Equal("text/csv", response.Content.Headers.ContentType?.MediaType);
        var replayed = response.Headers.TryGetValues("Idempotent-Replayed", out var values) && values.SingleOrDefault() == "true";
        return new(response.StatusCode, csv, replayed, response.Headers.Location?.OriginalString);
    }

    private sealed record CsvLine(long Amount, int Entries);

    /// <summary>The CSV's rows in file order: (promoter_id cell, amount, entries); checks header, batch id and currency.</summary>
    private static List<(string Promoter, CsvLine Line)> Rows(string batchId, string csv)
    {
        Distribution.ParseCsv(csv); // asserts the header
        var rows = csv.Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(r => r.Split(',')).ToList();
        Assert.All(rows, r => Assert.Equal((5, batchId, "CNY"), (r.Length, r[0], r[2])));
        return rows.Select(r => (r[1], new CsvLine(long.Parse(r[3], CultureInfo.InvariantCulture), int.Parse(r[4], CultureInfo.InvariantCulture)))).ToList();
    }

    private static async Task<JsonNode> BatchViewAsync(TestApp app, string batchId)
        => await (await app.Operator().GetAsync($"/api/payouts/{batchId}")).AssertStatusAsync(HttpStatusCode.OK);

    private static List<(string Promoter, long Amount, int Entries, string State)> Lines(JsonNode view)
        => view["lines"]!.AsArray().Select(l => ((string)l!["promoterId"]!, (long)l["amount"]!, (int)l["entries"]!, (string)l["state"]!)).ToList();

    private static async Task<string> BatchCsvAsync(TestApp app, string batchId)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, $"/api/payouts/{batchId}");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/csv"));
        var response = await app.Operator().SendAsync(request);
        var csv = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, csv);
        Assert.Equal("text/csv", response.Content.Headers.ContentType?.MediaType);
        return csv;
    }

    /// <summary>The ledger's invariants (what ops run as reconcile-ledger): entries, lines and holds agree.</summary>
    private static async Task AssertBooksReconcileAsync(TestApp app)
    {
        var s = app.Services;
        Assert.Empty(await LedgerReconciliation.CheckAsync(s.GetRequiredService<PromoterStore>(), s.GetRequiredService<LedgerStore>(),
            s.GetRequiredService<SettlementStore>(), s.GetRequiredService<PayoutStore>(), app.Clock.GetUtcNow(), TimeSpan.FromHours(1),
            CancellationToken.None));
    }
}
