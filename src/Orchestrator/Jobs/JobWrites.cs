using Orchestrator.Storage;

namespace Orchestrator.Jobs;

/// <summary>
/// The state transitions of a job, each a guarded write: it applies only if the row is still in the expected
/// status and epoch (the lease the writer holds). Each write takes a snapshot of the job, because the worker
/// goes on changing it while the write waits.
/// </summary>
internal static class JobWrites
{
    public static StoreWrite Admit(Job job) => new Insert<Job>(job.Snapshot());

    /// <summary>
    /// accepted (or running, when rescued) -> running on this node: owner, lease and the run's epoch, counting the
    /// attempt. Guarded on the status and epoch the node knew, so of two nodes that saw the same row one wins.
    /// </summary>
    public static StoreWrite Start(Job job, JobStatus expected, long expectedEpoch) => Update(job, expected, expectedEpoch,
        nameof(Job.Status), nameof(Job.StartedAt), nameof(Job.QueueMs), nameof(Job.Attempts),
        nameof(Job.NextAttemptAt), nameof(Job.CurrentNode), nameof(Job.ErrorCode), nameof(Job.ErrorMessage),
        nameof(Job.Owner), nameof(Job.LeaseUntil), nameof(Job.Epoch));

    /// <summary>
    /// running -> accepted with a due time: a retry waits as a committed row, holding no worker and no lease; any
    /// node's dispatcher takes it again when it is due. Records the failure that caused it.
    /// </summary>
    public static StoreWrite Park(Job job) => Owned(job,
        nameof(Job.Status), nameof(Job.NextAttemptAt), nameof(Job.ErrorCode), nameof(Job.ErrorMessage), nameof(Job.LeaseUntil));

    /// <summary>
    /// running -> awaiting_approval: the run stops and gives its lease back; the job holds no worker while people decide,
    /// and a decision makes it due again (<see cref="Resume"/>) for any node to take.
    /// </summary>
    public static StoreWrite AwaitApproval(Job job) => Owned(job, nameof(Job.Status), nameof(Job.LeaseUntil), nameof(Job.NextAttemptAt));

    /// <summary>
    /// awaiting_approval -> accepted, due now (its approvals are decided), from any node. Going on after a decision is
    /// not another attempt: the count is taken back here and counted again at the start, so retries keep their budget.
    /// </summary>
    public static StoreWrite Resume(Job job) =>
        new GuardedUpdate<Job>(job.Snapshot(), [new Guard(nameof(Job.Status), JobStatus.AwaitingApproval)],
            [nameof(Job.Status), nameof(Job.NextAttemptAt), nameof(Job.LeaseUntil), nameof(Job.Attempts)]);

    public static StoreWrite Progress(Job job) => Owned(job, nameof(Job.CurrentNode));

    /// <summary>A run's end: running -> completed, failed or canceled, only while this node holds the run's lease.</summary>
    public static StoreWrite End(Job job) => Owned(job, EndColumns);

    /// <summary>-> completed, failed or canceled, from <paramref name="expected"/> and the epoch the job carries (a job that never started).</summary>
    public static StoreWrite Finish(Job job, JobStatus expected) => Update(job, expected, job.Epoch, EndColumns);

    static readonly string[] EndColumns =
    [
        nameof(Job.Status), nameof(Job.CompletedAt), nameof(Job.QueueMs), nameof(Job.RunMs), nameof(Job.Breached),
        nameof(Job.Output), nameof(Job.Routing), nameof(Job.ErrorCode), nameof(Job.ErrorMessage), nameof(Job.NextAttemptAt),
        nameof(Job.CurrentNode), nameof(Job.LeaseUntil), nameof(Job.InputTokens), nameof(Job.OutputTokens), nameof(Job.CostMicros),
    ];

    /// <summary>Flags a running job for cancel, from any node; its owner sees the flag within the propagation interval.</summary>
    public static StoreWrite RequestCancel(Job job) =>
        new GuardedUpdate<Job>(job.Snapshot(), [new Guard(nameof(Job.Status), job.Status)], [nameof(Job.CancelRequested)]);

    /// <summary>Gives a lease back (a graceful stop): the job stays as it is and any node may take it at once.</summary>
    public static StoreWrite Release(Job job) => Owned(job, nameof(Job.LeaseUntil));

    static GuardedUpdate<Job> Update(Job job, JobStatus expected, long epoch, params string[] properties) =>
        new(job.Snapshot(), [new Guard(nameof(Job.Status), expected), new Guard(nameof(Job.Epoch), epoch)], properties);

    /// <summary>A write of a running job by the node that runs it: status, epoch and owner must all still be the run's.</summary>
    static GuardedUpdate<Job> Owned(Job job, params string[] properties) => new(job.Snapshot(),
        [new Guard(nameof(Job.Status), JobStatus.Running), new Guard(nameof(Job.Epoch), job.Epoch), new Guard(nameof(Job.Owner), job.Owner!)],
        properties);
}
