using Marketing.Functions.Campaigns;
using Marketing.Functions.Commissions;
using Marketing.Functions.Payouts;
using Marketing.Functions.Promoters;
using Marketing.Functions.Stats;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Hosting;

/// <summary>
/// Commands the scripts run with the app's own wiring (so declarations and containers have one source):
///   functions-json DIR   write DIR/&lt;Function&gt;/function.json for every declared function
///   provision [--seed-demo] [--console-origin URL]   create the Cosmos database and containers (local emulator), optionally a
///                        demo campaign, and on a local media account (Azurite) a CORS rule for the console's uploads
///   reconcile-ledger     check the commission ledger's invariants; prints each violation, exit code 1 if any
///   recount-stats [--campaign ID] [--write]   recount campaign statistics from the source documents and print every
///                        day that differs from the stored figures (exit code 1 if any); --write rewrites those days (what the fold has counted, docs/stats.md)
/// Locally: bash scripts/command.sh COMMAND (the local run's settings). A command that reads Cosmos first checks
/// every setting the running app checks at start, so it fails as the app would: with the list of what is missing
/// and exit code 2 (Hosting/SettingsErrors.cs), never an unhandled exception half-way through.
/// Anything else that is not an option (options start with "-", e.g. --urls) is refused with exit code 2 rather
/// than taken for "serve": a mistyped command must not start a server on the platform's data.
/// </summary>
public static class Commands
{
    public const string Usage = "usage: Marketing.Functions [functions-json DIR | provision [--seed-demo] [--console-origin URL] | reconcile-ledger | recount-stats [--campaign ID] [--write]]  (no command: serve)";

    public static async Task<bool> TryRunAsync(WebApplication app, string[] args)
    {
        if (args.Length == 0 || args[0].StartsWith('-')) return false;
        switch (args[0])
        {
            case "functions-json" when args.Length == 2:
                var endpoints = new CompositeEndpointDataSource(((IEndpointRouteBuilder)app).DataSources);
                var count = FunctionJson.Write(endpoints, args[1]);
                Console.WriteLine($"Wrote {count} function.json files under {args[1]}");
                return true;
            case "provision":
                CheckSettings(app.Services);
                await ProvisionAsync(app.Services, seedDemo: args.Contains("--seed-demo"), ConsoleOrigin(args));
                return true;
            case "reconcile-ledger":
                var s = app.Services;
                CheckSettings(s);
                var violations = await LedgerReconciliation.CheckAsync(s.GetRequiredService<PromoterStore>(), s.GetRequiredService<LedgerStore>(),
                    s.GetRequiredService<SettlementStore>(), s.GetRequiredService<PayoutStore>(), s.GetRequiredService<TimeProvider>().GetUtcNow(),
                    TimeSpan.FromHours(1), CancellationToken.None);
                violations.ForEach(Console.WriteLine);
                Console.WriteLine(violations.Count == 0 ? "Ledger reconciled: no violations." : $"{violations.Count} violations.");
                Environment.ExitCode = violations.Count == 0 ? 0 : 1;
                return true;
            case "recount-stats":
                CheckSettings(app.Services);
                Environment.ExitCode = await RecountStatsAsync(app.Services, args);
                return true;
            default:
                Console.Error.WriteLine($"Unknown command '{args[0]}'. " + Usage);
                Environment.ExitCode = SettingsErrors.ExitCode;
                return true;
        }
    }

    private static async Task<int> RecountStatsAsync(IServiceProvider services, string[] args)
    {
        var at = Array.IndexOf(args, "--campaign");
        var campaign = at >= 0 && at + 1 < args.Length ? args[at + 1] : null;
        var recount = services.GetRequiredService<RecountStats>();
        var differences = await recount.CompareAsync(campaign, CancellationToken.None);
        foreach (var d in differences)
            foreach (var (cell, (stored, recounted)) in d.Cells)
                Console.WriteLine($"{d.CampaignId} {d.Day:yyyy-MM-dd} {cell}: stored {Describe(stored)}, recounted {Describe(recounted)}");
        if (differences.Count == 0)
        {
            Console.WriteLine("Stats match the recount.");
            return 0;
        }
        if (!args.Contains("--write"))
        {
            Console.WriteLine($"{differences.Count} days differ (run with --write to replace them with the recount).");
            return 1;
        }
        var replaced = await recount.RepairAsync(differences, CancellationToken.None);
        Console.WriteLine($"{differences.Count} days differed; {replaced} rewritten from the recount (facts AggregateStats has not read yet are left for it to count).");
        return replaced == differences.Count ? 0 : 1;
    }

    private static string Describe(Stats.Figures? figures) => figures is null ? "nothing" : System.Text.Json.JsonSerializer.Serialize(figures, Json.Storage);

    /// <summary>The running app's own start-up check (every ValidateOnStart setting), all failures at once.</summary>
    private static void CheckSettings(IServiceProvider services) => services.GetService<IStartupValidator>()?.Validate();

    /// <summary>provision's --console-origin URL: the local console's origin, allowed to PUT media uploads (local accounts only).</summary>
    private static string? ConsoleOrigin(string[] args)
    {
        var at = Array.IndexOf(args, "--console-origin");
        return at >= 0 && at + 1 < args.Length ? args[at + 1] : null;
    }

    private static async Task ProvisionAsync(IServiceProvider services, bool seedDemo, string? consoleOrigin)
    {
        var options = services.GetRequiredService<IOptions<CosmosOptions>>().Value;
        var client = services.GetRequiredService<CosmosClient>();
        await CosmosExtensions.ProvisionAsync(client, options.Database, Platform.Containers);
        Console.WriteLine($"Database '{options.Database}' and containers ready at {options.Endpoint}");
        if (seedDemo) await DemoCampaign.SeedAsync(services);
        // The console's media upload PUTs from the browser straight to Azurite, which (like Blob storage) needs a CORS rule
        // for that; in Azure the Bicep declares it (docs/media.md).
        if (consoleOrigin is not null && !string.IsNullOrEmpty(services.GetRequiredService<IOptions<Media.MediaOptions>>().Value.AccountKey))
        {
            await services.GetRequiredService<Media.MediaBlobs>().AllowBrowserUploadsAsync(consoleOrigin, CancellationToken.None);
            Console.WriteLine($"Media uploads allowed from {consoleOrigin} (CORS on the local media account)");
        }
    }
}
