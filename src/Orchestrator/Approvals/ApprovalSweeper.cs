using Microsoft.Extensions.Options;

namespace Orchestrator.Approvals;

/// <summary>
/// Every sweep interval, on every node: pending approvals whose job's deadline passed are canceled (the job fails
/// <c>deadline_exceeded</c>), those past their own deadline time out, escalation steps that came due are taken, approvals
/// of jobs that ended (canceled) are canceled, and a job whose approvals are all decided goes on. Each change is a
/// write guarded on the approval's version, so when several nodes sweep at once one of them makes it.
/// </summary>
internal sealed class ApprovalSweeper(ApprovalStore store, IServiceProvider services, IOptions<ApprovalsOptions> options, TimeProvider time, ILogger<ApprovalSweeper> log)
    : BackgroundService
{
    const int Batch = 500;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.SweepInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await SweepAsync(stoppingToken);
                }
                catch (Exception error) when (error is not OperationCanceledException)
                {
                    log.LogError(error, "Sweeping approvals failed; trying again at the next interval");
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    internal async Task SweepAsync(CancellationToken cancellationToken)
    {
        if (services.GetService<IParkedJobs>() is not { } parked)
            return;
        var now = time.GetUtcNow().UtcDateTime;
        var pending = await store.PendingAsync(Batch, cancellationToken);
        var ended = pending.Count == 0 ? new HashSet<string>() : await parked.EndedAsync(pending.Select(a => a.JobId).Distinct().ToList(), cancellationToken);
        foreach (var approval in pending)
        {
            if (ended.Contains(approval.JobId))
                await store.EndAsync(approval, ApprovalStatus.Canceled, "The job ended while the approval waited.", cancellationToken);
            else if (approval.JobDeadlineAt <= now)
            {
                if (await store.EndAsync(approval, ApprovalStatus.Canceled, "The job's deadline passed while the approval waited.", cancellationToken))
                    await parked.ExpireAsync(approval.JobId,
                        $"The job's deadline passed while it waited for approval {approval.Id} of {approval.Capability}; nobody decided in time.", cancellationToken);
            }
            else if (approval.DeadlineAt <= now)
            {
                if (await store.EndAsync(approval, ApprovalStatus.TimedOut, $"No decision by {approval.DeadlineAt:O}.", cancellationToken))
                    await store.SettleAsync(approval.JobId, cancellationToken);
            }
            else
                while (await store.EscalateAsync(approval, cancellationToken))
                {
                }
        }
        // A decision that landed before its job was parked found nothing to resume: such a job goes on here.
        var waiting = await parked.WaitingAsync(Batch, cancellationToken);
        var undecided = await store.WithPendingAsync(waiting, cancellationToken);
        foreach (var jobId in waiting.Where(j => !undecided.Contains(j)))
            await store.SettleAsync(jobId, cancellationToken);
    }
}
