using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Orchestrator.Storage;

namespace Orchestrator.Jobs;

/// <summary>
/// The hosted workers: at start they rebuild the lanes from the store (jobs left accepted or running by
/// a previous process), then <c>Orchestrator:Queue:Workers</c> loops drain the lanes.
/// </summary>
internal sealed class JobWorkers(
    JobQueue queue,
    JobExecution execution,
    IDbContextFactory<OrchestratorDb> dbs,
    IOptions<QueueOptions> options,
    ILogger<JobWorkers> log) : BackgroundService
{
    volatile bool _running;

    /// <summary>True once recovery is done and the loops run.</summary>
    public bool Running => _running;

    public int Count => options.Value.Workers;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await RecoverAsync(stoppingToken);
        var loops = new Task[options.Value.Workers];
        for (var i = 0; i < loops.Length; i++)
            loops[i] = Task.Run(() => LoopAsync(stoppingToken), CancellationToken.None);
        _running = true;
        try
        {
            await Task.WhenAll(loops);
        }
        finally
        {
            _running = false;
        }
    }

    async Task RecoverAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var unfinished = await db.Jobs.AsNoTracking()
            .Where(j => j.Status == JobStatus.Accepted || j.Status == JobStatus.Running)
            .OrderBy(j => j.Id)
            .ToListAsync(cancellationToken);
        foreach (var job in unfinished)
            queue.EnqueueRecovered(new QueuedJob(job));
        if (unfinished.Count > 0)
            log.LogInformation("Recovered {Count} unfinished jobs from the store ({Running} were running)",
                unfinished.Count, unfinished.Count(j => j.Status == JobStatus.Running));
    }

    async Task LoopAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            Job job;
            try
            {
                job = await queue.DequeueAsync(stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            try
            {
                await execution.RunAsync(job, stoppingToken);
            }
            catch (Exception error) when (!stoppingToken.IsCancellationRequested)
            {
                // A broken store or a bug; the row stays as it was and the next start retries it.
                log.LogError(error, "Worker failed on job {JobId}", job.Id);
            }
            catch (Exception error)
            {
                log.LogInformation(error, "Worker stopped while on job {JobId}", job.Id);
            }
        }
    }
}

/// <summary>Fails queued jobs whose deadline passes before a worker reaches them, without running them.</summary>
internal sealed class JobDeadlines(JobQueue queue, JobExecution execution, TimeProvider time, IOptions<QueueOptions> options, ILogger<JobDeadlines> log)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.DeadlineSweep, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                foreach (var job in queue.TakeExpired(time.GetUtcNow().UtcDateTime))
                {
                    try
                    {
                        await execution.ExpireAsync(job);
                    }
                    catch (Exception error)
                    {
                        log.LogError(error, "Could not fail expired job {JobId}", job.Id);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
