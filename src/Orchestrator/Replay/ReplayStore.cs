using Orchestrator.Gateway;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Orchestrator.Jobs;
using Orchestrator.Storage;
using Orchestrator.Tenancy;
using Orchestrator.Workflow;

namespace Orchestrator.Replay;

/// <summary>
/// Builds replay packages from what the store kept with each job (the row, its nodes, the snapshots it
/// names) and finds imported ones. Every package leaves here scrubbed. Nothing extra is written while a
/// job runs: the nodes already are the recording.
/// </summary>
internal sealed class ReplayStore(
    IDbContextFactory<OrchestratorDb> dbs, Scrubber scrubber, IntentCatalog intents, TimeProvider time, IOptions<ReplayOptions> options)
{
    public async Task<ReplayFind> FindAsync(Caller caller, string traceId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var job = await db.Set<Jobs.Job>().AsNoTracking().Where(j => j.TraceId == traceId).OrderByDescending(j => j.Id).FirstOrDefaultAsync(cancellationToken);
        if (job is not null)
        {
            if (!caller.CanSee(job.Tenant))
                return ReplayFind.NotFound;
            if (job.IsTerminal && job.CompletedAt < time.GetUtcNow().UtcDateTime - options.Value.Retention)
                return ReplayFind.Expired;
            var nodes = await db.Set<JobNode>().AsNoTracking().Where(n => n.JobId == job.Id).OrderBy(n => n.Seq).ToListAsync(cancellationToken);
            var hashes = new[] { job.PolicyHash, job.RoutingHash }.OfType<string>().ToList();
            var snapshots = await db.Set<Snapshot>().AsNoTracking().Where(s => hashes.Contains(s.Hash)).ToDictionaryAsync(s => s.Hash, cancellationToken);
            return new ReplayFind(Scrub(Build(job, nodes, snapshots)), false);
        }
        var imported = await db.Set<ReplayImport>().AsNoTracking().FirstOrDefaultAsync(i => i.TraceId == traceId, cancellationToken);
        return imported is not null && caller.CanSee(imported.Tenant)
            ? new ReplayFind(JsonSerializer.Deserialize(imported.Package, ReplayJson.Default.ReplayPackage), false)
            : ReplayFind.NotFound;
    }

    /// <summary>Stores an imported package; false when its trace id is already taken here (by a job or another import).</summary>
    public async Task<bool> ImportAsync(ReplayPackage package, Caller caller, CancellationToken cancellationToken)
    {
        var scrubbed = Scrub(package);
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        if (await db.Set<Jobs.Job>().AnyAsync(j => j.TraceId == package.TraceId, cancellationToken) ||
            await db.Set<ReplayImport>().AnyAsync(i => i.TraceId == package.TraceId, cancellationToken))
            return false;
        db.Add(new ReplayImport
        {
            TraceId = scrubbed.TraceId,
            Tenant = scrubbed.Tenant,
            JobId = scrubbed.JobId,
            ImportedBy = caller.Principal,
            ImportedAt = time.GetUtcNow().UtcDateTime,
            Package = JsonSerializer.Serialize(scrubbed, ReplayJson.Default.ReplayPackage),
        });
        try
        {
            await db.SaveChangesAsync(cancellationToken);
            return true;
        }
        catch (DbUpdateException error) when (error.InnerException is System.Data.Common.DbException db2 && StoreErrors.IsKeyConflict(db2))
        {
            return false;
        }
    }

    public ReplayPackage Scrub(ReplayPackage package)
    {
        var json = JsonSerializer.SerializeToNode(package, ReplayJson.Default.ReplayPackage)!;
        return JsonSerializer.Deserialize(scrubber.Scrub(json)!, ReplayJson.Default.ReplayPackage)!;
    }

    ReplayPackage Build(Job job, List<JobNode> nodes, Dictionary<string, Snapshot> snapshots)
    {
        var request = JsonSerializer.Deserialize(job.Request, WorkflowJson.Default.ActRequest)!;
        var policySnapshot = job.PolicyHash is { } ph ? snapshots.GetValueOrDefault(ph) : null;
        // A job from before snapshots existed falls back to the policy loaded now, and says so (no hash).
        var policy = policySnapshot is not null ? IntentCatalog.Parse(policySnapshot.Content) : intents.Find(job.Intent);
        var routingSnapshot = job.RoutingHash is { } rh ? snapshots.GetValueOrDefault(rh) : null;
        var routing = routingSnapshot is null ? null : JsonSerializer.Deserialize(routingSnapshot.Content, GatewayJson.Default.RoutingConfiguration);
        var now = time.GetUtcNow().UtcDateTime;
        var view = JobView.From(job, now);
        return new ReplayPackage(
            ReplayPackage.CurrentFormat,
            job.TraceId, job.Id, job.Tenant, job.Principal, now,
            job.Intent, request,
            new ReplayVersions(
                new VersionRef(policy?.Version, policySnapshot?.Hash),
                new VersionRef(policy?.Version, policy is null ? null : Hashes.OfPrompts(policy)),
                new VersionRef(null, routingSnapshot?.Hash)),
            policy ?? new IntentPolicy { Intent = job.Intent, Nodes = [] },
            routing,
            new ReplayOutcome(view.Status, view.Output, view.Error, view.Routing, job.Attempts),
            new ReplayTimings(job.CreatedAt, job.StartedAt, job.CompletedAt, job.DeadlineMs, view.Sla.QueueMs, view.Sla.RunMs),
            nodes.Select(n => new ReplayNode(
                n.NodeId, n.Kind, n.Name, NodeStatuses.Of(n.Status), n.Attempts, n.ParentIds.ToList(),
                Parse(n.Input), Parse(n.Output),
                n.ErrorCode is null ? null : new JobError(n.ErrorCode, n.ErrorMessage ?? n.ErrorCode),
                n.StartedAt, n.CompletedAt,
                n.StartedAt is { } s && n.CompletedAt is { } c ? (long)(c - s).TotalMilliseconds : null)).ToList(),
            new ReplaySeeds(request.Seed is null ? "FNV-1a 64 of traceId + '/' + nodeId, low 53 bits" : "FNV-1a 64 of request.seed + '/' + nodeId, low 53 bits",
                nodes.ToDictionary(n => n.NodeId, n => Seeds.For(request.Seed ?? job.TraceId, n.NodeId))))
        {
            Assigned = view.Versions,
        };
    }

    static JsonElement? Parse(string? json) => json is null ? null : JsonDocument.Parse(json).RootElement.Clone();
}

/// <summary>A package, or why there is none (not found, or past its retention).</summary>
internal sealed record ReplayFind(ReplayPackage? Package, bool IsExpired)
{
    public static readonly ReplayFind NotFound = new(null, false);
    public static readonly ReplayFind Expired = new(null, true);
}

/// <summary>Removes recorded nodes of jobs that finished longer ago than the retention, and old imports.</summary>
internal sealed class ReplayRetention(
    IDbContextFactory<OrchestratorDb> dbs, IOptions<ReplayOptions> options, TimeProvider time, ILogger<ReplayRetention> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.SweepInterval, time);
        try
        {
            do
            {
                try
                {
                    await SweepAsync(stoppingToken);
                }
                catch (Exception error) when (error is not OperationCanceledException)
                {
                    log.LogWarning(error, "Replay retention sweep failed; the next one retries");
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async Task SweepAsync(CancellationToken cancellationToken)
    {
        var cutoff = time.GetUtcNow().UtcDateTime - options.Value.Retention;
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var nodes = await db.Set<JobNode>()
            .Where(n => db.Set<Jobs.Job>().Any(j => j.Id == n.JobId && j.CompletedAt != null && j.CompletedAt < cutoff))
            .ExecuteDeleteAsync(cancellationToken);
        var imports = await db.Set<ReplayImport>().Where(i => i.ImportedAt < cutoff).ExecuteDeleteAsync(cancellationToken);
        if (nodes + imports > 0)
            log.LogInformation("Replay retention removed {Nodes} recorded nodes and {Imports} imported packages older than {Cutoff:O}", nodes, imports, cutoff);
    }
}
