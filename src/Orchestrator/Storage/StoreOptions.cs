using System.ComponentModel.DataAnnotations;

namespace Orchestrator.Storage;

/// <summary>Section <c>Orchestrator:Store</c>.</summary>
public sealed class StoreOptions
{
    public const string Section = "Orchestrator:Store";

    /// <summary><c>Sqlite</c> (default, one node) or <c>Postgres</c>.</summary>
    [RegularExpression("^(Sqlite|Postgres)$", ErrorMessage = "Orchestrator:Store:Provider must be 'Sqlite' or 'Postgres'.")]
    public string Provider { get; set; } = "Sqlite";

    /// <summary>Apply EF migrations when the service starts.</summary>
    public bool MigrateOnStart { get; set; } = true;

    /// <summary>SQLite <c>synchronous</c> pragma in WAL mode: <c>Normal</c> survives a process crash
    /// (kill -9) but may lose the last commits on power loss; <c>Full</c> survives both, slower.</summary>
    [RegularExpression("^(Normal|Full)$", ErrorMessage = "Orchestrator:Store:Synchronous must be 'Normal' or 'Full'.")]
    public string Synchronous { get; set; } = "Normal";

    /// <summary>Most writes the group-commit writer puts into one transaction.</summary>
    [Range(1, 10_000)]
    public int MaxWriteBatch { get; set; } = 512;

    /// <summary>SQLite <c>wal_autocheckpoint</c>: WAL pages (4 KiB each) after which the writer's commit checkpoints.
    /// Smaller means shorter but more frequent stalls of the writer (each checkpoint ends in an fsync).</summary>
    [Range(0, 1_000_000)]
    public int WalAutoCheckpointPages { get; set; } = 250;
}
