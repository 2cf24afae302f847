using Marketing.Functions.Approvals;
using Marketing.Functions.Audit;
using Marketing.Functions.Campaigns;
using Marketing.Functions.Commissions;
using Marketing.Functions.Expiry;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Media;
using Marketing.Functions.Notifications;
using Marketing.Functions.OperatorConsole;
using Marketing.Functions.Payouts;
using Marketing.Functions.Promoters;
using Marketing.Functions.Redemption;
using Marketing.Functions.Stats;
using Marketing.Functions.Telemetry;
using Marketing.Functions.Wallet;

// Tooling commands run the same wiring without serving: see Hosting/Commands.cs.
var builder = WebApplication.CreateBuilder(args);
builder.AddPlatform();
builder.AddTelemetry();
builder.Services.AddBearerAuth(builder.Configuration);
builder.Services.AddCosmos(builder.Configuration);
builder.Services.AddBlobs(builder.Configuration);
builder.Services.AddMalwareScan();
builder.Services.AddCampaigns(builder.Configuration);
builder.Services.AddWallet();
builder.Services.AddRedemption(builder.Configuration);
builder.Services.AddExpiry();
builder.Services.AddPromoters(builder.Configuration);
builder.Services.AddCommissions(builder.Configuration);
builder.Services.AddPayouts();
builder.Services.AddStats();
builder.Services.AddNotifications(builder.Configuration);
builder.Services.AddMedia(builder.Configuration);
builder.Services.AddApprovals();
builder.Services.AddAudit(builder.Configuration);
builder.Services.AddConsole();

var app = builder.Build();
app.UseTelemetry();
app.UsePlatform();
app.MapPlatform();
app.MapCampaigns();
app.MapWallet();
app.MapRedemption();
app.MapExpiry();
app.MapPromoters();
app.MapCommissions();
app.MapPayouts();
app.MapStats();
app.MapNotifications();
app.MapMedia();
app.MapApprovals();
app.MapAudit();
app.MapDevSignIn();
app.MapConsole();

try
{
    if (await Commands.TryRunAsync(app, args)) return;
    await app.RunAsync();
}
catch (Exception error) when (SettingsErrors.Of(error) is { } failures)
{
    // A missing setting is an operator's fix, not a crash: say which, and where settings come from.
    SettingsErrors.Report(failures);
    Environment.ExitCode = SettingsErrors.ExitCode;
}

public partial class Program;
