using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using Orchestrator.Telemetry;

namespace Orchestrator.Jobs;

/// <summary>
/// The in-memory dispatch of accepted jobs: three priority lanes drained by the workers with smooth
/// weighted round-robin (high is preferred, low still gets its share), a capacity shared by all lanes,
/// and the drain rate that <c>Retry-After</c> is derived from. It only dispatches: every job in it is
/// already a committed row, and after a restart the lanes are rebuilt from the store.
/// </summary>
internal sealed class JobQueue
{
    readonly TenantLane[] _lanes = [new(), new(), new()];
    readonly ConcurrentDictionary<string, QueuedJob> _queued = new(StringComparer.Ordinal);
    readonly PriorityQueue<QueuedJob, DateTime> _deadlines = new();
    readonly Lock _deadlineGate = new();
    readonly SemaphoreSlim _signal = new(0);
    readonly int[] _weights;
    readonly int[] _current = new int[3];
    readonly int[] _depth = new int[3];
    readonly Lock _pick = new();
    readonly int _capacity;
    readonly TimeSpan _maxRetryAfter;
    readonly TimeProvider _time;
    readonly DrainRate _drain;
    int _held;

    public JobQueue(IOptions<QueueOptions> options, TimeProvider time, OrchestratorTelemetry telemetry)
    {
        var o = options.Value;
        _capacity = o.Capacity;
        _weights = [o.HighWeight, o.NormalWeight, o.LowWeight];
        _maxRetryAfter = o.MaxRetryAfter;
        _time = time;
        _drain = new DrainRate(time);
        telemetry.ObserveGauge<int>("orchestrator.queue.depth", () =>
        [
            new Measurement<int>(Volatile.Read(ref _depth[0]), new KeyValuePair<string, object?>("priority", "high")),
            new Measurement<int>(Volatile.Read(ref _depth[1]), new KeyValuePair<string, object?>("priority", "normal")),
            new Measurement<int>(Volatile.Read(ref _depth[2]), new KeyValuePair<string, object?>("priority", "low")),
        ], "{job}", "Accepted jobs waiting in each priority lane.");
    }

    public int Capacity => _capacity;

    /// <summary>Accepted jobs not yet started (including reservations being committed).</summary>
    public int Held => Volatile.Read(ref _held);

    /// <summary>Jobs waiting in each lane (those canceled or expired in place no longer count).</summary>
    public (int High, int Normal, int Low) Depth => (Volatile.Read(ref _depth[0]), Volatile.Read(ref _depth[1]), Volatile.Read(ref _depth[2]));

    public double DrainPerSecond => _drain.PerSecond();

    /// <summary>Takes a place for a job about to be committed; false when the queue is full.</summary>
    public bool TryReserve()
    {
        while (true)
        {
            var held = Volatile.Read(ref _held);
            if (held >= _capacity)
                return false;
            if (Interlocked.CompareExchange(ref _held, held + 1, held) == held)
                return true;
        }
    }

    /// <summary>Gives back a reservation whose job was never enqueued.</summary>
    public void Unreserve() => Interlocked.Decrement(ref _held);

    /// <summary>Queues a committed job on its reserved place.</summary>
    public void Enqueue(QueuedJob job)
    {
        _queued[job.Id] = job;
        Interlocked.Increment(ref _depth[(int)job.Priority]);
        lock (_deadlineGate)
            _deadlines.Enqueue(job, job.DeadlineAt);
        _lanes[(int)job.Priority].Enqueue(job);
        _signal.Release();
    }

    /// <summary>Takes a place, past capacity if need be, for a job that left the lanes and still counts (one waiting for a slot).</summary>
    public void HoldPlace() => Interlocked.Increment(ref _held);

    /// <summary>Queues a job recovered from the store; recovered jobs are never refused, even past capacity.</summary>
    public void EnqueueRecovered(QueuedJob job)
    {
        Interlocked.Increment(ref _held);
        Enqueue(job);
    }

    /// <summary>Waits for the next job by lane weight; the caller owns it (it left the queue).</summary>
    public async ValueTask<Job> DequeueAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            await _signal.WaitAsync(cancellationToken);
            if (TryTake(out var queued) && queued.TryLeave() is { } job)
            {
                Left(queued);
                _drain.Record();
                return job;
            }
            // The job was removed (canceled, expired) while queued: its signal is spent, wait for the next.
        }
    }

    /// <summary>Takes a queued job out (a cancel); null when it is not queued here (a worker took it, or it never was).</summary>
    public Job? TryRemove(string jobId)
    {
        if (_queued.TryGetValue(jobId, out var queued) && queued.TryLeave() is { } job)
        {
            Left(queued);
            return job;
        }
        return null;
    }

    /// <summary>
    /// Takes out the queued jobs whose deadline is at or before <paramref name="now"/>: a peek at the earliest
    /// deadline when none is due, so the sweep costs nothing however long the queue is.
    /// </summary>
    public List<Job> TakeExpired(DateTime now)
    {
        var expired = new List<Job>();
        lock (_deadlineGate)
        {
            while (_deadlines.TryPeek(out var queued, out var at) && at <= now)
            {
                _deadlines.Dequeue();
                if (queued.TryLeave() is { } job)
                {
                    Left(queued);
                    expired.Add(job);
                }
            }
            // Jobs that left by other ways stay in the heap until their deadline (as small shells, see
            // QueuedJob.TryLeave); rebuild it when they outnumber the live ones, so it stays near the queue's size.
            if (_deadlines.Count > 1024 && _deadlines.Count > 2 * _queued.Count)
            {
                _deadlines.Clear();
                foreach (var live in _queued.Values)
                    _deadlines.Enqueue(live, live.DeadlineAt);
            }
        }
        return expired;
    }

    void Left(QueuedJob queued)
    {
        _queued.TryRemove(queued.Id, out _);
        Interlocked.Decrement(ref _depth[(int)queued.Priority]);
        Interlocked.Decrement(ref _held);
    }

    /// <summary>Seconds a refused caller should wait: the queue's depth over its observed drain rate.</summary>
    public int RetryAfterSeconds()
    {
        var rate = _drain.PerSecond();
        var seconds = rate <= 0.01 ? _maxRetryAfter.TotalSeconds : Held / rate;
        return (int)Math.Clamp(Math.Ceiling(seconds), 1, Math.Max(1, _maxRetryAfter.TotalSeconds));
    }

    bool TryTake(out QueuedJob job)
    {
        // Smooth weighted round-robin over the non-empty lanes (the nginx algorithm): each lane earns
        // its weight per pick, the richest lane is served and pays the total back.
        while (true)
        {
            int lane;
            lock (_pick)
            {
                lane = -1;
                var total = 0;
                for (var i = 0; i < 3; i++)
                {
                    if (_lanes[i].IsEmpty)
                        continue;
                    _current[i] += _weights[i];
                    total += _weights[i];
                    if (lane < 0 || _current[i] > _current[lane])
                        lane = i;
                }
                if (lane < 0)
                {
                    job = null!;
                    return false;
                }
                _current[lane] -= total;
            }
            if (_lanes[lane].TryDequeue(out job!))
                return true;
        }
    }

    /// <summary>Dispatches per second over the last few seconds, in one-second buckets.</summary>
    sealed class DrainRate(TimeProvider time)
    {
        const int Seconds = 10;
        readonly long[] _counts = new long[Seconds];
        readonly long[] _stamps = new long[Seconds];

        public void Record()
        {
            var second = time.GetUtcNow().ToUnixTimeSeconds();
            var slot = (int)(second % Seconds);
            if (Volatile.Read(ref _stamps[slot]) != second)
            {
                Volatile.Write(ref _counts[slot], 0);
                Volatile.Write(ref _stamps[slot], second);
            }
            Interlocked.Increment(ref _counts[slot]);
        }

        public double PerSecond()
        {
            var now = time.GetUtcNow().ToUnixTimeSeconds();
            long total = 0;
            var oldest = now;
            for (var i = 0; i < Seconds; i++)
            {
                var stamp = Volatile.Read(ref _stamps[i]);
                if (stamp > now - Seconds && stamp <= now)
                {
                    total += Volatile.Read(ref _counts[i]);
                    oldest = Math.Min(oldest, stamp);
                }
            }
            return total == 0 ? 0 : total / (double)(now - oldest + 1);
        }
    }
}

/// <summary>
/// One priority lane, fair between tenants: a queue per tenant and a rotation over the tenants that have jobs waiting,
/// so one tenant's 10,000 queued jobs put another tenant's first job behind at most one job of each tenant.
/// </summary>
internal sealed class TenantLane
{
    readonly Dictionary<string, Queue<QueuedJob>> _byTenant = new(StringComparer.Ordinal);
    readonly Queue<string> _turns = new();
    readonly Lock _gate = new();
    volatile int _tenants;

    public bool IsEmpty => _tenants == 0;

    public void Enqueue(QueuedJob job)
    {
        lock (_gate)
        {
            if (!_byTenant.TryGetValue(job.Tenant, out var queue))
                _byTenant[job.Tenant] = queue = new Queue<QueuedJob>();
            if (queue.Count == 0)
            {
                _turns.Enqueue(job.Tenant);
                _tenants = _turns.Count;
            }
            queue.Enqueue(job);
        }
    }

    public bool TryDequeue(out QueuedJob job)
    {
        lock (_gate)
        {
            if (!_turns.TryDequeue(out var tenant))
            {
                job = null!;
                return false;
            }
            var queue = _byTenant[tenant];
            job = queue.Dequeue();
            if (queue.Count > 0)
                _turns.Enqueue(tenant);
            else
                _byTenant.Remove(tenant);
            _tenants = _turns.Count;
            return true;
        }
    }
}

/// <summary>
/// A job in a lane. Exactly one of a worker, a cancel or the deadline sweep takes it out, and takes the
/// job with it: what is left is a small shell, cheap to keep in the deadline heap until its time.
/// </summary>
internal sealed class QueuedJob(Job job)
{
    Job? _job = job;

    public string Id { get; } = job.Id;
    public string Tenant { get; } = job.Tenant;
    public JobPriority Priority { get; } = job.Priority;
    public DateTime DeadlineAt { get; } = job.DeadlineAt;

    /// <summary>The job, to the one caller that takes it out; null to everyone after.</summary>
    public Job? TryLeave() => Interlocked.Exchange(ref _job, null);
}
