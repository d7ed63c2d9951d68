using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Orchestrator.Jobs;

/// <summary>Ready only once the workers recovered the store's unfinished jobs and are draining the lanes.</summary>
internal sealed class WorkersHealth(JobWorkers workers, JobQueue queue, RunningJobs running) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(workers.Running
            ? HealthCheckResult.Healthy($"{workers.Count} workers; {running.Count} running, {queue.Held} queued of {queue.Capacity}.")
            : HealthCheckResult.Unhealthy("The workers are not running (starting up, or stopped)."));
}
