using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace Orchestrator.Storage;

internal static class StoreErrors
{
    const int SqliteUnique = 2067;
    const int SqlitePrimaryKey = 1555;
    const int SqliteForeignKey = 787;
    const string PostgresUniqueViolation = "23505";
    const string PostgresForeignKeyViolation = "23503";

    /// <summary>A deadlock or serialization failure: the transaction was rolled back whole and may simply run again.</summary>
    public static bool IsTransientConflict(DbException error) => error.SqlState is "40P01" or "40001";

    /// <summary>
    /// True when an insert failed on a key: a unique key already taken (an idempotency race), or a parent row
    /// missing (a node of a job whose row never landed). An expected race, not a broken store.
    /// </summary>
    public static bool IsKeyConflict(DbException error) => error switch
    {
        SqliteException sqlite => sqlite.SqliteExtendedErrorCode is SqliteUnique or SqlitePrimaryKey or SqliteForeignKey,
        _ => error.SqlState is PostgresUniqueViolation or PostgresForeignKeyViolation,
    };
}
