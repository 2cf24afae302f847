using System.Collections.Immutable;
using Microsoft.Extensions.Options;

namespace Marketing.Functions.Campaigns;

public sealed class CampaignCacheOptions
{
    public const string Section = "Campaigns";
    /// <summary>How long an instance trusts its copy of the catalog before asking whether anything changed (claim path, claimable list).</summary>
    [System.ComponentModel.DataAnnotations.Range(0, 300)]
    public int CacheSeconds { get; set; } = 5;
}

/// <summary>
/// The catalog as the claim path and the claimable list see it: every published campaign (and campaigns seen
/// to end), held per instance. Safe because a published campaign's terms can only widen (more quantity, later
/// end), and whether claims are allowed at all is decided by the stock counter's "open" switch, never by this
/// copy; so the copy may be a few seconds old.
///
/// What keeping it costs does not grow with the catalog: every <see cref="CampaignCacheOptions.CacheSeconds"/>
/// an instance reads the catalog's change marker (one small document, one read unit), and only when it changed
/// (or once a minute, in case a marker write was lost) reads the campaigns written since its last look
/// (<c>_ts</c>); the whole catalog is read once, when the instance starts. A campaign this instance does not
/// hold (a draft, a paused one, one published since it looked) is read from the database on each request, as
/// before, so publishing and resuming take effect at once; one published since the last look also makes the
/// next request look again, so such reads stop at once.
/// </summary>
public sealed class CampaignCache(CampaignStore store, TimeProvider time, IOptions<CampaignCacheOptions> options)
{
    /// <summary>How often an instance reads what changed whatever the marker says (a marker write lost to a crash).</summary>
    public static readonly TimeSpan LookAnyway = TimeSpan.FromMinutes(1);
    /// <summary>Most ended campaigns held: an ended campaign never changes again, and holding it spares a read per refused claim.</summary>
    public const int MaxEndedHeld = 10_000;

    private readonly SemaphoreSlim looking = new(1, 1); // one look at a time per instance; it serves everyone waiting
    private Snapshot? snapshot; // replaced whole, never mutated: readers see one consistent catalog
    private int changedHere;    // counts Forget calls, so a look that raced one is not trusted
    private TimeSpan Ttl => TimeSpan.FromSeconds(options.Value.CacheSeconds);

    /// <summary>
    /// The catalog as of <see cref="Since"/> (every write before that <c>_ts</c> second is reflected) and the
    /// marker's etag when that was read. <see cref="Until"/>: trusted until; <see cref="LookBy"/>: read what
    /// changed by then whatever the marker says; <see cref="MustLook"/>: read what changed on the next request.
    /// </summary>
    private sealed class Snapshot(ImmutableDictionary<string, Campaign> held, int ended, long since, string? marker,
        DateTimeOffset until, DateTimeOffset lookBy, bool mustLook)
    {
        public ImmutableDictionary<string, Campaign> Held { get; } = held;
        public int Ended { get; } = ended;
        public long Since { get; } = since;
        public string? Marker { get; } = marker;
        public DateTimeOffset Until { get; } = until;
        public DateTimeOffset LookBy { get; } = lookBy;
        public bool MustLook { get; } = mustLook;
        public IReadOnlyList<Campaign> Published { get; } = held.Values.Where(c => c.Status == CampaignStatus.Published).ToList();

        public Snapshot Trusted(DateTimeOffset until) => new(Held, Ended, Since, Marker, until, LookBy, MustLook);
        public Snapshot Distrusted() => new(Held, Ended, Since, Marker, DateTimeOffset.MinValue, LookBy, mustLook: true);
    }

    public async Task<Campaign?> FindAsync(string id, CancellationToken ct)
    {
        var catalog = await CurrentAsync(ct);
        if (catalog.Held.TryGetValue(id, out var held)) return held;
        var found = await store.FindChangeAsync(id, ct);
        // Published since the instance last looked: look again on the next request, which then finds it held.
        if (found is { Campaign.Status: CampaignStatus.Published } && found.Ts >= catalog.Since) Distrust();
        return found?.Campaign;
    }

    /// <summary>Every published campaign as of the instance's last look (shared: never modify it).</summary>
    public async Task<IReadOnlyList<Campaign>> ListPublishedAsync(CancellationToken ct) => (await CurrentAsync(ct)).Published;

    /// <summary>This instance just changed a campaign: the next request reads what changed, so the change shows here at once.</summary>
    public void Forget(string id)
    {
        Interlocked.Increment(ref changedHere);
        Distrust();
    }

    private void Distrust()
    {
        if (Volatile.Read(ref snapshot) is { } current) Volatile.Write(ref snapshot, current.Distrusted());
    }

    private async Task<Snapshot> CurrentAsync(CancellationToken ct)
    {
        if (Volatile.Read(ref snapshot) is { } trusted && trusted.Until > time.GetUtcNow()) return trusted;
        await looking.WaitAsync(ct);
        try
        {
            var now = time.GetUtcNow();
            var current = Volatile.Read(ref snapshot);
            if (current is not null && current.Until > now) return current;
            var changes = Volatile.Read(ref changedHere);
            var next = current is null ? await LoadAsync(now, ct) : await LookAsync(current, now, ct);
            // A campaign changed here while we looked may have been written after our read of it: look again.
            if (Volatile.Read(ref changedHere) != changes) next = next.Distrusted();
            Volatile.Write(ref snapshot, next);
            return next;
        }
        finally
        {
            looking.Release();
        }
    }

    /// <summary>
    /// The instance's first look: the marker, then the newest write time, then every published campaign. In that
    /// order, a write that the list misses comes after both reads: its marker differs and its <c>_ts</c> is not
    /// older than Since, so the next look finds it.
    /// </summary>
    private async Task<Snapshot> LoadAsync(DateTimeOffset now, CancellationToken ct)
    {
        var marker = await store.ChangesETagAsync(ct);
        var since = await store.LatestChangeAsync(ct);
        var published = await store.ListPublishedChangesAsync(ct);
        var held = published.Where(c => c.Campaign is not null).ToImmutableDictionary(c => c.Id, c => c.Campaign!);
        return new Snapshot(held, 0, since, marker, now + Ttl, now + LookAnyway, mustLook: false);
    }

    /// <summary>The marker (one read unit); only if it changed, or it is time anyway, the campaigns written since the last look.</summary>
    private async Task<Snapshot> LookAsync(Snapshot current, DateTimeOffset now, CancellationToken ct)
    {
        var marker = await store.ChangesETagAsync(ct);
        if (!current.MustLook && marker == current.Marker && now < current.LookBy) return current.Trusted(now + Ttl);

        var changed = await store.ListChangedSinceAsync(current.Since, ct);
        var held = current.Held.ToBuilder();
        var ended = current.Ended;
        var since = current.Since;
        foreach (var change in changed)
        {
            since = Math.Max(since, change.Ts);
            if (held.TryGetValue(change.Id, out var before) && before.Status == CampaignStatus.Ended) ended--;
            held.Remove(change.Id);
            switch (change.Campaign?.Status)
            {
                case CampaignStatus.Published:
                    held[change.Id] = change.Campaign;
                    break;
                case CampaignStatus.Ended when ended < MaxEndedHeld:
                    held[change.Id] = change.Campaign;
                    ended++;
                    break;
                // Drafts, paused campaigns, and unreadable documents are not held: requests read them.
            }
        }
        return new Snapshot(held.ToImmutable(), ended, since, marker, now + Ttl, now + LookAnyway, mustLook: false);
    }
}
