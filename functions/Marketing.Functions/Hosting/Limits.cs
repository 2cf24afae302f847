using System.Text.Json;

namespace Marketing.Functions.Hosting;

/// <summary>
/// The largest numbers the platform accepts, and why. Cosmos DB stores every JSON number as an IEEE 754
/// double, which holds integers exactly only up to 2^53 − 1 (<see cref="MaxSafeInteger"/>). A larger integer
/// is stored rounded (9223372036854775807 comes back as 9.223372036854776E+18), and reading it back into a
/// long throws: one such campaign made every list of the catalog answer 500. So every amount the API
/// accepts is capped at validation (<see cref="MaxMoney"/>), and the storage serializer refuses to write an
/// integer beyond 2^53 − 1 at all (<see cref="CheckStorable"/>), so a missed check fails one write, never
/// every later read.
/// </summary>
public static class Limits
{
    /// <summary>2^53 − 1: the largest integer a double (Cosmos DB's only number type) holds exactly.</summary>
    public const long MaxSafeInteger = (1L << 53) - 1;

    /// <summary>
    /// The largest amount of money any field accepts, in minor units: 10^12 (ten billion in major units of a
    /// two-decimal currency, beyond any coupon, budget, order line or payout). It is 2^53 / 9007, so sums of
    /// accepted amounts stay exact in Cosmos DB with room to spare: a budget and its top-ups (capped at this
    /// in total), an order's lines (capped at this in total), a promoter's balance (thousands of maximal
    /// entries before it could lose a minor unit).
    /// </summary>
    public const long MaxMoney = 1_000_000_000_000;

    /// <summary>Whether <paramref name="value"/> is an amount of money from <paramref name="least"/> to <see cref="MaxMoney"/>.</summary>
    public static bool IsMoney(long value, long least = 0) => value >= least && value <= MaxMoney;

    /// <summary>
    /// Throws <see cref="UnstorableNumberException"/> when the JSON holds an integer Cosmos DB would round
    /// (beyond ±(2^53 − 1)). Numbers written with a fraction or exponent are doubles already and pass.
    /// </summary>
    public static void CheckStorable(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json);
        string? property = null;
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.PropertyName)
                property = reader.GetString();
            else if (reader.TokenType == JsonTokenType.Number && !IsStorable(ref reader))
                throw new UnstorableNumberException(property, System.Text.Encoding.UTF8.GetString(reader.ValueSpan));
        }
    }

    private static bool IsStorable(ref Utf8JsonReader reader)
    {
        var text = reader.ValueSpan;
        if (text.IndexOfAny("."u8) >= 0 || text.IndexOfAny("eE"u8) >= 0) return true;
        return reader.TryGetInt64(out var value) && value is >= -MaxSafeInteger and <= MaxSafeInteger;
    }
}

/// <summary>A document would hold an integer that Cosmos DB cannot store exactly: a validation is missing (a bug).</summary>
public sealed class UnstorableNumberException(string? property, string number)
    : InvalidOperationException($"Refused to store {number} (member '{property ?? "$"}'): Cosmos DB keeps integers exactly only up to 2^53 − 1, so it could not be read back.");
