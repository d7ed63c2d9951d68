using System.Data.Common;
using System.Runtime.CompilerServices;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.Options;

namespace Orchestrator.Storage;

internal static class StoreSetup
{
    public const string ConnectionName = "Orchestrator";
    public const string DefaultConnection = "Data Source=orchestrator.db";

    public static WebApplicationBuilder AddStore(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<StoreOptions>().BindConfiguration(StoreOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<SqlitePragmas>();
        services.AddPooledDbContextFactory<OrchestratorDb>((sp, db) =>
        {
            var options = sp.GetRequiredService<IOptions<StoreOptions>>().Value;
            var connection = sp.GetRequiredService<IConfiguration>().GetConnectionString(ConnectionName) ?? DefaultConnection;
            if (options.Provider == "Postgres")
                throw new OptionsValidationException(StoreOptions.Section, typeof(StoreOptions),
                    ["Orchestrator:Store:Provider 'Postgres' is not available in this build; use 'Sqlite'."]);
            db.UseSqlite(connection).AddInterceptors(sp.GetRequiredService<SqlitePragmas>());
        });
        services.AddScoped(sp => sp.GetRequiredService<IDbContextFactory<OrchestratorDb>>().CreateDbContext());

        // Registered first: starts before the workers and stops after them, so their last writes land.
        services.AddSingleton<StoreWriter>();
        services.AddHostedService(sp => sp.GetRequiredService<StoreWriter>());
        return builder;
    }

    /// <summary>Brings the store's schema up to date (EF migrations) and puts SQLite in WAL mode.</summary>
    public static async Task PrepareStoreAsync(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<IOptions<StoreOptions>>().Value;
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<OrchestratorDb>>().CreateDbContextAsync();
        if (db.Database.GetDbConnection() is SqliteConnection sqlite && sqlite.DataSource is { Length: > 0 } file &&
            Path.GetDirectoryName(Path.GetFullPath(file)) is { } folder)
            Directory.CreateDirectory(folder);
        if (options.MigrateOnStart)
            await db.Database.MigrateAsync();
        else if ((await db.Database.GetPendingMigrationsAsync()).Any())
            throw new InvalidOperationException(
                "The store's schema is behind this version: apply the migrations (dotnet ef database update) " +
                "or set Orchestrator:Store:MigrateOnStart=true.");
        if (db.Database.IsSqlite())
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;");
    }
}

/// <summary>
/// Per-connection SQLite settings, applied once per physical connection (pooled connections keep them):
/// <c>synchronous</c> (NORMAL is durable across a process crash in WAL mode) and the WAL auto-checkpoint
/// threshold. Checkpoints run inline in the writer's commit on purpose: measured against a background
/// checkpointer (doc/benchmarks.md), inline ones gave an equal or better p99, and only they keep the WAL
/// bounded under constant writes (a checkpoint that runs beside the writer never catches up, so the WAL
/// never restarts and grows without end).
/// </summary>
internal sealed class SqlitePragmas(IOptions<StoreOptions> options) : DbConnectionInterceptor
{
    readonly ConditionalWeakTable<object, object> _configured = new();
    readonly string _sql = $"PRAGMA synchronous={options.Value.Synchronous.ToUpperInvariant()}; PRAGMA wal_autocheckpoint={options.Value.WalAutoCheckpointPages}; PRAGMA busy_timeout=10000;";

    public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData) => Configure(connection);

    public override Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        Configure(connection);
        return Task.CompletedTask;
    }

    void Configure(DbConnection connection)
    {
        if (connection is not SqliteConnection { Handle: { } handle } sqlite || _configured.TryGetValue(handle, out _))
            return;
        using var command = sqlite.CreateCommand();
        command.CommandText = _sql;
        command.ExecuteNonQuery();
        _configured.AddOrUpdate(handle, handle);
    }
}
