using Marketing.Functions.Campaigns;
using Marketing.Functions.Hosting;
using Marketing.Functions.Identity;
using Marketing.Functions.Redemption;
using Marketing.Functions.Wallet;

// Tooling commands run the same wiring without serving: see Hosting/Commands.cs.
var builder = WebApplication.CreateBuilder(args);
builder.AddPlatform();
builder.Services.AddBearerAuth(builder.Configuration);
builder.Services.AddCosmos(builder.Configuration);
builder.Services.AddCampaigns(builder.Configuration);
builder.Services.AddWallet();

var app = builder.Build();
app.UsePlatform();
app.MapPlatform();
app.MapCampaigns();
app.MapWallet();
app.MapRedemption();

if (await Commands.TryRunAsync(app, args)) return;
app.Run();

public partial class Program;
