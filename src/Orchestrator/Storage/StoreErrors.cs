using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace Orchestrator.Storage;

internal static class StoreErrors
{
    const int SqliteUnique = 2067;
    const int SqlitePrimaryKey = 1555;
    const string PostgresUniqueViolation = "23505";

    /// <summary>True when a statement failed because a unique key was already taken: an expected race, not a broken store.</summary>
    public static bool IsUniqueViolation(DbException error) => error switch
    {
        SqliteException sqlite => sqlite.SqliteExtendedErrorCode is SqliteUnique or SqlitePrimaryKey,
        _ => error.SqlState == PostgresUniqueViolation,
    };
}
