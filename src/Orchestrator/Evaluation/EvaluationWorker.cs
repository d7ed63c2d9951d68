using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Orchestrator.Storage;

namespace Orchestrator.Evaluation;

/// <summary>Wakes this node's worker when an evaluation is submitted here; other nodes find it at their next poll.</summary>
internal sealed class EvaluationSignal
{
    readonly SemaphoreSlim _signal = new(0);

    public void Submitted() => _signal.Release();

    public Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) => _signal.WaitAsync(timeout, cancellationToken);
}

/// <summary>
/// Runs evaluations, durably. An evaluation is a row, not a job: it spans many jobs (its case runs) and outlives any one
/// of them, so it is claimed as Jobs claims a job (a guarded update stamping this node, a lease and epoch + 1), renewed
/// between case runs, and taken by any node once its lease expires, a killed process's included. A resumed evaluation
/// reads the case runs already written and runs only the rest (each case run's job is keyed, so one in flight at the
/// crash is found again rather than run twice). A cancel is seen between case runs.
/// </summary>
internal sealed class EvaluationWorker(
    IDbContextFactory<OrchestratorDb> dbs,
    EvaluationRunner runner,
    EvaluationSignal signal,
    ThisNode node,
    IOptions<EvaluationOptions> options,
    TimeProvider time,
    ILogger<EvaluationWorker> log) : BackgroundService
{
    DateTime Now => StoreTime.Microseconds(time.GetUtcNow().UtcDateTime);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (await ClaimAsync(stoppingToken) is { } claimed)
                {
                    await RunAsync(claimed, stoppingToken);
                    continue;
                }
                await signal.WaitAsync(options.Value.PollInterval, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception error)
            {
                log.LogWarning(error, "The evaluation worker failed a round; it tries again");
                await Task.Delay(options.Value.PollInterval, time, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    async Task<EvaluationRun?> ClaimAsync(CancellationToken cancellationToken)
    {
        var now = Now;
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var due = await db.Set<EvaluationRun>().AsNoTracking()
            .Where(e => (e.Status == EvaluationStatus.Accepted || e.Status == EvaluationStatus.Running) && (e.LeaseUntil == null || e.LeaseUntil < now))
            .OrderBy(e => e.CreatedAt).Select(e => new { e.Id, e.Epoch }).Take(5).ToListAsync(cancellationToken);
        foreach (var candidate in due)
        {
            var until = now + options.Value.LeaseDuration;
            var claimed = await db.Set<EvaluationRun>()
                .Where(e => e.Id == candidate.Id && e.Epoch == candidate.Epoch && (e.Status == EvaluationStatus.Accepted || e.Status == EvaluationStatus.Running))
                .ExecuteUpdateAsync(s => s
                    .SetProperty(e => e.Owner, node.Id)
                    .SetProperty(e => e.LeaseUntil, until)
                    .SetProperty(e => e.Epoch, e => e.Epoch + 1)
                    .SetProperty(e => e.Status, EvaluationStatus.Running)
                    .SetProperty(e => e.StartedAt, e => e.StartedAt ?? now), cancellationToken);
            if (claimed == 1)
                return await db.Set<EvaluationRun>().AsNoTracking().FirstAsync(e => e.Id == candidate.Id, cancellationToken);
        }
        return null;
    }

    async Task RunAsync(EvaluationRun row, CancellationToken stoppingToken)
    {
        var renewedAt = Now;
        var canceled = false;
        async Task<bool> StillOursAsync(CancellationToken cancellationToken)
        {
            await using var db = await dbs.CreateDbContextAsync(cancellationToken);
            var now = Now;
            if (now - renewedAt >= options.Value.LeaseDuration / 3)
            {
                var until = now + options.Value.LeaseDuration;
                if (await db.Set<EvaluationRun>().Where(e => e.Id == row.Id && e.Epoch == row.Epoch && e.Owner == node.Id)
                        .ExecuteUpdateAsync(s => s.SetProperty(e => e.LeaseUntil, until), cancellationToken) == 0)
                    return false;
                renewedAt = now;
            }
            var state = await db.Set<EvaluationRun>().AsNoTracking().Where(e => e.Id == row.Id).Select(e => new { e.Epoch, e.CancelRequested }).FirstAsync(cancellationToken);
            canceled = state.CancelRequested;
            return state.Epoch == row.Epoch && !state.CancelRequested;
        }

        Verdict? verdict;
        try
        {
            verdict = await runner.RunAsync(row, StillOursAsync, stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down: the lease is given back, so a node (this one after a restart) resumes at once.
            await EndAsync(row, s => s.SetProperty(e => e.LeaseUntil, (DateTime?)null), CancellationToken.None);
            throw;
        }
        catch (Exception error)
        {
            log.LogError(error, "Evaluation {Id} failed", row.Id);
            var message = error.Message;
            await EndAsync(row, s => s.SetProperty(e => e.Status, EvaluationStatus.Failed).SetProperty(e => e.Error, message)
                .SetProperty(e => e.CompletedAt, Now).SetProperty(e => e.LeaseUntil, (DateTime?)null), CancellationToken.None);
            return;
        }
        if (verdict is not null)
        {
            var json = JsonSerializer.Serialize(verdict, EvaluationJson.Default.Verdict);
            await EndAsync(row, s => s.SetProperty(e => e.Status, EvaluationStatus.Completed).SetProperty(e => e.Verdict, verdict.Result)
                .SetProperty(e => e.Result, json).SetProperty(e => e.CompletedAt, Now).SetProperty(e => e.LeaseUntil, (DateTime?)null), CancellationToken.None);
            log.LogInformation("Evaluation {Id} of suite {Suite}: {Verdict}", row.Id, row.Suite, verdict.Result);
        }
        else if (canceled)
            await EndAsync(row, s => s.SetProperty(e => e.Status, EvaluationStatus.Canceled).SetProperty(e => e.CompletedAt, Now)
                .SetProperty(e => e.LeaseUntil, (DateTime?)null), CancellationToken.None);
    }

    async Task EndAsync(EvaluationRun row,
        Action<Microsoft.EntityFrameworkCore.Query.UpdateSettersBuilder<EvaluationRun>> set,
        CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        await db.Set<EvaluationRun>().Where(e => e.Id == row.Id && e.Epoch == row.Epoch && e.Owner == node.Id).ExecuteUpdateAsync(set, cancellationToken);
    }
}
