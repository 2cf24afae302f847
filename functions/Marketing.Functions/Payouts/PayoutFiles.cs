using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace Marketing.Functions.Payouts;

/// <summary>
/// Blob container "payouts" (private; infra/modules/storage.bicep): one blob per completed batch, its CSV as
/// finance downloads it, named "{batchId}/{createdAt ticks}.csv" (the creation instant keeps a batch id reused on a
/// fresh database, e.g. a reset local one sharing the emulator, from reading an older batch's file). A completed batch's lines never change, so neither does its
/// CSV: the blob is written once (If-None-Match: *) and a second write — a repeated or concurrent request —
/// leaves the first in place, which holds the same bytes.
/// </summary>
public sealed class PayoutFiles(BlobServiceClient blobs)
{
    public const string ContainerName = "payouts";

    private readonly BlobContainerClient container = blobs.GetBlobContainerClient(ContainerName);

    public BlobClient CsvOf(PayoutBatch batch)
        => container.GetBlobClient($"{batch.BatchId}/{batch.CreatedAt.UtcTicks.ToString(System.Globalization.CultureInfo.InvariantCulture)}.csv");

    /// <summary>Stores the completed batch's CSV unless it is already stored; returns its blob.</summary>
    public async Task<BlobClient> StoreCsvAsync(PayoutBatch batch, string csv, CancellationToken ct)
    {
        var blob = CsvOf(batch);
        var batchId = batch.BatchId;
        var options = new BlobUploadOptions
        {
            HttpHeaders = new BlobHttpHeaders
            {
                ContentType = PayoutCsv.ContentType + "; charset=utf-8",
                ContentDisposition = $"attachment; filename=\"payout-{batchId}.csv\"",
            },
            Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
        };
        try
        {
            await blob.UploadAsync(BinaryData.FromString(csv), options, ct);
        }
        catch (RequestFailedException e) when (e.ErrorCode == BlobErrorCode.ContainerNotFound)
        {
            // Infra creates the container in Azure; the local emulators start empty.
            await container.CreateIfNotExistsAsync(cancellationToken: ct);
            return await StoreCsvAsync(batch, csv, ct);
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            // Already stored (BlobAlreadyExists / ConditionNotMet): the same CSV.
        }
        return blob;
    }
}
