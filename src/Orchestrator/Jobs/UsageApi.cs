using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Orchestrator.Hosting;
using Orchestrator.Storage;
using Orchestrator.Tenancy;

namespace Orchestrator.Jobs;

/// <summary>
/// <c>GET /v1/tenants/{tenant}/usage</c>: what a tenant's requests did in a window, from the job rows (requests, outcomes,
/// tokens, cost, latency) and the tenant's counters (refusals by code, cost still held by running jobs). Here, beside the
/// jobs it reads, because Tenancy sits below Jobs.
/// </summary>
public static class UsageApi
{
    /// <summary>Latency percentiles are taken over at most this many of the window's newest finished jobs.</summary>
    const int LatencySample = 100_000;

    public static RouteGroupBuilder MapUsage(this IEndpointRouteBuilder app)
    {
        var usage = app.MapGroup("/v1/tenants").WithTags("Tenancy");
        usage.MapGet("/{tenant}/usage", Get)
            .WithSummary("A tenant's requests, outcomes, refusals by code, tokens, cost, held cost and latency in a window (default: today, UTC), by principal.")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status404NotFound);
        return usage;
    }

    internal static async Task<Results<Ok<TenantUsage>, ProblemHttpResult>> Get(
        string tenant, DateTime? from, DateTime? to, string? principal, Caller caller, OrchestratorDb db, TimeProvider time,
        CancellationToken cancellationToken)
    {
        if (!Identifiers.IsValid(tenant))
            return Problems.Validation(new Dictionary<string, string[]> { ["tenant"] = [Identifiers.TenantRule] });
        if (!caller.CanSee(tenant))
            return Problems.For(Problems.NotFound, $"No tenant {tenant} here.");
        if (principal is not null && !Identifiers.IsPrincipal(principal))
            return Problems.Validation(new Dictionary<string, string[]> { ["principal"] = [Identifiers.PrincipalRule] });
        var now = time.GetUtcNow().UtcDateTime;
        var since = from?.ToUniversalTime() ?? now.Date;
        var until = to?.ToUniversalTime() ?? now;
        if (since > until)
            return Problems.Validation(new Dictionary<string, string[]> { ["from"] = ["from must not be after to."] });

        var jobs = db.Set<Job>().AsNoTracking().Where(j => j.Tenant == tenant && j.CreatedAt >= since && j.CreatedAt < until);
        if (principal is not null)
            jobs = jobs.Where(j => j.Principal == principal);
        var groups = await jobs
            .GroupBy(j => new { j.Principal, j.Status })
            .Select(g => new UsageGroup(g.Key.Principal, g.Key.Status, g.Count(),
                g.Sum(j => j.InputTokens ?? 0), g.Sum(j => j.OutputTokens ?? 0), g.Sum(j => j.CostMicros ?? 0)))
            .ToListAsync(cancellationToken);
        var latencies = await jobs.Where(j => j.Status == JobStatus.Completed)
            .OrderByDescending(j => j.Id).Take(LatencySample)
            .Select(j => (j.QueueMs ?? 0) + (j.RunMs ?? 0)).ToListAsync(cancellationToken);

        // Counters are kept per UTC day: the window reads every day it touches.
        var firstDay = Ledger.Day(since);
        var lastDay = Ledger.Day(until);
        var counters = db.Set<UsageCounter>().AsNoTracking()
            .Where(c => c.Tenant == tenant && string.Compare(c.Period, firstDay) >= 0 && string.Compare(c.Period, lastDay) <= 0);
        var scope = principal ?? "";
        var refusals = await counters
            .Where(c => c.Kind.StartsWith(CounterKinds.RejectedPrefix) && (principal == null ? c.Scope != "" : c.Scope == scope))
            .Select(c => new { c.Scope, c.Kind, c.Used }).ToListAsync(cancellationToken);
        var held = await counters.Where(c => c.Kind == CounterKinds.Cost && c.Scope == scope).SumAsync(c => c.Held, cancellationToken);

        var byPrincipal = groups.Select(g => g.Principal).Concat(refusals.Select(r => r.Scope)).Distinct().Order(StringComparer.Ordinal)
            .ToDictionary(p => p, p => Summary(groups.Where(g => g.Principal == p), refusals.Where(r => r.Scope == p).Select(r => (r.Kind, r.Used))));
        var total = Summary(groups, refusals.Select(r => (r.Kind, r.Used)));
        return TypedResults.Ok(new TenantUsage(tenant, principal, since, until, total.Requests, total.Completed, total.Failed, total.Canceled,
            total.Rejected, total.Tokens, total.CostUsd, held / (decimal)Ledger.MicrosPerUsd, Latency(latencies), byPrincipal));
    }

    sealed record UsageGroup(string Principal, JobStatus Status, int Count, long Input, long Output, long Micros);

    static PrincipalUsage Summary(IEnumerable<UsageGroup> groups, IEnumerable<(string Kind, long Used)> refusals)
    {
        var list = groups.ToList();
        var rejected = refusals.GroupBy(r => r.Kind[CounterKinds.RejectedPrefix.Length..])
            .ToDictionary(g => g.Key, g => g.Sum(r => r.Used));
        int Count(JobStatus status) => list.Where(g => g.Status == status).Sum(g => g.Count);
        return new PrincipalUsage(
            list.Sum(g => g.Count) + rejected.Values.Sum(),
            Count(JobStatus.Completed), Count(JobStatus.Failed), Count(JobStatus.Canceled),
            new SortedDictionary<string, long>(rejected, StringComparer.Ordinal),
            new TokenCount(list.Sum(g => g.Input), list.Sum(g => g.Output)),
            list.Sum(g => g.Micros) / (decimal)Ledger.MicrosPerUsd);
    }

    static UsageLatency Latency(List<long> values)
    {
        if (values.Count == 0)
            return new UsageLatency(null, null);
        values.Sort();
        long At(double q) => values[Math.Clamp((int)Math.Ceiling(q * values.Count) - 1, 0, values.Count - 1)];
        return new UsageLatency(At(0.50), At(0.95));
    }
}

/// <summary>The answer of <c>GET /v1/tenants/{tenant}/usage</c>; <c>requests</c> counts admitted jobs and refusals alike.</summary>
public sealed record TenantUsage(
    string Tenant, string? Principal, DateTime From, DateTime To, long Requests, int Completed, int Failed, int Canceled,
    SortedDictionary<string, long> Rejected, TokenCount Tokens, decimal CostUsd, decimal ReservedCostUsd, UsageLatency Latency,
    Dictionary<string, PrincipalUsage> ByPrincipal);

public sealed record PrincipalUsage(
    long Requests, int Completed, int Failed, int Canceled, SortedDictionary<string, long> Rejected, TokenCount Tokens, decimal CostUsd);

public sealed record TokenCount(long Input, long Output);

/// <summary>Admission to end of the window's completed jobs, in milliseconds.</summary>
public sealed record UsageLatency(long? P50Ms, long? P95Ms);
