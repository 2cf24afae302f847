using System.Net;
using Marketing.Functions.Hosting;
using Microsoft.Azure.Cosmos;

namespace Marketing.Functions.Promoters;

/// <summary>
/// A customer who shares referral links and earns commission. <see cref="Id"/> is the customer's id
/// (their token's subject); <see cref="ParentId"/> is the promoter who invited them (their level-2 parent),
/// fixed at registration. <see cref="PayingBatch"/> is set while a payout batch pays this promoter, so two
/// batches never split one promoter's entries between them.
/// </summary>
public sealed record Promoter
{
    public required string Id { get; init; }
    public string Partition => Id;
    public string Type => "promoter";
    public required string Code { get; init; }
    public string? ParentId { get; init; }
    /// <summary>The code the promoter was invited with (shown to them instead of the inviter's customer id).</summary>
    public string? ParentCode { get; init; }
    public required DateTimeOffset RegisteredAt { get; init; }
    public string? PayingBatch { get; init; }
}

/// <summary>A referral code, in the "codes" partition: unique because the code is the document id.</summary>
public sealed record ReferralCode
{
    public required string Id { get; init; }
    public string Partition => PromoterStore.CodesPartition;
    public string Type => "code";
    public required string PromoterId { get; init; }
}

/// <summary>
/// Container "promoters", partitioned by /partition: a promoter's document is its own partition (the customer
/// id); every referral code lives in the one "codes" partition, so a code is found with a point read and
/// the codes double as the list of promoters a payout run walks (a single-partition query, paged).
/// </summary>
public sealed class PromoterStore(Database database)
{
    public static readonly ContainerSpec Spec = new("promoters", "/partition", ["/\"_etag\"/?"]);
    public const string CodesPartition = "codes";

    /// <summary>Referral codes: 8 characters of Crockford base32 (40 random bits), no I/L/O/U to misread.</summary>
    public const int CodeLength = 8;

    private readonly Container container = database.GetContainer(Spec.Name);

    public static bool IsWellFormedCode(string? code)
        => code is { Length: CodeLength } && code.All(c => char.IsAsciiDigit(c) || (char.IsAsciiLetterUpper(c) && c is not ('I' or 'L' or 'O' or 'U')));

    public async Task<Promoter?> FindAsync(string promoterId, CancellationToken ct) => (await container.ReadOrNullAsync<Promoter>(promoterId, promoterId, ct))?.Resource;

    public async Task<Promoter?> FindByCodeAsync(string code, CancellationToken ct)
    {
        if (!IsWellFormedCode(code)) return null;
        var entry = (await container.ReadOrNullAsync<ReferralCode>(code, CodesPartition, ct))?.Resource;
        return entry is null ? null : await FindAsync(entry.PromoterId, ct);
    }

    /// <summary>Reserves a code for a promoter; false when the code is taken.</summary>
    public Task<bool> TryReserveCodeAsync(string code, string promoterId, CancellationToken ct)
        => container.TryCreateAsync(new ReferralCode { Id = code, PromoterId = promoterId }, CodesPartition, ct);

    /// <summary>Gives back a code reserved by a registration that lost a race (best effort: an orphan code is harmless).</summary>
    public async Task ReleaseCodeAsync(string code, CancellationToken ct)
    {
        try
        {
            await container.DeleteItemAsync<ReferralCode>(code, new PartitionKey(CodesPartition), cancellationToken: ct);
        }
        catch (CosmosException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
        }
    }

    /// <summary>Creates the promoter; false when the customer is already registered.</summary>
    public Task<bool> TryCreateAsync(Promoter promoter, CancellationToken ct) => container.TryCreateAsync(promoter, promoter.Id, ct);

    /// <summary>One page of promoter ids (through their codes; a code whose registration lost a race names nobody).</summary>
    public async Task<(List<string> Ids, string? ContinuationToken)> ListIdsAsync(int pageSize, string? continuationToken, CancellationToken ct)
    {
        var query = new QueryDefinition("SELECT VALUE c.promoterId FROM c WHERE c.partition = @codes")
            .WithParameter("@codes", CodesPartition);
        using var iterator = container.GetItemQueryIterator<string>(query, continuationToken,
            new QueryRequestOptions { PartitionKey = new PartitionKey(CodesPartition), MaxItemCount = pageSize });
        var page = await iterator.ReadNextAsync(ct);
        return (page.Resource.ToList(), page.ContinuationToken);
    }

    /// <summary>
    /// Marks the promoter as being paid by <paramref name="batchId"/>, unless another batch is paying them.
    /// True when this batch holds the promoter (also when it already did: a resumed batch).
    /// </summary>
    public async Task<bool> TryHoldForPayoutAsync(string promoterId, string batchId, CancellationToken ct)
    {
        try
        {
            await container.PatchItemAsync<Promoter>(promoterId, new PartitionKey(promoterId),
                [PatchOperation.Set("/payingBatch", batchId)],
                new PatchItemRequestOptions
                {
                    FilterPredicate = "FROM c WHERE NOT IS_DEFINED(c.payingBatch) OR IS_NULL(c.payingBatch) OR c.payingBatch = '" + batchId + "'",
                    EnableContentResponseOnWrite = false,
                }, ct);
            return true;
        }
        catch (CosmosException e) when (e.StatusCode is HttpStatusCode.PreconditionFailed or HttpStatusCode.NotFound)
        {
            return false;
        }
    }

    /// <summary>Lets go of the promoter after the batch paid them (only if this batch holds them).</summary>
    public async Task ReleasePayoutHoldAsync(string promoterId, string batchId, CancellationToken ct)
    {
        try
        {
            await container.PatchItemAsync<Promoter>(promoterId, new PartitionKey(promoterId),
                [PatchOperation.Set<string?>("/payingBatch", null)],
                new PatchItemRequestOptions { FilterPredicate = "FROM c WHERE c.payingBatch = '" + batchId + "'", EnableContentResponseOnWrite = false }, ct);
        }
        catch (CosmosException e) when (e.StatusCode is HttpStatusCode.PreconditionFailed or HttpStatusCode.NotFound)
        {
        }
    }
}
