using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Orchestrator.Jobs;
using Orchestrator.Storage;
using Orchestrator.Workflow;

namespace Orchestrator.Rollout;

/// <summary>One arm's finished jobs in the window: how many, how many failed or broke their SLA, and the p95 run time.</summary>
public sealed record ArmStats(string Version, int Jobs, int Failed, int Breached, double ErrorRate, double BreachRate, long? P95RunMs);

/// <summary>
/// The candidate against the stable over the window: <c>inconclusive</c> (an arm has fewer than the minimum sample; it never
/// promotes and never rolls back), <c>failing</c> (with the reasons), or <c>healthy</c>.
/// </summary>
public sealed record RolloutAnalysisView(string Verdict, IReadOnlyList<string> Reasons, DateTime Since, int MinSample, ArmStats Stable, ArmStats? Candidate);

/// <summary>Compares a rollout's arms from the jobs' recorded versions.</summary>
internal sealed class RolloutAnalysis(IDbContextFactory<OrchestratorDb> dbs, IOptions<RolloutOptions> options, TimeProvider time)
{
    public async Task<RolloutAnalysisView> AnalyseAsync(RolloutRow row, CancellationToken cancellationToken)
    {
        var o = options.Value;
        var now = time.GetUtcNow().UtcDateTime;
        var since = now - o.Window;
        // Only jobs since the rollout last changed count: the candidate of a previous rollout is not this one.
        if (row.UpdatedAt > since)
            since = row.UpdatedAt;
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var jobs = await db.Set<Job>().AsNoTracking()
            .Where(j => j.CreatedAt >= since && j.Versions != null &&
                        (j.Status == JobStatus.Completed || j.Status == JobStatus.Failed))
            .OrderByDescending(j => j.CreatedAt).Take(o.MaxJobsRead)
            .Select(j => new { j.Status, j.Breached, j.RunMs, j.Versions, j.ErrorCode })
            .ToListAsync(cancellationToken);
        var stable = new List<(bool Failed, bool Breached, long RunMs)>();
        var candidate = new List<(bool Failed, bool Breached, long RunMs)>();
        foreach (var job in jobs)
        {
            var versions = JsonSerializer.Deserialize(job.Versions!, WorkflowJson.Default.JobVersions);
            var used = row.Kind switch { ArtifactKinds.Prompts => versions?.Prompts, ArtifactKinds.Policies => versions?.Policy, _ => versions?.Routing };
            if (used is null)
                continue;
            // A caller's own failure (canceled) says nothing about the version.
            var sample = (job.Status == JobStatus.Failed && job.ErrorCode != Hosting.Problems.Canceled, job.Breached, job.RunMs ?? 0);
            if (job.Status == JobStatus.Failed && job.ErrorCode == Hosting.Problems.Canceled)
                continue;
            var number = ArtifactKinds.ParseVersion(used.Version);
            if (row.Candidate is { } c && number == c && used.Reason == "rollout")
                candidate.Add(sample);
            else if (number == row.Stable && used.Reason == "stable")
                stable.Add(sample);
        }
        var stableStats = Stats(ArtifactKinds.Name(row.Stable), stable);
        var candidateStats = row.Candidate is { } cand ? Stats(ArtifactKinds.Name(cand), candidate) : null;
        var reasons = new List<string>();
        string verdict;
        if (candidateStats is null || candidateStats.Jobs < o.MinSample || stableStats.Jobs < o.MinSample)
        {
            verdict = "inconclusive";
            reasons.Add($"Each arm needs at least {o.MinSample} finished jobs in the window (stable {stableStats.Jobs}, candidate {candidateStats?.Jobs ?? 0}).");
        }
        else
        {
            if (candidateStats.ErrorRate - stableStats.ErrorRate > o.MaxErrorRateIncrease)
                reasons.Add($"error rate {candidateStats.ErrorRate:P1} vs stable {stableStats.ErrorRate:P1} (more than +{o.MaxErrorRateIncrease:P1})");
            if (candidateStats.BreachRate - stableStats.BreachRate > o.MaxBreachRateIncrease)
                reasons.Add($"SLA breach rate {candidateStats.BreachRate:P1} vs stable {stableStats.BreachRate:P1} (more than +{o.MaxBreachRateIncrease:P1})");
            if (candidateStats.P95RunMs is { } cp && stableStats.P95RunMs is { } sp && cp > sp * o.MaxP95Ratio && cp - sp >= o.MinP95DifferenceMs)
                reasons.Add($"p95 run time {cp} ms vs stable {sp} ms (more than x{o.MaxP95Ratio})");
            verdict = reasons.Count > 0 ? "failing" : "healthy";
        }
        return new RolloutAnalysisView(verdict, reasons, since, o.MinSample, stableStats, candidateStats);
    }

    static ArmStats Stats(string version, List<(bool Failed, bool Breached, long RunMs)> samples)
    {
        var n = samples.Count;
        var failed = samples.Count(s => s.Failed);
        var breached = samples.Count(s => s.Breached);
        long? p95 = null;
        if (n > 0)
        {
            var sorted = samples.Select(s => s.RunMs).Order().ToList();
            p95 = sorted[Math.Clamp((int)Math.Ceiling(0.95 * n) - 1, 0, n - 1)];
        }
        return new ArmStats(version, n, failed, breached, n == 0 ? 0 : (double)failed / n, n == 0 ? 0 : (double)breached / n, p95);
    }
}

/// <summary>
/// Imports the shipped files and reads the rollouts before the host serves, reads them again every propagation interval,
/// and rolls a failing candidate back on its own (<c>Orchestrator:Rollout:AutoRollback</c>).
/// </summary>
internal sealed class RolloutWatch(
    RolloutState state,
    RolloutService service,
    RolloutAnalysis analysis,
    IOptions<RolloutOptions> options,
    IOptions<NodeOptions> node,
    TimeProvider time,
    ILogger<RolloutWatch> log) : BackgroundService
{
    DateTime _checked;

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        await service.ImportShippedAsync(cancellationToken);
        await state.RefreshAsync(cancellationToken);
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(node.Value.Propagation, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await state.RefreshAsync(stoppingToken);
                    var now = time.GetUtcNow().UtcDateTime;
                    if (options.Value.AutoRollback && now - _checked >= options.Value.CheckInterval)
                    {
                        _checked = now;
                        await CheckAsync(stoppingToken);
                    }
                }
                catch (Exception error) when (error is not OperationCanceledException)
                {
                    log.LogWarning(error, "Reading the rollouts from the store failed; trying again at the next interval");
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Rolls back every candidate whose comparison with its stable is failing; inconclusive does nothing.</summary>
    public async Task CheckAsync(CancellationToken cancellationToken)
    {
        foreach (var row in state.Rollouts.Values.Where(r => r.Candidate is not null && r.Mode is RolloutModes.Canary or RolloutModes.Ab))
        {
            var view = await analysis.AnalyseAsync(row, cancellationToken);
            if (view.Verdict != "failing")
                continue;
            var reason = $"automatic: candidate {view.Candidate!.Version} failing against stable {view.Stable.Version}: {string.Join("; ", view.Reasons)}";
            log.LogWarning("Rolling back the {Kind} rollout: {Reason}", row.Kind, reason);
            await service.RollbackCandidateAsync(row.Kind, row.Candidate!.Value, reason, view, cancellationToken);
        }
    }
}
