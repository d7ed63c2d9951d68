using System.Collections.Concurrent;

namespace Orchestrator.Jobs;

/// <summary>
/// Wakes whoever waits on a job (a sync act, a long-poll) when it ends. Watch first, then read the store:
/// a job that ends in between is published to the watch, one that ended before is seen in the store.
/// </summary>
internal sealed class JobCompletions
{
    readonly ConcurrentDictionary<string, TaskCompletionSource<Job>> _watches = new(StringComparer.Ordinal);

    public Task<Job> Watch(string jobId) =>
        _watches.GetOrAdd(jobId, static _ => new TaskCompletionSource<Job>(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    /// <summary>Publishes a job that reached a terminal state (after it was committed).</summary>
    public void Publish(Job job)
    {
        if (_watches.TryRemove(job.Id, out var watch))
            watch.TrySetResult(job);
    }

    /// <summary>Drops a watch nobody will wait on any more (its job ended before, or elsewhere).</summary>
    public void Forget(string jobId, Task<Job> watch)
    {
        if (_watches.TryGetValue(jobId, out var current) && current.Task == watch && !watch.IsCompleted)
            _watches.TryRemove(new KeyValuePair<string, TaskCompletionSource<Job>>(jobId, current));
    }
}

/// <summary>The jobs this node is running, so a cancel can reach them.</summary>
internal sealed class RunningJobs
{
    readonly ConcurrentDictionary<string, RunHandle> _running = new(StringComparer.Ordinal);

    public int Count => _running.Count;

    public RunHandle Start(string jobId, long epoch, CancellationToken token)
    {
        var handle = new RunHandle(CancellationTokenSource.CreateLinkedTokenSource(token), epoch);
        _running[jobId] = handle;
        return handle;
    }

    /// <summary>The runs of this node and the epochs they claimed.</summary>
    public List<(string JobId, RunHandle Handle)> Snapshot() => _running.Select(r => (r.Key, r.Value)).ToList();

    public void End(string jobId, RunHandle handle)
    {
        _running.TryRemove(new KeyValuePair<string, RunHandle>(jobId, handle));
        handle.Dispose();
    }

    /// <summary>Asks a running job to stop at its next cancellation point; false when it does not run here.</summary>
    public bool TryCancel(string jobId)
    {
        if (!_running.TryGetValue(jobId, out var handle))
            return false;
        handle.RequestCancel();
        return true;
    }

    /// <summary>Stops a run whose lease another node now holds; false when it does not run here.</summary>
    public bool TryLoseLease(string jobId, long epoch)
    {
        if (!_running.TryGetValue(jobId, out var handle) || handle.Epoch != epoch)
            return false;
        handle.LoseLease();
        return true;
    }
}

internal sealed class RunHandle(CancellationTokenSource cancel, long epoch) : IDisposable
{
    volatile bool _cancelRequested;
    volatile bool _leaseLost;

    public CancellationToken Token => cancel.Token;

    /// <summary>The epoch the run claims.</summary>
    public long Epoch { get; } = epoch;

    /// <summary>The run's claim, once queued to the writer: true when it committed, false when it lost.</summary>
    public Task<bool>? Claim { get; set; }

    public bool CancelRequested => _cancelRequested;

    /// <summary>True once a write of the run found another epoch, or a renewal did not find the lease: the run writes nothing more.</summary>
    public bool LeaseLost => _leaseLost;

    public void LoseLease()
    {
        _leaseLost = true;
        Stop();
    }

    public void RequestCancel()
    {
        _cancelRequested = true;
        Stop();
    }

    void Stop()
    {
        try
        {
            cancel.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The job ended meanwhile.
        }
    }

    public void Dispose() => cancel.Dispose();
}
