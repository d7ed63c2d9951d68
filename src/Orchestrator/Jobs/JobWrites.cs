using Orchestrator.Storage;

namespace Orchestrator.Jobs;

/// <summary>
/// The state transitions of a job, each a guarded write: it applies only if the row is still in the expected
/// status. Each write takes a snapshot of the job, because the worker goes on changing it while the write waits.
/// </summary>
internal static class JobWrites
{
    public static StoreWrite Admit(Job job) => new Insert<Job>(job.Snapshot());

    /// <summary>accepted (or running, after a crash) -> running, counting the attempt.</summary>
    public static StoreWrite Claim(Job job, JobStatus expected) => Update(job, expected,
        nameof(Job.Status), nameof(Job.StartedAt), nameof(Job.QueueMs), nameof(Job.Attempts),
        nameof(Job.NextAttemptAt), nameof(Job.CurrentNode), nameof(Job.ErrorCode), nameof(Job.ErrorMessage));

    /// <summary>A retry is due: counts the attempt and records the failure that caused it.</summary>
    public static StoreWrite Retry(Job job) => Update(job, JobStatus.Running,
        nameof(Job.Attempts), nameof(Job.NextAttemptAt), nameof(Job.ErrorCode), nameof(Job.ErrorMessage));

    public static StoreWrite Progress(Job job) => Update(job, JobStatus.Running, nameof(Job.CurrentNode));

    /// <summary>-> completed, failed or canceled, from <paramref name="expected"/>.</summary>
    public static StoreWrite Finish(Job job, JobStatus expected) => Update(job, expected,
        nameof(Job.Status), nameof(Job.CompletedAt), nameof(Job.QueueMs), nameof(Job.RunMs), nameof(Job.Breached),
        nameof(Job.Output), nameof(Job.Routing), nameof(Job.ErrorCode), nameof(Job.ErrorMessage), nameof(Job.NextAttemptAt), nameof(Job.CurrentNode));

    public static StoreWrite RequestCancel(Job job) => Update(job, job.Status, nameof(Job.CancelRequested));

    static GuardedUpdate<Job> Update(Job job, JobStatus expected, params string[] properties) =>
        new(job.Snapshot(), nameof(Job.Status), expected, properties);
}
