using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using SQLitePCL;

namespace Orchestrator.Effects.Database;

/// <summary>
/// SQLite: each tenant's database is its own file, <c>{workspace}/.db/tenant.db</c>, opened fresh for each call (no pool),
/// so nothing a statement did to a connection outlives it. The engine confines each statement, whatever its text: an
/// authorizer (<c>sqlite3_set_authorizer</c>) refuses ATTACH/DETACH, PRAGMA, extensions, the journal table, the catalog,
/// DDL unless allowed, and every write in <c>db/query</c> (which also runs under <c>PRAGMA query_only</c>); no database can be
/// attached (<c>SQLITE_LIMIT_ATTACHED</c> 0); <c>trusted_schema</c> is off; the statement is prepared alone and a tail
/// after it is refused; a progress handler stops it at the time limit.
/// </summary>
internal sealed class SqliteTenantDatabase(FileEffects files, IOptions<DatabaseOptions> options, TimeProvider time)
    : TenantDatabase(options.Value)
{
    const int LimitAttached = 7; // SQLITE_LIMIT_ATTACHED

    /// <summary>One writer per tenant database at a time on this node (SQLite serializes writers anyway; this saves busy waits).</summary>
    readonly ConcurrentDictionary<string, SemaphoreSlim> _writers = new(StringComparer.Ordinal);

    public override bool IsPostgres => false;

    public override Task<(bool Available, string Description)> StateAsync(CancellationToken cancellationToken) =>
        Task.FromResult((true, "A SQLite file per tenant in its workspace (.db/tenant.db), confined by the engine's authorizer."));

    public string FileOf(EffectCall call) => Path.Combine(files.WorkspaceOf(call).Root, Workspace.DatabaseFolder, "tenant.db");

    public override async Task<EffectResult> QueryAsync(EffectCall call, string sql, JsonElement parameters, CancellationToken cancellationToken)
    {
        using var connection = Open(call, out var gate);
        Own(connection, "PRAGMA query_only = ON");
        return await RunAsync(connection, gate, sql, parameters, new Mode(ReadOnly: true, Ddl: false), null, cancellationToken);
    }

    public override async Task<EffectResult> WriteAsync(EffectCall call, string sql, JsonElement parameters, SqlKind kind, CancellationToken cancellationToken)
    {
        var writer = _writers.GetOrAdd(call.Tenant, _ => new SemaphoreSlim(1, 1));
        await writer.WaitAsync(cancellationToken);
        try
        {
            using var connection = Open(call, out var gate);
            using var transaction = connection.BeginTransaction(deferred: false);
            if (Recorded(connection, transaction, call.IdempotencyKey) is { } recorded)
                return new EffectResult(true, recorded);
            var result = await RunAsync(connection, gate, sql, parameters, new Mode(ReadOnly: false, Ddl: Options.AllowsDdl(call.Tenant)), transaction, cancellationToken);
            if (!result.Ok)
                return result; // Rolled back with the transaction's dispose: nothing happened, nothing is recorded.
            using (var journal = connection.CreateCommand())
            {
                journal.Transaction = transaction;
                journal.CommandText = $"INSERT INTO {JournalTable} (key, result, at) VALUES ($key, $result, $at)";
                journal.Parameters.AddWithValue("$key", call.IdempotencyKey);
                journal.Parameters.AddWithValue("$result", result.Content);
                journal.Parameters.AddWithValue("$at", time.GetUtcNow().ToString("O", System.Globalization.CultureInfo.InvariantCulture));
                journal.ExecuteNonQuery();
            }
            // The write and its journal row commit together: after a crash both are there or neither is.
            transaction.Commit();
            return result;
        }
        finally
        {
            writer.Release();
        }
    }

    public override Task<string?> RecordedAsync(EffectCall call, CancellationToken cancellationToken)
    {
        if (!File.Exists(FileOf(call)))
            return Task.FromResult<string?>(null);
        using var connection = Open(call, out _);
        return Task.FromResult(Recorded(connection, null, call.IdempotencyKey));
    }

    static string? Recorded(SqliteConnection connection, SqliteTransaction? transaction, string key)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = $"SELECT result FROM {JournalTable} WHERE key = $key";
        command.Parameters.AddWithValue("$key", key);
        return command.ExecuteScalar() as string;
    }

    /// <summary>Runs the tenant's statement with the authorizer on; an engine refusal names the rule that fired.</summary>
    async Task<EffectResult> RunAsync(SqliteConnection connection, Gate gate, string sql, JsonElement parameters, Mode mode, SqliteTransaction? transaction, CancellationToken cancellationToken)
    {
        gate.Mode = mode;
        gate.SawDdl = false;
        gate.Deadline = time.GetTimestamp() + (long)(Options.StatementTimeout.TotalSeconds * time.TimestampFrequency);
        gate.Canceled = cancellationToken;
        try
        {
            CheckPrepared(connection, gate, sql, mode);
            using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = sql;
            foreach (var (name, value) in Parameters(parameters))
            {
                if (char.IsAsciiDigit(name[0]))
                {
                    command.Parameters.AddWithValue("?" + name, value);
                    command.Parameters.AddWithValue("$" + name, value);
                }
                else
                    command.Parameters.AddWithValue(name, value);
            }
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            return Answer(await ReadAsync(reader, write: !mode.ReadOnly, cancellationToken));
        }
        catch (SqliteException) when (gate.Rule is { } rule)
        {
            throw Denied(gate.Why ?? rule, rule);
        }
        catch (SqliteException error) when (error.SqliteErrorCode == raw.SQLITE_INTERRUPT && !cancellationToken.IsCancellationRequested)
        {
            return EffectResult.Failure(TimeoutMessage);
        }
        catch (SqliteException error) when (error.SqliteErrorCode == raw.SQLITE_READONLY && mode.ReadOnly)
        {
            throw Denied("db/query only reads; use db/write to change data", "db.read-only");
        }
        catch (SqliteException error)
        {
            return EffectResult.Failure(error.Message);
        }
        catch (InvalidOperationException error) when (error.Message.Contains("parameter", StringComparison.OrdinalIgnoreCase))
        {
            // Microsoft.Data.Sqlite binds by name only: a plain '?' has none, and the message then names nothing.
            return EffectResult.Failure(error.Message.TrimEnd().EndsWith(':') || error.Message.Contains(", ,", StringComparison.Ordinal)
                ? "Plain '?' parameters are not supported: number them ($1, $2, ... or ?1, ?2, ...), bound in order from the 'params' array, or name them (@name) with an object."
                : error.Message);
        }
        finally
        {
            gate.Mode = null;
        }
    }

    /// <summary>Prepares the statement alone: whatever follows it is refused, and db/query's must be read-only to the engine.</summary>
    static void CheckPrepared(SqliteConnection connection, Gate gate, string sql, Mode mode)
    {
        var rc = raw.sqlite3_prepare_v2(connection.Handle, sql, out var statement, out var tail);
        using (statement)
        {
            if (rc != raw.SQLITE_OK && gate.Rule is { } rule) // SQLITE_AUTH, or SQLITE_ERROR for a denied function
                throw Denied(gate.Why ?? rule, rule);
            if (rc != raw.SQLITE_OK)
                return; // The run reports the error itself.
            if (mode.ReadOnly && raw.sqlite3_stmt_readonly(statement) == 0)
                throw Denied("db/query only reads; use db/write to change data", "db.read-only");
        }
        if (!string.IsNullOrWhiteSpace(tail))
        {
            var next = raw.sqlite3_prepare_v2(connection.Handle, tail, out var second, out _);
            using (second)
                if (next != raw.SQLITE_OK || second is { IsInvalid: false })
                    throw Denied("one call runs exactly one statement; this text holds several", "db.multiple-statements");
        }
    }

    SqliteConnection Open(EffectCall call, out Gate gate)
    {
        var file = FileOf(call);
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = file,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
            DefaultTimeout = 30,
        }.ToString());
        connection.Open();
        try
        {
            var handle = connection.Handle!;
            raw.sqlite3_limit(handle, LimitAttached, 0);
            Own(connection, "PRAGMA trusted_schema = OFF");
            Own(connection, "PRAGMA journal_mode = WAL");
            Own(connection, "PRAGMA busy_timeout = 30000");
            Own(connection, $"CREATE TABLE IF NOT EXISTS {JournalTable} (key TEXT PRIMARY KEY, result TEXT NOT NULL, at TEXT NOT NULL)");
            var opened = new Gate();
            raw.sqlite3_set_authorizer(handle, Authorize, opened);
            raw.sqlite3_progress_handler(handle, 1000, Progress, opened);
            gate = opened;
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    static void Own(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    int Progress(object state)
    {
        var gate = (Gate)state;
        return gate.Mode is not null && (gate.Canceled.IsCancellationRequested || time.GetTimestamp() > gate.Deadline) ? 1 : 0;
    }

    const int Ok = 0, Deny = 1;

    /// <summary>The authorizer: Orchestrator's own statements (no mode set) pass; a tenant's statement is held to its mode.</summary>
    static int Authorize(object state, int action, string? first, string? second, string? database, string? trigger)
    {
        var gate = (Gate)state;
        if (gate.Mode is not { } mode)
            return Ok;
        string? rule = null, why = null;
        var reserved = (first ?? "").StartsWith(SqlRules.ReservedPrefix, StringComparison.OrdinalIgnoreCase) ||
                       (second ?? "").StartsWith(SqlRules.ReservedPrefix, StringComparison.OrdinalIgnoreCase);
        switch (action)
        {
            case 24 or 25: // ATTACH, DETACH
                (rule, why) = ("db.attach", "attaching another database file is not allowed");
                break;
            case 19: // PRAGMA
                (rule, why) = ("db.pragma", "PRAGMA changes the engine's settings");
                break;
            case 29 or 30: // CREATE/DROP VIRTUAL TABLE
                (rule, why) = ("db.extension", "virtual tables run module code");
                break;
            case 31 when string.Equals(second, "load_extension", StringComparison.OrdinalIgnoreCase): // FUNCTION
                (rule, why) = ("db.extension", "loading extensions is not allowed");
                break;
            case 22 or 32: // TRANSACTION, SAVEPOINT
                (rule, why) = ("db.transaction", "each call runs in a transaction of its own");
                break;
            // A DDL statement reads and writes the schema table itself (after its own DDL code was allowed): that is the engine's doing.
            case 9 or 18 or 20 or 23 when IsCatalog(first) && gate.SawDdl:
                break;
            case 20 when IsCatalog(first) && trigger is null: // READ of the schema table
                (rule, why) = ("db.catalog", $"'{first}' is the engine's catalog");
                break;
            case 9 or 18 or 20 or 23 or 26 or 1 or 3 or 7 or 5 or 10 or 11 or 12 or 13 or 16 or 14 when reserved:
                (rule, why) = ("db.reserved", $"'{(reserved && (first ?? "").StartsWith(SqlRules.ReservedPrefix, StringComparison.OrdinalIgnoreCase) ? first : second)}' is Orchestrator's own");
                break;
            case >= 1 and <= 8 or >= 10 and <= 17 or 26 or 27 or 28 when mode.ReadOnly:
                (rule, why) = ("db.read-only", "db/query only reads; use db/write to change data");
                break;
            case >= 1 and <= 8 or >= 10 and <= 17 or 26 when !mode.Ddl:
                (rule, why) = ("db.ddl", "changing the schema is not allowed for this tenant (Orchestrator:Effects:Database:DdlTenants)");
                break;
            case 27 or 28: // REINDEX, ANALYZE
                (rule, why) = ("db.vacuum", "maintenance statements are not allowed");
                break;
            case 9 or 18 or 23 when mode.ReadOnly:
                (rule, why) = ("db.read-only", "db/query only reads; use db/write to change data");
                break;
            case 9 or 18 or 23 when IsCatalog(first) && !mode.Ddl: // a DDL statement writes the schema table before its own code is checked
                (rule, why) = ("db.ddl", "changing the schema is not allowed for this tenant (Orchestrator:Effects:Database:DdlTenants)");
                break;
        }
        if (rule is null)
        {
            if (action is >= 1 and <= 8 or >= 10 and <= 17 or 26)
                gate.SawDdl = true;
            return Ok;
        }
        gate.Rule ??= rule;
        gate.Why ??= why;
        return Deny;
    }

    static bool IsCatalog(string? table) =>
        table is not null && (table.Equals("sqlite_master", StringComparison.OrdinalIgnoreCase) || table.Equals("sqlite_schema", StringComparison.OrdinalIgnoreCase) ||
                              table.Equals("sqlite_temp_master", StringComparison.OrdinalIgnoreCase) || table.Equals("sqlite_temp_schema", StringComparison.OrdinalIgnoreCase));

    sealed record Mode(bool ReadOnly, bool Ddl);

    /// <summary>What the authorizer and progress handler of one connection know: whose statement runs, and until when.</summary>
    sealed class Gate
    {
        public Mode? Mode { get; set; }
        public long Deadline { get; set; }
        public CancellationToken Canceled { get; set; }
        public string? Rule { get; set; }
        public string? Why { get; set; }
        public bool SawDdl { get; set; }
    }
}
