namespace Orchestrator.Gateway;

/// <summary>
/// A model's live health: latency EWMA and p50/p95 over its recent calls, error rate by failure class,
/// and a composite score. Fed by every call attempt; read by routing and <c>GET /v1/models</c>.
/// </summary>
public sealed class ModelHealth(int samples, TimeSpan window, TimeProvider time)
{
    const double Alpha = 0.2;

    readonly Lock _gate = new();
    readonly Sample[] _ring = new Sample[samples];
    int _count;
    int _next;
    double? _ewmaMs;
    long _calls;
    long _failures;
    long _canceled;

    readonly record struct Sample(long AtMs, double Ms, ModelFailureClass? Failure);

    public void Succeeded(double ms) => Add(new Sample(Now, ms, null));

    public void Failed(ModelFailureClass failure, double ms) => Add(new Sample(Now, ms, failure));

    /// <summary>
    /// A call canceled before it answered (a hedge that lost, a job that ended). It says nothing about success
    /// and its latency is unknown, so it only counts: many of them mean the model's tail is being hedged away.
    /// </summary>
    public void Canceled() => Interlocked.Increment(ref _canceled);

    long Now => time.GetUtcNow().ToUnixTimeMilliseconds();

    void Add(Sample sample)
    {
        lock (_gate)
        {
            _ring[_next] = sample;
            _next = (_next + 1) % _ring.Length;
            _count = Math.Min(_count + 1, _ring.Length);
            _calls++;
            if (sample.Failure is null)
                _ewmaMs = _ewmaMs is { } ewma ? ewma + Alpha * (sample.Ms - ewma) : sample.Ms;
            else
                _failures++;
        }
    }

    public HealthSnapshot Snapshot()
    {
        Sample[] recent;
        double? ewma;
        long calls, failures;
        lock (_gate)
        {
            var since = Now - (long)window.TotalMilliseconds;
            recent = new Sample[_count];
            var n = 0;
            for (var i = 0; i < _count; i++)
            {
                var sample = _ring[(_next - 1 - i + _ring.Length) % _ring.Length];
                if (sample.AtMs >= since)
                    recent[n++] = sample;
            }
            Array.Resize(ref recent, n);
            ewma = _ewmaMs;
            calls = _calls;
            failures = _failures;
        }
        var latencies = recent.Where(s => s.Failure is null).Select(s => s.Ms).Order().ToArray();
        var byClass = recent.Where(s => s.Failure is not null)
            .GroupBy(s => ModelFailureClasses.Of(s.Failure!.Value))
            .ToDictionary(g => g.Key, g => g.Count());
        var errorRate = recent.Length == 0 ? 0 : (double)(recent.Length - latencies.Length) / recent.Length;
        return new HealthSnapshot(
            recent.Length, errorRate, byClass, ewma,
            Percentile(latencies, 0.50), Percentile(latencies, 0.95), calls, failures, Interlocked.Read(ref _canceled));
    }

    static double? Percentile(double[] sorted, double q) =>
        sorted.Length == 0 ? null : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
}

/// <summary>Health figures of one model at one moment.</summary>
public sealed record HealthSnapshot(
    int RecentCalls,
    double ErrorRate,
    IReadOnlyDictionary<string, int> ErrorsByClass,
    double? EwmaMs,
    double? P50Ms,
    double? P95Ms,
    long TotalCalls,
    long TotalFailures,
    long TotalCanceled = 0)
{
    public double SuccessRate => 1 - ErrorRate;

    /// <summary>
    /// 0..1: the success rate, squared so failures weigh heavily, times a latency factor that halves at one
    /// second (<c>1000 / (1000 + ewma)</c>). A model without calls yet scores on success alone.
    /// </summary>
    public double Score => Math.Round(SuccessRate * SuccessRate * (EwmaMs is { } ms ? 1000 / (1000 + ms) : 1), 4);
}
