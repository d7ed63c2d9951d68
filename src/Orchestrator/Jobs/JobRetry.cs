using Microsoft.Extensions.Options;
using Orchestrator.Workflow;

namespace Orchestrator.Jobs;

/// <summary>
/// Whole-job retry of transient failures (a model outage, say), separate from the gateway's per-call retries:
/// exponential backoff with jitter drawn from the job's trace seed, never a validation or policy failure, and
/// never a retry whose backoff would end past the deadline. A retry is not a sleeping worker: the job is parked
/// as a committed row with its due time (<c>nextAttemptAt</c>), and any node's dispatcher takes it when it is due.
/// </summary>
internal sealed class JobRetry(IOptions<JobsOptions> options)
{
    /// <summary>When the next attempt of <paramref name="job"/> is due after <paramref name="outcome"/>; null when there is none.</summary>
    public DateTime? DueAfter(Job job, JobOutcome outcome, DateTime now)
    {
        var retry = options.Value.Retry;
        if (!outcome.Transient || job.Attempts >= retry.MaxAttempts)
            return null;
        // Retry number job.Attempts - 1 (0-based). "Equal jitter": half the ceiling fixed, half random, so retries of
        // many jobs spread out; the random half comes from the trace, so a replay of the schedule is exact.
        var ceiling = Ceiling(retry, job.Attempts - 1);
        var random = new Random(unchecked((int)Seeds.For(job.TraceId, $"retry/{job.Attempts}")));
        var delay = ceiling * (0.5 + 0.5 * random.NextDouble());
        // Never sooner than the gateway said any model can serve again (a provider's Retry-After, a circuit's break).
        if (outcome.RetryAfter is { } after && after > delay)
            delay = after;
        var due = now + delay;
        return due < job.DeadlineAt ? due : null;
    }

    /// <summary>The longest the backoff before retry number <paramref name="attempt"/> (0-based) can be.</summary>
    static TimeSpan Ceiling(JobRetryOptions options, int attempt)
    {
        var exponential = options.BaseDelay * Math.Pow(2, Math.Min(attempt, 30));
        return exponential < options.MaxDelay ? exponential : options.MaxDelay;
    }
}
