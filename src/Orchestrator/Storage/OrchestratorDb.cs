using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace Orchestrator.Storage;

/// <summary>The one store: jobs, their execution graphs and replay packages. Entities are configured beside their features.</summary>
public abstract class OrchestratorDb(DbContextOptions options) : DbContext(options), IDataProtectionKeyContext
{
    /// <summary>The console's data protection key ring, shared by every node of the store (Console/ConsoleKeys.cs).</summary>
    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.ApplyConfigurationsFromAssembly(typeof(OrchestratorDb).Assembly);
        modelBuilder.Entity<DataProtectionKey>().ToTable("DataProtectionKeys");
        if (Database.IsNpgsql())
        {
            // Ids are compared and paged by their bytes (a keyset on the job id is "newest first"); PostgreSQL would
            // otherwise compare them by the database's locale.
            foreach (var property in modelBuilder.Model.GetEntityTypes().SelectMany(e => e.GetProperties()).Where(p => p.ClrType == typeof(string)))
                property.SetCollation("C");
        }
    }

    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        // Every time in the store is UTC; SQLite keeps no kind, so it is restored on read.
        configurationBuilder.Properties<DateTime>().HaveConversion<UtcConverter>();
        configurationBuilder.Properties<DateTime?>().HaveConversion<UtcConverter>();
    }

    sealed class UtcConverter() : ValueConverter<DateTime, DateTime>(
        v => v.Kind == DateTimeKind.Utc ? v : v.ToUniversalTime(),
        v => DateTime.SpecifyKind(v, DateTimeKind.Utc));
}

/// <summary>
/// The store on SQLite. One context type per provider, so each keeps its own migrations (EF's way to target two
/// providers): <c>Storage/Migrations/Sqlite</c>.
/// </summary>
public sealed class SqliteStore(DbContextOptions<SqliteStore> options) : OrchestratorDb(options);

/// <summary>The store on PostgreSQL, with its migrations in <c>Storage/Migrations/Postgres</c>.</summary>
public sealed class PostgresStore(DbContextOptions<PostgresStore> options) : OrchestratorDb(options);

/// <summary>For <c>dotnet ef migrations add X --context SqliteStore --output-dir Storage/Migrations/Sqlite</c>.</summary>
internal sealed class SqliteStoreDesign : IDesignTimeDbContextFactory<SqliteStore>
{
    public SqliteStore CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<SqliteStore>().UseSqlite(StoreSetup.DefaultConnection).Options);
}

/// <summary>For <c>dotnet ef migrations add X --context PostgresStore --output-dir Storage/Migrations/Postgres</c>; no server is needed.</summary>
internal sealed class PostgresStoreDesign : IDesignTimeDbContextFactory<PostgresStore>
{
    public PostgresStore CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<PostgresStore>().UseNpgsql("Host=localhost;Database=orchestrator").Options);
}
