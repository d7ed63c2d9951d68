using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;

namespace Orchestrator.Storage;

internal static class StoreErrors
{
    const int SqliteConstraint = 19;
    const string PostgresUniqueViolation = "23505";

    /// <summary>
    /// True when a write failed because the row was not in the state it expected (a concurrency token
    /// mismatch) or a unique key was already taken: an expected race, not a broken store.
    /// </summary>
    public static bool IsLostGuard(DbUpdateException error) =>
        error is DbUpdateConcurrencyException || IsUniqueViolation(error);

    public static bool IsUniqueViolation(Exception error) => error.InnerException switch
    {
        SqliteException sqlite => sqlite.SqliteErrorCode == SqliteConstraint,
        DbException db => db.SqlState == PostgresUniqueViolation,
        _ => false,
    };
}
