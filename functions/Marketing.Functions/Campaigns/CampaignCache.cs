using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Campaigns;

public sealed class CampaignCacheOptions
{
    public const string Section = "Campaigns";
    /// <summary>How long an instance trusts its copy of a published campaign's terms (claim path, claimable list).</summary>
    [System.ComponentModel.DataAnnotations.Range(0, 300)]
    public int CacheSeconds { get; set; } = 5;
}

/// <summary>
/// Published campaigns as the claim path sees them, held a few seconds per instance. Safe because a
/// published campaign's terms can only widen (more quantity, later end), and whether claims are allowed
/// at all is decided by the stock counter's "open" switch, never by this copy.
/// Only published campaigns are held, so publishing takes effect at once.
/// </summary>
public sealed class CampaignCache(CampaignStore store, TimeProvider time, IOptions<CampaignCacheOptions> options)
{
    private readonly ConcurrentDictionary<string, (Campaign Campaign, DateTimeOffset Until)> campaigns = new();
    private sealed record PublishedList(List<Campaign> Items, DateTimeOffset Until);
    private PublishedList? published; // replaced whole, never mutated: readers see one consistent list
    private TimeSpan Ttl => TimeSpan.FromSeconds(options.Value.CacheSeconds);

    public async Task<Campaign?> FindAsync(string id, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        if (campaigns.TryGetValue(id, out var entry) && entry.Until > now)
            return entry.Campaign;
        var campaign = await store.FindAsync(id, ct);
        if (campaign?.Status == CampaignStatus.Published && Ttl > TimeSpan.Zero)
            campaigns[id] = (campaign, now + Ttl);
        else
            campaigns.TryRemove(id, out _);
        return campaign;
    }

    public async Task<List<Campaign>> ListPublishedAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        if (Volatile.Read(ref published) is { } list && list.Until > now)
            return list.Items;
        var items = await store.ListPublishedAsync(ct);
        Volatile.Write(ref published, new PublishedList(items, now + Ttl));
        return items;
    }

    /// <summary>Forgets what this instance holds about a campaign it just changed.</summary>
    public void Forget(string id)
    {
        campaigns.TryRemove(id, out _);
        Volatile.Write(ref published, null);
    }
}
