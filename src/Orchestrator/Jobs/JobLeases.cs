using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.Extensions.Options;
using Orchestrator.Storage;
using Orchestrator.Telemetry;

namespace Orchestrator.Jobs;

/// <summary>
/// Claims due jobs from the store for this node in one statement: owner, lease expiry and the next epoch, and
/// answers the jobs claimed with their new epochs. Due means: accepted and not waiting for a retry's due time, or
/// running under a lease that expired (its node died or stalled), or given back. On PostgreSQL the candidates are
/// locked <c>FOR UPDATE SKIP LOCKED</c>, so nodes claiming at once never take the same job or wait for each other.
/// </summary>
internal sealed class ClaimDue(ClaimDue.Scope scope, string node, DateTime now, DateTime leaseUntil, DateTime staleBefore, int limit) : StoreWrite
{
    /// <summary>
    /// What may be claimed: <c>Poll</c> (due jobs nobody holds, as many as there are idle workers), <c>Self</c> (only the
    /// jobs a previous process under this node's name held, however many), <c>All</c> (one node: every unfinished job).
    /// </summary>
    public enum Scope { Poll, Self, All }

    public override object? Entity => null;

    /// <summary>The jobs claimed and the epoch each now has.</summary>
    public List<(string Id, long Epoch)> Claimed { get; } = [];

    public override int Execute(StoreSession session)
    {
        Claimed.Clear();
        var statement = session.Command($"claim:{scope}", sql =>
        {
            string C(string property) => sql.Column<Job>(property);
            var lease = scope switch
            {
                Scope.All => "",
                // Only this node's own: Self has no limit, so taking jobs nobody holds (those waiting in a live node's
                // lane) here would move every one of them to the restarted node and leave the others idle.
                Scope.Self => $" AND {C(nameof(Job.Owner))} = {sql.Parameter("node")}",
                _ => $" AND ({C(nameof(Job.LeaseUntil))} IS NULL OR {C(nameof(Job.LeaseUntil))} < {sql.Parameter("now")})",
            };
            // A job just accepted on some node waits in that node's lane: it is taken from the store only once it has
            // waited longer than a poll (that node is busy or gone), so an idle node helps without racing every admission.
            var waited = scope == Scope.All ? "" : $" AND ({C(nameof(Job.Owner))} IS NOT NULL OR {C(nameof(Job.CreatedAt))} <= {sql.Parameter("stale")})";
            var due = $"{C(nameof(Job.Status))} IN ('accepted', 'running') " +
                      $"AND ({C(nameof(Job.Status))} = 'running' OR {C(nameof(Job.NextAttemptAt))} IS NULL OR {C(nameof(Job.NextAttemptAt))} <= {sql.Parameter("now")})" +
                      $"{lease}{waited}";
            var set = $"{C(nameof(Job.Owner))} = {sql.Parameter("node")}, {C(nameof(Job.LeaseUntil))} = {sql.Parameter("until")}, ";
            // Epoch 1 belongs to the admitting node's own start, which counts 0 + 1 without asking the store. A claim never
            // hands it out (0 -> 2): a node may claim a job it admitted itself while one of its workers already runs the
            // admitted copy, and that copy, fenced at (1, this node), must not pass the fence of the claimed run.
            string Next(string epoch) => $"(CASE WHEN {epoch} = 0 THEN 2 ELSE {epoch} + 1 END)";
            return sql.IsSqlite
                ? $"UPDATE {sql.Table<Job>()} SET {set}{C(nameof(Job.Epoch))} = {Next(C(nameof(Job.Epoch)))} " +
                  $"WHERE {C(nameof(Job.Id))} IN (SELECT {C(nameof(Job.Id))} FROM {sql.Table<Job>()} WHERE {due} ORDER BY {C(nameof(Job.Id))} LIMIT {sql.Parameter("limit")}) " +
                  $"RETURNING {C(nameof(Job.Id))}, {C(nameof(Job.Epoch))}"
                : $"WITH due AS (SELECT {C(nameof(Job.Id))} FROM {sql.Table<Job>()} WHERE {due} ORDER BY {C(nameof(Job.Id))} LIMIT {sql.Parameter("limit")} FOR UPDATE SKIP LOCKED) " +
                  $"UPDATE {sql.Table<Job>()} AS j SET {set}{C(nameof(Job.Epoch))} = {Next("j." + C(nameof(Job.Epoch)))} FROM due WHERE j.{C(nameof(Job.Id))} = due.{C(nameof(Job.Id))} " +
                  $"RETURNING j.{C(nameof(Job.Id))}, j.{C(nameof(Job.Epoch))}";
        },
        (typeof(Job), nameof(Job.Owner), "node"), (typeof(Job), nameof(Job.LeaseUntil), "until"), (typeof(Job), nameof(Job.LeaseUntil), "now"),
        (typeof(Job), nameof(Job.CreatedAt), "stale"), (typeof(Job), nameof(Job.Attempts), "limit"));
        statement.Bind(0, node);
        statement.Bind(1, leaseUntil);
        statement.Bind(2, now);
        statement.Bind(3, staleBefore);
        statement.Bind(4, limit);
        Read(statement.Command, Claimed);
        return Claimed.Count;
    }

    internal static void Read(DbCommand command, List<(string Id, long Epoch)> rows)
    {
        using var reader = command.ExecuteReader();
        while (reader.Read())
            rows.Add((reader.GetString(0), reader.GetInt64(1)));
    }
}

/// <summary>Extends this node's leases in one statement and answers the jobs it still holds, with their epochs.</summary>
internal sealed class RenewLeases(string node, DateTime until) : StoreWrite
{
    public override object? Entity => null;

    public List<(string Id, long Epoch)> Held { get; } = [];

    public override int Execute(StoreSession session)
    {
        Held.Clear();
        var statement = session.Command("renew", sql =>
        {
            string C(string property) => sql.Column<Job>(property);
            return $"UPDATE {sql.Table<Job>()} SET {C(nameof(Job.LeaseUntil))} = {sql.Parameter("until")} " +
                   $"WHERE {C(nameof(Job.Owner))} = {sql.Parameter("node")} AND {C(nameof(Job.LeaseUntil))} IS NOT NULL " +
                   $"AND {C(nameof(Job.Status))} IN ('accepted', 'running') RETURNING {C(nameof(Job.Id))}, {C(nameof(Job.Epoch))}";
        }, (typeof(Job), nameof(Job.LeaseUntil), "until"), (typeof(Job), nameof(Job.Owner), "node"));
        statement.Bind(0, until);
        statement.Bind(1, node);
        ClaimDue.Read(statement.Command, Held);
        return Held.Count;
    }
}

/// <summary>Wakes the dispatcher before its next poll: a retry comes due, a job was parked or released here.</summary>
internal sealed class JobWakeups(TimeProvider time)
{
    readonly SemaphoreSlim _signal = new(0, 1);

    public void Now()
    {
        try
        {
            _signal.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already signaled.
        }
    }

    /// <summary>Wakes the dispatcher at <paramref name="due"/> (a parked retry).</summary>
    public void At(DateTime due)
    {
        var wait = due - time.GetUtcNow().UtcDateTime;
        if (wait <= TimeSpan.Zero)
            Now();
        else
            _ = Task.Delay(wait, time).ContinueWith(_ => Now(), TaskScheduler.Default);
    }

    public async Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var timer = new CancellationTokenSource(timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timer.Token, cancellationToken);
        try
        {
            await _signal.WaitAsync(linked.Token);
        }
        catch (OperationCanceledException) when (timer.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
        }
    }
}

/// <summary>
/// The store-driven half of dispatch. Jobs admitted here go straight to a lane; everything else reaches a lane
/// through this loop: at start it takes back what a previous process left (on SQLite, every unfinished job; on
/// PostgreSQL, the jobs held under this node's name), and then, whenever it has idle
/// workers, it claims due jobs from the store every poll interval or when woken: retries that came due, jobs of a
/// node that died, and jobs that waited on a busy node. The store decides; polling is the truth.
/// </summary>
internal sealed class JobDispatcher(
    JobQueue queue,
    RunningJobs running,
    StoreWriter writer,
    JobWakeups wakeups,
    ThisNode node,
    IDbContextFactory<OrchestratorDb> dbs,
    IOptions<QueueOptions> queueOptions,
    IOptions<NodeOptions> nodeOptions,
    TimeProvider time,
    OrchestratorTelemetry telemetry,
    ILogger<JobDispatcher> log)
{
    const int MaxClaim = 256;

    /// <summary>Takes back the jobs a previous process left; recovered jobs are never refused, even past capacity.</summary>
    public async Task<int> RecoverAsync(bool oneNode, CancellationToken cancellationToken)
    {
        var total = 0;
        while (true)
        {
            var claimed = await ClaimAsync(oneNode ? ClaimDue.Scope.All : ClaimDue.Scope.Self, MaxClaim, cancellationToken);
            total += claimed;
            if (claimed < MaxClaim)
                return total;
        }
    }

    public async Task RunAsync(CancellationToken stoppingToken)
    {
        var poll = nodeOptions.Value.PollInterval;
        while (!stoppingToken.IsCancellationRequested)
        {
            await wakeups.WaitAsync(poll, stoppingToken);
            try
            {
                var depth = queue.Depth;
                var idle = queueOptions.Value.Workers - running.Count - (depth.High + depth.Normal + depth.Low);
                while (idle > 0 && !stoppingToken.IsCancellationRequested)
                {
                    var claimed = await ClaimAsync(ClaimDue.Scope.Poll, Math.Min(idle, MaxClaim), stoppingToken);
                    if (claimed == 0)
                        break;
                    idle -= claimed;
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception error)
            {
                log.LogError(error, "Claiming due jobs from the store failed; trying again at the next poll");
            }
        }
    }

    async Task<int> ClaimAsync(ClaimDue.Scope scope, int limit, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var claim = new ClaimDue(scope, node.Id, now, now + nodeOptions.Value.LeaseDuration, now - nodeOptions.Value.PollInterval, limit);
        await writer.WriteAsync(claim);
        if (claim.Claimed.Count == 0)
            return 0;
        var ids = claim.Claimed.Select(c => c.Id).ToList();
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var jobs = await db.Set<Job>().AsNoTracking().Where(j => ids.Contains(j.Id)).OrderBy(j => j.Id).ToListAsync(cancellationToken);
        var epochs = claim.Claimed.ToDictionary(c => c.Id, c => c.Epoch);
        foreach (var job in jobs)
        {
            // Read after the claim committed: a job changed since (canceled, say) carries another epoch or status,
            // and its start, guarded on both, sorts that out.
            job.Epoch = epochs[job.Id];
            job.LeasedHere = true;
            // The same job may still wait in a lane here as it was admitted (unclaimed): the leased copy replaces it.
            queue.TryRemove(job.Id);
            queue.EnqueueRecovered(new QueuedJob(job));
            telemetry.Claimed.Add(1, JobExecution.TagsOf(job));
        }
        if (jobs.Count > 0)
            log.LogInformation("Claimed {Count} jobs from the store ({Running} were running elsewhere or before a restart)",
                jobs.Count, jobs.Count(j => j.Status == JobStatus.Running));
        return claim.Claimed.Count;
    }
}

/// <summary>
/// This node's pulse: every third of the lease it renews its leases and its heartbeat row, and stops any run whose
/// lease another node took; every propagation interval it reads which of its runs were canceled on another node.
/// </summary>
internal sealed class NodeBeat(
    RunningJobs running,
    StoreWriter writer,
    ThisNode node,
    IDbContextFactory<OrchestratorDb> dbs,
    IOptions<NodeOptions> options,
    TimeProvider time,
    ILogger<NodeBeat> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var renewEvery = options.Value.LeaseDuration / 3;
        var lastRenewal = DateTime.MinValue;
        using var timer = new PeriodicTimer(options.Value.Propagation < renewEvery ? options.Value.Propagation : renewEvery, time);
        try
        {
            await BeatAsync(insert: true);
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    var now = time.GetUtcNow().UtcDateTime;
                    if (now - lastRenewal >= renewEvery - TimeSpan.FromMilliseconds(10))
                    {
                        await RenewAsync(now);
                        await BeatAsync(insert: false);
                        lastRenewal = now;
                    }
                    await ReadCancelsAsync(stoppingToken);
                }
                catch (Exception error) when (error is not OperationCanceledException)
                {
                    log.LogError(error, "Node {Node}: renewing leases or reading cancels failed; trying again", node.Id);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    async Task RenewAsync(DateTime now)
    {
        // Only runs whose claim is already queued: the writer applies writes in order, so those claims land before
        // the renewal, and a run missing from its answer really lost its lease.
        var runs = running.Snapshot().Where(r => r.Handle.Claim is not null).ToList();
        var renewal = new RenewLeases(node.Id, now + options.Value.LeaseDuration);
        await writer.WriteAsync(renewal);
        var held = renewal.Held.ToDictionary(h => h.Id, h => h.Epoch);
        foreach (var (jobId, handle) in runs)
        {
            if (held.TryGetValue(jobId, out var epoch) && epoch == handle.Epoch)
                continue;
            if (handle.Claim is { IsCompleted: true } claim && claim.IsCompletedSuccessfully && !claim.Result)
                continue;
            if (running.TryLoseLease(jobId, handle.Epoch))
                log.LogWarning("Node {Node} no longer holds job {JobId} at epoch {Epoch}; its run is stopped", node.Id, jobId, handle.Epoch);
        }
    }

    Task BeatAsync(bool insert)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var row = new ServiceNode { Id = node.Id, StartedAt = node.StartedAt, HeartbeatAt = now, Running = running.Count };
        if (insert)
            _ = writer.WriteAsync(new Insert<ServiceNode>(row));
        return writer.WriteAsync(new GuardedUpdate<ServiceNode>(row, [],
            [nameof(ServiceNode.StartedAt), nameof(ServiceNode.HeartbeatAt), nameof(ServiceNode.Running)]));
    }

    async Task ReadCancelsAsync(CancellationToken cancellationToken)
    {
        if (running.Count == 0)
            return;
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var id = node.Id;
        var canceled = await db.Set<Job>().AsNoTracking()
            .Where(j => j.Status == JobStatus.Running && j.Owner == id && j.CancelRequested)
            .Select(j => j.Id)
            .ToListAsync(cancellationToken);
        foreach (var jobId in canceled)
            running.TryCancel(jobId);
    }
}

/// <summary>One node of the service as the store knows it: when it started and when it last renewed (<c>GET /v1/diag/nodes</c>).</summary>
public sealed class ServiceNode
{
    public string Id { get; set; } = "";
    public DateTime StartedAt { get; set; }
    public DateTime HeartbeatAt { get; set; }

    /// <summary>Jobs it was running at its last heartbeat.</summary>
    public int Running { get; set; }
}

internal sealed class ServiceNodeConfiguration : IEntityTypeConfiguration<ServiceNode>
{
    public void Configure(EntityTypeBuilder<ServiceNode> node)
    {
        node.ToTable("Nodes");
        node.HasKey(n => n.Id);
        node.Property(n => n.Id).HasMaxLength(200);
    }
}
