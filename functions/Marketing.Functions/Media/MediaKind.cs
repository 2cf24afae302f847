namespace Marketing.Functions.Media;

/// <summary>
/// What an operator may attach to a campaign, and each kind's rules: the content types it takes, its size limit and the
/// widths of its web renditions (1x and 2x of how the app shows it; never wider than the upload).
/// </summary>
public sealed record MediaKind(string Name, string[] ContentTypes, long MaxBytes, int[] Widths)
{
    public const string Png = "image/png";
    public const string Jpeg = "image/jpeg";
    public const string WebP = "image/webp";
    public const string Pdf = "application/pdf";

    /// <summary>
    /// The largest image accepted, by its header, before anything is decoded: a decoded image takes 4 bytes a pixel, so
    /// 40 megapixels is 160 MB at most, and no side beyond 10,000 pixels (a banner of 10,000 × 4 is no banner).
    /// </summary>
    public const long MaxPixels = 40_000_000;
    public const int MaxSide = 10_000;

    private static readonly string[] Images = [Png, Jpeg, WebP];

    public static readonly MediaKind Banner = new("banner", Images, 5 * 1024 * 1024, [750, 1500]);
    public static readonly MediaKind Thumbnail = new("thumbnail", Images, 2 * 1024 * 1024, [160, 320]);
    public static readonly MediaKind Poster = new("poster", Images, 10 * 1024 * 1024, [540, 1080]);
    public static readonly MediaKind Rules = new("rules", [Pdf], 10 * 1024 * 1024, []);

    public static readonly IReadOnlyList<MediaKind> All = [Banner, Thumbnail, Poster, Rules];

    public static MediaKind? Find(string? name) => All.FirstOrDefault(k => k.Name == name);

    public bool IsImage => Widths.Length > 0;
}
