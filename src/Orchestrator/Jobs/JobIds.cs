using System.Security.Cryptography;

namespace Orchestrator.Jobs;

/// <summary>
/// Job ids: <c>job_</c> + a monotonic ULID (48-bit milliseconds, 80 random bits, Crockford base32).
/// Sorting ids sorts jobs by creation, so "newest first" paging is a keyset on the id alone.
/// </summary>
public sealed class JobIds(TimeProvider time)
{
    const string Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    readonly Lock _gate = new();
    long _lastMs = -1;
    UInt128 _lastRandom;

    public string Next()
    {
        var ms = time.GetUtcNow().ToUnixTimeMilliseconds();
        UInt128 random;
        lock (_gate)
        {
            if (ms <= _lastMs)
            {
                // Same (or an earlier, if the clock stepped back) millisecond: count up so ids stay ordered.
                ms = _lastMs;
                random = ++_lastRandom & ((UInt128.One << 80) - 1);
            }
            else
            {
                Span<byte> bytes = stackalloc byte[16];
                RandomNumberGenerator.Fill(bytes);
                // Leave headroom in the top bit so counting up within a millisecond never wraps.
                random = new UInt128(BitConverter.ToUInt64(bytes[..8]), BitConverter.ToUInt64(bytes[8..])) & ((UInt128.One << 79) - 1);
                _lastMs = ms;
            }
            _lastRandom = random;
        }

        Span<char> text = stackalloc char[30];
        "job_".CopyTo(text);
        var value = ((UInt128)(ulong)ms << 80) | random;
        for (var i = 29; i >= 4; i--)
        {
            text[i] = Alphabet[(int)(value & 31)];
            value >>= 5;
        }
        return new string(text);
    }
}
