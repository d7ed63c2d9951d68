namespace Orchestrator.Telemetry;

/// <summary>
/// A lock-free latency histogram with log-spaced buckets (about 9% wide), good for p50/p95/p99 of
/// millisecond figures without keeping samples.
/// </summary>
public sealed class LatencySummary
{
    const int Buckets = 200;
    const double Growth = 1.09;
    static readonly double LogGrowth = Math.Log(Growth);

    readonly long[] _counts = new long[Buckets];
    long _count;
    long _sumMs;
    long _maxMs;

    public void Record(double ms)
    {
        if (ms < 0 || double.IsNaN(ms))
            ms = 0;
        Interlocked.Increment(ref _counts[BucketOf(ms)]);
        Interlocked.Increment(ref _count);
        Interlocked.Add(ref _sumMs, (long)ms);
        var rounded = (long)Math.Ceiling(ms);
        long max;
        while (rounded > (max = Volatile.Read(ref _maxMs)) &&
               Interlocked.CompareExchange(ref _maxMs, rounded, max) != max)
        {
        }
    }

    public long Count => Volatile.Read(ref _count);

    public LatencyView View() => View([this]);

    /// <summary>Merges several summaries (e.g. every principal of a tenant) into one view.</summary>
    public static LatencyView View(IReadOnlyCollection<LatencySummary> summaries)
    {
        var counts = new long[Buckets];
        long count = 0, sum = 0, max = 0;
        foreach (var summary in summaries)
        {
            for (var i = 0; i < Buckets; i++)
                counts[i] += Volatile.Read(ref summary._counts[i]);
            count += summary.Count;
            sum += Volatile.Read(ref summary._sumMs);
            max = Math.Max(max, Volatile.Read(ref summary._maxMs));
        }
        return new LatencyView(count, count == 0 ? 0 : Math.Round((double)sum / count, 1),
            Quantile(counts, count, 0.50, max), Quantile(counts, count, 0.95, max), Quantile(counts, count, 0.99, max), max);
    }

    static int BucketOf(double ms) => ms < 1 ? 0 : Math.Min(Buckets - 1, 1 + (int)(Math.Log(ms) / LogGrowth));

    static double UpperBound(int bucket) => bucket == 0 ? 1 : Math.Pow(Growth, bucket);

    static double Quantile(long[] counts, long total, double q, long max)
    {
        if (total == 0)
            return 0;
        var rank = (long)Math.Ceiling(q * total);
        long seen = 0;
        for (var i = 0; i < Buckets; i++)
        {
            seen += counts[i];
            if (seen >= rank)
                return Math.Round(Math.Min(UpperBound(i), max), 1);
        }
        return max;
    }
}

/// <summary>Latency figures in milliseconds; quantiles are bucket upper bounds (within ~9%).</summary>
public sealed record LatencyView(long Count, double MeanMs, double P50Ms, double P95Ms, double P99Ms, double MaxMs);
