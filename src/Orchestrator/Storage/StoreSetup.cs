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

    /// <summary>The advisory lock nodes take while they migrate a PostgreSQL store (any constant nothing else uses).</summary>
    const long MigrationLock = 0x4f52_4348_4d49_4752;

    public static WebApplicationBuilder AddStore(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<StoreOptions>().BindConfiguration(StoreOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<NodeOptions>().BindConfiguration(NodeOptions.Section).ValidateDataAnnotations().ValidateOnStart()
            .Validate(o => o.LeaseDuration >= TimeSpan.FromSeconds(1), "Orchestrator:Node:LeaseDuration must be at least 00:00:01.")
            .Validate(o => o.PollInterval > TimeSpan.Zero && o.PollInterval < o.LeaseDuration,
                "Orchestrator:Node:PollInterval must be positive and shorter than Orchestrator:Node:LeaseDuration.");
        services.AddSingleton<ThisNode>();
        services.AddSingleton<SqlitePragmas>();
        services.AddSingleton<SqliteNodeLock>();

        // One context type per provider (each with its own migrations); features ask for the base type.
        var provider = builder.Configuration[$"{StoreOptions.Section}:{nameof(StoreOptions.Provider)}"] ?? "Sqlite";
        var connection = builder.Configuration.GetConnectionString(ConnectionName) ?? DefaultConnection;
        if (provider == "Postgres")
        {
            services.AddPooledDbContextFactory<PostgresStore>(db => db.UseNpgsql(connection));
            services.AddSingleton<IDbContextFactory<OrchestratorDb>>(sp => new StoreFactory<PostgresStore>(sp.GetRequiredService<IDbContextFactory<PostgresStore>>()));
        }
        else
        {
            services.AddPooledDbContextFactory<SqliteStore>((sp, db) => db.UseSqlite(connection).AddInterceptors(sp.GetRequiredService<SqlitePragmas>()));
            services.AddSingleton<IDbContextFactory<OrchestratorDb>>(sp => new StoreFactory<SqliteStore>(sp.GetRequiredService<IDbContextFactory<SqliteStore>>()));
        }
        services.AddScoped(sp => sp.GetRequiredService<IDbContextFactory<OrchestratorDb>>().CreateDbContext());

        // Registered first: starts before the workers and stops after them, so their last writes land.
        services.AddSingleton<StoreWriter>();
        services.AddHostedService(sp => sp.GetRequiredService<StoreWriter>());
        return builder;
    }

    /// <summary>
    /// Brings the store's schema up to date (EF migrations of its provider) and, on SQLite, takes the file for this node
    /// alone and puts it in WAL mode.
    /// </summary>
    /// <returns>False when the store belongs to another node (SQLite): the reason is logged and the service must not start.</returns>
    public static async Task<bool> PrepareStoreAsync(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<IOptions<StoreOptions>>().Value;
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<OrchestratorDb>>().CreateDbContextAsync();
        if (db.Database.GetDbConnection() is SqliteConnection sqlite && sqlite.DataSource is { Length: > 0 } file)
        {
            if (Path.GetDirectoryName(Path.GetFullPath(file)) is { } folder)
                Directory.CreateDirectory(folder);
            try
            {
                app.Services.GetRequiredService<SqliteNodeLock>().Take(file);
            }
            catch (StoreTakenException taken)
            {
                // Straight to stderr too: the service exits now, before the asynchronous log sink would flush.
                app.Logger.LogCritical("{Reason}", taken.Message);
                await System.Console.Error.WriteLineAsync(taken.Message);
                return false;
            }
        }
        if (options.MigrateOnStart)
        {
            if (db.Database.IsNpgsql())
            {
                // Nodes starting together on an empty database would race to create EF's history table (EF's own
                // migration lock is taken only after it): one session-level advisory lock makes them migrate in turn.
                await db.Database.OpenConnectionAsync();
                await db.Database.ExecuteSqlRawAsync($"SELECT pg_advisory_lock({MigrationLock})");
                try
                {
                    await db.Database.MigrateAsync();
                }
                finally
                {
                    await db.Database.ExecuteSqlRawAsync($"SELECT pg_advisory_unlock({MigrationLock})");
                    await db.Database.CloseConnectionAsync();
                }
            }
            else
                await db.Database.MigrateAsync();
        }
        else if ((await db.Database.GetPendingMigrationsAsync()).Any())
            throw new InvalidOperationException(
                "The store's schema is behind this version: apply the migrations (dotnet ef database update) " +
                "or set Orchestrator:Store:MigrateOnStart=true.");
        if (db.Database.IsSqlite())
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;");
        return true;
    }
}

/// <summary>Hands out the provider's context as the <see cref="OrchestratorDb"/> every feature asks for (pooled).</summary>
internal sealed class StoreFactory<T>(IDbContextFactory<T> inner) : IDbContextFactory<OrchestratorDb> where T : OrchestratorDb
{
    public OrchestratorDb CreateDbContext() => inner.CreateDbContext();

    public async Task<OrchestratorDb> CreateDbContextAsync(CancellationToken cancellationToken = default) =>
        await inner.CreateDbContextAsync(cancellationToken);
}

/// <summary>The SQLite store is held by another running node.</summary>
internal sealed class StoreTakenException(string message, Exception inner) : Exception(message, inner);

/// <summary>
/// SQLite is one node only: the first process takes an exclusive lock on a file beside the database and holds it
/// while it runs; a second process on the same file refuses to start. The operating system drops the lock when the
/// holder dies, so a crash never leaves the store locked.
/// </summary>
internal sealed class SqliteNodeLock : IDisposable
{
    FileStream? _lock;

    public void Take(string databaseFile)
    {
        if (_lock is not null || databaseFile == ":memory:")
            return;
        var path = Path.GetFullPath(databaseFile) + ".node-lock";
        try
        {
            _lock = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException error)
        {
            throw new StoreTakenException(
                $"Another Orchestrator node is running on the SQLite store {Path.GetFullPath(databaseFile)} (lock {path} is held). " +
                "SQLite is one node only: to run several nodes, share one PostgreSQL store " +
                "(Orchestrator:Store:Provider=Postgres with an Npgsql connection string in ConnectionStrings:Orchestrator).", error);
        }
    }

    public void Dispose() => _lock?.Dispose();
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
