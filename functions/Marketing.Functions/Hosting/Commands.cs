using Marketing.Functions.Campaigns;
using Marketing.Functions.Commissions;
using Marketing.Functions.Payouts;
using Marketing.Functions.Promoters;
using Microsoft.Azure.Cosmos;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Hosting;

/// <summary>
/// Commands the scripts run with the app's own wiring (so declarations and containers have one source):
///   functions-json DIR   write DIR/&lt;Function&gt;/function.json for every declared function
///   provision [--seed-demo]   create the Cosmos database and containers (local emulator), optionally a demo campaign
///   reconcile-ledger     check the commission ledger's invariants; prints each violation, exit code 1 if any
/// </summary>
public static class Commands
{
    public static async Task<bool> TryRunAsync(WebApplication app, string[] args)
    {
        if (args.Length == 0) return false;
        switch (args[0])
        {
            case "functions-json" when args.Length == 2:
                var endpoints = new CompositeEndpointDataSource(((IEndpointRouteBuilder)app).DataSources);
                var count = FunctionJson.Write(endpoints, args[1]);
                Console.WriteLine($"Wrote {count} function.json files under {args[1]}");
                return true;
            case "provision":
                await ProvisionAsync(app.Services, seedDemo: args.Contains("--seed-demo"));
                return true;
            case "reconcile-ledger":
                var s = app.Services;
                var violations = await LedgerReconciliation.CheckAsync(s.GetRequiredService<PromoterStore>(), s.GetRequiredService<LedgerStore>(),
                    s.GetRequiredService<SettlementStore>(), s.GetRequiredService<PayoutStore>(), s.GetRequiredService<TimeProvider>().GetUtcNow(),
                    TimeSpan.FromHours(1), CancellationToken.None);
                violations.ForEach(Console.WriteLine);
                Console.WriteLine(violations.Count == 0 ? "Ledger reconciled: no violations." : $"{violations.Count} violations.");
                Environment.ExitCode = violations.Count == 0 ? 0 : 1;
                return true;
            default:
                return false;
        }
    }

    private static async Task ProvisionAsync(IServiceProvider services, bool seedDemo)
    {
        var options = services.GetRequiredService<IOptions<CosmosOptions>>().Value;
        var client = services.GetRequiredService<CosmosClient>();
        await CosmosExtensions.ProvisionAsync(client, options.Database, Platform.Containers);
        Console.WriteLine($"Database '{options.Database}' and containers ready at {options.Endpoint}");
        if (seedDemo) await DemoCampaign.SeedAsync(services);
    }
}
