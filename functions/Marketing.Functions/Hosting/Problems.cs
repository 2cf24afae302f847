using System.Text.Json;

namespace Marketing.Functions.Hosting;

/// <summary>
/// The stable error vocabulary of the API. Clients branch on <see cref="Problem.Type"/>, whose last
/// segment (after "urn:marketing:problem:") never changes once published; titles and details may.
/// </summary>
public static class ProblemTypes
{
    public const string Prefix = "urn:marketing:problem:";

    public const string ValidationFailed = "validation-failed";
    public const string MalformedJson = "malformed-json";
    public const string UnsupportedMediaType = "unsupported-media-type";
    public const string PayloadTooLarge = "payload-too-large";
    public const string Unauthorized = "unauthorized";
    public const string Forbidden = "forbidden";
    public const string NotFound = "not-found";
    public const string SoldOut = "sold-out";
    public const string LimitReached = "limit-reached";
    public const string NotEligible = "not-eligible";
    public const string CampaignNotActive = "campaign-not-active";
    public const string CampaignNotEditable = "campaign-not-editable";
    public const string IdempotencyKeyReused = "idempotency-key-reused";
    public const string IdempotencyInFlight = "idempotency-in-flight";
    public const string InvalidTransition = "invalid-transition";
    public const string PreconditionFailed = "precondition-failed";
    public const string ConcurrentUpdate = "concurrent-update";
    public const string MethodNotAllowed = "method-not-allowed";
    public const string CouponLocked = "coupon-locked";
    public const string CouponNotApplicable = "coupon-not-applicable";
    public const string BudgetExhausted = "budget-exhausted";
    public const string UnknownReferralCode = "unknown-referral-code";
    public const string SelfReferral = "self-referral";
    public const string InvalidPageToken = "invalid-page-token";
    public const string Busy = "busy";
    /// <summary>Defender for Storage found malware in an upload (Media/MalwareScan.cs): the blob is deleted.</summary>
    public const string MediaMalicious = "media-malicious";
    /// <summary>The upload has no malware-scan verdict yet (Media/MalwareScan.cs): retry after Retry-After.</summary>
    public const string MediaScanPending = "media-scan-pending";
    /// <summary>The payout batch is still being paid: its CSV is not final yet.</summary>
    public const string PayoutBatchNotCompleted = "payout-batch-not-completed";
    // Campaign media (docs/media.md): why an upload was refused on complete, or is not there yet.
    public const string MediaNotUploaded = "media-not-uploaded";
    public const string MediaEmpty = "media-empty";
    public const string MediaTooLarge = "media-too-large";
    public const string MediaLengthMismatch = "media-length-mismatch";
    public const string MediaTypeMismatch = "media-type-mismatch";
    public const string MediaUnreadable = "media-unreadable";
    public const string MediaDimensionsTooLarge = "media-dimensions-too-large";
    /// <summary>Maker-checker: the caller submitted, edited or requested what they try to approve (403; docs/approvals.md).</summary>
    public const string FourEyes = "four-eyes";
    /// <summary>The step needs an approval that is not there (publishing an unapproved revision; paying an unapproved batch).</summary>
    public const string ApprovalRequired = "approval-required";
    /// <summary>The approval request was already decided (or voided) and cannot be decided again differently.</summary>
    public const string ApprovalNotPending = "approval-not-pending";
    public const string Internal = "internal";
}

/// <summary>An RFC 9457 problem document.</summary>
public sealed record Problem(
    string Type,
    string Title,
    int Status,
    string? Detail = null,
    IReadOnlyDictionary<string, string[]>? Errors = null,
    IReadOnlyDictionary<string, string>? Extensions = null)
{
    /// <summary>The same problem with an extension member (RFC 9457 §3.2), e.g. "reason".</summary>
    public Problem With(string member, string value)
        => this with { Extensions = new Dictionary<string, string>(Extensions ?? new Dictionary<string, string>()) { [member] = value } };

    public static Problem Of(string code, int status, string title, string? detail = null,
        IReadOnlyDictionary<string, string[]>? errors = null)
        => new(ProblemTypes.Prefix + code, title, status, detail, errors);

    public static Problem Validation(IReadOnlyDictionary<string, string[]> errors)
        => Of(ProblemTypes.ValidationFailed, 400, "The request is not valid.",
            "See 'errors' for the fields to correct.", errors);

    public static Problem Validation(string field, string message)
        => Validation(new Dictionary<string, string[]> { [field] = [message] });

    /// <summary>A page token this list did not issue (see <see cref="Paging"/>); the field names the query parameter.</summary>
    public static Problem InvalidPageToken(string reason)
        => Of(ProblemTypes.InvalidPageToken, 400, "The page token is not valid.",
            "Pass the continuationToken of the previous page unchanged, or leave it out for the first page.",
            new Dictionary<string, string[]> { [Paging.TokenParameter] = [reason] });

    public static Problem NotFound(string what)
        => Of(ProblemTypes.NotFound, 404, "Not found.", $"{what} does not exist.");
}

/// <summary>Writes a <see cref="Problem"/> as application/problem+json.</summary>
public sealed class ProblemResult(Problem problem) : IResult, IStatusCodeHttpResult, IValueHttpResult<Problem>, IValueHttpResult
{
    public Problem Value => problem;
    public int? StatusCode => problem.Status;
    object? IValueHttpResult.Value => problem;

    public Task ExecuteAsync(HttpContext httpContext) => WriteAsync(httpContext, problem);

    public static async Task WriteAsync(HttpContext httpContext, Problem problem)
    {
        var response = httpContext.Response;
        response.StatusCode = problem.Status;
        response.ContentType = "application/problem+json";
        var body = new Dictionary<string, object?>
        {
            ["type"] = problem.Type,
            ["title"] = problem.Title,
            ["status"] = problem.Status,
        };
        if (problem.Detail is not null) body["detail"] = problem.Detail;
        body["instance"] = httpContext.Request.Path.Value;
        if (problem.Errors is not null) body["errors"] = problem.Errors;
        foreach (var (member, value) in problem.Extensions ?? new Dictionary<string, string>())
            body.TryAdd(member, value);
        await JsonSerializer.SerializeAsync(response.Body, body, Json.Options, httpContext.RequestAborted);
    }
}

public static class ProblemResultExtensions
{
    public static ProblemResult ToResult(this Problem problem) => new(problem);
}
