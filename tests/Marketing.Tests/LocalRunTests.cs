using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Tests.Support;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Marketing.Tests;

/// <summary>
/// The local tools a newcomer meets first (README, docs/local-emulators.md): tokens for every role, timers run now,
/// project commands with the local settings. The whole local run, started in the background as documented, is in
/// <see cref="LocalRunTests"/>.
/// </summary>
public sealed partial class LocalToolTests
{
    private static string[] ApiRoles() => [.. typeof(Roles).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!)];

    /// <summary>
    /// Every role the policies know is offered by scripts/token.mjs (in its usage and in run-local's banner), and a token
    /// the script mints for it gets through that role's policy in the app with the dev key; a role without access is
    /// still refused there, so "got through" is the policy's doing.
    /// </summary>
    [Fact]
    public async Task The_token_script_mints_every_role_and_each_token_passes_its_roles_policy()
    {
        await using var app = await TestApp.StartAsync();
        app.Clock.Set(TimeProvider.System.GetUtcNow()); // the script signs with the real clock
        var roles = ApiRoles();
        Assert.Contains(Roles.Promoter, roles);

        var usage = await Scripts.RunAsync("node", [Repo.PathOf("scripts", "token.mjs")]);
        Assert.Equal(2, usage.ExitCode);
        var banner = await File.ReadAllTextAsync(Repo.PathOf("scripts", "run-local.sh"));
        foreach (var role in roles)
        {
            Assert.Matches(new Regex($@"(?m)^\s+{role}\s"), usage.Error);
            Assert.Contains($"--role {role})", banner);
        }
        var typo = await Scripts.RunAsync("node", [Repo.PathOf("scripts", "token.mjs"), "--sub", "x", "--role", "promotor"]);
        Assert.Equal(2, typo.ExitCode);
        Assert.Contains("unknown role promotor", typo.Error);

        // A route of each role's policy, and a role that policy refuses.
        var routes = new Dictionary<string, (string Path, string Refused)>
        {
            [Roles.Customer] = ("/api/me/coupons", Roles.OrderSystem),
            [Roles.Operator] = ("/api/campaigns", Roles.Customer),
            [Roles.Admin] = ("/api/campaigns", Roles.Customer),
            [Roles.OrderSystem] = ("/api/redemptions/ord-token-script", Roles.Customer),
            [Roles.Promoter] = ("/api/promoters/me", Roles.Customer),
            [Roles.Finance] = ("/api/payouts/token-script/csv-link", Roles.Operator),
            [Roles.Approver] = ("/api/approvals?status=pending", Roles.Operator),
        };
        Assert.Equal(roles.Order(), routes.Keys.Order());
        var subject = "token-script-" + Guid.NewGuid().ToString("N")[..8];
        foreach (var (role, (path, refusedRole)) in routes)
        {
            var passed = await app.Bearer(await MintAsync(subject, role)).GetAsync(path);
            Assert.True(passed.StatusCode is HttpStatusCode.OK or HttpStatusCode.NotFound,
                $"{role} on {path}: {(int)passed.StatusCode} {await passed.Content.ReadAsStringAsync()}");
            var refused = await app.Bearer(await MintAsync(subject, refusedRole)).GetAsync(path);
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        }
    }

    private static async Task<string> MintAsync(string subject, string role)
    {
        var minted = await Scripts.RunAsync("node", [Repo.PathOf("scripts", "token.mjs"), "--sub", subject, "--role", role]);
        Assert.True(minted.ExitCode == 0, minted.ToString());
        return minted.Output.Trim();
    }

    /// <summary>scripts/timer.sh offers exactly the timer functions the app declares, and refuses anything else.</summary>
    [Fact]
    public async Task The_timer_script_offers_every_declared_timer_function()
    {
        await using var app = await TestApp.StartAsync();
        var timers = FunctionJson.Build(app.Services.GetRequiredService<EndpointDataSource>())
            .Where(f => (string?)f.Value["bindings"]![0]!["type"] == "timerTrigger").Select(f => f.Key).Order().ToArray();
        Assert.Equal(6, timers.Length); // ExpireCoupons, ReleaseCommissions, ReconcileStock, AggregateStats, SendReminders, AuditRepair
        var usage = await Scripts.BashAsync("timer.sh", "NoSuchTimer");
        Assert.Equal(2, usage.ExitCode);
        var offered = TimerList().Match(usage.Error).Groups[1].Value.Split('|', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(timers, offered.Order().ToArray());
    }

    [GeneratedRegex(@"timer\.sh ([A-Za-z |]+)")]
    private static partial Regex TimerList();
}

/// <summary>
/// The local run as the README and docs/local-emulators.md describe it, started in the background by a shell the way
/// a newcomer or a CI step does (`bash scripts/run-local.sh &`): it serves, timers run now through scripts/timer.sh,
/// project commands run against it through scripts/command.sh, per-request logs stay quiet, and SIGINT or SIGTERM
/// stops everything it started while its logs stay where the banner said. Own ports, own state folder.
/// </summary>
[Collection(ReleaseBuilds.Name)]
public sealed class LocalRunTests
{
    [Fact]
    public async Task A_backgrounded_local_run_serves_runs_timers_and_commands_and_stops_on_SIGINT_keeping_its_logs()
    {
        await using var run = await LocalRun.StartAsync();
        var requests = 0;

        // README's first example: claim the demo coupon with a token from the script.
        var token = (await Scripts.RunAsync("node", [Repo.PathOf("scripts", "token.mjs"), "--sub", "alice", "--role", "customer"])).Output.Trim();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{run.Port}") };
        using (var claim = new HttpRequestMessage(HttpMethod.Post, "/api/campaigns/cmp_demo/claims"))
        {
            claim.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            claim.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
            claim.Content = new StringContent("""{"channel":"app"}""", Encoding.UTF8, "application/json");
            var claimed = await http.SendAsync(claim);
            requests++;
            Assert.True(claimed.StatusCode == HttpStatusCode.Created, await claimed.Content.ReadAsStringAsync());
        }

        // Timers run now, each with the host's payload, answering the host's result shape.
        foreach (var timer in new[] { "ExpireCoupons", "ReleaseCommissions", "ReconcileStock" })
        {
            var ran = await Scripts.RunAsync("bash", [Repo.PathOf("scripts", "timer.sh"), timer], run.Environment);
            requests++;
            Assert.True(ran.ExitCode == 0, ran.ToString());
            var answer = JsonNode.Parse(ran.Output)!;
            Assert.NotEmpty(answer["Logs"]!.AsArray());
            Assert.NotNull(answer["ReturnValue"]);
        }

        // The documented command line against this run (its settings: the sample's, the run's endpoint).
        var reconciled = await Scripts.RunAsync("bash", [Repo.PathOf("scripts", "command.sh"), "reconcile-ledger"], run.Environment);
        Assert.True(reconciled.ExitCode == 0, reconciled.ToString());
        Assert.Contains("Ledger reconciled: no violations.", reconciled.Output);

        // A missing setting: the list of what is missing and exit code 2, not an unhandled exception.
        var unset = await Scripts.RunAsync("bash", [Repo.PathOf("scripts", "command.sh"), "reconcile-ledger"],
            new Dictionary<string, string>(run.Environment) { ["Cosmos__Endpoint"] = "" });
        Assert.True(unset.ExitCode == SettingsErrors.ExitCode, unset.ToString());
        Assert.Contains("settings are missing or invalid", unset.Error);
        Assert.Contains("'Endpoint' with the error: 'The Endpoint field is required.'", unset.Error);
        Assert.DoesNotContain("Unhandled exception", unset.Error);
        Assert.DoesNotContain("   at ", unset.Error);

        // At most one log line per request locally (ASP.NET Core's own are at Warning).
        var handlerLog = await File.ReadAllLinesAsync(Path.Combine(run.StateDir, "handler.log"));
        Assert.True(handlerLog.Length <= requests, $"{handlerLog.Length} log lines for {requests} requests:\n" + string.Join('\n', handlerLog));

        await run.StopAsync("INT");
    }

    /// <summary>
    /// docs/getting-started.md as scripts/demo.sh drives it, against a local run started as the README says (its
    /// settings: the sample's, without the test rig's Commissions__HoldingDays, so run-local's local default applies):
    /// campaign to payout, and the payout batch at the end holds the promoter's 10 % of the 120.00 paid; then statistics.
    /// </summary>
    [Fact]
    public async Task The_demo_walks_from_a_campaign_to_a_payout_that_holds_the_promoters_commission()
    {
        await using var run = await LocalRun.StartAsync(unset: ["Commissions__HoldingDays"]);
        Assert.Contains("Commissions are held 0 days here", run.Output());

        var demo = await Scripts.RunAsync("bash", [Repo.PathOf("scripts", "demo.sh")], run.Environment);
        Assert.True(demo.ExitCode == 0, demo.ToString());
        Assert.Contains("binding: bound", demo.Error);
        Assert.Contains("\"Outcome\":\"applied\",\"EntriesWritten\":1", demo.Error);
        var line = demo.Output.Trim().Split('\n')[^1].Split(',');
        Assert.Equal(5, line.Length);
        Assert.StartsWith("demo-", line[0]);
        Assert.StartsWith("promoter-", line[1]);
        Assert.Equal(["CNY", "1200", "1"], line[2..]);
        // Statistics folded by the AggregateStats timer run through scripts/timer.sh: the walk's claim, lock, confirm and
        // refund (discount net 0), and the programme's visit, binding, paid order and commission.
        Assert.Contains("campaign: claims 1, redemptions 1, refunds 1, discount net 0, as of ", demo.Error);
        Assert.Contains("programme: visits 1, bindings 1, paid orders 1, commission 1200", demo.Error);

        // Again on the same run: new ids, the same walk (nothing in it depends on a fresh database).
        var again = await Scripts.RunAsync("bash", [Repo.PathOf("scripts", "demo.sh")], run.Environment);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.NotEqual(demo.Output, again.Output);
        Assert.Contains("programme: visits 2, bindings 2, paid orders 2, commission 2400", again.Error);
    }

    [Fact]
    public async Task A_backgrounded_local_run_stops_everything_it_started_on_SIGTERM()
    {
        await using var run = await LocalRun.StartAsync();
        await run.StopAsync("TERM");
    }

    /// <summary>One `bash scripts/run-local.sh &` in a non-interactive shell (which makes it ignore SIGINT on entry).</summary>
    private sealed class LocalRun : IAsyncDisposable
    {
        private readonly Process shell;
        private readonly int scriptPid;
        public int Port { get; }
        public string StateDir { get; }
        public Dictionary<string, string> Environment { get; }

        private LocalRun(Process shell, int scriptPid, int port, string stateDir, Dictionary<string, string> environment)
            => (this.shell, this.scriptPid, Port, StateDir, Environment) = (shell, scriptPid, port, stateDir, environment);

        /// <param name="unset">Variables of the test's environment the run must not see (as on a newcomer's machine).</param>
        public static async Task<LocalRun> StartAsync(string[]? unset = null)
        {
            var stateDir = Path.Combine(Path.GetTempPath(), "local-run-" + Guid.NewGuid().ToString("N")[..8]);
            var port = FreePort();
            var environment = new Dictionary<string, string>
            {
                ["STATE_DIR"] = stateDir,
                ["Cosmos__Endpoint"] = $"http://127.0.0.1:{FreePort()}/",
                ["Cosmos__Database"] = "marketing",
                ["FUNCTIONS_CUSTOMHANDLER_PORT"] = port.ToString(),
                ["AZURITE_BLOB_PORT"] = FreePort().ToString(),
                ["AZURITE_QUEUE_PORT"] = FreePort().ToString(),
                ["AZURITE_TABLE_PORT"] = FreePort().ToString(),
            };
            var start = new ProcessStartInfo("bash", ["-c", $"bash {Repo.PathOf("scripts", "run-local.sh")} >{stateDir}.out 2>&1 & echo $!; wait"])
            {
                WorkingDirectory = Repo.Root,
                RedirectStandardOutput = true,
            };
            foreach (var (name, value) in environment) start.Environment[name] = value;
            foreach (var name in unset ?? []) start.Environment.Remove(name);
            var shell = Process.Start(start)!;
            var scriptPid = int.Parse((await shell.StandardOutput.ReadLineAsync())!);
            var run = new LocalRun(shell, scriptPid, port, stateDir, environment);

            // Ready when the banner is printed (after provisioning and the handler listening).
            var deadline = Stopwatch.StartNew();
            while (!run.Output().Contains("Ctrl-C stops everything", StringComparison.Ordinal))
            {
                Assert.False(shell.HasExited, "run-local.sh ended before it was ready:\n" + run.Output());
                Assert.True(deadline.Elapsed < TimeSpan.FromMinutes(6), "run-local.sh not ready in 6 minutes:\n" + run.Output());
                await Task.Delay(250);
            }
            return run;
        }

        public string Output() => File.Exists(StateDir + ".out") ? File.ReadAllText(StateDir + ".out") : "";

        /// <summary>Sends the signal to the script alone (as `kill -INT %1` does) and checks that it and every
        /// process it started are gone, the handler's port is closed, and the logs are still there.</summary>
        public async Task StopAsync(string signal)
        {
            var started = Directory.GetFiles(StateDir, "*.pid").ToDictionary(f => Path.GetFileNameWithoutExtension(f)!, f => int.Parse(File.ReadAllText(f).Trim()));
            Assert.Equal(["azurite", "cosmos", "handler", "notification-sink"], started.Keys.Order());
            using (var kill = Process.Start("kill", [$"-{signal}", scriptPid.ToString()])) await kill.WaitForExitAsync();
            try { await shell.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60)); }
            catch (TimeoutException) { Assert.Fail($"run-local.sh did not stop within 60 s of SIG{signal}"); }
            Assert.False(Alive(scriptPid), $"run-local.sh still running after SIG{signal}");
            foreach (var (name, pid) in started)
                Assert.False(Alive(pid), $"{name} (pid {pid}) still running after SIG{signal}");
            using var probe = new TcpClient();
            await Assert.ThrowsAnyAsync<SocketException>(() => probe.ConnectAsync("127.0.0.1", Port));
            foreach (var log in new[] { "handler.log", "cosmos.log", "azurite.log" })
                Assert.True(File.Exists(Path.Combine(StateDir, log)), $"{log} was not kept");
        }

        public async ValueTask DisposeAsync()
        {
            if (!shell.HasExited)
            {
                using var kill = Process.Start("kill", ["-TERM", scriptPid.ToString()]);
                await kill.WaitForExitAsync();
                await shell.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
            }
            shell.Dispose();
            if (Directory.Exists(StateDir)) Directory.Delete(StateDir, recursive: true);
            File.Delete(StateDir + ".out");
        }

        private static bool Alive(int pid)
        {
            // A zombie (state Z) has ended; only its parent has not read its status yet.
            var stat = $"/proc/{pid}/stat";
            if (!File.Exists(stat)) return false;
            try { return !File.ReadAllText(stat).Split(')')[^1].TrimStart().StartsWith('Z'); }
            catch (IOException) { return false; }
        }

        private static int FreePort()
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
    }
}
