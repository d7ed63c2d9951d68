using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using Orchestrator.Storage;
using Orchestrator.Tenancy;

namespace Orchestrator.Jobs;

/// <summary>
/// A job's start under its tenant's <c>maxConcurrentJobs</c> (and its principal's): the start applies only while fewer
/// of the tenant's jobs run, on all nodes together, than the limit. The count and the start are one step of the
/// writer's transaction; on PostgreSQL a transaction-scoped advisory lock per tenant makes nodes starting the same
/// tenant's jobs count in turn, so two nodes never both take the last slot.
/// </summary>
internal sealed class SlotStart(StoreWrite start, Job job, DateTime now, int? tenantMax, int? principalMax) : StoreWrite
{
    /// <summary>True when the start did not apply because every slot was taken.</summary>
    public bool NoSlot { get; private set; }

    public override object? Entity => null;

    public override int Execute(StoreSession session)
    {
        NoSlot = false;
        if (!session.IsSqlite)
        {
            var gate = session.Command("slots:lock", sql => $"SELECT pg_advisory_xact_lock({sql.Parameter("k")})", (typeof(Job), nameof(Job.Epoch), "k"));
            gate.Bind(0, LockOf(job.Tenant));
            gate.Command.ExecuteScalar();
        }
        if ((tenantMax is { } tenant && Running(session, principal: null) >= tenant) ||
            (principalMax is { } principal && Running(session, job.Principal) >= principal))
        {
            NoSlot = true;
            return 0;
        }
        return start.Execute(session);
    }

    /// <summary>The tenant's (or the principal's) jobs running under a live lease, other than this one.</summary>
    long Running(StoreSession session, string? principal)
    {
        var statement = session.Command(principal is null ? "slots:tenant" : "slots:principal", sql =>
        {
            string C(string property) => sql.Column<Job>(property);
            // The partial index of unfinished jobs, named, with its own filter repeated so SQLite can prove it applies:
            // without statistics SQLite would take the tenant's index and read every job the tenant ever had on every
            // start (measured: acceptance fell from 2,400 to 31 req/s).
            return $"SELECT COUNT(*) FROM {sql.Table<Job>()}{(sql.IsSqlite ? " INDEXED BY \"IX_Jobs_Status\"" : "")} " +
                   $"WHERE {C(nameof(Job.Status))} IN ('accepted', 'running', 'awaiting_approval') AND {C(nameof(Job.Status))} = 'running' " +
                   $"AND {C(nameof(Job.Tenant))} = {sql.Parameter("t")} AND {C(nameof(Job.Id))} <> {sql.Parameter("id")} " +
                   $"AND {C(nameof(Job.LeaseUntil))} > {sql.Parameter("now")}" +
                   (principal is null ? "" : $" AND {C(nameof(Job.Principal))} = {sql.Parameter("p")}");
        }, [(typeof(Job), nameof(Job.Tenant), "t"), (typeof(Job), nameof(Job.Id), "id"), (typeof(Job), nameof(Job.LeaseUntil), "now"),
            .. principal is null ? Array.Empty<(Type, string, string)>() : [(typeof(Job), nameof(Job.Principal), "p")]]);
        statement.Bind(0, job.Tenant);
        statement.Bind(1, job.Id);
        statement.Bind(2, now);
        if (principal is not null)
            statement.Bind(3, principal);
        return Convert.ToInt64(statement.Command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>A stable 64-bit lock key per tenant (advisory locks are keyed by number).</summary>
    static long LockOf(string tenant) => BitConverter.ToInt64(SHA256.HashData(Encoding.UTF8.GetBytes("slots:" + tenant)), 0);
}

/// <summary>
/// Jobs that found every slot of their tenant taken. They wait here, holding no worker, as accepted rows: one goes back to
/// its lane when a job of its tenant ends on this node, and all of them every poll interval (a slot may have freed on
/// another node). Any node may also take them from the store, under the same limit.
/// </summary>
internal sealed class JobSlots(JobQueue queue, TenantDirectory tenants, IOptions<NodeOptions> options, TimeProvider time) : BackgroundService
{
    readonly Dictionary<string, Queue<Job>> _waiting = new(StringComparer.Ordinal);
    readonly Lock _gate = new();

    /// <summary>The limits that bind the job's start, or null when its tenant and principal have none.</summary>
    public (int? Tenant, int? Principal)? LimitsOf(Job job)
    {
        var document = tenants.Find(job.Tenant);
        var tenant = document.Limits?.MaxConcurrentJobs;
        var principal = TenantDirectory.PrincipalLimits(document, job.Principal)?.MaxConcurrentJobs;
        return tenant is null && principal is null ? null : (tenant, principal);
    }

    /// <summary>
    /// Keeps <paramref name="job"/> until a slot frees. It keeps its place in the queue's capacity while it waits (it is
    /// accepted and not started), so a tenant held at its limit cannot pile up more than the queue holds.
    /// </summary>
    public void Wait(Job job)
    {
        queue.HoldPlace();
        lock (_gate)
        {
            if (!_waiting.TryGetValue(job.Tenant, out var jobs))
                _waiting[job.Tenant] = jobs = new Queue<Job>();
            jobs.Enqueue(job);
        }
    }

    /// <summary>A job of <paramref name="tenant"/> ended here: its slot goes to the tenant's longest-waiting job.</summary>
    public void Freed(string tenant)
    {
        Job? next = null;
        lock (_gate)
        {
            if (_waiting.TryGetValue(tenant, out var jobs) && jobs.TryDequeue(out next) && jobs.Count == 0)
                _waiting.Remove(tenant);
        }
        if (next is not null)
            queue.Enqueue(new QueuedJob(next));
    }

    public int Count
    {
        get
        {
            lock (_gate)
                return _waiting.Values.Sum(q => q.Count);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.PollInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                List<Job> all;
                lock (_gate)
                {
                    all = _waiting.Values.SelectMany(q => q).ToList();
                    _waiting.Clear();
                }
                foreach (var job in all)
                    queue.Enqueue(new QueuedJob(job));
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
