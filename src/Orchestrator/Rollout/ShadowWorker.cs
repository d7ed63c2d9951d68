using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Orchestrator.Approvals;
using Orchestrator.Effects;
using Orchestrator.Gateway;
using Orchestrator.Hosting;
using Orchestrator.Jobs;
using Orchestrator.Memory;
using Orchestrator.Replay;
using Orchestrator.Storage;
using Orchestrator.Telemetry;
using Orchestrator.Workflow;

namespace Orchestrator.Rollout;

/// <summary>
/// Shadow mode, on every node. Mirrors: each completed stable job of a caller in a <c>shadow</c> rollout's share (the
/// canary's buckets) gets a <see cref="ShadowRun"/> row (one per job and kind: two nodes mirroring at once keep one).
/// Runs: a node leases a pending run (or one whose node died: its lease expired), walks the candidate on a copy of the
/// job's request with <see cref="ShadowSteps"/> (models live, effects never applied), and writes the comparison. The
/// caller's answer was returned long before and is never touched. Cost goes to the shadow budget, never to the tenant.
/// </summary>
internal sealed class ShadowWorker(
    IDbContextFactory<OrchestratorDb> dbs,
    RolloutState state,
    ModelGateway gateway,
    EffectRegistry effects,
    ApprovalStore approvals,
    MemoryStore memory,
    IOptions<GatewayOptions> gatewayOptions,
    IOptions<RolloutOptions> options,
    ThisNode node,
    OrchestratorTelemetry telemetry,
    TimeProvider time,
    ILogger<ShadowWorker> log) : BackgroundService
{
    public const string BudgetExhausted = "shadow_budget_exhausted";
    public const string AttemptsExhausted = "shadow_attempts_exhausted";
    public const string IntentMissing = "shadow_intent_missing";
    public const string PrimaryMissing = "shadow_primary_missing";

    const int MirrorBatch = 200;
    const int RunsPerTick = 20;

    readonly Dictionary<(string Kind, long Revision), DateTime> _cursors = [];
    readonly Counter<long> _runs = telemetry.Counter("orchestrator.rollout.shadow.runs", "{run}",
        "Shadow runs by kind, stable and candidate version and outcome (identical, differs, failed, skipped).");
    readonly Histogram<double> _latency = telemetry.Histogram("orchestrator.rollout.shadow.latency", "ms", "Run time of shadow runs, by kind and candidate version.");

    ShadowOptions Shadow => options.Value.Shadow;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Shadow.PollInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await TickAsync(stoppingToken);
                }
                catch (Exception error) when (error is not OperationCanceledException)
                {
                    log.LogWarning(error, "Shadow runs: a pass failed; trying again at the next interval");
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>One pass: mirror what completed since the last pass, then run what is due.</summary>
    public async Task TickAsync(CancellationToken cancellationToken)
    {
        foreach (var row in state.Rollouts.Values.Where(r => r.Mode == RolloutModes.Shadow && r.Candidate is not null))
            await MirrorAsync(row, cancellationToken);
        if (!Shadow.Run)
            return;
        for (var i = 0; i < RunsPerTick && await ClaimAsync(cancellationToken) is { } run; i++)
            await RunAsync(run, cancellationToken);
    }

    async Task MirrorAsync(RolloutRow row, CancellationToken cancellationToken)
    {
        var o = options.Value;
        var now = time.GetUtcNow().UtcDateTime;
        // Jobs admitted since the rollout last changed, within the window (a node down longer than it does not mirror the past).
        var since = row.UpdatedAt > now - o.Window ? row.UpdatedAt : now - o.Window;
        var from = _cursors.GetValueOrDefault((row.Kind, row.Revision), since);
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var jobs = await db.Set<Job>().AsNoTracking()
            .Where(j => j.Status == JobStatus.Completed && j.CreatedAt >= since && j.CompletedAt >= from && j.Versions != null)
            .OrderBy(j => j.CompletedAt).Take(MirrorBatch)
            .Select(j => new { j.Id, j.Tenant, j.Principal, j.Session, j.Versions, j.CompletedAt })
            .ToListAsync(cancellationToken);
        if (jobs.Count == 0)
            return;
        var ids = jobs.Select(j => j.Id).ToList();
        var known = (await db.Set<ShadowRun>().AsNoTracking().Where(s => s.Kind == row.Kind && ids.Contains(s.PrimaryJobId))
            .Select(s => s.PrimaryJobId).ToListAsync(cancellationToken)).ToHashSet(StringComparer.Ordinal);
        foreach (var job in jobs.Where(j => !known.Contains(j.Id)))
        {
            var versions = JsonSerializer.Deserialize(job.Versions!, WorkflowJson.Default.JobVersions);
            var used = row.Kind switch { ArtifactKinds.Prompts => versions?.Prompts, ArtifactKinds.Policies => versions?.Policy, _ => versions?.Routing };
            // Only jobs that ran the stable because nothing chose otherwise: a pinned job is the caller's choice.
            if (used is not { Reason: "stable" } || ArtifactKinds.ParseVersion(used.Version) != row.Stable)
                continue;
            var subject = o.StickyBy == "session" && job.Session is not null ? "session:" + job.Session : job.Principal;
            if (!Buckets.InCandidate(Buckets.Of(o.Salt, row.Kind, job.Tenant, subject), row.Percent))
                continue;
            db.Add(new ShadowRun
            {
                Kind = row.Kind, Candidate = row.Candidate!.Value, Stable = row.Stable, PrimaryJobId = job.Id, Tenant = job.Tenant,
                Status = ShadowStatus.Pending, CreatedAt = StoreTime.Microseconds(now),
            });
            try
            {
                await db.SaveChangesAsync(cancellationToken);
            }
            catch (DbUpdateException error) when (error.InnerException is System.Data.Common.DbException inner && StoreErrors.IsKeyConflict(inner))
            {
                // Another node mirrored it first.
                db.ChangeTracker.Clear();
            }
        }
        _cursors[(row.Kind, row.Revision)] = jobs[^1].CompletedAt!.Value;
    }

    /// <summary>Leases the oldest pending run, or a running one whose lease expired (its node died); null when none is due.</summary>
    async Task<ShadowRun?> ClaimAsync(CancellationToken cancellationToken)
    {
        var now = StoreTime.Microseconds(time.GetUtcNow().UtcDateTime);
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var due = await db.Set<ShadowRun>().AsNoTracking()
                .Where(s => s.Status == ShadowStatus.Pending || (s.Status == ShadowStatus.Running && s.LeaseUntil < now))
                .OrderBy(s => s.Id).FirstOrDefaultAsync(cancellationToken);
            if (due is null)
                return null;
            var until = now + Shadow.LeaseDuration;
            // The attempt count fences the claim: of two nodes taking the same run, one matches.
            var claimed = await db.Set<ShadowRun>()
                .Where(s => s.Id == due.Id && s.Status == due.Status && s.Attempts == due.Attempts)
                .ExecuteUpdateAsync(s => s
                    .SetProperty(r => r.Status, ShadowStatus.Running)
                    .SetProperty(r => r.Owner, node.Id)
                    .SetProperty(r => r.LeaseUntil, until)
                    .SetProperty(r => r.StartedAt, now)
                    .SetProperty(r => r.Attempts, due.Attempts + 1), cancellationToken);
            if (claimed == 1)
            {
                due.Status = ShadowStatus.Running;
                due.Owner = node.Id;
                due.Attempts++;
                due.StartedAt = now;
                return due;
            }
        }
        return null;
    }

    async Task RunAsync(ShadowRun run, CancellationToken cancellationToken)
    {
        var tags = new TagList { { "kind", run.Kind }, { "stable", ArtifactKinds.Name(run.Stable) }, { "candidate", ArtifactKinds.Name(run.Candidate) } };
        if (run.Attempts > Shadow.MaxAttempts)
        {
            await EndAsync(run, ShadowStatus.Failed, AttemptsExhausted, $"Its node stopped {run.Attempts - 1} times while running it.", cancellationToken);
            Count(tags, "failed");
            return;
        }
        var today = time.GetUtcNow().UtcDateTime.Date;
        await using (var db = await dbs.CreateDbContextAsync(cancellationToken))
        {
            var spent = await db.Set<ShadowRun>().Where(s => s.CompletedAt >= today).SumAsync(s => (long?)s.CostMicros, cancellationToken) ?? 0;
            if (spent >= Tenancy.Ledger.MicrosUp(Shadow.BudgetUsdPerDay))
            {
                await EndAsync(run, ShadowStatus.Skipped, BudgetExhausted,
                    $"Shadow runs spent {spent / 1_000_000m} USD today, the budget (Orchestrator:Rollout:Shadow:BudgetUsdPerDay) is {Shadow.BudgetUsdPerDay} USD.", cancellationToken);
                Count(tags, "skipped");
                return;
            }
        }

        Job? job;
        List<JobNode> nodes;
        await using (var db = await dbs.CreateDbContextAsync(cancellationToken))
        {
            job = await db.Set<Job>().AsNoTracking().FirstOrDefaultAsync(j => j.Id == run.PrimaryJobId, cancellationToken);
            nodes = job is null ? [] : await db.Set<JobNode>().AsNoTracking().Where(n => n.JobId == job.Id).OrderBy(n => n.Seq).ToListAsync(cancellationToken);
        }
        if (job?.Versions is null)
        {
            await EndAsync(run, ShadowStatus.Skipped, PrimaryMissing, $"Job {run.PrimaryJobId} is no longer in the store.", cancellationToken);
            Count(tags, "skipped");
            return;
        }
        var request = JsonSerializer.Deserialize(job.Request, WorkflowJson.Default.ActRequest)!;
        var used = JsonSerializer.Deserialize(job.Versions, WorkflowJson.Default.JobVersions)!;
        var choice = state.ShadowOf(job.Intent, used, run.Kind, run.Candidate);
        if (choice is null)
        {
            await state.RefreshAsync(cancellationToken);
            choice = state.ShadowOf(job.Intent, used, run.Kind, run.Candidate);
        }
        if (choice is null)
        {
            await EndAsync(run, ShadowStatus.Skipped, IntentMissing, $"{run.Kind} {ArtifactKinds.Name(run.Candidate)} gives intent '{job.Intent}' no policy.", cancellationToken);
            Count(tags, "skipped");
            return;
        }

        var policy = choice.Policy;
        var recorded = new RecordedSteps(nodes.Select(n => new RecordedNode(n.NodeId, n.Kind, n.Name, NodeStatuses.Of(n.Status),
            Parse(n.Input), Parse(n.Output), n.ErrorCode, n.ErrorMessage)));
        var steps = new ShadowSteps(gateway, effects, approvals, memory, gatewayOptions.Value.DefaultStrategy,
            Guid.NewGuid().ToString("N"), job.TraceId, job.Tenant, job.Principal, request, policy, recorded);
        var started = time.GetTimestamp();
        WalkResult walk;
        // Bounded by the intent's deadline, and by the lease: a run is done before another node may take it.
        var limit = TimeSpan.FromMilliseconds(Math.Min(policy.DeadlineMs, Shadow.LeaseDuration.TotalMilliseconds * 0.9));
        using (var deadline = new CancellationTokenSource(limit, time))
        using (var both = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken))
        {
            try
            {
                walk = await WorkflowWalk.RunAsync(policy, request, steps, both.Token);
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                walk = new WalkResult(null, [], StepFailure.Failed(Problems.DeadlineExceeded, $"The shadow run took longer than {limit.TotalMilliseconds:0} ms."));
            }
        }
        var latency = (long)time.GetElapsedTime(started).TotalMilliseconds;

        var primary = JobView.From(job, time.GetUtcNow().UtcDateTime);
        var status = walk.Failure switch { null => "completed", { Canceled: true } => "canceled", _ => "failed" };
        var primaryPath = primary.Output?.Path ?? [];
        var path = PathDiff.Of(primaryPath, walk.Path);
        var sameStatus = status == primary.Status;
        var sameOutput = walk.Text == primary.Output?.Text;
        var comparison = new ShadowComparison(sameStatus, sameOutput, path, primary.Status, status, steps.Sources);
        var identical = sameStatus && sameOutput && path.Same;
        var end = StoreTime.Microseconds(time.GetUtcNow().UtcDateTime);
        var cost = Tenancy.Ledger.MicrosUp(steps.Usage.CostUsd);
        await using (var db = await dbs.CreateDbContextAsync(cancellationToken))
        {
            var written = await db.Set<ShadowRun>()
                .Where(s => s.Id == run.Id && s.Status == ShadowStatus.Running && s.Attempts == run.Attempts)
                .ExecuteUpdateAsync(s => s
                    .SetProperty(r => r.Status, walk.Failure is null ? ShadowStatus.Completed : ShadowStatus.Failed)
                    .SetProperty(r => r.Reason, walk.Failure == null ? null : walk.Failure.Code)
                    .SetProperty(r => r.ErrorMessage, walk.Failure == null ? null : Cut(walk.Failure.Message))
                    .SetProperty(r => r.Output, walk.Text)
                    .SetProperty(r => r.Identical, identical)
                    .SetProperty(r => r.Comparison, JsonSerializer.Serialize(comparison, RolloutJson.Default.ShadowComparison))
                    .SetProperty(r => r.LatencyMs, latency)
                    .SetProperty(r => r.PrimaryLatencyMs, primary.Sla.RunMs)
                    .SetProperty(r => r.CostMicros, cost)
                    .SetProperty(r => r.PrimaryCostMicros, job.CostMicros)
                    .SetProperty(r => r.CompletedAt, end)
                    .SetProperty(r => r.LeaseUntil, (DateTime?)null), cancellationToken);
            if (written == 0)
                log.LogInformation("Shadow run {Id} was taken by another node meanwhile; its result here is dropped", run.Id);
        }
        Count(tags, walk.Failure is not null ? "failed" : identical ? "identical" : "differs");
        tags.Add("outcome", walk.Failure is not null ? "failed" : "completed");
        _latency.Record(latency, tags);
    }

    void Count(TagList tags, string outcome)
    {
        tags.Add("outcome", outcome);
        _runs.Add(1, tags);
    }

    async Task EndAsync(ShadowRun run, string status, string reason, string message, CancellationToken cancellationToken)
    {
        var end = StoreTime.Microseconds(time.GetUtcNow().UtcDateTime);
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        await db.Set<ShadowRun>()
            .Where(s => s.Id == run.Id && s.Status == ShadowStatus.Running && s.Attempts == run.Attempts)
            .ExecuteUpdateAsync(s => s
                .SetProperty(r => r.Status, status)
                .SetProperty(r => r.Reason, reason)
                .SetProperty(r => r.ErrorMessage, Cut(message))
                .SetProperty(r => r.CompletedAt, end)
                .SetProperty(r => r.LeaseUntil, (DateTime?)null), cancellationToken);
    }

    static string Cut(string message) => message.Length <= 2000 ? message : message[..2000];

    static JsonElement? Parse(string? json) => json is null ? null : JsonDocument.Parse(json).RootElement.Clone();
}
