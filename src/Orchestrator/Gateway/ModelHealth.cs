namespace Orchestrator.Gateway;

/// <summary>
/// A model's live health: latency EWMA and p50/p95 over its recent calls, error rate by failure class,
/// and a composite score. Fed by every call attempt; read by routing and <c>GET /v1/models</c>.
/// </summary>
/// <remarks>
/// With an <paramref name="errorHalfLife"/>, each failure weighs half as much every half-life: the error share is the
/// decayed failures over the calls in the window, so it falls with time alone, not only as new calls dilute it. A model
/// that failed a burst and recovered is therefore ranked by what it does now: it returns to first choice once its old
/// failures have faded, even though, ranked low, it gets few calls to dilute them with.
/// </remarks>
public sealed class ModelHealth(int samples, TimeSpan window, TimeProvider time, TimeSpan? errorHalfLife = null)
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
    long _version;
    HealthSnapshot? _cached;
    long _cachedVersion;
    long _cachedUntilMs;

    readonly record struct Sample(long AtMs, double Ms, ModelFailureClass? Failure);

    public void Succeeded(double ms) => Add(new Sample(Now, ms, null));

    public void Failed(ModelFailureClass failure, double ms) => Add(new Sample(Now, ms, failure));

    /// <summary>
    /// A call canceled before it answered (a hedge that lost, a job that ended). It says nothing about success
    /// and its latency is unknown, so it only counts: many of them mean the model's tail is being hedged away.
    /// </summary>
    public void Canceled()
    {
        lock (_gate)
        {
            _canceled++;
            _version++;
        }
    }

    long Now => time.GetUtcNow().ToUnixTimeMilliseconds();

    void Add(Sample sample)
    {
        lock (_gate)
        {
            _ring[_next] = sample;
            _next = (_next + 1) % _ring.Length;
            _count = Math.Min(_count + 1, _ring.Length);
            _calls++;
            _version++;
            if (sample.Failure is null)
                _ewmaMs = _ewmaMs is { } ewma ? ewma + Alpha * (sample.Ms - ewma) : sample.Ms;
            else
                _failures++;
        }
    }

    /// <summary>
    /// The figures now. Routing reads every model's snapshot on every call, so the last one is kept and handed out
    /// again until a call is recorded or its oldest sample leaves the window; computing one sorts at most
    /// <c>samples</c> doubles with <see cref="Array.Sort{T}(T[], int, int)"/> (no LINQ, no comparison delegate).
    /// </summary>
    public HealthSnapshot Snapshot()
    {
        lock (_gate)
        {
            var now = Now;
            if (_cached is { } cached && _cachedVersion == _version && now < _cachedUntilMs)
                return cached;

            var since = now - (long)window.TotalMilliseconds;
            var latencies = new double[_count];
            var recent = 0;
            var ok = 0;
            var rejected = 0;
            var failedWeight = 0.0;
            var halfLifeMs = errorHalfLife?.TotalMilliseconds ?? 0;
            var oldest = long.MaxValue;
            Dictionary<string, int>? byClass = null;
            for (var i = 0; i < _count; i++)
            {
                var sample = _ring[(_next - 1 - i + _ring.Length) % _ring.Length];
                if (sample.AtMs < since)
                    continue;
                recent++;
                oldest = Math.Min(oldest, sample.AtMs);
                if (sample.Failure is { } failure)
                {
                    byClass ??= [];
                    var name = ModelFailureClasses.Of(failure);
                    byClass[name] = byClass.GetValueOrDefault(name) + 1;
                    // One caller's request refused (a 400, a content filter) says nothing about the model's health.
                    if (failure == ModelFailureClass.Rejected)
                        rejected++;
                    else
                        failedWeight += halfLifeMs > 0 ? Math.Pow(0.5, (now - sample.AtMs) / halfLifeMs) : 1;
                }
                else
                    latencies[ok++] = sample.Ms;
            }
            Array.Sort(latencies, 0, ok);
            var judged = recent - rejected;
            var errorRate = judged == 0 ? 0 : Math.Min(1, failedWeight / judged);
            var fresh = new HealthSnapshot(
                recent, errorRate, (IReadOnlyDictionary<string, int>?)byClass ?? EmptyClasses, _ewmaMs,
                Percentile(latencies, ok, 0.50), Percentile(latencies, ok, 0.95), _calls, _failures, _canceled);
            _cached = fresh;
            _cachedVersion = _version;
            // valid until the oldest sample in it falls out of the window (a snapshot of no samples never changes by time)
            _cachedUntilMs = oldest == long.MaxValue ? long.MaxValue : oldest + (long)window.TotalMilliseconds;
            // Decaying failures change the figures with time: a kept snapshot lasts a small part of a half-life.
            if (failedWeight > 0 && halfLifeMs > 0)
                _cachedUntilMs = Math.Min(_cachedUntilMs, now + Math.Max(1, (long)(halfLifeMs / 64)));
            return fresh;
        }
    }

    static readonly IReadOnlyDictionary<string, int> EmptyClasses = new Dictionary<string, int>();

    static double? Percentile(double[] sorted, int length, double q) =>
        length == 0 ? null : sorted[Math.Min(length - 1, (int)Math.Ceiling(q * length) - 1)];
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
