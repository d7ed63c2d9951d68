using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Orchestrator.Rollout;

/// <summary>
/// Sticky assignment: a subject's bucket is the first 4 bytes (big-endian) of SHA-256 of <c>salt|kind|tenant|subject</c>
/// (UTF-8), mod 10,000; it gets the candidate when its bucket is below percent x 100. The bucket depends on nothing that
/// changes between versions, so raising the percent only moves buckets into the candidate. Test vectors: doc/rollout.md.
/// </summary>
public static class Buckets
{
    public const int Count = 10_000;

    public static int Of(string salt, string kind, string tenant, string subject)
    {
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes($"{salt}|{kind}|{tenant}|{subject}"), digest);
        return (int)(BinaryPrimitives.ReadUInt32BigEndian(digest) % Count);
    }

    /// <summary>True when a bucket is in the candidate's share (<paramref name="percent"/> 0..100, two decimals count).</summary>
    public static bool InCandidate(int bucket, double percent) => bucket < (int)Math.Round(percent * 100);
}
