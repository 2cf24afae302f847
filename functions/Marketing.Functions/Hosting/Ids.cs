using System.Security.Cryptography;

namespace Marketing.Functions.Hosting;

public static class Ids
{
    private const string Crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

    /// <summary>A new id such as "cmp_7k2q9x0c4m1v8r3t": a type prefix and 80 random bits.</summary>
    public static string New(string prefix) => prefix + "_" + Random(16).ToLowerInvariant();

    /// <summary>A coupon code such as "7K2Q-9X0C-4M1V": 60 random bits, no I/L/O/U to misread.</summary>
    public static string CouponCode()
    {
        var raw = Random(12);
        return $"{raw[..4]}-{raw[4..8]}-{raw[8..]}";
    }

    /// <summary>A referral code such as "7K2Q9X0C": 40 random bits, short enough to type from a poster.</summary>
    public static string ReferralCode() => Random(8);

    /// <summary>Whether a value from a URL can be one of our ids: 1–64 of a-z 0-9 _ -.</summary>
    public static bool IsWellFormed(string? id)
        => id is { Length: > 0 and <= 64 } && id.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '_' or '-');

    private static string Random(int length)
    {
        Span<byte> bytes = stackalloc byte[length];
        RandomNumberGenerator.Fill(bytes);
        return string.Create(length, bytes.ToArray(), (chars, b) =>
        {
            for (var i = 0; i < chars.Length; i++) chars[i] = Crockford[b[i] & 31];
        });
    }
}
