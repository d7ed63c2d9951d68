using Microsoft.EntityFrameworkCore;
using Orchestrator.Storage;
using Orchestrator.Tenancy;

namespace Orchestrator.Jobs;

/// <summary>
/// The job reads that repeat across endpoints, tenant-scoped: another tenant's job is simply not found.
/// A singleton over the pooled context factory, so the act hot path resolves no scope for them.
/// </summary>
internal sealed class JobQueries(IDbContextFactory<OrchestratorDb> dbs)
{
    static readonly Func<OrchestratorDb, string, CancellationToken, Task<Job?>> ById =
        EF.CompileAsyncQuery((OrchestratorDb db, string id, CancellationToken _) =>
            db.Set<Job>().AsNoTracking().FirstOrDefault(j => j.Id == id));

    static readonly Func<OrchestratorDb, string, string, CancellationToken, Task<Job?>> ByIdempotencyKey =
        EF.CompileAsyncQuery((OrchestratorDb db, string tenant, string key, CancellationToken _) =>
            db.Set<Job>().AsNoTracking().FirstOrDefault(j => j.Tenant == tenant && j.IdempotencyKey == key));

    public async Task<Job?> FindAsync(Caller caller, string id, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await ById(db, id, cancellationToken) is { } job && caller.CanSee(job.Tenant) ? job : null;
    }

    /// <summary>The job, whoever's it is: for the service's own waits, never for an answer to a caller.</summary>
    public async Task<Job?> FindByIdAsync(string id, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await ById(db, id, cancellationToken);
    }

    public async Task<Job?> FindByIdempotencyKeyAsync(string tenant, string key, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await ByIdempotencyKey(db, tenant, key, cancellationToken);
    }
}
