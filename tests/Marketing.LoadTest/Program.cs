// Load tool: drives the function app over real HTTP (Kestrel on loopback) against the Cosmos emulator and
// compares each measured path, in the same run, with the raw operation underneath (one conditional patch).
// Machines are noisy: read the ratios, not the absolute numbers. Three measurements, all by default:
// - claims: ClaimCoupon at a given concurrency vs the raw conditional patch; claims/s, latency percentiles,
//   Cosmos round trips per successful claim, ratio claims/s ÷ raw patches/s.
// - locks: LockCoupon + ConfirmRedemption pairs (order_system) on claimed coupons of a budgeted campaign vs
//   the raw conditional patch; pairs/s, latency of the pair and of each call, round trips per lock and per confirm.
// - expiry: ExpireCoupons (invoked as the Functions host does) after the app's clock is moved past the validity
//   of N claimed coupons; Cosmos operations per expired coupon, duration, coupons/s.
// - settle: SettleCommission (Service Bus payload protocol) on N paid order events of referred buyers vs the raw
//   conditional patch; events/s, latency, Cosmos round trips per event and per redelivered duplicate; then
//   ReleaseCommissions after the holding period: Cosmos operations per released ledger entry.
// - lapse: N locks of a budgeted campaign (order_system, not measured) that lapse; the clock moves past them and
//   ExpireCoupons runs once: locks released/s, Cosmos operations per released lock, and the raw conditional patch
//   at the timer's parallelism in the same run (ratio).
// - release: N paid order events settled (not measured); the clock moves past the holding period and
//   ReleaseCommissions runs once: ledger entries released/s, operations per entry, ratio to the raw patch.
// - flash: a flash sale: N customers (default 5,000) at once (--flash-concurrency, default 64) on a campaign of
//   --flash-stock units (default 500), sharded (--flash-shards, default 16) and unsharded: exactly the stock in
//   coupons, nothing but sold-out otherwise, every shard exact; p50/p99 latency and round trips per answer.
// - budget: the size of a campaign's budget document after --budget-orders orders (default 10,000: lock + confirm,
//   every tenth refunded) and --budget-top-ups top-ups (default 100), measured at 0/25/50/75/100 %, with Cosmos round
//   trips per top-up and per refund. Only HTTP and a raw read of the document: the same code measures older builds.
// - stats: AggregateStats, incremental (folding 100 claims after --stats-history older changes vs into a nearly empty
//   store: Cosmos operations) and fresh (lag under claims paced at --stats-rate/s with a run every --stats-period s).
// - telemetry: the claim path with and without telemetry, as deployed: three handler processes started from this tool's
//   output (the function app's own executable), one collecting nothing, one exporting to Application Insights through
//   the Azure Monitor distro with its default sampling, one exporting every trace; the ingestion endpoint is a loopback
//   stand-in that accepts every item and counts them by type. Claims alternate between the three in rounds
//   (--telemetry-claims N per handler, default 3000): claims/s ratio with ÷ without (target ≥ 0.9), latency, the
//   handler's CPU time per claim, and what reached the stand-in.
// - reminders: SendReminders sending --reminders reminders (default 10,000: one coupon each of as many customers, every
//   fourth opted in to push) in one run: Cosmos operations per reminder (target ≤ 3), the run's time, reminders/s.
//
// Usage (emulators started by scripts/benchmark.sh): dotnet run -c Release --project tests/Marketing.LoadTest --
//   [--claims N] [--concurrency C] [--rounds R] [--locks N] [--expire N] [--expire-campaigns K] [--events N]
//   [--customers N] [--flash-stock S] [--flash-shards K] [--flash-concurrency C] [--budget-orders N] [--budget-top-ups N]
//   [--lapse N] [--lapse-campaigns K] [--releases N] [--stats-history H] [--stats-rate R] [--stats-seconds S] [--stats-period P]
//   [--reminders N] [--telemetry-claims N] [--only claims|telemetry|lapse|locks|expiry|settle|release|flash|budget|stats|reminders[,...]]
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Marketing.Functions.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

var claims = Arg("--claims", 2000);
var concurrency = Arg("--concurrency", 16);
string[] measurements = ["claims", "telemetry", "lapse", "locks", "expiry", "settle", "release", "flash", "budget", "stats", "reminders"];
var only = StringArg("--only", string.Join(',', measurements)).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
if (only.Except(measurements).FirstOrDefault() is { } unknown)
    throw new ArgumentException($"--only: unknown measurement '{unknown}' ({string.Join(", ", measurements)}, comma-separated)");
var flashConcurrency = Arg("--flash-concurrency", 64);
// The app's clock: real time plus an offset the expiry measurement moves forward (tokens follow it too).
var clock = new BenchClock();
string Setting(string name) => Environment.GetEnvironmentVariable(name) ?? throw new InvalidOperationException($"{name} not set: run scripts/benchmark.sh");

// The app serves no files, so its content root can be our own folder.
Environment.SetEnvironmentVariable("ASPNETCORE_TEST_CONTENTROOT_MARKETING_FUNCTIONS", AppContext.BaseDirectory);
// Any type of the function app's assembly will do: the factory runs that assembly's entry point.
await using var app = new WebApplicationFactory<CosmosRequestCounter>().WithWebHostBuilder(b =>
{
    b.UseEnvironment("Production");
    b.UseSetting("Cosmos:Database", "marketing-bench");
    b.UseSetting("Logging:LogLevel:Default", "Warning");
    // Locks of the lock measurement lapse after a day, not 30 minutes, so that the expiry measurement (clock moved
    // 3 hours on) counts coupon expiry only and not the timer's visit to each confirmed lock's due entry.
    b.UseSetting("Redemption:LockMinutes", "1440");
    b.ConfigureServices(services =>
    {
        services.RemoveAll<TimeProvider>();
        services.AddSingleton<TimeProvider>(clock);
    });
});
app.UseKestrel(0);
app.StartServer();
var baseAddress = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
var client = app.Services.GetRequiredService<CosmosClient>();
await CosmosExtensions.ProvisionAsync(client, "marketing-bench", Platform.Containers);
var counter = app.Services.GetRequiredService<CosmosRequestCounter>();

using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = Math.Max(concurrency, flashConcurrency) * 2 }) { BaseAddress = baseAddress, Timeout = TimeSpan.FromMinutes(10) };
// Minted on each use: the measurements that move the clock a day or more on would outlive a token minted once.
string OperatorToken() => Token("bench-operator", "operator");
// Maker-checker: campaigns are approved by someone other than the operator who made them.
string ApproverToken() => Token("bench-approver", "approver");

Console.WriteLine($"Handler at {baseAddress}, Cosmos at {Setting("Cosmos__Endpoint")}, {claims} claims, concurrency {concurrency}, {Environment.ProcessorCount} cores");

var claimsMade = 0; // successful claims of the whole run, warm-up included (each a wallet document here)

// Warm-up (JIT, connection pools, caches), not measured. (Each warm-up claim needs a real token: a bare
// subject as the bearer token only ever warmed the 401 path.)
var warm = await CreateCampaignAsync(200);
await RunAsync(200, i => ClaimAsync(warm, Token($"warm-{Guid.NewGuid():N}", "customer")));

var rounds = Arg("--rounds", 5);
var failed = false;
if (only.Contains("claims")) failed |= !await ClaimBenchmarkAsync();
// Before the clock moves: the handler processes it starts run on real time.
if (only.Contains("telemetry")) failed |= !await TelemetryBenchmarkAsync();
// Before locks: it moves the clock a day on, past the lapse of every lock taken so far (none but its own), so it
// counts its own locks only; the lock measurement's locks, taken after, stay out of every later timer run.
if (only.Contains("lapse")) failed |= !await LapseBenchmarkAsync();
if (only.Contains("locks")) failed |= !await LockBenchmarkAsync();
if (only.Contains("expiry")) failed |= !await ExpiryBenchmarkAsync();
if (only.Contains("settle")) failed |= !await SettleBenchmarkAsync();
if (only.Contains("release")) failed |= !await ReleaseBenchmarkAsync();
if (only.Contains("flash")) failed |= !await FlashSaleBenchmarkAsync();
if (only.Contains("budget")) failed |= !await BudgetBenchmarkAsync();
if (only.Contains("stats")) failed |= !await StatsBenchmarkAsync();
if (only.Contains("reminders")) failed |= !await ReminderBenchmarkAsync();
return failed ? 1 : 0;

// Stats (AggregateStats, docs/stats.md), two measurements:
// 1. Incremental: a fold that catches up everything before (not measured); 100 claims on a new campaign and a fold:
//    Cosmos operations O1 (a nearly empty store). Then --stats-history H wallet documents (default 100,000), written
//    raw as claims leave them, folded (not measured); then 100 claims more and a fold: O2. Target O2 ≤ 2 × O1: the cost
//    of new changes does not grow with what was folded before.
// 2. Freshness: claims paced at --stats-rate per second (default 200) for --stats-seconds (default 60) on one campaign
//    while AggregateStats runs every --stats-period seconds (default 15): after each run, GET .../stats' lagSeconds.
//    Target: the largest lag ≤ the period + the longest run. Also Cosmos operations per folded change.
async Task<bool> StatsBenchmarkAsync()
{
    var ok = true;
    Console.WriteLine();
    Console.WriteLine("Stats: incremental folding");
    await InvokeTimerAsync("AggregateStats"); // catch up everything earlier measurements left
    var small = await CreateCampaignAsync(1000);
    await RunAsync(100, _ => ClaimAsync(small, Token($"bench-{Guid.NewGuid():N}", "customer")));
    var (smallElapsed, smallOps, smallReport) = await InvokeTimerAsync("AggregateStats");

    var history = Arg("--stats-history", 100_000);
    var old = await CreateCampaignAsync(history + 1000);
    var wallets = client.GetContainer("marketing-bench", "wallets");
    var now = clock.GetUtcNow();
    var written = Stopwatch.StartNew();
    var (_, _, wrote) = await RunAsync(history, async i =>
    {
        var customer = $"hist-{i}-{Guid.NewGuid():N}"[..24];
        var coupon = new Marketing.Functions.Wallet.Coupon
        {
            Id = Marketing.Functions.Wallet.CouponIds.New(old), Code = "HIST-" + i, CampaignId = old, CampaignName = "Benchmark",
            Kind = Marketing.Functions.Campaigns.DiscountKind.AmountOff, AmountOff = 1000, Currency = "CNY",
            ClaimedOn = Marketing.Functions.Campaigns.Channel.App, ClaimedAt = now, ValidFrom = now, ValidTo = now.AddDays(7),
            IdempotencyKey = Guid.NewGuid().ToString(), RequestHash = "bench", Response = "{}",
        };
        var wallet = new Marketing.Functions.Wallet.CampaignWallet { Id = old, CustomerId = customer, CampaignId = old, Coupons = [coupon], Keys = [coupon.IdempotencyKey] };
        await wallets.CreateItemAsync(wallet, new PartitionKey(customer), new ItemRequestOptions { EnableContentResponseOnWrite = false });
        return true;
    }, parallelism: 32);
    Console.WriteLine($"history: {wrote} wallet documents written raw in {written.Elapsed.TotalSeconds:F0} s (not measured)");
    // Folded until caught up (a run on this busy machine may stop with work left, or fail on a call's deadline).
    var historyTime = Stopwatch.StartNew();
    for (var attempt = 0; attempt < 20; attempt++)
    {
        var (_, _, historyReport) = await InvokeTimerAsync("AggregateStats");
        if (historyReport is JsonObject h && Field(h, "cursorsCaughtUp")?.GetValue<int>() == 3) break;
    }
    Console.WriteLine($"history folded in {historyTime.Elapsed.TotalSeconds:F0} s (not measured)");

    await RunAsync(100, _ => ClaimAsync(small, Token($"bench-{Guid.NewGuid():N}", "customer")));
    var (afterElapsed, afterOps, afterReport) = await InvokeTimerAsync("AggregateStats");
    Console.WriteLine();
    Console.WriteLine("| fold of 100 new claims | Cosmos operations | duration ms | report |");
    Console.WriteLine("|---|---|---|---|");
    Console.WriteLine($"| into a nearly empty store | {smallOps} | {smallElapsed.TotalMilliseconds:F0} | {smallReport?.ToJsonString()} |");
    Console.WriteLine($"| after {history:N0} older changes | {afterOps} | {afterElapsed.TotalMilliseconds:F0} | {afterReport?.ToJsonString()} |");
    Console.WriteLine($"| ratio (target ≤ 2) | {afterOps / (double)smallOps:F2} | {afterElapsed / smallElapsed:F2} | |");
    if (afterOps > 2 * smallOps)
    {
        Console.WriteLine($"FAIL: {afterOps} operations after the history, more than twice {smallOps}");
        ok = false;
    }

    // Freshness under sustained claims.
    var rate = Arg("--stats-rate", 200);
    var seconds = Arg("--stats-seconds", 60);
    var period = TimeSpan.FromSeconds(Arg("--stats-period", 15));
    var hot = await CreateCampaignAsync(rate * seconds + 1000);
    Console.WriteLine();
    Console.WriteLine($"Stats: freshness, claims paced at {rate}/s for {seconds} s, AggregateStats every {period.TotalSeconds:F0} s");
    var load = Stopwatch.StartNew();
    var sent = 0;
    var succeeded = 0;
    var inFlight = new List<Task>();
    var pacing = Task.Run(async () =>
    {
        using var gate = new SemaphoreSlim(64);
        var total = rate * seconds;
        for (var i = 0; i < total; i++)
        {
            var due = TimeSpan.FromSeconds(i / (double)rate);
            if (load.Elapsed < due) await Task.Delay(due - load.Elapsed);
            await gate.WaitAsync();
            Interlocked.Increment(ref sent);
            var task = Task.Run(async () =>
            {
                try { if (await ClaimAsync(hot, Token($"bench-{Guid.NewGuid():N}", "customer"))) Interlocked.Increment(ref succeeded); }
                finally { gate.Release(); }
            });
            lock (inFlight) inFlight.Add(task);
        }
        Task[] all;
        lock (inFlight) all = [.. inFlight];
        await Task.WhenAll(all);
    });
    async Task<double> LagAsync()
    {
        using var read = new HttpRequestMessage(HttpMethod.Get, $"/api/campaigns/{hot}/stats");
        read.Headers.Authorization = new AuthenticationHeaderValue("Bearer", OperatorToken());
        using var answer = await http.SendAsync(read);
        return (double?)JsonNode.Parse(await answer.Content.ReadAsStringAsync())?["lagSeconds"] ?? double.NaN;
    }
    // The lag is largest just before a run (the last catch-up was a period and a run ago) and smallest just after.
    var runs = new List<(double LagBefore, double Lag, double RunSeconds, long Operations, long Changes)>();
    while (!pacing.IsCompleted)
    {
        await Task.WhenAny(pacing, Task.Delay(period));
        var lagBefore = await LagAsync();
        var (runElapsed, _, report) = await InvokeTimerAsync("AggregateStats");
        var changes = report is JsonObject r && Field(r, "changes") is { } c ? c.GetValue<long>() : 0;
        // The run's own requests (the claims beside it are not counted).
        var runOps = report is JsonObject o && Field(o, "cosmosRequests") is { } q ? q.GetValue<long>() : -1;
        runs.Add((lagBefore, await LagAsync(), runElapsed.TotalSeconds, runOps, changes));
    }
    Console.WriteLine($"claims: {succeeded}/{sent} in {load.Elapsed.TotalSeconds:F0} s = {succeeded / load.Elapsed.TotalSeconds:F0}/s");
    Console.WriteLine();
    Console.WriteLine("| run | lagSeconds before the run | after | run s | Cosmos operations | changes folded | operations per change |");
    Console.WriteLine("|---|---|---|---|---|---|---|");
    for (var i = 0; i < runs.Count; i++)
        Console.WriteLine($"| {i + 1} | {runs[i].LagBefore:F1} | {runs[i].Lag:F1} | {runs[i].RunSeconds:F1} | {runs[i].Operations} | {runs[i].Changes} | {(runs[i].Changes > 0 ? (runs[i].Operations / (double)runs[i].Changes).ToString("F2") : "-")} |");
    var worstLag = runs.Max(r => r.LagBefore);
    Console.WriteLine($"operations per folded change over all runs: {runs.Sum(r => r.Operations) / (double)Math.Max(1, runs.Sum(r => r.Changes)):F2}");
    var bound = period.TotalSeconds + runs.Max(r => r.RunSeconds);
    Console.WriteLine($"| largest lag before a run | {worstLag:F1} s | bound: period {period.TotalSeconds:F0} s + longest run {runs.Max(r => r.RunSeconds):F1} s = {bound:F1} s | | | | |");
    if (!(worstLag <= bound))
    {
        Console.WriteLine($"FAIL: lag {worstLag:F1} s over {bound:F1} s");
        ok = false;
    }
    return ok;
}

// Budget document size: one unsharded budgeted campaign, N customers each claim a coupon and place one order (lock,
// confirm); every tenth order is refunded; top-ups are spread over the run. The budget document (and every shard, if
// any) is read raw after each quarter; the largest size is what the issue asks about. Round trips per top-up and per
// refund are counted over separate phases of each (nothing else runs then).
async Task<bool> BudgetBenchmarkAsync()
{
    var n = Arg("--budget-orders", 10_000);
    var topUps = Arg("--budget-top-ups", 100);
    var campaign = await CreateCampaignAsync(n, terms => terms["budget"] = (long)n * 1000 * 2);
    Console.WriteLine();
    Console.WriteLine($"Budget document: {n} orders (lock + confirm), every tenth refunded, {topUps} top-ups; campaign {campaign}, concurrency {concurrency}");
    var customers = Enumerable.Range(0, n).Select(_ => $"bench-{Guid.NewGuid():N}").ToArray();
    var orders = Enumerable.Range(0, n).Select(_ => $"bench-{Guid.NewGuid():N}").ToArray();
    var couponIds = new string?[n];
    var orderSystem = Token("bench-order-system", "order_system");
    var errors = new ErrorLog();
    var stock = client.GetContainer("marketing-bench", "stock");
    var sizes = new List<string>();
    long refundTrips = 0, topUpTrips = 0;
    int refunds = 0, toppedUp = 0;

    async Task<int> LargestAsync()
    {
        var largest = 0;
        for (var k = 0; k < 64; k++)
        {
            using var response = await stock.ReadItemStreamAsync("budget", new PartitionKey(k == 0 ? campaign : $"{campaign}~{k}"));
            if (!response.IsSuccessStatusCode) break;
            using var buffer = new MemoryStream();
            await response.Content.CopyToAsync(buffer);
            largest = Math.Max(largest, (int)buffer.Length);
        }
        return largest;
    }

    sizes.Add($"0: {await LargestAsync()} B");
    const int quarters = 4;
    for (var q = 0; q < quarters; q++)
    {
        var (from, to) = (n * q / quarters, n * (q + 1) / quarters);
        await RunAsync(to - from, async j =>
        {
            var i = from + j;
            return (couponIds[i] = await ClaimCouponAsync(campaign, Token(customers[i], "customer"))) is not null;
        });
        await RunAsync(to - from, async j =>
        {
            var i = from + j;
            var body = new JsonObject
            {
                ["orderId"] = orders[i], ["customerId"] = customers[i], ["couponId"] = couponIds[i],
                ["order"] = new JsonObject
                {
                    ["channel"] = "app", ["currency"] = "CNY",
                    ["lines"] = new JsonArray(new JsonObject { ["sku"] = "s1", ["category"] = "shoes", ["unitPrice"] = 30000, ["quantity"] = 1 }),
                },
            };
            return await SendAsync(HttpMethod.Post, "/api/redemptions", body.ToJsonString(), orderSystem, HttpStatusCode.Created, "lock", errors)
                && await SendAsync(HttpMethod.Post, $"/api/redemptions/{orders[i]}/confirm", null, orderSystem, HttpStatusCode.OK, "confirm", errors);
        });
        var refunding = Enumerable.Range(from, to - from).Where(i => i % 10 == 0).ToArray();
        var before = counter.Count;
        var (_, _, refunded) = await RunAsync(refunding.Length, j =>
            SendAsync(HttpMethod.Post, $"/api/redemptions/{orders[refunding[j]]}/refund", null, orderSystem, HttpStatusCode.OK, "refund", errors));
        refundTrips += counter.Count - before;
        refunds += refunded;
        var share = topUps * (q + 1) / quarters - topUps * q / quarters;
        before = counter.Count;
        var (_, _, added) = await RunAsync(share, async _ =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{campaign}/budget")
            {
                Content = new StringContent("""{"amount":1000,"reason":"benchmark top-up"}""", Encoding.UTF8, "application/json"),
            };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", OperatorToken());
            request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
            using var response = await http.SendAsync(request);
            if (response.StatusCode == HttpStatusCode.OK) return true;
            errors.Add($"top-up: {(int)response.StatusCode} {Truncate(await response.Content.ReadAsStringAsync())}");
            return false;
        });
        topUpTrips += counter.Count - before;
        toppedUp += added;
        sizes.Add($"{to}: {await LargestAsync()} B");
    }
    Console.WriteLine($"largest budget document after orders: {string.Join(", ", sizes)}");
    Console.WriteLine($"refunds: {refunds}, Cosmos round trips per refund {(double)refundTrips / Math.Max(1, refunds):F2}; " +
        $"top-ups: {toppedUp}, per top-up {(double)topUpTrips / Math.Max(1, toppedUp):F2}");
    errors.Print("status other than 201 for claim/lock, 200 for confirm, refund and top-up");
    return errors.Count == 0;
}

// Settlement: 20 promoters (every other one invited by the previous, so half the orders also pay level 2), one
// buyer per event bound by a referral visit (not measured), rules of 10 % / 3 %. Each event is a paid order of
// two lines (so 4 ledger entries when level 2 exists, 2 otherwise), delivered once in rounds alternating with
// the raw conditional patch; then every event is delivered again (a duplicate: must write nothing). Then the
// clock moves past the holding period and ReleaseCommissions runs once.
async Task<bool> SettleBenchmarkAsync()
{
    var n = Arg("--events", 2000);
    var perRound = n / rounds;
    n = perRound * rounds;
    var errors = new ErrorLog();
    var (buyers, bound) = await ReferredBuyersAsync(n, errors);
    Console.WriteLine();
    Console.WriteLine($"Settlement: {n} paid order events (2 lines each) of {bound} referred buyers, 20 promoters (10 with a level-2 parent), " +
        $"in {rounds} rounds at concurrency {concurrency}; then every event again (duplicates); then ReleaseCommissions");

    var paidAt = clock.GetUtcNow();
    var bodies = Enumerable.Range(0, n).Select(i => new JsonObject
    {
        ["eventId"] = $"ev-{Guid.NewGuid():N}", ["type"] = "paid", ["orderId"] = $"o-{Guid.NewGuid():N}", ["buyerId"] = buyers[i],
        ["occurredAt"] = paidAt.ToString("O"), ["currency"] = "CNY",
        ["lines"] = new JsonArray(
            new JsonObject { ["lineId"] = "l1", ["category"] = "books", ["amount"] = 5999 },
            new JsonObject { ["lineId"] = "l2", ["category"] = "toys", ["amount"] = 12345 }),
    }.ToJsonString()).ToArray();
    async Task<bool> DeliverAsync(int i, string expected, int deliveryCount = 1)
    {
        var payload = new JsonObject
        {
            ["Data"] = new JsonObject { ["message"] = bodies[i] },
            ["Metadata"] = new JsonObject { ["MessageId"] = Guid.NewGuid().ToString("N"), ["DeliveryCount"] = deliveryCount },
        };
        using var response = await http.PostAsync("/SettleCommission", new StringContent(payload.ToJsonString(), Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        if (response.StatusCode == HttpStatusCode.OK && JsonNode.Parse(text)?["ReturnValue"]?["Outcome"]?.GetValue<string>() == expected) return true;
        errors.Add($"deliver {i}: {(int)response.StatusCode} {Truncate(text)}");
        return false;
    }

    var rawPatch = await RawPatchAsync(n * 10);
    var latencies = new List<double>();
    var rawLatencies = new List<double>();
    var ratios = new List<double>();
    var settled = 0;
    var settleTime = TimeSpan.Zero;
    var rawTime = TimeSpan.Zero;
    var settleOps = 0L;
    for (var round = 0; round < rounds; round++)
    {
        var offset = round * perRound;
        var before = counter.Count;
        var (elapsed, lat, ok) = await RunAsync(perRound, i => DeliverAsync(offset + i, "applied"));
        settleOps += counter.Count - before;
        var (rawElapsed, raw, _) = await RunAsync(perRound, _ => rawPatch());
        latencies.AddRange(lat);
        rawLatencies.AddRange(raw);
        settled += ok;
        settleTime += elapsed;
        rawTime += rawElapsed;
        ratios.Add(ok / elapsed.TotalSeconds / (perRound / rawElapsed.TotalSeconds));
    }
    var beforeDuplicates = counter.Count;
    var (duplicateElapsed, duplicateLatencies, duplicates) = await RunAsync(n, i => DeliverAsync(i, "duplicate"));
    var perDuplicate = (double)(counter.Count - beforeDuplicates) / Math.Max(1, duplicates);
    // The same events once more as Service Bus redelivers a message (delivery count 2): the record is read first.
    var beforeRedeliveries = counter.Count;
    var (_, _, redelivered) = await RunAsync(n, i => DeliverAsync(i, "duplicate", deliveryCount: 2));
    var perRedelivery = (double)(counter.Count - beforeRedeliveries) / Math.Max(1, redelivered);

    var rate = settled / settleTime.TotalSeconds;
    var rawRate = n / rawTime.TotalSeconds;
    double[] lats = [.. latencies], raws = [.. rawLatencies];
    Console.WriteLine();
    Console.WriteLine("| measure | paid event (SettleCommission) | duplicate delivery | raw conditional patch |");
    Console.WriteLine("|---|---|---|---|");
    Console.WriteLine($"| operations/s | {rate:F0} | {duplicates / duplicateElapsed.TotalSeconds:F0} | {rawRate:F0} |");
    foreach (var p in new[] { 50, 95, 99 })
        Console.WriteLine($"| p{p} latency ms | {P(lats, p):F1} | {P(duplicateLatencies, p):F1} | {P(raws, p):F1} |");
    Console.WriteLine();
    Console.WriteLine($"settled {settled}/{n}, duplicates {duplicates}/{n}; Cosmos round trips per paid event: {(double)settleOps / Math.Max(1, settled):F2} " +
        $"(~4 ledger entries each for half the events, 2 for the other half), per duplicate: {perDuplicate:F2} (a new message), " +
        $"{perRedelivery:F2} (redelivered, {redelivered}/{n}); ratio events/s ÷ raw patches/s: " +
        $"{rate / rawRate:F2} overall, median {ratios.Order().ElementAt(ratios.Count / 2):F2} of rounds [{string.Join(", ", ratios.Select(r => r.ToString("F2")))}]");

    // Release after the holding period: one timer run.
    clock.Advance(TimeSpan.FromDays(8));
    var at = clock.GetUtcNow();
    var timer = new JsonObject { ["ScheduleStatus"] = new JsonObject { ["Last"] = at.AddMinutes(-5).ToString("O"), ["Next"] = at.AddMinutes(5).ToString("O"), ["LastUpdated"] = at.AddMinutes(-5).ToString("O") }, ["IsPastDue"] = false }.ToJsonString();
    var timerPayload = new JsonObject { ["Data"] = new JsonObject { ["timer"] = timer }, ["Metadata"] = new JsonObject { ["timer"] = timer } };
    var beforeRelease = counter.Count;
    var started = Stopwatch.StartNew();
    using var released = await http.PostAsync("/ReleaseCommissions", new StringContent(timerPayload.ToJsonString(), Encoding.UTF8, "application/json"));
    var releaseElapsed = started.Elapsed;
    var releaseOps = counter.Count - beforeRelease;
    var report = JsonNode.Parse(await released.Content.ReadAsStringAsync())?["ReturnValue"];
    var entries = report?["EntriesReleased"]?.GetValue<int>() ?? 0;
    Console.WriteLine($"ReleaseCommissions: {entries} entries released in {releaseElapsed.TotalSeconds:F2} s ({entries / releaseElapsed.TotalSeconds:F0}/s), " +
        $"{releaseOps} Cosmos operations = {(entries > 0 ? releaseOps / (double)entries : 0):F3} per entry; report {report?.ToJsonString()}");
    errors.Print();
    return settled == n && duplicates == n && redelivered == n && entries == n * 3 && errors.Count == 0;
}

// Flash sale (秒杀): every customer claims once, all at once, on a campaign with far less stock than customers: on a
// sharded campaign and, for comparison, an unsharded one. Correctness first (exactly the stock in coupons, every
// other answer 409 sold-out, every shard's issued + remaining = total and nothing negative), then latency of all
// answers and Cosmos round trips. The emulator is one process on this machine: the figures say nothing about Azure
// throughput (docs/claiming.md models that), only about round trips and the shape of the latency distribution.
async Task<bool> FlashSaleBenchmarkAsync()
{
    var customers = Arg("--customers", 5000);
    var stock = Arg("--flash-stock", 500);
    var shards = Arg("--flash-shards", 16);
    Console.WriteLine();
    Console.WriteLine($"Flash sale: {customers} customers, one claim each, concurrency {flashConcurrency}, stock {stock}; sharded ({shards} shards) and unsharded");
    Console.WriteLine();
    Console.WriteLine("| campaign | coupons | sold-out | other | p50 ms | p99 ms | p99/p50 | p50 201 ms | p50 sold-out ms | Cosmos calls per answer | per coupon (if 2) → per sold-out | shards exact |");
    Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
    var ok = true;
    foreach (var k in new[] { shards, 1 })
    {
        var campaign = await CreateCampaignAsync(stock, terms => { if (k > 1) terms["stockShards"] = k; });
        var tokens = Enumerable.Range(0, customers).Select(_ => Token($"flash-{Guid.NewGuid():N}", "customer")).ToArray();
        var statuses = new int[customers];
        var errors = new ErrorLog();
        var before = counter.Count;
        var retries = 0;
        var (_, latencies, _) = await RunAsync(customers, async i =>
        {
            // A 503 busy (a Cosmos call past its deadline on an overloaded machine) is retried with the same key, as a
            // client does: it then gets the claim's first answer (its coupon, if the wallet write landed) or a new one.
            var key = Guid.NewGuid().ToString();
            HttpResponseMessage response;
            string body;
            for (var attempt = 0; ; attempt++)
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{campaign}/claims")
                {
                    Content = new StringContent("""{"channel":"app"}""", Encoding.UTF8, "application/json"),
                };
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", tokens[i]);
                request.Headers.Add("Idempotency-Key", key);
                response = await http.SendAsync(request);
                body = await response.Content.ReadAsStringAsync();
                if (response.StatusCode != HttpStatusCode.ServiceUnavailable || attempt == 2) break;
                response.Dispose();
                Interlocked.Increment(ref retries);
            }
            using var _ = response;
            statuses[i] = response.StatusCode == HttpStatusCode.Created ? 201
                : response.StatusCode == HttpStatusCode.Conflict && body.Contains(":sold-out\"", StringComparison.Ordinal) ? 409 : (int)response.StatusCode;
            if (statuses[i] is not (201 or 409)) errors.Add($"claim {i}: {(int)response.StatusCode} {Truncate(body)}");
            return statuses[i] == 201;
        }, flashConcurrency);
        var calls = counter.Count - before;
        var coupons = statuses.Count(s => s == 201);
        var soldOut = statuses.Count(s => s == 409);
        var other = customers - coupons - soldOut;
        double[] created = [.. latencies.Where((_, i) => statuses[i] == 201)], refused = [.. latencies.Where((_, i) => statuses[i] == 409)];
        var counters = await app.Services.GetRequiredService<Marketing.Functions.Campaigns.StockStore>().FindShardsAsync(campaign, k);
        var exact = counters.Count == k && counters.All(c => c.Issued + c.Remaining == c.Total && c.Remaining == 0 && c.Issued >= 0)
            && counters.Sum(c => c.Issued) == stock;
        var p50 = P(latencies, 50);
        var p99 = P(latencies, 99);
        Console.WriteLine($"| {(k > 1 ? $"sharded ({k})" : "unsharded")} | {coupons} | {soldOut} | {other} ({retries} retried) | {p50:F1} | {p99:F1} | {p99 / p50:F2} | " +
            $"{(created.Length > 0 ? P(created, 50) : 0):F1} | {(refused.Length > 0 ? P(refused, 50) : 0):F1} | {(double)calls / customers:F2} | " +
            $"{(soldOut > 0 ? (calls - 2.0 * coupons) / soldOut : 0):F2} | {(exact ? "yes" : "NO")} |");
        errors.Print("answers other than 201 or 409 sold-out");
        ok &= coupons == stock && other == 0 && exact;
    }
    return ok;
}

async Task<bool> ClaimBenchmarkAsync()
{
    var campaign = await CreateCampaignAsync(claims);
    var customers = Enumerable.Range(0, claims).Select(i => Token($"bench-{Guid.NewGuid():N}", "customer")).ToArray();

    // The raw operation at the same concurrency: a conditional decrement of one counter document.
    var container = client.GetContainer("marketing-bench", "stock");
    var rawId = Guid.NewGuid().ToString();
    await container.CreateItemAsync(new { id = "stock", campaignId = rawId, remaining = claims * 10, open = true }, new PartitionKey(rawId));
    var patchOptions = new PatchItemRequestOptions { FilterPredicate = "FROM c WHERE c.open = true AND c.remaining > 0", EnableContentResponseOnWrite = false };

    // Claims and raw patches alternate in rounds, so drift in the machine's load hits both alike; the ratio
    // reported is the median of the rounds' ratios.
    var perRound = claims / rounds;
    var claimLatencies = new List<double>();
    var rawLatencies = new List<double>();
    var ratios = new List<double>();
    var created = 0;
    var claimTime = TimeSpan.Zero;
    var rawTime = TimeSpan.Zero;
    var before = counter.Count;
    for (var round = 0; round < rounds; round++)
    {
        var offset = round * perRound;
        var (claimElapsed, latencies, ok) = await RunAsync(perRound, i => ClaimAsync(campaign, customers[offset + i]));
        var cosmosAfterClaims = counter.Count;
        var (rawElapsed, raw, _) = await RunAsync(perRound, async _ =>
        {
            await container.PatchItemAsync<object>("stock", new PartitionKey(rawId), [PatchOperation.Increment("/remaining", -1)], patchOptions);
            return true;
        });
        before += counter.Count - cosmosAfterClaims; // raw patches go through the same client: not claim round trips
        claimLatencies.AddRange(latencies);
        rawLatencies.AddRange(raw);
        created += ok;
        claimTime += claimElapsed;
        rawTime += rawElapsed;
        ratios.Add(ok / claimElapsed.TotalSeconds / (perRound / rawElapsed.TotalSeconds));
    }
    var roundTrips = (double)(counter.Count - before) / created;

    var claimRate = created / claimTime.TotalSeconds;
    var rawRate = rounds * perRound / rawTime.TotalSeconds;
    var latencyArray = claimLatencies.ToArray();
    var rawArray = rawLatencies.ToArray();
    Console.WriteLine();
    Console.WriteLine("| measure | claims over HTTP | raw conditional patch |");
    Console.WriteLine("|---|---|---|");
    Console.WriteLine($"| operations/s | {claimRate:F0} | {rawRate:F0} |");
    Console.WriteLine($"| p50 latency ms | {P(latencyArray, 50):F1} | {P(rawArray, 50):F1} |");
    Console.WriteLine($"| p95 latency ms | {P(latencyArray, 95):F1} | {P(rawArray, 95):F1} |");
    Console.WriteLine($"| p99 latency ms | {P(latencyArray, 99):F1} | {P(rawArray, 99):F1} |");
    Console.WriteLine();
    Console.WriteLine($"successful claims: {created}/{rounds * perRound}; Cosmos round trips per successful claim: {roundTrips:F2}; " +
        $"ratio claims/s ÷ raw patches/s: {claimRate / rawRate:F2} overall, median {ratios.Order().ElementAt(ratios.Count / 2):F2} of rounds [{string.Join(", ", ratios.Select(r => r.ToString("F2")))}]");
    return created == rounds * perRound;
}

// Telemetry on the claim path (docs/operations.md): see the header. Separate processes, because OpenTelemetry listens
// process-wide (a static meter, ActivitySource listeners): a second app in this process would make the "without" side
// pay for the listeners of the "with" side.
async Task<bool> TelemetryBenchmarkAsync()
{
    var perHandler = Arg("--telemetry-claims", 3000);
    var perRound = perHandler / rounds;
    await using var ingestion = await IngestionStandIn.StartAsync();
    // Key-based ingestion to the stand-in: without APPLICATIONINSIGHTS_AUTHENTICATION_STRING the exporter sends no Entra
    // token (Azure.Core refuses a bearer token over plain http); in Azure the token is fetched once an hour and cached.
    // One instrumentation key per handler: the stand-in counts what each sent.
    string ConnectionString(string key) => $"InstrumentationKey={ingestion.Key(key)};IngestionEndpoint={ingestion.Address};LiveEndpoint={ingestion.Address}";
    HandlerProcess[] handlers =
    [
        HandlerProcess.Start("without telemetry", new()),
        HandlerProcess.Start("exporting (default sampling)", new() { ["APPLICATIONINSIGHTS_CONNECTION_STRING"] = ConnectionString("default") }),
        // The rate limit far above the claim rate: every request and Cosmos call exported. (The distro's documented
        // OTEL_TRACES_SAMPLER variables were measured here to change nothing under UseAzureMonitor 1.6.0.)
        HandlerProcess.Start("exporting every trace", new()
        {
            ["APPLICATIONINSIGHTS_CONNECTION_STRING"] = ConnectionString("every"),
            ["Telemetry__TracesPerSecond"] = "100000",
        }),
    ];
    try
    {
        foreach (var handler in handlers) await handler.WaitReadyAsync();
        var campaigns = new string[handlers.Length];
        for (var h = 0; h < handlers.Length; h++) campaigns[h] = await CreateCampaignAsync(perHandler + 200);
        Console.WriteLine();
        Console.WriteLine($"Telemetry on the claim path: {rounds} rounds of {perRound} claims per handler, concurrency {concurrency}, handlers alternating (order rotated per round)");

        // Warm-up of each handler (JIT, connections, the campaign cache), not measured.
        for (var h = 0; h < handlers.Length; h++)
        {
            var (_, _, warmed) = await RunAsync(200, i => handlers[h].ClaimAsync(campaigns[h], Token($"warm-{Guid.NewGuid():N}", "customer")));
            if (warmed != 200) { Console.WriteLine($"FAIL: {handlers[h].Name}: warm-up claimed {warmed}/200"); return false; }
        }
        var rates = handlers.Select(_ => new List<double>()).ToArray();
        var latencies = handlers.Select(_ => new List<double>()).ToArray();
        var cpu = new TimeSpan[handlers.Length];
        var made = new int[handlers.Length];
        for (var round = 0; round < rounds; round++)
            for (var k = 0; k < handlers.Length; k++)
            {
                var h = (round + k) % handlers.Length;
                var tokens = Enumerable.Range(0, perRound).Select(_ => Token($"bench-{Guid.NewGuid():N}", "customer")).ToArray();
                var cpuBefore = handlers[h].CpuTime;
                var (elapsed, lat, ok) = await RunAsync(perRound, i => handlers[h].ClaimAsync(campaigns[h], tokens[i]));
                cpu[h] += handlers[h].CpuTime - cpuBefore;
                made[h] += ok;
                rates[h].Add(ok / elapsed.TotalSeconds);
                latencies[h].AddRange(lat);
            }
        // Exported at shutdown what is still buffered (the host stops a handler the same way).
        var ingestedBefore = ingestion.Snapshot();
        foreach (var handler in handlers) await handler.StopAsync();
        var ingested = ingestion.Snapshot();

        static double Median(IEnumerable<double> values) { var sorted = values.Order().ToArray(); return sorted[sorted.Length / 2]; }
        Console.WriteLine();
        Console.WriteLine("| handler | claims/s (median of rounds) | ratio to without | p50 ms | p99 ms | handler CPU ms per claim |");
        Console.WriteLine("|---|---|---|---|---|---|");
        var baseline = Median(rates[0]);
        for (var h = 0; h < handlers.Length; h++)
        {
            var lat = latencies[h].ToArray();
            var perRoundRatios = string.Join(", ", Enumerable.Range(0, rounds).Select(r => (rates[h][r] / rates[0][r]).ToString("F2")));
            Console.WriteLine($"| {handlers[h].Name} | {Median(rates[h]):F0} | {Median(rates[h]) / baseline:F2} (rounds: {perRoundRatios}) | {P(lat, 50):F1} | {P(lat, 99):F1} | {cpu[h].TotalMilliseconds / made[h]:F2} |");
        }
        Console.WriteLine();
        Console.WriteLine($"Received by the ingestion stand-in during the rounds: {ingestedBefore}; after the handlers stopped: {ingested}");
        Console.WriteLine($"Business metrics received (customMetrics name [customDimensions]): {ingestion.Metrics}");
        var expected = rounds * perRound;
        var ok2 = made.All(m => m == expected);
        if (!ok2) Console.WriteLine($"FAIL: claims made {string.Join("/", made)} of {expected} each");
        // The exporters really exported (requests, Cosmos dependencies and the business metrics), or the figure means nothing.
        if (!new[] { "default", "every" }.All(key => ingested.Contains($"{key}: ") && new[] { "RequestData", "RemoteDependencyData", "MetricData" }
            .All(type => ingestion.Count(key, type) > 0)))
        {
            Console.WriteLine("FAIL: the exporting handlers sent no requests, dependencies or metrics to the stand-in");
            ok2 = false;
        }
        return ok2;
    }
    finally
    {
        foreach (var handler in handlers) handler.Dispose();
    }
}

// Lock + confirm: the order system locks a claimed coupon for an order (POST /api/redemptions, 201) and confirms
// the payment (POST /api/redemptions/{orderId}/confirm, 200), one pair per coupon, at the same concurrency as
// claims and alternating in rounds with the same raw conditional patch. Before the rounds, a phased warm-up
// (all locks, then all confirms) on separate coupons gives Cosmos round trips per lock and per confirm apart;
// the rounds give round trips per pair.
async Task<bool> LockBenchmarkAsync()
{
    var pairs = Arg("--locks", 2000);
    var phased = Math.Min(200, Math.Max(20, pairs / 10));
    var perRound = pairs / rounds;
    var total = phased + perRound * rounds;
    const long amountOff = 1000;
    var campaign = await CreateCampaignAsync(total * 2, terms =>
    {
        terms["minimumSpend"] = 20000; // the order below (one line of 30000) meets it
        terms["budget"] = total * amountOff * 10; // never the limit here
    });
    Console.WriteLine();
    Console.WriteLine($"Lock + confirm: {rounds * perRound} pairs in {rounds} rounds, concurrency {concurrency}, after a phased warm-up of {phased} locks then {phased} confirms; " +
        $"campaign {campaign} (amount_off {amountOff}, budget {total * amountOff * 10}, minimum spend 20000)");

    // One coupon per customer, claimed concurrently (not measured).
    var customers = Enumerable.Range(0, total).Select(_ => $"bench-{Guid.NewGuid():N}").ToArray();
    var couponIds = new string?[total];
    var (_, _, claimed) = await RunAsync(total, async i => (couponIds[i] = await ClaimCouponAsync(campaign, Token(customers[i], "customer"))) is not null);
    if (claimed != total)
    {
        Console.WriteLine($"FAIL: claimed {claimed}/{total} coupons for the lock measurement");
        return false;
    }
    var orderSystem = Token("bench-order-system", "order_system");
    var orders = Enumerable.Range(0, total).Select(_ => $"bench-{Guid.NewGuid():N}").ToArray();
    var errors = new ErrorLog();
    var lockMs = new double[total];
    var confirmMs = new double[total];

    async Task<bool> LockAsync(int i)
    {
        var body = new JsonObject
        {
            ["orderId"] = orders[i], ["customerId"] = customers[i], ["couponId"] = couponIds[i],
            ["order"] = new JsonObject
            {
                ["channel"] = "app", ["currency"] = "CNY",
                ["lines"] = new JsonArray(new JsonObject { ["sku"] = "s1", ["category"] = "shoes", ["unitPrice"] = 30000, ["quantity"] = 1 }),
            },
        };
        var started = Stopwatch.GetTimestamp();
        var ok = await SendAsync(HttpMethod.Post, "/api/redemptions", body.ToJsonString(), orderSystem, HttpStatusCode.Created, "lock", errors);
        lockMs[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        return ok;
    }

    async Task<bool> ConfirmAsync(int i)
    {
        var started = Stopwatch.GetTimestamp();
        var ok = await SendAsync(HttpMethod.Post, $"/api/redemptions/{orders[i]}/confirm", null, orderSystem, HttpStatusCode.OK, "confirm", errors);
        confirmMs[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        return ok;
    }

    // Phased: every lock, then every confirm, so the counter's deltas belong to one kind of call each.
    var start = counter.Count;
    var (_, _, phasedLocks) = await RunAsync(phased, LockAsync);
    var afterLocks = counter.Count;
    var (_, _, phasedConfirms) = await RunAsync(phased, ConfirmAsync);
    var perLock = (double)(afterLocks - start) / Math.Max(1, phasedLocks);
    var perConfirm = (double)(counter.Count - afterLocks) / Math.Max(1, phasedConfirms);

    // Rounds: pair (lock, then confirm if the lock succeeded), then as many raw conditional patches.
    var rawPatch = await RawPatchAsync(total * 10);
    var pairLatencies = new List<double>();
    var lockLatencies = new List<double>();
    var confirmLatencies = new List<double>();
    var rawLatencies = new List<double>();
    var ratios = new List<double>();
    var succeeded = 0;
    var pairTime = TimeSpan.Zero;
    var rawTime = TimeSpan.Zero;
    var pairRoundTrips = 0L;
    for (var round = 0; round < rounds; round++)
    {
        var offset = phased + round * perRound;
        var beforePairs = counter.Count;
        var (pairElapsed, latencies, ok) = await RunAsync(perRound, async i => await LockAsync(offset + i) && await ConfirmAsync(offset + i));
        pairRoundTrips += counter.Count - beforePairs;
        var (rawElapsed, raw, _) = await RunAsync(perRound, _ => rawPatch());
        pairLatencies.AddRange(latencies);
        lockLatencies.AddRange(lockMs.Skip(offset).Take(perRound));
        confirmLatencies.AddRange(confirmMs.Skip(offset).Take(perRound).Where(ms => ms > 0)); // 0: lock failed, no confirm sent
        rawLatencies.AddRange(raw);
        succeeded += ok;
        pairTime += pairElapsed;
        rawTime += rawElapsed;
        ratios.Add(ok / pairElapsed.TotalSeconds / (perRound / rawElapsed.TotalSeconds));
    }

    var pairRate = succeeded / pairTime.TotalSeconds;
    var rawRate = rounds * perRound / rawTime.TotalSeconds;
    double[] pair = [.. pairLatencies], locks = [.. lockLatencies], confirms = [.. confirmLatencies], rawArray = [.. rawLatencies];
    Console.WriteLine();
    Console.WriteLine("| measure | lock + confirm pair | lock (POST /api/redemptions) | confirm | raw conditional patch |");
    Console.WriteLine("|---|---|---|---|---|");
    Console.WriteLine($"| operations/s | {pairRate:F0} pairs | | | {rawRate:F0} |");
    foreach (var p in new[] { 50, 95, 99 })
        Console.WriteLine($"| p{p} latency ms | {P(pair, p):F1} | {P(locks, p):F1} | {P(confirms, p):F1} | {P(rawArray, p):F1} |");
    Console.WriteLine();
    Console.WriteLine($"successful pairs: {succeeded}/{rounds * perRound}; phased warm-up: {phasedLocks}/{phased} locks, {phasedConfirms}/{phased} confirms");
    Console.WriteLine($"Cosmos round trips per lock: {perLock:F2}, per confirm: {perConfirm:F2} (counter deltas of the phased warm-up, all locks then all confirms); " +
        $"per successful pair: {(double)pairRoundTrips / Math.Max(1, succeeded):F2} (overall, measured rounds)");
    Console.WriteLine($"ratio pairs/s ÷ raw patches/s: {pairRate / rawRate:F2} overall, median {ratios.Order().ElementAt(ratios.Count / 2):F2} of rounds " +
        $"[{string.Join(", ", ratios.Select(r => r.ToString("F2")))}]. The raw operation is one conditional patch of one document (as for claims), " +
        $"at the same concurrency, alternating with the pairs; a pair makes ~{(double)pairRoundTrips / Math.Max(1, succeeded):F0} Cosmos round trips, " +
        "most of them sequential, so the ratio's ceiling is roughly 1 ÷ that.");
    errors.Print();

    // Emulator check: a single-partition wallet query (QuoteCoupons, ListMyCoupons) against a point read of the same
    // wallet (what LockCoupon does). The npm emulator answers every query by scanning the whole container, so its
    // cost grows with the number of wallets the run has created; Cosmos DB serves it from the index within the partition.
    var wallets = client.GetContainer("marketing-bench", "wallets");
    var probe = Math.Min(total, 400);
    var (queryElapsed, queryLatencies, _) = await RunAsync(probe, async i =>
    {
        var query = new QueryDefinition("SELECT VALUE c FROM c JOIN cp IN c.coupons WHERE c.customerId = @customer AND c.type = @type AND cp.id = @id")
            .WithParameter("@customer", customers[i]).WithParameter("@type", "wallet").WithParameter("@id", couponIds[i]);
        using var iterator = wallets.GetItemQueryIterator<JsonElement>(query,
            requestOptions: new QueryRequestOptions { PartitionKey = new PartitionKey(customers[i]), EnableOptimisticDirectExecution = true });
        while (iterator.HasMoreResults) await iterator.ReadNextAsync();
        return true;
    });
    var (readElapsed, readLatencies, _) = await RunAsync(probe, async i =>
    {
        using var read = await wallets.ReadItemStreamAsync(campaign, new PartitionKey(customers[i]));
        return read.IsSuccessStatusCode;
    });
    Console.WriteLine($"emulator check ({Volatile.Read(ref claimsMade)} coupons claimed in this run so far, one wallet document each): a single-partition wallet query (as QuoteCoupons and ListMyCoupons make) alone {probe / queryElapsed.TotalSeconds:F0}/s, " +
        $"p50 {P(queryLatencies, 50):F1} ms; a point read of the same wallet {probe / readElapsed.TotalSeconds:F0}/s, p50 {P(readLatencies, 50):F1} ms " +
        "(same concurrency; the emulator scans the whole container for every query, Cosmos DB does not)");
    return succeeded == rounds * perRound && phasedLocks == phased && phasedConfirms == phased && errors.Count == 0;
}

// Expiry: N coupons of an absolute-validity campaign (valid until now + 2 h), then the app's clock is moved
// 3 h on and ExpireCoupons is invoked once as the Functions host invokes a timer function. Reports Cosmos
// operations during the run ÷ coupons expired (target ≤ 2), the run's duration and coupons/s.
async Task<bool> ExpiryBenchmarkAsync()
{
    var n = Arg("--expire", 10000);
    // Spread over several campaigns (one due entry each) with --expire-campaigns K; 1 by default.
    var campaignCount = Math.Max(1, Arg("--expire-campaigns", 1));
    var now = clock.GetUtcNow();
    var campaigns = new string[campaignCount];
    for (var c = 0; c < campaignCount; c++)
        campaigns[c] = await CreateCampaignAsync(n * 2, terms => // not sold out: the timer would end it, which is not coupon expiry
            terms["validity"] = new JsonObject { ["type"] = "absolute", ["from"] = now.AddHours(-1).ToString("O"), ["to"] = now.AddHours(2).ToString("O") });
    Console.WriteLine();
    Console.WriteLine($"Expiry: {n} coupons of {(campaignCount == 1 ? "campaign " + campaigns[0] : $"{campaignCount} campaigns")} " +
        $"(valid {now.AddHours(-1):O} .. {now.AddHours(2):O}), claimed at concurrency {concurrency}");
    var (claimElapsed, _, claimed) = await RunAsync(n, i => ClaimAsync(campaigns[i % campaignCount], Token($"bench-{Guid.NewGuid():N}", "customer")));
    Console.WriteLine($"claimed {claimed}/{n} in {claimElapsed.TotalSeconds:F1} s (not measured)");

    clock.Advance(TimeSpan.FromHours(3));
    var (elapsed, operations, returned) = await InvokeTimerAsync("ExpireCoupons");
    if (returned is null) return false;
    var expired = returned is JsonObject report && Field(report, "couponsExpired") is { } value ? value.GetValue<long>() : 0;
    Console.WriteLine();
    Console.WriteLine($"ReturnValue: {Truncate(returned.ToJsonString())}");
    Console.WriteLine();
    Console.WriteLine("| measure | value |");
    Console.WriteLine("|---|---|");
    Console.WriteLine($"| coupons expired | {expired} of {claimed} claimed |");
    Console.WriteLine($"| Cosmos operations during the run | {operations} |");
    Console.WriteLine($"| Cosmos operations per expired coupon (target ≤ 2) | {(expired > 0 ? (operations / (double)expired).ToString("F3") : "n/a")} |");
    Console.WriteLine($"| run duration s | {elapsed.TotalSeconds:F2} |");
    Console.WriteLine($"| coupons expired/s | {expired / elapsed.TotalSeconds:F0} |");
    var (rawRate, rawParallelism) = await RawRateAtTimerParallelismAsync(Math.Max(1000, (int)expired));
    Console.WriteLine($"| raw conditional patches/s at parallelism {rawParallelism} (same run) | {rawRate:F0} |");
    Console.WriteLine($"| ratio coupons expired/s ÷ raw patches/s | {expired / elapsed.TotalSeconds / rawRate:F3} |");
    var ok = true;
    if (claimed != n)
    {
        Console.WriteLine($"FAIL: only {claimed}/{n} coupons claimed");
        ok = false;
    }
    if (expired != n)
    {
        Console.WriteLine($"FAIL: couponsExpired = {expired}, expected {n}");
        ok = false;
    }
    if (expired > 0 && operations / (double)expired > 2)
    {
        Console.WriteLine($"FAIL: {operations / (double)expired:F3} Cosmos operations per expired coupon, target ≤ 2");
        ok = false;
    }
    return ok;
}

// Reminders: N customers each claim one coupon of a campaign reminding 30 hours before expiry (every fourth customer
// opted in to push, without quiet hours; the others in-app only); none of this measured. SendReminders runs once to
// start its window at the claims, the clock moves to a minute after the reminders fall due, and one run sends them all:
// Cosmos operations during the run ÷ reminders sent (target ≤ 3), the run's duration and reminders/s. Then one more run
// a minute later with nothing due: what an idle run costs.
async Task<bool> ReminderBenchmarkAsync()
{
    var n = Arg("--reminders", 10_000);
    var campaign = await CreateCampaignAsync(n, terms => terms["reminders"] = new JsonObject { ["offsetsHours"] = new JsonArray(30) });
    Console.WriteLine();
    Console.WriteLine($"Reminders: {n} customers with one coupon each of campaign {campaign} (every fourth opted in to push), claimed at concurrency {concurrency}");
    var validTo = new ConcurrentBag<DateTimeOffset>();
    var (claimElapsed, _, claimed) = await RunAsync(n, async i =>
    {
        var token = Token($"remind-{i}-{Guid.NewGuid():N}", "customer");
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{campaign}/claims")
        {
            Content = new StringContent("""{"channel":"app"}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
        using var response = await http.SendAsync(request);
        if (response.StatusCode != HttpStatusCode.Created) return false;
        validTo.Add(DateTimeOffset.Parse((string)JsonNode.Parse(await response.Content.ReadAsStringAsync())!["validTo"]!));
        if (i % 4 != 0) return true;
        using var preferences = new HttpRequestMessage(HttpMethod.Put, "/api/me/notification-preferences")
        {
            Content = new StringContent("""{"channels":["push"],"quietHours":{"from":"00:00","to":"00:00"}}""", Encoding.UTF8, "application/json"),
        };
        preferences.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return (await http.SendAsync(preferences)).StatusCode == HttpStatusCode.OK;
    });
    Console.WriteLine($"claimed {claimed}/{n} in {claimElapsed.TotalSeconds:F1} s (not measured)");
    var (startElapsed, startOperations, _) = await InvokeTimerAsync("SendReminders");
    Console.WriteLine($"first run (starts the window at the claims): {startOperations} operations, {startElapsed.TotalSeconds:F2} s");
    if (validTo.Distinct().Count() != 1)
        Console.WriteLine($"note: the claims straddled a local midnight: {validTo.Distinct().Count()} expiry instants");

    // 30 hours before expiry: the warm-up campaign's coupons (the default 24 hours) are not due yet, so the run sends ours only.
    clock.Advance(validTo.Min() - TimeSpan.FromHours(30) + TimeSpan.FromMinutes(1) - clock.GetUtcNow());
    var (elapsed, operations, returned) = await InvokeTimerAsync("SendReminders");
    if (returned is not JsonObject report) return false;
    long Count(string name) => Field(report, name) is { } value ? value.GetValue<long>() : 0;
    var sent = Count("remindersSent");
    clock.Advance(TimeSpan.FromMinutes(1));
    var (idleElapsed, idleOperations, _) = await InvokeTimerAsync("SendReminders");
    Console.WriteLine();
    Console.WriteLine("| measure | value |");
    Console.WriteLine("|---|---|");
    Console.WriteLine($"| reminders sent | {sent} of {claimed} coupons |");
    Console.WriteLine($"| messages written (in-app + push) / queued | {Count("messages")} / {Count("queued")} |");
    Console.WriteLine($"| Cosmos operations during the run | {operations} |");
    Console.WriteLine($"| Cosmos operations per reminder sent (target ≤ 3) | {(sent > 0 ? (operations / (double)sent).ToString("F3") : "n/a")} |");
    Console.WriteLine($"| run duration s | {elapsed.TotalSeconds:F2} |");
    Console.WriteLine($"| reminders/s | {sent / elapsed.TotalSeconds:F0} |");
    var (rawRate, rawParallelism) = await RawRateAtTimerParallelismAsync((int)Math.Max(1000, sent));
    Console.WriteLine($"| raw conditional patches/s at parallelism {rawParallelism} (same run) | {rawRate:F0} |");
    Console.WriteLine($"| ratio reminders/s ÷ raw patches/s (a reminder is 2 operations: 0.5 would be the raw rate) | {sent / elapsed.TotalSeconds / rawRate:F3} |");
    Console.WriteLine($"| a run with nothing due: operations, s | {idleOperations}, {idleElapsed.TotalSeconds:F2} |");
    var ok = true;
    if (claimed != n || sent != n)
    {
        Console.WriteLine($"FAIL: {claimed}/{n} claimed, {sent} reminders sent");
        ok = false;
    }
    if (sent > 0 && operations / (double)sent > 3)
    {
        Console.WriteLine($"FAIL: {operations / (double)sent:F3} Cosmos operations per reminder, target ≤ 3");
        ok = false;
    }
    return ok;
}

// Lapsed locks: N customers each claim one coupon of a budgeted campaign and the order system locks it (none of
// this measured); no order is confirmed. The clock then moves past the locks' lapse (Redemption:LockMinutes, a day
// here) and the hour they fall in, and ExpireCoupons runs once: every lock is cancelled ("expire"), its coupon
// available again and its budget reservation returned. Then, in the same run, as many raw conditional patches at
// the timer's parallelism (Timers:Parallelism), for the ratio.
async Task<bool> LapseBenchmarkAsync()
{
    var n = Arg("--lapse", 2000);
    // Spread over K budgeted campaigns with --lapse-campaigns K (1 by default): every cancel patches its campaign's
    // budget document, which holds the campaign's in-flight reservations, so one campaign measures that document too.
    var campaignCount = Math.Max(1, Arg("--lapse-campaigns", 1));
    const long amountOff = 1000;
    var campaigns = new string[campaignCount];
    for (var c = 0; c < campaignCount; c++)
        campaigns[c] = await CreateCampaignAsync(n * 2, terms =>
        {
            terms["minimumSpend"] = 20000;
            terms["budget"] = n * amountOff * 10;
        });
    var campaign = campaignCount == 1 ? campaigns[0] : $"{campaignCount} campaigns";
    var customers = Enumerable.Range(0, n).Select(_ => $"bench-lapse-{Guid.NewGuid():N}").ToArray();
    var couponIds = new string?[n];
    var (_, _, claimed) = await RunAsync(n, async i => (couponIds[i] = await ClaimCouponAsync(campaigns[i % campaignCount], Token(customers[i], "customer"))) is not null);
    var orderSystem = Token("bench-order-system", "order_system");
    var errors = new ErrorLog();
    var (lockElapsed, _, locked) = await RunAsync(n, i => SendAsync(HttpMethod.Post, "/api/redemptions", new JsonObject
    {
        ["orderId"] = $"bench-lapse-{Guid.NewGuid():N}", ["customerId"] = customers[i], ["couponId"] = couponIds[i],
        ["order"] = new JsonObject
        {
            ["channel"] = "app", ["currency"] = "CNY",
            ["lines"] = new JsonArray(new JsonObject { ["sku"] = "s1", ["category"] = "shoes", ["unitPrice"] = 30000, ["quantity"] = 1 }),
        },
    }.ToJsonString(), orderSystem, HttpStatusCode.Created, "lock", errors));
    Console.WriteLine();
    Console.WriteLine($"Lapsed locks: {locked}/{n} locks of {claimed} claimed coupons (campaign {campaign}, budgeted), taken in {lockElapsed.TotalSeconds:F1} s (not measured); " +
        "then the clock moves past their lapse and ExpireCoupons runs once");
    clock.Advance(TimeSpan.FromMinutes(1440) + TimeSpan.FromHours(1));
    var (elapsed, operations, report) = await InvokeTimerAsync("ExpireCoupons");
    var released = (int?)report?["LocksReleased"] ?? 0;
    var (rawRate, parallelism) = await RawRateAtTimerParallelismAsync(n);
    var rate = released / elapsed.TotalSeconds;
    Console.WriteLine($"ReturnValue: {report?.ToJsonString()}");
    Console.WriteLine();
    Console.WriteLine("| measure | value |");
    Console.WriteLine("|---|---|");
    Console.WriteLine($"| locks released | {released} of {locked} |");
    Console.WriteLine($"| run s | {elapsed.TotalSeconds:F2} |");
    Console.WriteLine($"| locks released/s | {rate:F0} |");
    Console.WriteLine($"| Cosmos operations per released lock | {(released > 0 ? operations / (double)released : 0):F2} |");
    Console.WriteLine($"| raw conditional patches/s at parallelism {parallelism} (same run) | {rawRate:F0} |");
    Console.WriteLine($"| ratio locks released/s ÷ raw patches/s | {rate / rawRate:F3} |");
    errors.Print("status other than 201 for lock");
    var ok = released == n && locked == n && claimed == n;
    if (!ok) Console.WriteLine($"FAIL: claimed {claimed}, locked {locked}, released {released} of {n}");
    return ok;
}

// Releases: N paid order events of referred buyers (as the settle measurement, not measured here), then the clock
// moves past the holding period and ReleaseCommissions runs once; then the raw conditional patch at the timer's
// parallelism in the same run, for the ratio.
async Task<bool> ReleaseBenchmarkAsync()
{
    var n = Arg("--releases", 2000);
    var errors = new ErrorLog();
    var (buyers, _) = await ReferredBuyersAsync(n, errors);
    var paidAt = clock.GetUtcNow();
    var (settleElapsed, _, settled) = await RunAsync(n, async i =>
    {
        var body = new JsonObject
        {
            ["eventId"] = $"ev-{Guid.NewGuid():N}", ["type"] = "paid", ["orderId"] = $"o-{Guid.NewGuid():N}", ["buyerId"] = buyers[i],
            ["occurredAt"] = paidAt.ToString("O"), ["currency"] = "CNY",
            ["lines"] = new JsonArray(
                new JsonObject { ["lineId"] = "l1", ["category"] = "books", ["amount"] = 5999 },
                new JsonObject { ["lineId"] = "l2", ["category"] = "toys", ["amount"] = 12345 }),
        }.ToJsonString();
        var payload = new JsonObject
        {
            ["Data"] = new JsonObject { ["message"] = body },
            ["Metadata"] = new JsonObject { ["MessageId"] = Guid.NewGuid().ToString("N"), ["DeliveryCount"] = 1 },
        };
        using var response = await http.PostAsync("/SettleCommission", new StringContent(payload.ToJsonString(), Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        if (response.StatusCode == HttpStatusCode.OK && JsonNode.Parse(text)?["ReturnValue"]?["Outcome"]?.GetValue<string>() == "applied") return true;
        errors.Add($"settle {i}: {(int)response.StatusCode} {Truncate(text)}");
        return false;
    });
    Console.WriteLine();
    Console.WriteLine($"Releases: {settled}/{n} paid order events (2 lines each, 20 promoters, 10 with a level-2 parent) settled in {settleElapsed.TotalSeconds:F1} s " +
        "(not measured); then the clock moves past the holding period and ReleaseCommissions runs once");
    clock.Advance(TimeSpan.FromDays(8));
    var (elapsed, operations, report) = await InvokeTimerAsync("ReleaseCommissions");
    var released = (int?)report?["EntriesReleased"] ?? 0;
    var (rawRate, parallelism) = await RawRateAtTimerParallelismAsync(Math.Max(released, 1000));
    var rate = released / elapsed.TotalSeconds;
    Console.WriteLine($"ReturnValue: {report?.ToJsonString()}");
    Console.WriteLine();
    Console.WriteLine("| measure | value |");
    Console.WriteLine("|---|---|");
    Console.WriteLine($"| ledger entries released | {released} (of {n} events) |");
    Console.WriteLine($"| run s | {elapsed.TotalSeconds:F2} |");
    Console.WriteLine($"| entries released/s | {rate:F0} |");
    Console.WriteLine($"| Cosmos operations per released entry | {(released > 0 ? operations / (double)released : 0):F3} |");
    Console.WriteLine($"| raw conditional patches/s at parallelism {parallelism} (same run) | {rawRate:F0} |");
    Console.WriteLine($"| ratio entries released/s ÷ raw patches/s | {rate / rawRate:F3} |");
    errors.Print("settlement or visit not as expected");
    var ok = settled == n && released == n * 3 && errors.Count == 0;
    if (!ok) Console.WriteLine($"FAIL: settled {settled}/{n}, released {released}, expected {n * 3}");
    return ok;
}

// The raw conditional patch at the parallelism a timer run works with (Timers:Parallelism): what a timer's own
// patches would do if it had nothing else to do. count patches; returns patches/s and the parallelism used.
async Task<(double Rate, int Parallelism)> RawRateAtTimerParallelismAsync(int count)
{
    var parallelism = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<TimerOptions>>().Value.Parallelism;
    var rawPatch = await RawPatchAsync(count * 2);
    var (elapsed, _, done) = await RunAsync(count, _ => rawPatch(), parallelism);
    return (done / elapsed.TotalSeconds, parallelism);
}

// Commission rules (10 % and 3 %), 20 promoters (every second one invited by the one before, so 10 have a level-2
// parent) and N buyers each referred by one of them: what a paid event needs to earn commissions. Not measured.
async Task<(string[] Buyers, int Bound)> ReferredBuyersAsync(int n, ErrorLog errors)
{
    await SendAsync(HttpMethod.Put, "/api/commission-rules", """{"level1":{"defaultBps":1000},"level2":{"defaultBps":300}}""", OperatorToken(), HttpStatusCode.OK, "rules", errors);
    var codes = new List<string>();
    for (var p = 0; p < 20; p++)
    {
        using var register = new HttpRequestMessage(HttpMethod.Post, "/api/promoters")
        {
            Content = new StringContent(p % 2 == 1 ? $$"""{"inviterCode":"{{codes[^1]}}"}""" : "{}", Encoding.UTF8, "application/json"),
        };
        register.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token($"bench-promoter-{Guid.NewGuid():N}", "customer"));
        using var registered = await http.SendAsync(register);
        codes.Add((string)JsonNode.Parse(await registered.Content.ReadAsStringAsync())!["code"]!);
    }
    var buyers = Enumerable.Range(0, n).Select(_ => $"bench-buyer-{Guid.NewGuid():N}").ToArray();
    var (_, _, bound) = await RunAsync(n, i => SendAsync(HttpMethod.Post, "/api/referrals/visits", $$"""{"code":"{{codes[i % codes.Count]}}"}""",
        Token(buyers[i], "customer"), HttpStatusCode.OK, "visit", errors));
    return (buyers, bound);
}

// Invokes a timer function as the Functions host does; returns its duration, the Cosmos operations counted during
// it, and its ReturnValue (null when it did not answer 200).
async Task<(TimeSpan Elapsed, long Operations, JsonNode? Report)> InvokeTimerAsync(string function)
{
    var at = clock.GetUtcNow();
    var timer = new JsonObject
    {
        ["Schedule"] = new JsonObject { ["AdjustForDST"] = true },
        ["ScheduleStatus"] = new JsonObject
        {
            ["Last"] = at.AddMinutes(-5).ToString("O"), ["Next"] = at.AddMinutes(5).ToString("O"), ["LastUpdated"] = at.AddMinutes(-5).ToString("O"),
        },
        ["IsPastDue"] = false,
    }.ToJsonString();
    var payload = new JsonObject
    {
        ["Data"] = new JsonObject { ["timer"] = timer },
        ["Metadata"] = new JsonObject
        {
            ["timer"] = timer,
            ["sys"] = new JsonObject { ["MethodName"] = function, ["UtcNow"] = at.ToString("O"), ["RandGuid"] = Guid.NewGuid().ToString() },
        },
    };
    var before = counter.Count;
    var started = Stopwatch.StartNew();
    using var response = await http.PostAsync("/" + function, new StringContent(payload.ToJsonString(), Encoding.UTF8, "application/json"));
    var elapsed = started.Elapsed;
    var operations = counter.Count - before;
    var text = await response.Content.ReadAsStringAsync();
    if (response.StatusCode != HttpStatusCode.OK)
    {
        Console.WriteLine($"FAIL: POST /{function} answered {(int)response.StatusCode}: {Truncate(text)}");
        return (elapsed, operations, null);
    }
    var body = JsonNode.Parse(text)!.AsObject();
    if (Field(body, "Logs") is JsonArray logs)
        foreach (var line in logs) Console.WriteLine($"log: {line}");
    return (elapsed, operations, Field(body, "ReturnValue"));
}

static JsonNode? Field(JsonObject o, string name)
    => o.FirstOrDefault(p => string.Equals(p.Key, name, StringComparison.OrdinalIgnoreCase)).Value;

static string Truncate(string text) => text.Length <= 500 ? text : text[..500] + "…";

// A target for the raw operation: one stock-like counter document and its conditional decrement.
async Task<Func<Task<bool>>> RawPatchAsync(int remaining)
{
    var container = client.GetContainer("marketing-bench", "stock");
    var rawId = Guid.NewGuid().ToString();
    await container.CreateItemAsync(new { id = "stock", campaignId = rawId, remaining, open = true }, new PartitionKey(rawId));
    var options = new PatchItemRequestOptions { FilterPredicate = "FROM c WHERE c.open = true AND c.remaining > 0", EnableContentResponseOnWrite = false };
    return async () =>
    {
        await container.PatchItemAsync<object>("stock", new PartitionKey(rawId), [PatchOperation.Increment("/remaining", -1)], options);
        return true;
    };
}

async Task<bool> SendAsync(HttpMethod method, string path, string? json, string token, HttpStatusCode expected, string what, ErrorLog errors)
{
    using var request = new HttpRequestMessage(method, path);
    if (json is not null) request.Content = new StringContent(json, Encoding.UTF8, "application/json");
    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
    try
    {
        using var response = await http.SendAsync(request);
        if (response.StatusCode == expected) return true;
        errors.Add($"{what} {method} {path}: {(int)response.StatusCode} {Truncate(await response.Content.ReadAsStringAsync())}");
    }
    catch (HttpRequestException e)
    {
        errors.Add($"{what} {method} {path}: {e.GetType().Name}: {e.Message}");
    }
    return false;
}

/// <summary>Claims one coupon and returns its id (the claim response's "id"), or null when not 201.</summary>
async Task<string?> ClaimCouponAsync(string campaignId, string token)
{
    using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{campaignId}/claims")
    {
        Content = new StringContent("""{"channel":"app"}""", Encoding.UTF8, "application/json"),
    };
    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
    request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
    using var response = await http.SendAsync(request);
    if (response.StatusCode != HttpStatusCode.Created) return null;
    Interlocked.Increment(ref claimsMade);
    return (string?)JsonNode.Parse(await response.Content.ReadAsStringAsync())?["id"];
}

async Task<bool> ClaimAsync(string campaignId, string token) => await ClaimCouponAsync(campaignId, token) is not null;

async Task<string> CreateCampaignAsync(int quantity, Action<JsonObject>? adjust = null)
{
    var now = clock.GetUtcNow();
    var terms = new JsonObject
    {
        ["name"] = "Benchmark", ["kind"] = "amount_off", ["amountOff"] = 1000, ["minimumSpend"] = 0, ["currency"] = "CNY",
        ["channels"] = new JsonArray("app"), ["claimStartsAt"] = now.AddMinutes(-1).ToString("O"), ["claimEndsAt"] = now.AddDays(1).ToString("O"),
        ["validity"] = new JsonObject { ["type"] = "relative", ["days"] = 7 }, ["totalQuantity"] = quantity, ["perCustomerLimit"] = 1,
        ["timeZone"] = "Asia/Shanghai",
    };
    adjust?.Invoke(terms);
    using var create = new HttpRequestMessage(HttpMethod.Post, "/api/campaigns") { Content = new StringContent(terms.ToJsonString(), Encoding.UTF8, "application/json") };
    create.Headers.Authorization = new AuthenticationHeaderValue("Bearer", OperatorToken());
    var created = await http.SendAsync(create);
    created.EnsureSuccessStatusCode();
    var id = (string)JsonNode.Parse(await created.Content.ReadAsStringAsync())!["id"]!;
    foreach (var (step, token) in new[] { ("submit", OperatorToken()), ("approve", ApproverToken()) })
    {
        using var decide = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{id}/{step}");
        decide.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        (await http.SendAsync(decide)).EnsureSuccessStatusCode();
    }
    using var publish = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{id}/publish");
    publish.Headers.Authorization = new AuthenticationHeaderValue("Bearer", OperatorToken());
    (await http.SendAsync(publish)).EnsureSuccessStatusCode();
    return id;
}

async Task<(TimeSpan Elapsed, double[] LatenciesMs, int Succeeded)> RunAsync(int count, Func<int, Task<bool>> operation, int? parallelism = null)
{
    var latencies = new double[count];
    var next = -1;
    var succeeded = 0;
    var clock = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, parallelism ?? concurrency).Select(async _ =>
    {
        int i;
        while ((i = Interlocked.Increment(ref next)) < count)
        {
            var started = Stopwatch.GetTimestamp();
            if (await operation(i)) Interlocked.Increment(ref succeeded);
            latencies[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        }
    }));
    return (clock.Elapsed, latencies, succeeded);
}

static double P(double[] values, int percentile)
{
    var sorted = values.Order().ToArray();
    return sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(percentile / 100.0 * sorted.Length) - 1)];
}

string Token(string subject, string role)
{
    // On the app's clock, which the expiry measurement moves: long enough to outlive the move.
    var now = clock.GetUtcNow().UtcDateTime;
    return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
    {
        Issuer = Setting("Auth__Issuer"), Audience = Setting("Auth__Audience"),
        Claims = new Dictionary<string, object> { ["sub"] = subject, ["roles"] = new[] { role } },
        IssuedAt = now, NotBefore = now, Expires = now.AddDays(1),
        SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(Setting("Auth__DevSigningKey"))), SecurityAlgorithms.HmacSha256),
    });
}

int Arg(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
}

string StringArg(string name, string fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}

/// <summary>The app's clock: real time plus an offset the load tool moves forward (like the tests' TestClock, but running).</summary>
sealed class BenchClock : TimeProvider
{
    private long offsetTicks;
    public override DateTimeOffset GetUtcNow() => TimeProvider.System.GetUtcNow().AddTicks(Interlocked.Read(ref offsetTicks));
    public void Advance(TimeSpan by) => Interlocked.Add(ref offsetTicks, by.Ticks);
}

/// <summary>Unexpected answers: counted, the first few kept to print.</summary>
sealed class ErrorLog
{
    private readonly ConcurrentQueue<string> samples = new();
    private int count;
    public int Count => Volatile.Read(ref count);

    public void Add(string error)
    {
        if (Interlocked.Increment(ref count) <= 5) samples.Enqueue(error);
    }

    public void Print(string what = "status other than 201 for lock, 200 for confirm")
    {
        Console.WriteLine($"errors ({what}): {Count}");
        foreach (var sample in samples) Console.WriteLine($"  {sample}");
    }
}

/// <summary>
/// A handler process: the function app's own executable from this tool's output folder, with this process's settings
/// (scripts/benchmark.sh exports them) plus <c>extra</c>, on a free loopback port, logging warnings only.
/// </summary>
sealed class HandlerProcess : IDisposable
{
    private readonly Process process;
    private readonly HttpClient http;
    private readonly ConcurrentQueue<string> output = new();

    private HandlerProcess(string name, Process process, Uri address)
    {
        Name = name;
        this.process = process;
        http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256 }) { BaseAddress = address, Timeout = TimeSpan.FromMinutes(2) };
    }

    public string Name { get; }
    public TimeSpan CpuTime { get { process.Refresh(); return process.TotalProcessorTime; } }

    public static HandlerProcess Start(string name, Dictionary<string, string> extra)
    {
        var port = FreePort();
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = AppContext.BaseDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Marketing.Functions.dll"));
        start.Environment["FUNCTIONS_CUSTOMHANDLER_PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment["Cosmos__Database"] = "marketing-bench";
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        start.Environment["DOTNET_gcServer"] = "1"; // as deployed (the Web SDK's default)
        foreach (var (key, value) in extra) start.Environment[key] = value;
        var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
        var handler = new HandlerProcess(name, process, new Uri($"http://127.0.0.1:{port}/"));
        process.OutputDataReceived += (_, e) => handler.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => handler.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return handler;
    }

    private void Keep(string? line)
    {
        if (line is null) return;
        output.Enqueue(line);
        while (output.Count > 20) output.TryDequeue(out _);
    }

    public async Task WaitReadyAsync()
    {
        var until = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < until)
        {
            if (process.HasExited) break;
            try
            {
                using var health = await http.GetAsync("/api/health");
                if (health.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            await Task.Delay(200); // polling a child process's start-up, not timing a measurement
        }
        throw new InvalidOperationException($"Handler '{Name}' did not become healthy:\n{string.Join('\n', output)}");
    }

    public async Task<bool> ClaimAsync(string campaignId, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{campaignId}/claims")
        {
            Content = new StringContent("""{"channel":"app"}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
        using var response = await http.SendAsync(request);
        return response.StatusCode == HttpStatusCode.Created;
    }

    /// <summary>Stops as the Functions host does (SIGTERM): the app shuts down and its telemetry providers flush.</summary>
    public async Task StopAsync()
    {
        if (process.HasExited) return;
        using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) await kill!.WaitForExitAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try { await process.WaitForExitAsync(timeout.Token); } catch (OperationCanceledException) { process.Kill(true); }
    }

    public void Dispose()
    {
        if (!process.HasExited) process.Kill(true);
        process.Dispose();
        http.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>
/// Application Insights' ingestion endpoint, stood in on loopback: accepts every item of POST /v2.1/track (newline-
/// delimited JSON, gzip or not) and counts them by base type; anything else (live metrics' pings) gets an empty 200.
/// </summary>
sealed class IngestionStandIn : IAsyncDisposable
{
    private readonly WebApplication app;
    private readonly ConcurrentDictionary<(string Key, string Type), int> items = new();
    private readonly ConcurrentDictionary<string, string> names = new();
    private readonly ConcurrentDictionary<string, string> metrics = new();

    /// <summary>Each business metric received, with the names of its dimensions.</summary>
    public string Metrics => string.Join("; ", metrics.OrderBy(m => m.Key).Select(m => $"{m.Key} [{m.Value}]"));

    private IngestionStandIn(WebApplication app) => this.app = app;

    public string Address => app.Urls.First();

    public static async Task<IngestionStandIn> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var standIn = new IngestionStandIn(app);
        app.MapPost("/v2.1/track", async (HttpRequest request) =>
        {
            Stream body = request.Body;
            if (request.Headers.ContentEncoding.ToString().Contains("gzip", StringComparison.OrdinalIgnoreCase))
                body = new System.IO.Compression.GZipStream(body, System.IO.Compression.CompressionMode.Decompress);
            using var reader = new StreamReader(body);
            var count = 0;
            while (await reader.ReadLineAsync() is { } line)
            {
                if (line.Length == 0) continue;
                count++;
                var item = JsonNode.Parse(line);
                var type = (string?)item?["data"]?["baseType"] ?? "unknown";
                var key = standIn.names.GetValueOrDefault((string?)item?["iKey"] ?? "", "unknown");
                standIn.items.AddOrUpdate((key, type), 1, (_, n) => n + 1);
                // The business metrics as Application Insights will hold them (customMetrics: name, customDimensions).
                if (type == "MetricData" && item?["data"]?["baseData"] is { } metric
                    && (string?)metric["metrics"]?[0]?["name"] is { } metricName && metricName.StartsWith("marketing.", StringComparison.Ordinal))
                    standIn.metrics[metricName] = string.Join(",", (metric["properties"]?.AsObject() ?? []).Select(p => p.Key).Order());
            }
            return Results.Json(new { itemsReceived = count, itemsAccepted = count, errors = Array.Empty<object>() });
        });
        app.MapFallback(() => Results.Ok());
        await app.StartAsync();
        return standIn;
    }

    /// <summary>A new instrumentation key whose items are counted under <paramref name="name"/>.</summary>
    public string Key(string name)
    {
        var key = Guid.NewGuid().ToString();
        names[key] = name;
        return key;
    }

    public int Count(string name, string type) => items.GetValueOrDefault((name, type));

    public string Snapshot() => string.Join("; ", items.GroupBy(i => i.Key.Key).OrderBy(g => g.Key)
        .Select(g => $"{g.Key}: " + string.Join(", ", g.OrderBy(i => i.Key.Type).Select(i => $"{i.Key.Type} {i.Value}"))));

    public ValueTask DisposeAsync() => app.DisposeAsync();
}
