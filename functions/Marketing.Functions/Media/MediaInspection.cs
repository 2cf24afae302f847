using System.Buffers.Binary;

namespace Marketing.Functions.Media;

/// <summary>
/// What an upload really is, from its first bytes (a SAS cannot restrict what a client writes): the type its magic
/// bytes say, and for images the dimensions its header declares, read without decoding anything, so that a
/// decompression bomb (a small file declaring a huge image) is refused before any pixel is allocated.
/// </summary>
public static class MediaInspection
{
    /// <summary>How much of an upload is read to know its type and dimensions (a JPEG's frame header may follow its EXIF block).</summary>
    public const int HeaderBytes = 128 * 1024;

    /// <summary>The content type the bytes are, or null for none we take (an executable renamed .png, a text file...).</summary>
    public static string? Sniff(ReadOnlySpan<byte> bytes)
    {
        if (bytes.StartsWith((ReadOnlySpan<byte>)[0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A])) return MediaKind.Png;
        if (bytes.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF])) return MediaKind.Jpeg;
        if (bytes.Length >= 12 && bytes[..4].SequenceEqual("RIFF"u8) && bytes[8..12].SequenceEqual("WEBP"u8)) return MediaKind.WebP;
        if (bytes.StartsWith("%PDF-"u8)) return MediaKind.Pdf;
        return null;
    }

    /// <summary>The width and height an image's header declares, or null when the header cannot be read.</summary>
    public static (int Width, int Height)? Dimensions(ReadOnlySpan<byte> bytes, string contentType) => contentType switch
    {
        MediaKind.Png => Png(bytes),
        MediaKind.Jpeg => Jpeg(bytes),
        MediaKind.WebP => WebP(bytes),
        _ => null,
    };

    // The first chunk of a PNG is IHDR: 4-byte length, "IHDR", then width and height (big-endian).
    private static (int, int)? Png(ReadOnlySpan<byte> b)
    {
        if (b.Length < 24 || !b[12..16].SequenceEqual("IHDR"u8)) return null;
        var w = BinaryPrimitives.ReadUInt32BigEndian(b[16..]);
        var h = BinaryPrimitives.ReadUInt32BigEndian(b[20..]);
        return w is 0 or > int.MaxValue || h is 0 or > int.MaxValue ? null : ((int)w, (int)h);
    }

    // A JPEG is a run of segments; the frame header (SOF0..SOF15 but DHT C4, JPG C8, DAC CC) holds height then width.
    private static (int, int)? Jpeg(ReadOnlySpan<byte> b)
    {
        var i = 2;
        while (i + 4 <= b.Length)
        {
            if (b[i] != 0xFF) return null;
            var marker = b[i + 1];
            if (marker == 0xFF) { i++; continue; } // fill byte
            if (marker is 0xD8 or 0x01 or (>= 0xD0 and <= 0xD7)) { i += 2; continue; } // no length
            var length = BinaryPrimitives.ReadUInt16BigEndian(b[(i + 2)..]);
            if (length < 2) return null;
            if (marker is >= 0xC0 and <= 0xCF and not 0xC4 and not 0xC8 and not 0xCC)
            {
                if (i + 9 > b.Length) return null;
                int h = BinaryPrimitives.ReadUInt16BigEndian(b[(i + 5)..]), w = BinaryPrimitives.ReadUInt16BigEndian(b[(i + 7)..]);
                return w == 0 || h == 0 ? null : (w, h);
            }
            if (marker is 0xD9 or 0xDA) return null; // end of image or scan data before any frame header
            i += 2 + length;
        }
        return null;
    }

    // WebP: a RIFF container whose first chunk is VP8 (lossy), VP8L (lossless) or VP8X (extended, with the canvas size).
    private static (int, int)? WebP(ReadOnlySpan<byte> b)
    {
        if (b.Length < 30) return null;
        var chunk = b[12..16];
        if (chunk.SequenceEqual("VP8 "u8))
        {
            // Frame tag (3 bytes), start code 9D 01 2A, then 14-bit width and height.
            if (b[23] != 0x9D || b[24] != 0x01 || b[25] != 0x2A) return null;
            return (BinaryPrimitives.ReadUInt16LittleEndian(b[26..]) & 0x3FFF, BinaryPrimitives.ReadUInt16LittleEndian(b[28..]) & 0x3FFF);
        }
        if (chunk.SequenceEqual("VP8L"u8))
        {
            if (b[20] != 0x2F) return null;
            var bits = BinaryPrimitives.ReadUInt32LittleEndian(b[21..]);
            return ((int)(bits & 0x3FFF) + 1, (int)((bits >> 14) & 0x3FFF) + 1);
        }
        if (chunk.SequenceEqual("VP8X"u8))
            return ((b[24] | b[25] << 8 | b[26] << 16) + 1, (b[27] | b[28] << 8 | b[29] << 16) + 1);
        return null;
    }
}
