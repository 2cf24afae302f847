using System.Text;

namespace Marketing.Functions.Hosting;

/// <summary>
/// FNV-1a (32 bits) of a string's UTF-8 bytes: the same in every process and release (never string.GetHashCode), so
/// whatever is placed or chosen by it (a due entry's shard, an order's budget shard, a customer's reminder holdout)
/// comes out the same every time.
/// </summary>
public static class StableHash
{
    public static uint Fnv1a(string value)
    {
        var hash = 2166136261u;
        foreach (var b in Encoding.UTF8.GetBytes(value))
            hash = unchecked((hash ^ b) * 16777619u);
        return hash;
    }
}
