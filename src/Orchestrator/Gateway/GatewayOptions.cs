using System.ComponentModel.DataAnnotations;

namespace Orchestrator.Gateway;

/// <summary>Section <c>Orchestrator:Gateway</c>: how model calls are retried, broken and hedged.</summary>
public sealed class GatewayOptions
{
    public const string Section = "Orchestrator:Gateway";

    /// <summary>Strategy when neither the request nor the intent policy names one.</summary>
    public string DefaultStrategy { get; set; } = RoutingStrategies.LatencyFirst;

    /// <summary>Retries of one model call for retryable failures (timeout, 429, 5xx, transport), before falling back.</summary>
    [Range(0, 10)]
    public int MaxRetries { get; set; } = 2;

    /// <summary>First retry backoff; doubles per retry, with jitter.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Longest <c>Retry-After</c> a 429 may ask for and still be retried on the same model; longer falls back.</summary>
    public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Share of failed calls in <see cref="BreakerSamplingDuration"/> that opens the circuit.</summary>
    [Range(0.01, 1.0)]
    public double BreakerFailureRatio { get; set; } = 0.5;

    /// <summary>Calls needed in the sampling window before the circuit may open.</summary>
    [Range(2, 10_000)]
    public int BreakerMinimumThroughput { get; set; } = 5;

    public TimeSpan BreakerSamplingDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an open circuit quarantines a model before a half-open probe may bring it back.</summary>
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Calls the health figures (p50/p95, error rate) are taken over: the last N within <see cref="HealthWindow"/>.</summary>
    [Range(10, 10_000)]
    public int HealthSamples { get; set; } = 200;

    public TimeSpan HealthWindow { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How fast a failure fades from a model's error share: it weighs half as much after each half-life, so a model that
    /// recovered is ranked by its present, not by a burst it had minutes ago.
    /// </summary>
    public TimeSpan ErrorHalfLife { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Hedge delay while the primary has no latency history yet.</summary>
    public TimeSpan HedgeDefaultDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Shortest hedge delay, however fast the primary's p95.</summary>
    public TimeSpan HedgeMinDelay { get; set; } = TimeSpan.FromMilliseconds(20);
}
