using Microsoft.Extensions.AI;
using Polly;
using Polly.CircuitBreaker;

namespace Orchestrator.Gateway;

/// <summary>Everything the gateway keeps for one model of the catalog: its client, health, circuit and call slots.</summary>
internal sealed class CatalogModel(ModelEntry entry, IChatClient client, ModelHealth health, TimeProvider time)
{
    volatile bool _quarantinedByOperator;
    long _openUntilMs;

    public ModelEntry Entry { get; } = entry;
    public string Id => Entry.Id;
    public IChatClient Client { get; } = client;
    public ModelHealth Health { get; } = health;

    /// <summary>Calls in flight are bounded by <see cref="ModelEntry.MaxConcurrency"/>; further calls wait for a slot.</summary>
    public SemaphoreSlim Slots { get; } = new(entry.MaxConcurrency, entry.MaxConcurrency);

    public CircuitBreakerStateProvider Circuit { get; } = new();
    public CircuitBreakerManualControl Control { get; } = new();

    /// <summary>This model's resilience pipeline (timeout, retry, circuit breaker), built once from the registry.</summary>
    public ResiliencePipeline<ChatResponse> Pipeline { get; set; } = ResiliencePipeline<ChatResponse>.Empty;

    public bool QuarantinedByOperator
    {
        get => _quarantinedByOperator;
        set => _quarantinedByOperator = value;
    }

    long _waitUntilMs;

    /// <summary>The provider asked us (429 or 503 with <c>Retry-After</c>) not to call before this time.</summary>
    public DateTimeOffset? WaitUntil
    {
        get => Interlocked.Read(ref _waitUntilMs) is var ms and > 0 ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;
    }

    /// <summary>Records a provider's <c>Retry-After</c>; a later, shorter one never shortens an earlier wait.</summary>
    public void WaitFor(TimeSpan retryAfter) => WaitUntilAtLeast(time.GetUtcNow() + retryAfter);

    /// <summary>Takes a wait another node learned of (its provider's <c>Retry-After</c>); never shortens a longer one.</summary>
    public void WaitUntilAtLeast(DateTimeOffset until)
    {
        var ms = until.ToUnixTimeMilliseconds();
        long seen;
        while ((seen = Interlocked.Read(ref _waitUntilMs)) < ms && Interlocked.CompareExchange(ref _waitUntilMs, ms, seen) != seen)
        {
        }
    }

    /// <summary>When the circuit opened by itself, the time a half-open probe becomes possible.</summary>
    public DateTimeOffset? OpenUntil
    {
        get => Interlocked.Read(ref _openUntilMs) is var ms and > 0 ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;
        set => Interlocked.Exchange(ref _openUntilMs, value?.ToUnixTimeMilliseconds() ?? 0);
    }

    /// <summary>
    /// The circuit as routing sees it: <c>open</c> while the break lasts (or an operator isolated it),
    /// <c>half-open</c> once a probe may go through, <c>closed</c> otherwise.
    /// </summary>
    public string CircuitName
    {
        get
        {
            if (QuarantinedByOperator)
                return "open";
            return Circuit.CircuitState switch
            {
                CircuitState.Isolated => "open",
                CircuitState.Open => OpenUntil is { } until && time.GetUtcNow() >= until ? "half-open" : "open",
                CircuitState.HalfOpen => "half-open",
                _ => "closed",
            };
        }
    }

    /// <summary><c>quarantined</c> (circuit open or an operator's hand), <c>degraded</c> (probing, or failing often), or <c>healthy</c>.</summary>
    public string Status(HealthSnapshot health) =>
        QuarantinedByOperator || CircuitName == "open" ? "quarantined"
        : CircuitName == "half-open" || health.ErrorRate >= 0.25 ? "degraded"
        : "healthy";
}
