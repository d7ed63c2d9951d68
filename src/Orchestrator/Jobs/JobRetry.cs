using Microsoft.Extensions.Options;
using Orchestrator.Storage;
using Orchestrator.Telemetry;
using Orchestrator.Workflow;
using Polly;
using Polly.Retry;

namespace Orchestrator.Jobs;

/// <summary>
/// Whole-job retry of transient failures (a model outage, say), separate from the gateway's per-call
/// retries: exponential backoff with jitter drawn from the job's trace seed, never a validation or
/// policy failure, and never a retry whose backoff would end past the deadline. Each retry counts an
/// attempt on the row and records its due time, so the job view shows it.
/// </summary>
internal static class JobRetry
{
    public const string PipelineKey = "job-retry";
    public static readonly ResiliencePropertyKey<Job> JobKey = new("orchestrator.job");

    public static void Configure(ResiliencePipelineBuilder<JobOutcome> builder, IServiceProvider services)
    {
        var options = services.GetRequiredService<IOptions<JobsOptions>>().Value.Retry;
        var time = services.GetRequiredService<TimeProvider>();
        builder.TimeProvider = time;
        if (options.MaxAttempts <= 1)
            return;

        var writer = services.GetRequiredService<StoreWriter>();
        var telemetry = services.GetRequiredService<OrchestratorTelemetry>();
        builder.AddRetry(new RetryStrategyOptions<JobOutcome>
        {
            MaxRetryAttempts = options.MaxAttempts - 1,
            ShouldHandle = args => ValueTask.FromResult(
                args.Outcome.Result is { Transient: true } &&
                args.Context.Properties.TryGetValue(JobKey, out var job) &&
                time.GetUtcNow().UtcDateTime + Longest(Ceiling(options, args.AttemptNumber), args.Outcome.Result.RetryAfter) < job.DeadlineAt),
            DelayGenerator = args =>
            {
                var job = args.Context.Properties.GetValue(JobKey, null!);
                var random = new Random(unchecked((int)Seeds.For(job.TraceId, $"retry/{job.Attempts}")));
                // "Equal jitter": half the ceiling fixed, half random, so retries of many jobs spread out.
                var ceiling = Ceiling(options, args.AttemptNumber);
                // Never sooner than the gateway said any model can serve again (a provider's Retry-After, a circuit's break).
                return ValueTask.FromResult<TimeSpan?>(Longest(ceiling * (0.5 + 0.5 * random.NextDouble()), args.Outcome.Result?.RetryAfter));
            },
            OnRetry = async args =>
            {
                var job = args.Context.Properties.GetValue(JobKey, null!);
                job.Attempts++;
                job.NextAttemptAt = time.GetUtcNow().UtcDateTime + args.RetryDelay;
                job.ErrorCode = args.Outcome.Result?.ErrorCode;
                job.ErrorMessage = args.Outcome.Result?.ErrorMessage;
                await writer.WriteAsync(JobWrites.Retry(job));
                telemetry.Retries.Add(1, JobExecution.TagsOf(job));
                telemetry.Count(job.Tenant, job.Principal, "jobs.retries");
            },
        });
    }

    static TimeSpan Longest(TimeSpan backoff, TimeSpan? retryAfter) => retryAfter is { } after && after > backoff ? after : backoff;

    /// <summary>The longest the backoff before retry number <paramref name="attempt"/> (0-based) can be.</summary>
    static TimeSpan Ceiling(JobRetryOptions options, int attempt)
    {
        var exponential = options.BaseDelay * Math.Pow(2, Math.Min(attempt, 30));
        return exponential < options.MaxDelay ? exponential : options.MaxDelay;
    }
}
