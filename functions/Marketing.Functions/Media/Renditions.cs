using System.Security.Cryptography;
using SkiaSharp;

namespace Marketing.Functions.Media;

/// <summary>A rendition made from an upload, before it is published: its bytes and what they are.</summary>
public sealed record RenditionBytes(string Name, byte[] Bytes, string ContentType, int? Width, int? Height);

/// <summary>
/// Web renditions of an accepted image: decoded once (its dimensions already checked against the header bound), then
/// each width of its kind encoded as WebP and JPEG from the pixels alone, so no metadata of the upload (EXIF with GPS,
/// XMP, comments) survives. Names are the SHA-256 of the bytes: a changed image gets a new URL, and caches may keep a URL forever.
/// </summary>
public static class Renditions
{
    private const int WebPQuality = 80;
    private const int JpegQuality = 85;

    /// <summary>The renditions, or null when the image does not decode (a damaged or crafted file).</summary>
    public static List<RenditionBytes>? Make(byte[] upload, MediaKind kind, string prefix, (int Width, int Height) declared)
    {
        using var data = SKData.CreateCopy(upload);
        using var codec = SKCodec.Create(data);
        // The decoder must agree with the header we checked: a file whose frames say otherwise is not decoded at all.
        if (codec is null || codec.Info.Width != declared.Width || codec.Info.Height != declared.Height) return null;
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Premul);
        using var source = new SKBitmap(info);
        var result = codec.GetPixels(info, source.GetPixels());
        if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput)) return null;
        using var upright = Upright(source, codec.EncodedOrigin);

        var renditions = new List<RenditionBytes>();
        foreach (var target in kind.Widths.Select(w => Math.Min(w, upright.Width)).Distinct())
        {
            var height = Math.Max(1, (int)Math.Round((double)upright.Height * target / upright.Width));
            using var scaled = target == upright.Width ? upright.Copy() : upright.Resize(new SKImageInfo(target, height, SKColorType.Rgba8888, SKAlphaType.Premul),
                new SKSamplingOptions(SKCubicResampler.Mitchell));
            if (scaled is null) return null;
            renditions.Add(Encode(scaled, SKEncodedImageFormat.Webp, WebPQuality, MediaKind.WebP, "webp", prefix));
            // JPEG has no transparency: flatten on white, as a page behind it would most likely be.
            using var flat = new SKBitmap(new SKImageInfo(scaled.Width, scaled.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
            using (var canvas = new SKCanvas(flat))
            {
                canvas.Clear(SKColors.White);
                canvas.DrawBitmap(scaled, 0, 0);
            }
            renditions.Add(Encode(flat, SKEncodedImageFormat.Jpeg, JpegQuality, MediaKind.Jpeg, "jpg", prefix));
        }
        return renditions;
    }

    /// <summary>A PDF is published as uploaded (its magic bytes checked), under its hash.</summary>
    public static RenditionBytes Document(byte[] upload, string prefix) =>
        new(prefix + Hash(upload) + ".pdf", upload, MediaKind.Pdf, null, null);

    private static RenditionBytes Encode(SKBitmap bitmap, SKEncodedImageFormat format, int quality, string contentType, string extension, string prefix)
    {
        using var image = SKImage.FromBitmap(bitmap);
        using var encoded = image.Encode(format, quality) ?? throw new InvalidOperationException($"Skia could not encode {format}.");
        var bytes = encoded.ToArray();
        return new RenditionBytes($"{prefix}{Hash(bytes)}-{bitmap.Width}w.{extension}", bytes, contentType, bitmap.Width, bitmap.Height);
    }

    /// <summary>Phones store pictures sideways with an EXIF orientation; the metadata goes, so the pixels are turned here.</summary>
    private static SKBitmap Upright(SKBitmap source, SKEncodedOrigin origin)
    {
        if (origin == SKEncodedOrigin.TopLeft) return source.Copy();
        var swap = origin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;
        var turned = new SKBitmap(new SKImageInfo(swap ? source.Height : source.Width, swap ? source.Width : source.Height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using var canvas = new SKCanvas(turned);
        float w = turned.Width, h = turned.Height;
        // Where a source pixel (x, y) lands: x' = scaleX·x + skewX·y + transX, y' = skewY·x + scaleY·y + transY.
        var matrix = origin switch
        {
            SKEncodedOrigin.TopRight => new SKMatrix(-1, 0, w, 0, 1, 0, 0, 0, 1),
            SKEncodedOrigin.BottomRight => new SKMatrix(-1, 0, w, 0, -1, h, 0, 0, 1),
            SKEncodedOrigin.BottomLeft => new SKMatrix(1, 0, 0, 0, -1, h, 0, 0, 1),
            SKEncodedOrigin.LeftTop => new SKMatrix(0, 1, 0, 1, 0, 0, 0, 0, 1),
            SKEncodedOrigin.RightTop => new SKMatrix(0, -1, w, 1, 0, 0, 0, 0, 1),
            SKEncodedOrigin.RightBottom => new SKMatrix(0, -1, w, -1, 0, h, 0, 0, 1),
            _ => new SKMatrix(0, 1, 0, -1, 0, h, 0, 0, 1), // LeftBottom
        };
        canvas.SetMatrix(matrix);
        canvas.DrawBitmap(source, 0, 0);
        return turned;
    }

    private static string Hash(byte[] bytes) => Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant();
}
