using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;
using Orchestrator.Hosting;

namespace Orchestrator.Effects.Database;

/// <summary>
/// PostgreSQL: each tenant's database is a schema of the store's database (<c>orchestrator_t_{tenant}_{hash}</c>), reached
/// only through a login role of the tenant's own (<c>orchestrator_r_{hash}</c>, NOINHERIT, member of nothing). The role may
/// use its schema (and create in it where DDL is allowed) and nothing else: it has no privilege on the store's tables or
/// on other tenants' schemas, so whatever a statement's text, even SQL built at run time, the engine refuses what is not
/// the tenant's. Each call is one transaction (<c>READ ONLY</c> for <c>db/query</c>) with <c>SET LOCAL search_path</c> and
/// <c>statement_timeout</c>; the roles are made by the store's user, which needs <c>CREATEROLE</c>, or db/* fails closed.
/// </summary>
internal sealed class PostgresTenantDatabase : TenantDatabase, IAsyncDisposable
{
    readonly NpgsqlConnectionStringBuilder _store;
    readonly byte[] _key;
    readonly ILogger<PostgresTenantDatabase> _log;
    readonly ConcurrentDictionary<string, Lazy<Task<NpgsqlDataSource>>> _tenants = new(StringComparer.Ordinal);

    public PostgresTenantDatabase(IConfiguration configuration, IOptions<DatabaseOptions> options, ILogger<PostgresTenantDatabase> log) : base(options.Value)
    {
        _store = new NpgsqlConnectionStringBuilder(configuration.GetConnectionString(Storage.StoreSetup.ConnectionName));
        _key = Encoding.UTF8.GetBytes(options.Value.RoleSecret ?? _store.Password ?? "");
        _log = log;
    }

    public override bool IsPostgres => true;

    /// <summary>
    /// Available when the store's user may make the tenants' roles (CREATEROLE, or superuser); asked of the server each
    /// time, so a grant made while the service runs shows at the next check and the next db/* call.
    /// </summary>
    public override async Task<(bool Available, string Description)> StateAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = new NpgsqlConnection(_store.ConnectionString);
            await connection.OpenAsync(cancellationToken);
            await using var command = new NpgsqlCommand("SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user", connection);
            return await command.ExecuteScalarAsync(cancellationToken) is true
                ? (true, "A schema and a login role per tenant in the store's database.")
                : (false, $"unavailable: the store's PostgreSQL user '{_store.Username}' lacks CREATEROLE, so db/query and db/write are refused (rule db.unavailable) rather than run unconfined; grant it CREATEROLE.");
        }
        catch (Exception error) when (error is NpgsqlException or InvalidOperationException)
        {
            return (false, "unavailable: the store cannot be asked (" + error.Message + ").");
        }
    }

    string Database => _store.Database ?? _store.Username ?? "postgres";

    static string Hex(byte[] bytes, int chars) => Convert.ToHexStringLower(bytes)[..chars];

    public static string SchemaOf(string tenant)
    {
        var readable = new string(tenant.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_').Take(30).ToArray());
        return $"{SqlRules.ReservedPrefix}t_{readable}_{Hex(SHA256.HashData(Encoding.UTF8.GetBytes(tenant)), 8)}";
    }

    /// <summary>Roles are the cluster's, so the name holds the database: two stores on one cluster never share a role.</summary>
    public string RoleOf(string tenant) => RoleFor(Database, tenant);

    public static string RoleFor(string database, string tenant) => $"{SqlRules.ReservedPrefix}r_{Hex(SHA256.HashData(Encoding.UTF8.GetBytes(database + "\n" + tenant)), 32)}";

    string PasswordOf(string tenant) => Hex(HMACSHA256.HashData(_key, Encoding.UTF8.GetBytes("db-role\n" + Database + "\n" + tenant)), 64);

    static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    public override async Task<EffectResult> QueryAsync(EffectCall call, string sql, JsonElement parameters, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(call.Tenant, cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await PreludeAsync(connection, transaction, call.Tenant, readOnly: true, cancellationToken);
        return await RunAsync(connection, transaction, sql, parameters, readOnly: true, cancellationToken);
    }

    public override async Task<EffectResult> WriteAsync(EffectCall call, string sql, JsonElement parameters, SqlKind kind, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(call.Tenant, cancellationToken);
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            await PreludeAsync(connection, transaction, call.Tenant, readOnly: false, cancellationToken);
            if (await RecordedAsync(connection, transaction, call, cancellationToken) is { } recorded)
                return new EffectResult(true, recorded);
            var result = await RunAsync(connection, transaction, sql, parameters, readOnly: false, cancellationToken);
            if (!result.Ok)
                return result; // Rolled back: nothing happened, nothing is recorded.
            try
            {
                await using var journal = new NpgsqlCommand($"INSERT INTO {Quote(SchemaOf(call.Tenant))}.{JournalTable} (key, result, at) VALUES ($1, $2, now())", connection, transaction);
                journal.Parameters.Add(new NpgsqlParameter { Value = call.IdempotencyKey });
                journal.Parameters.Add(new NpgsqlParameter { Value = result.Content });
                await journal.ExecuteNonQueryAsync(cancellationToken);
                // The write and its journal row commit together: after a crash both are there or neither is.
                await transaction.CommitAsync(cancellationToken);
                return result;
            }
            catch (PostgresException error) when (error.SqlState == PostgresErrorCodes.UniqueViolation)
            {
                // Another run of the same node (a rescue while this one lost its lease) committed first: its answer stands.
            }
        }
        return await RecordedAsync(call, cancellationToken) is { } theirs
            ? new EffectResult(true, theirs)
            : throw new InvalidOperationException($"The journal refused {call.IdempotencyKey} as a duplicate but holds no row for it.");
    }

    public override async Task<string?> RecordedAsync(EffectCall call, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(call.Tenant, cancellationToken);
        return await RecordedAsync(connection, null, call, cancellationToken);
    }

    async Task<string?> RecordedAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, EffectCall call, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand($"SELECT result FROM {Quote(SchemaOf(call.Tenant))}.{JournalTable} WHERE key = $1", connection, transaction);
        command.Parameters.Add(new NpgsqlParameter { Value = call.IdempotencyKey });
        return await command.ExecuteScalarAsync(cancellationToken) as string;
    }

    async Task PreludeAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string tenant, bool readOnly, CancellationToken cancellationToken)
    {
        var timeout = (long)Math.Max(1, Options.StatementTimeout.TotalMilliseconds);
        var sql = (readOnly ? "SET TRANSACTION READ ONLY; " : "") +
                  $"SET LOCAL search_path = {Quote(SchemaOf(tenant))}; SET LOCAL statement_timeout = {timeout}; SET LOCAL lock_timeout = {timeout}";
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    async Task<EffectResult> RunAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, JsonElement parameters, bool readOnly, CancellationToken cancellationToken)
    {
        // One batch command is sent as one Parse message, never split at semicolons by the client: the server refuses a
        // text that holds several statements ("cannot insert multiple commands into a prepared statement").
        var command = new NpgsqlBatchCommand(sql);
        await using var batch = new NpgsqlBatch(connection, transaction)
        {
            // The server's statement_timeout stops it; this is the client's own bound should the statement lift that.
            Timeout = (int)Math.Ceiling(Options.StatementTimeout.TotalSeconds) + 2,
            BatchCommands = { command },
        };
        foreach (var (name, value) in Parameters(parameters))
        {
            var parameter = char.IsAsciiDigit(name[0]) ? new NpgsqlParameter { Value = value } : new NpgsqlParameter(name, value);
            // Text goes as 'unknown', so the server types it by its use (an integer column compares with '42').
            if (value is string or DBNull)
                parameter.NpgsqlDbType = NpgsqlDbType.Unknown;
            command.Parameters.Add(parameter);
        }
        try
        {
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
            return Answer(await ReadAsync(reader, write: !readOnly, cancellationToken));
        }
        catch (PostgresException error) when (error.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            throw Denied($"the tenant's role may not do that ({error.MessageText}); it reaches its own schema only", "db.privilege");
        }
        catch (PostgresException error) when (error.SqlState == PostgresErrorCodes.ReadOnlySqlTransaction)
        {
            throw Denied("db/query only reads; use db/write to change data", "db.read-only");
        }
        catch (PostgresException error) when (error.SqlState == PostgresErrorCodes.SyntaxError && error.MessageText.Contains("multiple commands", StringComparison.Ordinal))
        {
            throw Denied("one call runs exactly one statement; this text holds several", "db.multiple-statements");
        }
        catch (PostgresException error) when (error.SqlState is PostgresErrorCodes.QueryCanceled or PostgresErrorCodes.LockNotAvailable)
        {
            return EffectResult.Failure(TimeoutMessage);
        }
        catch (NpgsqlException error) when (error.InnerException is TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            return EffectResult.Failure(TimeoutMessage);
        }
        catch (PostgresException error)
        {
            return EffectResult.Failure($"{error.MessageText} (SQLSTATE {error.SqlState})");
        }
        catch (InvalidOperationException error) when (error.Message.Contains("parameter", StringComparison.OrdinalIgnoreCase))
        {
            return EffectResult.Failure(error.Message);
        }
    }

    async Task<NpgsqlConnection> OpenAsync(string tenant, CancellationToken cancellationToken)
    {
        var source = _tenants.GetOrAdd(tenant, t => new Lazy<Task<NpgsqlDataSource>>(() => PrepareAsync(t)));
        try
        {
            return await (await source.Value).OpenConnectionAsync(cancellationToken);
        }
        catch (Exception error) when (error is not EffectRefusedException and not OperationCanceledException)
        {
            _tenants.TryRemove(new KeyValuePair<string, Lazy<Task<NpgsqlDataSource>>>(tenant, source));
            throw;
        }
        catch (EffectRefusedException)
        {
            // Tried again on the next call: an operator may grant CREATEROLE meanwhile.
            _tenants.TryRemove(new KeyValuePair<string, Lazy<Task<NpgsqlDataSource>>>(tenant, source));
            throw;
        }
    }

    /// <summary>
    /// Makes (or brings up to date) the tenant's role, schema and journal, as the store's user, under an advisory lock so
    /// nodes doing it at once do not collide; then a pool of connections that log in as the tenant's role.
    /// </summary>
    async Task<NpgsqlDataSource> PrepareAsync(string tenant)
    {
        var (role, schema, password) = (RoleOf(tenant), SchemaOf(tenant), PasswordOf(tenant));
        await using (var connection = new NpgsqlConnection(_store.ConnectionString))
        {
            await connection.OpenAsync();
            await using var transaction = await connection.BeginTransactionAsync();
            async Task Run(string sql)
            {
                await using var command = new NpgsqlCommand(sql, connection, transaction);
                await command.ExecuteNonQueryAsync();
            }
            await Run("SELECT pg_advisory_xact_lock(4707301239741145671)");
            bool exists;
            await using (var find = new NpgsqlCommand("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", connection, transaction))
            {
                find.Parameters.Add(new NpgsqlParameter { Value = role });
                exists = (bool)(await find.ExecuteScalarAsync())!;
            }
            try
            {
                // The password is hex, so the literal needs no escaping.
                // A role that exists is only given its login and password again: naming SUPERUSER-class attributes in an
                // ALTER needs a superuser, even to say NO.
                await Run(exists
                    ? $"ALTER ROLE {Quote(role)} WITH LOGIN NOINHERIT PASSWORD '{password}'"
                    : $"CREATE ROLE {Quote(role)} WITH LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '{password}'");
            }
            catch (PostgresException error) when (error.SqlState == PostgresErrorCodes.InsufficientPrivilege)
            {
                _log.LogError("db/query and db/write are refused for tenant {Tenant}: the store's PostgreSQL user {User} cannot create its role ({Message}); grant it CREATEROLE",
                    tenant, _store.Username, error.MessageText);
                throw new EffectRefusedException(Problems.CapabilityDenied,
                    "The tenant's database is unavailable: the store's PostgreSQL user may not create the tenant's role (it needs CREATEROLE), so db/* is refused rather than run unconfined.",
                    "db.unavailable");
            }
            await Run($"CREATE SCHEMA IF NOT EXISTS {Quote(schema)}");
            await Run($"REVOKE ALL ON SCHEMA {Quote(schema)} FROM PUBLIC");
            await Run($"GRANT USAGE ON SCHEMA {Quote(schema)} TO {Quote(role)}");
            // DDL is the engine's to refuse too: the role may create in its schema only where the tenant may change it.
            await Run(Options.AllowsDdl(tenant) ? $"GRANT CREATE ON SCHEMA {Quote(schema)} TO {Quote(role)}" : $"REVOKE CREATE ON SCHEMA {Quote(schema)} FROM {Quote(role)}");
            await Run($"CREATE TABLE IF NOT EXISTS {Quote(schema)}.{JournalTable} (key text PRIMARY KEY, result text NOT NULL, at timestamptz NOT NULL)");
            // The tenant's role adds journal rows in its write's transaction; it can neither change nor remove one.
            await Run($"REVOKE ALL ON {Quote(schema)}.{JournalTable} FROM {Quote(role)}");
            await Run($"GRANT SELECT, INSERT ON {Quote(schema)}.{JournalTable} TO {Quote(role)}");
            await transaction.CommitAsync();
        }
        var tenantConnection = new NpgsqlConnectionStringBuilder(_store.ConnectionString)
        {
            Username = role,
            Password = password,
            MaxPoolSize = Options.MaxConnectionsPerTenant,
            MinPoolSize = 0,
            ApplicationName = "orchestrator-db",
            SearchPath = schema,
            Enlist = false,
            Multiplexing = false,
        };
        return NpgsqlDataSource.Create(tenantConnection);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var source in _tenants.Values)
            if (source.IsValueCreated && source.Value.IsCompletedSuccessfully)
                await source.Value.Result.DisposeAsync();
    }
}
