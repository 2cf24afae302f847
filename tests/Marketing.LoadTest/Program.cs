// Claim benchmark: drives ClaimCoupon over real HTTP (Kestrel on loopback) at a given concurrency and
// compares it, in the same run and against the same emulator, with the raw operation underneath: one
// conditional patch. Reports claims/s, latency percentiles, Cosmos round trips per successful claim and
// the ratio claims/s ÷ raw patches/s. Machines are noisy: read the ratio, not the absolute numbers.
//
// Usage (emulators started by scripts/benchmark.sh): dotnet run -c Release --project tests/Marketing.LoadTest -- [--claims N] [--concurrency C] [--rounds R]
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Marketing.Functions.Hosting;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

var claims = Arg("--claims", 2000);
var concurrency = Arg("--concurrency", 16);
string Setting(string name) => Environment.GetEnvironmentVariable(name) ?? throw new InvalidOperationException($"{name} not set: run scripts/benchmark.sh");

// The app serves no files, so its content root can be our own folder.
Environment.SetEnvironmentVariable("ASPNETCORE_TEST_CONTENTROOT_MARKETING_FUNCTIONS", AppContext.BaseDirectory);
// Any type of the function app's assembly will do: the factory runs that assembly's entry point.
await using var app = new WebApplicationFactory<CosmosRequestCounter>().WithWebHostBuilder(b =>
{
    b.UseEnvironment("Production");
    b.UseSetting("Cosmos:Database", "marketing-bench");
    b.UseSetting("Logging:LogLevel:Default", "Warning");
});
app.UseKestrel(0);
app.StartServer();
var baseAddress = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
var client = app.Services.GetRequiredService<CosmosClient>();
await CosmosExtensions.ProvisionAsync(client, "marketing-bench", Platform.Containers);
var counter = app.Services.GetRequiredService<CosmosRequestCounter>();

using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency * 2 }) { BaseAddress = baseAddress };
var operatorToken = Token("bench-operator", "operator");

Console.WriteLine($"Handler at {baseAddress}, Cosmos at {Setting("Cosmos__Endpoint")}, {claims} claims, concurrency {concurrency}, {Environment.ProcessorCount} cores");

// Warm-up (JIT, connection pools, caches), not measured.
var warm = await CreateCampaignAsync(200);
await RunAsync(200, i => ClaimAsync(warm, $"warm-{Guid.NewGuid():N}"));

var campaign = await CreateCampaignAsync(claims);
var customers = Enumerable.Range(0, claims).Select(i => Token($"bench-{Guid.NewGuid():N}", "customer")).ToArray();

// The raw operation at the same concurrency: a conditional decrement of one counter document.
var container = client.GetContainer("marketing-bench", "stock");
var rawId = Guid.NewGuid().ToString();
await container.CreateItemAsync(new { id = "stock", campaignId = rawId, remaining = claims * 10, open = true }, new PartitionKey(rawId));
var patchOptions = new PatchItemRequestOptions { FilterPredicate = "FROM c WHERE c.open = true AND c.remaining > 0", EnableContentResponseOnWrite = false };

// Claims and raw patches alternate in rounds, so drift in the machine's load hits both alike; the ratio
// reported is the median of the rounds' ratios.
var rounds = Arg("--rounds", 5);
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
return created == rounds * perRound ? 0 : 1;

async Task<bool> ClaimAsync(string campaignId, string token)
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

async Task<string> CreateCampaignAsync(int quantity)
{
    var now = DateTimeOffset.UtcNow;
    var terms = new JsonObject
    {
        ["name"] = "Benchmark", ["kind"] = "amount_off", ["amountOff"] = 1000, ["minimumSpend"] = 0, ["currency"] = "CNY",
        ["channels"] = new JsonArray("app"), ["claimStartsAt"] = now.AddMinutes(-1).ToString("O"), ["claimEndsAt"] = now.AddDays(1).ToString("O"),
        ["validity"] = new JsonObject { ["type"] = "relative", ["days"] = 7 }, ["totalQuantity"] = quantity, ["perCustomerLimit"] = 1,
        ["timeZone"] = "Asia/Shanghai",
    };
    using var create = new HttpRequestMessage(HttpMethod.Post, "/api/campaigns") { Content = new StringContent(terms.ToJsonString(), Encoding.UTF8, "application/json") };
    create.Headers.Authorization = new AuthenticationHeaderValue("Bearer", operatorToken);
    var created = await http.SendAsync(create);
    created.EnsureSuccessStatusCode();
    var id = (string)JsonNode.Parse(await created.Content.ReadAsStringAsync())!["id"]!;
    using var publish = new HttpRequestMessage(HttpMethod.Post, $"/api/campaigns/{id}/publish");
    publish.Headers.Authorization = new AuthenticationHeaderValue("Bearer", operatorToken);
    (await http.SendAsync(publish)).EnsureSuccessStatusCode();
    return id;
}

async Task<(TimeSpan Elapsed, double[] LatenciesMs, int Succeeded)> RunAsync(int count, Func<int, Task<bool>> operation)
{
    var latencies = new double[count];
    var next = -1;
    var succeeded = 0;
    var clock = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
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
    var now = DateTime.UtcNow;
    return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
    {
        Issuer = Setting("Auth__Issuer"), Audience = Setting("Auth__Audience"),
        Claims = new Dictionary<string, object> { ["sub"] = subject, ["roles"] = new[] { role } },
        IssuedAt = now, NotBefore = now, Expires = now.AddHours(1),
        SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(Setting("Auth__DevSigningKey"))), SecurityAlgorithms.HmacSha256),
    });
}

int Arg(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
}
