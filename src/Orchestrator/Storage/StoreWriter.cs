using System.Threading.Channels;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Orchestrator.Storage;

/// <summary>
/// The single writer of the hot path (admission, claims, completions, node checkpoints). Writes queue
/// here and are committed in groups: everything that arrived while the previous transaction committed
/// goes into the next one, so N concurrent requests cost one commit instead of N. A write's task
/// completes only after its transaction committed, so "committed before 202" holds.
/// </summary>
/// <remarks>
/// Written here rather than taken from a library: EF Core batches statements inside one SaveChanges but
/// has no cross-request group commit, and SQLite allows one writer at a time anyway, so one loop that
/// owns the write connection is both the fastest and the simplest correct design.
/// </remarks>
internal sealed class StoreWriter(
    IDbContextFactory<OrchestratorDb> dbs, IOptions<StoreOptions> options, ILogger<StoreWriter> log) : BackgroundService
{
    readonly Channel<StoreWrite> _writes = Channel.CreateUnbounded<StoreWrite>(
        new UnboundedChannelOptions { SingleReader = true, AllowSynchronousContinuations = false });

    /// <summary>Queues one write; the task completes when it is committed (true) or its guard lost (false).</summary>
    public Task<bool> WriteAsync(StoreWrite write)
    {
        if (!_writes.Writer.TryWrite(write))
            write.Fail(new InvalidOperationException("The store writer has stopped; the service is shutting down."));
        return write.Done;
    }

    public override Task StopAsync(CancellationToken cancellationToken)
    {
        // Drain what is queued before the host disposes the store: workers stop first (registered later).
        _writes.Writer.TryComplete();
        return base.StopAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var max = options.Value.MaxWriteBatch;
        var batch = new List<StoreWrite>(max);
        var reader = _writes.Reader;
        while (await reader.WaitToReadAsync(CancellationToken.None))
        {
            while (batch.Count < max && reader.TryRead(out var write))
                batch.Add(write);
            await CommitAsync(batch);
            batch.Clear();
        }
    }

    async Task CommitAsync(List<StoreWrite> batch)
    {
        try
        {
            await using var db = await dbs.CreateDbContextAsync();
            db.ChangeTracker.AutoDetectChangesEnabled = false;
            await using var tx = await db.Database.BeginTransactionAsync();
            var rows = new HashSet<(Type, string)>();
            foreach (var write in batch)
            {
                if (!rows.Add(write.Row))
                {
                    // A second write to the same row: flush the first so they apply in order.
                    await db.SaveChangesAsync();
                    db.ChangeTracker.Clear();
                    rows.Clear();
                    rows.Add(write.Row);
                }
                write.Apply(db);
            }
            await db.SaveChangesAsync();
            await tx.CommitAsync();
            foreach (var write in batch)
                write.Complete(true);
        }
        catch (DbUpdateException error) when (batch.Count > 1 && StoreErrors.IsLostGuard(error))
        {
            // One write lost its guard (or broke a unique key) and took the batch down with it:
            // commit them one by one so only that one reports it.
            foreach (var write in batch)
                await CommitOneAsync(write);
        }
        catch (DbUpdateException error) when (StoreErrors.IsLostGuard(error))
        {
            batch[0].Complete(false);
        }
        catch (Exception error)
        {
            log.LogError(error, "Store write batch of {Count} failed", batch.Count);
            foreach (var write in batch)
                write.Fail(error);
        }
    }

    async Task CommitOneAsync(StoreWrite write)
    {
        try
        {
            await using var db = await dbs.CreateDbContextAsync();
            db.ChangeTracker.AutoDetectChangesEnabled = false;
            write.Apply(db);
            await db.SaveChangesAsync();
            write.Complete(true);
        }
        catch (DbUpdateException error) when (StoreErrors.IsLostGuard(error))
        {
            write.Complete(false);
        }
        catch (Exception error)
        {
            log.LogError(error, "Store write failed");
            write.Fail(error);
        }
    }
}
