using System.Data.Common;
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
        var results = new List<bool>(max);
        var reader = _writes.Reader;
        StoreSession? session = null;
        try
        {
            while (await reader.WaitToReadAsync(CancellationToken.None))
            {
                while (batch.Count < max && reader.TryRead(out var write))
                    batch.Add(write);
                try
                {
                    session ??= await StoreSession.OpenAsync(dbs);
                    var steps = Coalesce(batch, session);
                    for (var attempt = 1; ; attempt++)
                    {
                        try
                        {
                            await session.BeginAsync();
                            foreach (var step in steps)
                                results.Add(step.Write.Execute(session) > 0);
                            await session.CommitAsync();
                            break;
                        }
                        catch (DbException error) when (attempt < 3 && StoreErrors.IsTransientConflict(error))
                        {
                            // Two nodes' batches locked the same rows in opposite orders (PostgreSQL picked this one as the
                            // deadlock victim): nothing of it committed, and every write is guarded, so it runs again whole.
                            log.LogInformation("Store write batch of {Count} hit a {State}; running it again", batch.Count, error.SqlState);
                            await session.RollbackAsync();
                            results.Clear();
                        }
                    }
                    for (var i = 0; i < steps.Count; i++)
                        foreach (var write in steps[i].Writes)
                            write.Complete(results[i]);
                }
                catch (Exception error)
                {
                    log.LogError(error, "Store write batch of {Count} failed; none of it was committed", batch.Count);
                    foreach (var write in batch)
                        write.Fail(error);
                    // Start over on a fresh connection: the old one may be what broke.
                    if (session is not null)
                        await DisposeQuietlyAsync(session);
                    session = null;
                }
                batch.Clear();
                results.Clear();
            }
        }
        finally
        {
            if (session is not null)
                await DisposeQuietlyAsync(session);
        }
    }

    /// <summary>
    /// Folds writes to the same row into one where the first leaves the row as the next expects it (a job's
    /// admission, claim and end arriving in one batch become a single insert). Writes to other rows in between
    /// do not touch that row, so the order that matters is kept.
    /// </summary>
    static List<(StoreWrite Write, List<StoreWrite> Writes)> Coalesce(List<StoreWrite> batch, StoreSession session)
    {
        var steps = new List<(StoreWrite Write, List<StoreWrite> Writes)>(batch.Count);
        var lastByRow = new Dictionary<(Type, string), int>();
        foreach (var write in batch)
        {
            if (session.RowOf(write.Entity) is not { } row)
            {
                // A statement of its own (a claim, a renewal) may read any row: nothing before it folds past it.
                lastByRow.Clear();
                steps.Add((write, [write]));
                continue;
            }
            if (lastByRow.TryGetValue(row, out var at) && steps[at].Write.FollowedBy(write, session) is { } merged)
            {
                steps[at].Writes.Add(write);
                steps[at] = (merged, steps[at].Writes);
                continue;
            }
            lastByRow[row] = steps.Count;
            steps.Add((write, [write]));
        }
        return steps;
    }

    async Task DisposeQuietlyAsync(StoreSession session)
    {
        try
        {
            await session.DisposeAsync();
        }
        catch (Exception error)
        {
            log.LogWarning(error, "Closing the writer's connection failed");
        }
    }
}
