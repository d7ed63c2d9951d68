using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Orchestrator.Storage;

namespace Orchestrator.Effects.Database;

internal static class DatabaseSetup
{
    public static WebApplicationBuilder AddDatabaseEffects(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<DatabaseOptions>().BindConfiguration(DatabaseOptions.Section).ValidateOnStart()
            .Validate(o => o.MaxRows is >= 1 and <= 100_000, $"{DatabaseOptions.Section}:MaxRows must be from 1 to 100000.")
            .Validate(o => o.MaxResultBytes is >= 1024 and <= 64 * 1024 * 1024, $"{DatabaseOptions.Section}:MaxResultBytes must be from 1024 to 67108864.")
            .Validate(o => o.MaxSqlLength is >= 16 and <= 1024 * 1024, $"{DatabaseOptions.Section}:MaxSqlLength must be from 16 to 1048576.")
            .Validate(o => o.StatementTimeout >= TimeSpan.FromMilliseconds(10) && o.StatementTimeout <= TimeSpan.FromMinutes(10),
                $"{DatabaseOptions.Section}:StatementTimeout must be from 00:00:00.010 to 00:10:00.")
            .Validate(o => o.MaxConnectionsPerTenant is >= 1 and <= 100, $"{DatabaseOptions.Section}:MaxConnectionsPerTenant must be from 1 to 100.")
            .Validate(o => o.DdlTenants.All(t => t == "*" || Tenancy.Identifiers.IsValid(t)), $"{DatabaseOptions.Section}:DdlTenants:N must be tenants or *.");
        services.AddSingleton<SqliteTenantDatabase>();
        services.AddSingleton<PostgresTenantDatabase>();
        services.AddSingleton<TenantDatabase>(sp => sp.GetRequiredService<IOptions<StoreOptions>>().Value.Provider == "Postgres"
            ? sp.GetRequiredService<PostgresTenantDatabase>()
            : sp.GetRequiredService<SqliteTenantDatabase>());
        services.AddSingleton<DatabaseEffects>();
        services.AddSingleton<IEffect, DbQuery>();
        services.AddSingleton<IEffect, DbWrite>();
        services.AddHostedService<DatabaseProbe>();
        services.AddHealthChecks().AddCheck<DatabaseHealth>("database", tags: ["ready"]);
        return builder;
    }
}

/// <summary>
/// <c>/health/ready</c>'s <c>database</c> entry: degraded (still ready: every other effect works) with <c>unavailable</c> and
/// the reason when db/query and db/write cannot run here (on PostgreSQL, a store user without CREATEROLE).
/// </summary>
internal sealed class DatabaseHealth(TenantDatabase database) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var (available, description) = await database.StateAsync(cancellationToken);
        return available ? HealthCheckResult.Healthy(description) : HealthCheckResult.Degraded(description);
    }
}

/// <summary>Says at start-up, in the log, when db/* will be refused, rather than at the first agent that tries.</summary>
internal sealed class DatabaseProbe(TenantDatabase database, ILogger<DatabaseProbe> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var (available, description) = await database.StateAsync(stoppingToken);
        if (!available)
            log.LogWarning("db/query and db/write: {Database}", description);
    }
}
