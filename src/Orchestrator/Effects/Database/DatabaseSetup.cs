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
        return builder;
    }
}
