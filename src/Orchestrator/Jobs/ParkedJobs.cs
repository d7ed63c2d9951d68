using Microsoft.EntityFrameworkCore;
using Orchestrator.Approvals;
using Orchestrator.Hosting;
using Orchestrator.Storage;
using Orchestrator.Workflow;

namespace Orchestrator.Jobs;

/// <summary>
/// Jobs parked <c>awaiting_approval</c>, as Approvals drives them: resumed (due now, for any node to claim) once every
/// approval is decided, or failed when their own deadline passes while they wait. Every change is guarded on the
/// job still awaiting approval, so a cancel, a resume and an expiry racing on several nodes settle on one.
/// </summary>
internal sealed class ParkedJobs(
    IDbContextFactory<OrchestratorDb> dbs, StoreWriter writer, JobExecution execution, JobWakeups wakeups, TimeProvider time) : IParkedJobs
{
    public async Task<bool> ResumeAsync(string jobId, CancellationToken cancellationToken)
    {
        if (await FindWaitingAsync(jobId, cancellationToken) is not { } job)
            return false;
        job.Status = JobStatus.Accepted;
        job.NextAttemptAt = null;
        job.LeaseUntil = null;
        job.Attempts = Math.Max(0, job.Attempts - 1);
        if (!await writer.WriteAsync(JobWrites.Resume(job)))
            return false;
        wakeups.Now();
        return true;
    }

    public async Task ExpireAsync(string jobId, string message, CancellationToken cancellationToken)
    {
        if (await FindWaitingAsync(jobId, cancellationToken) is not { } job)
            return;
        if (await execution.FinishUnstartedAsync(job, JobOutcome.Failed(Problems.DeadlineExceeded, message)))
            await CloseNodesAsync(jobId, Problems.DeadlineExceeded, message, cancellationToken);
    }

    public async Task<IReadOnlyList<string>> WaitingAsync(int limit, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.Set<Job>().AsNoTracking().Where(j => j.Status == JobStatus.AwaitingApproval)
            .OrderBy(j => j.Id).Select(j => j.Id).Take(limit).ToListAsync(cancellationToken);
    }

    public async Task<IReadOnlySet<string>> EndedAsync(IReadOnlyCollection<string> jobIds, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var ended = await db.Set<Job>().AsNoTracking()
            .Where(j => jobIds.Contains(j.Id) && (j.Status == JobStatus.Completed || j.Status == JobStatus.Failed || j.Status == JobStatus.Canceled))
            .Select(j => j.Id).ToListAsync(cancellationToken);
        return ended.ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>A job that ended while parked: its waiting approval node fails with the job's code, nodes never reached are skipped.</summary>
    public async Task CloseNodesAsync(string jobId, string code, string message, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var nodes = await db.Set<JobNode>().AsNoTracking().Where(n => n.JobId == jobId).OrderBy(n => n.Seq).ToListAsync(cancellationToken);
        foreach (var write in new JobGraph(jobId, nodes).Close(code, message, time.GetUtcNow().UtcDateTime))
            await writer.WriteAsync(write);
    }

    async Task<Job?> FindWaitingAsync(string jobId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.Set<Job>().AsNoTracking().FirstOrDefaultAsync(j => j.Id == jobId && j.Status == JobStatus.AwaitingApproval, cancellationToken);
    }
}
