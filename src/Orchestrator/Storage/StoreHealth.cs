using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Orchestrator.Storage;

/// <summary>Ready only while the store answers a query.</summary>
internal sealed class StoreHealth(IDbContextFactory<OrchestratorDb> dbs) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await using var db = await dbs.CreateDbContextAsync(cancellationToken);
            return await db.Database.CanConnectAsync(cancellationToken)
                ? HealthCheckResult.Healthy("The store answers.")
                : HealthCheckResult.Unhealthy("The store cannot be reached.");
        }
        catch (Exception error)
        {
            return HealthCheckResult.Unhealthy("The store failed: " + error.Message);
        }
    }
}
