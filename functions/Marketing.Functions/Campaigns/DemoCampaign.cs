namespace Marketing.Functions.Campaigns;

/// <summary>
/// A published demo campaign for the local run script: "spend 100 save 20", 1,000 coupons. Seeded as published with the
/// record a real one would carry: revision 1, made and submitted by "seed", approved by "seed-approver" (someone else).
/// </summary>
public static class DemoCampaign
{
    public const string Id = "cmp_demo";

    public static async Task SeedAsync(IServiceProvider services)
    {
        var store = services.GetRequiredService<CampaignStore>();
        var stock = services.GetRequiredService<StockStore>();
        var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
        if (await store.FindAsync(Id) is not null)
        {
            Console.WriteLine($"Demo campaign {Id} already exists.");
            return;
        }
        var terms = new CampaignTerms
        {
            Name = "Demo: spend 100 save 20",
            Kind = DiscountKind.AmountOff,
            AmountOff = 2000,
            MinimumSpend = 10000,
            Currency = "CNY",
            Channels = [Channel.App, Channel.MiniProgram, Channel.H5],
            ClaimStartsAt = now.AddMinutes(-1),
            ClaimEndsAt = now.AddDays(30),
            Validity = new Validity { Type = ValidityType.Relative, Days = 7 },
            TotalQuantity = 1000,
            PerCustomerLimit = 2,
            TimeZone = "Asia/Shanghai",
        };
        await stock.PrepareForPublishAsync(Id, terms.TotalQuantity, terms.Budget);
        await store.CreateAsync(new Campaign
        {
            Id = Id, Catalog = CampaignStore.DefaultCatalog, Terms = terms, Status = CampaignStatus.Published,
            CreatedAt = now, CreatedBy = "seed", UpdatedAt = now, UpdatedBy = "seed", PublishedAt = now,
            Revision = 1, Makers = ["seed"], SubmittedBy = "seed", SubmittedAt = now,
            Approval = new CampaignApproval(1, "seed-approver", now),
            LastApproved = new ApprovedTerms(1, terms, "seed-approver", now),
        });
        await stock.SetOpenAsync(Id, true);
        Console.WriteLine($"Seeded published demo campaign {Id}.");
    }
}
