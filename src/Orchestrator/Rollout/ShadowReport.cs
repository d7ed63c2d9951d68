using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Orchestrator.Storage;

namespace Orchestrator.Rollout;

/// <summary>A shadow rollout's runs so far (the current stable and candidate): how many compared, identical, differed, failed, were skipped, and what they cost.</summary>
public sealed record ShadowView(
    int Runs, int Pending, int Compared, int Identical, int Differs, int Failed, int Skipped,
    IReadOnlyDictionary<string, int> SkippedBy, decimal CostUsd, long? P95LatencyMs, long? PrimaryP95LatencyMs,
    decimal BudgetUsdPerDay, decimal SpentTodayUsd, IReadOnlyList<ShadowRunView> Recent);

/// <summary>One shadow run: its primary job, how it ended, the candidate's answer and how it compared.</summary>
public sealed record ShadowRunView(
    long Id, string PrimaryJobId, string Tenant, string Status, string? Reason, string? Message, bool? Identical, string? Output,
    ShadowComparison? Comparison, long? LatencyMs, long? PrimaryLatencyMs, decimal CostUsd, decimal? PrimaryCostUsd,
    int Attempts, string? Node, DateTime CreatedAt, DateTime? CompletedAt);

/// <summary>Reads the shadow runs of a rollout for its view.</summary>
internal sealed class ShadowReport(IDbContextFactory<OrchestratorDb> dbs, IOptions<RolloutOptions> options, TimeProvider time)
{
    const int RecentRuns = 10;

    public async Task<ShadowView> ReadAsync(RolloutRow row, CancellationToken cancellationToken)
    {
        var o = options.Value.Shadow;
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var runs = await db.Set<ShadowRun>().AsNoTracking()
            .Where(s => s.Kind == row.Kind && s.Candidate == row.Candidate && s.Stable == row.Stable)
            .OrderByDescending(s => s.Id).Take(o.MaxRunsRead).ToListAsync(cancellationToken);
        var today = time.GetUtcNow().UtcDateTime.Date;
        var spent = await db.Set<ShadowRun>().Where(s => s.CompletedAt >= today).SumAsync(s => (long?)s.CostMicros, cancellationToken) ?? 0;
        var compared = runs.Where(r => r.Identical is not null).ToList();
        return new ShadowView(
            runs.Count,
            runs.Count(r => r.Status is ShadowStatus.Pending or ShadowStatus.Running),
            compared.Count,
            compared.Count(r => r.Identical == true),
            compared.Count(r => r.Identical == false),
            runs.Count(r => r.Status == ShadowStatus.Failed),
            runs.Count(r => r.Status == ShadowStatus.Skipped),
            runs.Where(r => r.Status == ShadowStatus.Skipped).GroupBy(r => r.Reason ?? "").ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal),
            Usd(runs.Sum(r => r.CostMicros)),
            P95(compared.Select(r => r.LatencyMs)),
            P95(compared.Select(r => r.PrimaryLatencyMs)),
            o.BudgetUsdPerDay,
            Usd(spent),
            [.. runs.Take(RecentRuns).Select(View)]);
    }

    static ShadowRunView View(ShadowRun r) => new(
        r.Id, r.PrimaryJobId, r.Tenant, r.Status, r.Reason, r.ErrorMessage, r.Identical, r.Output,
        r.Comparison is null ? null : JsonSerializer.Deserialize(r.Comparison, RolloutJson.Default.ShadowComparison),
        r.LatencyMs, r.PrimaryLatencyMs, Usd(r.CostMicros), r.PrimaryCostMicros is { } p ? Usd(p) : null,
        r.Attempts, r.Owner, r.CreatedAt, r.CompletedAt);

    static decimal Usd(long micros) => micros / 1_000_000m;

    static long? P95(IEnumerable<long?> values)
    {
        var sorted = values.OfType<long>().Order().ToList();
        return sorted.Count == 0 ? null : sorted[Math.Clamp((int)Math.Ceiling(0.95 * sorted.Count) - 1, 0, sorted.Count - 1)];
    }
}
