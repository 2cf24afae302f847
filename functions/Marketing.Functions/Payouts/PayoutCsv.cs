using System.Globalization;
using System.Text;

namespace Marketing.Functions.Payouts;

/// <summary>
/// The batch as CSV (RFC 4180, UTF-8): one row per paid promoter, amounts in minor units.
/// Cells that a spreadsheet would run as a formula (starting with = + - @ or a tab/CR) are prefixed with
/// an apostrophe: promoter ids are customers' ids, and finance opens this file in a spreadsheet.
/// </summary>
public static class PayoutCsv
{
    public const string ContentType = "text/csv";

    public static string Write(string batchId, IEnumerable<PayoutLine> lines)
    {
        var csv = new StringBuilder("batch_id,promoter_id,currency,amount_minor,entries\r\n");
        foreach (var line in lines.OrderBy(l => l.PromoterId, StringComparer.Ordinal))
            csv.Append(Cell(batchId)).Append(',').Append(Cell(line.PromoterId)).Append(',').Append(Cell(line.Currency)).Append(',')
               .Append(line.Amount.ToString(CultureInfo.InvariantCulture)).Append(',')
               .Append(line.Entries.ToString(CultureInfo.InvariantCulture)).Append("\r\n");
        return csv.ToString();
    }

    public static IResult Result(string batchId, IReadOnlyList<PayoutLine> lines, int status, HttpContext context)
    {
        context.Response.Headers.ContentDisposition = $"attachment; filename=\"payout-{batchId}.csv\"";
        if (status == StatusCodes.Status201Created) context.Response.Headers.Location = $"/api/payouts/{batchId}";
        return Results.Text(Write(batchId, lines), ContentType + "; charset=utf-8", Encoding.UTF8, status);
    }

    private static string Cell(string value)
    {
        if (value.Length > 0 && value[0] is '=' or '+' or '-' or '@' or '\t' or '\r') value = "'" + value;
        return value.IndexOfAny([',', '"', '\r', '\n']) >= 0 ? "\"" + value.Replace("\"", "\"\"") + "\"" : value;
    }
}
