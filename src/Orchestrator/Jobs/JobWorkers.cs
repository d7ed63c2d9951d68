using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Orchestrator.Storage;

namespace Orchestrator.Jobs;

/// <summary>
/// The hosted workers: at start they take back from the store what a previous process left, then
/// <c>Orchestrator:Queue:Workers</c> loops drain the lanes while the dispatcher claims due jobs from the store.
/// </summary>
internal sealed class JobWorkers(
    JobQueue queue,
    JobExecution execution,
    JobDispatcher dispatcher,
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
        await using (var db = await dbs.CreateDbContextAsync(stoppingToken))
        {
            // SQLite is one node (a second refuses to start), so every unfinished job is this node's to resume.
            var recovered = await dispatcher.RecoverAsync(oneNode: db.Database.IsSqlite(), stoppingToken);
            if (recovered > 0)
                log.LogInformation("Took back {Count} unfinished jobs from the store", recovered);
        }
        var loops = new Task[options.Value.Workers + 1];
        for (var i = 0; i < options.Value.Workers; i++)
            loops[i] = Task.Run(() => LoopAsync(stoppingToken), CancellationToken.None);
        loops[^1] = Task.Run(() => dispatcher.RunAsync(stoppingToken), CancellationToken.None);
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
