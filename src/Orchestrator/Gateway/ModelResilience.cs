using Microsoft.Extensions.AI;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;

namespace Orchestrator.Gateway;

/// <summary>
/// One resilience pipeline per model (registry key <c>model:{id}</c>), outermost first: retry of retryable
/// failures (honouring a 429's <c>Retry-After</c>), the circuit breaker that quarantines the model, and the
/// per-attempt timeout. A refused request (4xx) neither retries nor counts against the circuit.
/// </summary>
internal static class ModelResilience
{
    public static string KeyOf(string modelId) => "model:" + modelId;

    public static void Configure(
        ResiliencePipelineBuilder<ChatResponse> builder, CatalogModel model, GatewayOptions options, GatewayTelemetry telemetry, TimeProvider time)
    {
        builder.TimeProvider = time;
        if (options.MaxRetries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions<ChatResponse>
            {
                MaxRetryAttempts = options.MaxRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryBaseDelay,
                // Never into an open circuit: when this failure (or a failed half-open probe) opened it, the
                // call falls back to the next model at once instead of sleeping a backoff first.
                ShouldHandle = args => ValueTask.FromResult(model.Circuit.CircuitState is CircuitState.Closed or CircuitState.HalfOpen && args.Outcome.Exception switch
                {
                    ModelCallException error => ModelFailureClasses.IsRetryable(error.Failure) &&
                                                (error.RetryAfter is null || error.RetryAfter <= options.MaxRetryAfter),
                    TimeoutRejectedException => true,
                    _ => false,
                }),
                // A 429 says how long to wait: wait that long (the Retry-After test above bounds it).
                DelayGenerator = args => ValueTask.FromResult(
                    args.Outcome.Exception is ModelCallException { RetryAfter: { } after } ? after : (TimeSpan?)null),
                OnRetry = _ =>
                {
                    telemetry.Retry(model.Id);
                    return ValueTask.CompletedTask;
                },
            });
        }
        builder.AddCircuitBreaker(new CircuitBreakerStrategyOptions<ChatResponse>
        {
            FailureRatio = options.BreakerFailureRatio,
            MinimumThroughput = options.BreakerMinimumThroughput,
            SamplingDuration = options.BreakerSamplingDuration,
            BreakDuration = options.BreakDuration,
            StateProvider = model.Circuit,
            ManualControl = model.Control,
            ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is
                ModelCallException { Failure: not ModelFailureClass.Rejected } or TimeoutRejectedException),
            OnOpened = args =>
            {
                if (!args.IsManual)
                    model.OpenUntil = time.GetUtcNow() + args.BreakDuration;
                telemetry.Circuit(model.Id, args.IsManual ? "isolated" : "open");
                return ValueTask.CompletedTask;
            },
            OnHalfOpened = _ =>
            {
                telemetry.Circuit(model.Id, "half-open");
                return ValueTask.CompletedTask;
            },
            OnClosed = _ =>
            {
                model.OpenUntil = null;
                telemetry.Circuit(model.Id, "closed");
                return ValueTask.CompletedTask;
            },
        });
        builder.AddTimeout(new TimeoutStrategyOptions
        {
            Timeout = model.Entry.Timeout,
            OnTimeout = args =>
            {
                model.Health.Failed(ModelFailureClass.Timeout, args.Timeout.TotalMilliseconds);
                telemetry.Call(model.Id, ModelFailureClass.Timeout, args.Timeout.TotalMilliseconds);
                return ValueTask.CompletedTask;
            },
        });
    }
}
