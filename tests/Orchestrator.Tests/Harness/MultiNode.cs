using System.Data.Common;
using Npgsql;

namespace Orchestrator.Tests.Harness;

/// <summary>
/// One test's database on the run's PostgreSQL server (<see cref="PostgresServer"/>), read and written by the test
/// itself. Each node connects with its node id as <c>Application Name</c>, so a trigger can tell which process made a write.
/// </summary>
public sealed class PostgresDatabase : IAsyncDisposable
{
    readonly string _connectionString;

    PostgresDatabase(string connectionString) => _connectionString = connectionString;

    /// <summary>A new, empty database; the test is skipped (failed under CI) when there is no PostgreSQL to be had.</summary>
    public static async Task<PostgresDatabase> CreateAsync() =>
        new(await (await PostgresServer.RequireAsync()).NewDatabaseAsync());

    /// <summary>The connection string a node (or the test) uses; <paramref name="application"/> is what <c>application_name</c> reports.</summary>
    public string ConnectionString(string application) =>
        new NpgsqlConnectionStringBuilder(_connectionString) { ApplicationName = application }.ConnectionString;

    /// <summary>The test's own connection (application name <c>test</c>), from a pool of its own, cleared at the end.</summary>
    public async Task<NpgsqlConnection> OpenAsync()
    {
        var connection = new NpgsqlConnection(ConnectionString("test"));
        await connection.OpenAsync();
        return connection;
    }

    public async Task<int> ExecuteAsync(string sql)
    {
        await using var connection = await OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteNonQueryAsync();
    }

    public async Task<T> ScalarAsync<T>(string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = await OpenAsync();
        await using var command = Command(sql, connection, parameters);
        return (T)Convert.ChangeType((await command.ExecuteScalarAsync())!, typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }

    public async Task<List<T>> QueryAsync<T>(string sql, Func<DbDataReader, T> read, params (string Name, object Value)[] parameters)
    {
        await using var connection = await OpenAsync();
        await using var command = Command(sql, connection, parameters);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<T>();
        while (await reader.ReadAsync())
            rows.Add(read(reader));
        return rows;
    }

    static NpgsqlCommand Command(string sql, NpgsqlConnection connection, (string Name, object Value)[] parameters)
    {
        var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters)
            command.Parameters.AddWithValue(name, value);
        return command;
    }

    /// <summary>Polls a query until <paramref name="condition"/> holds, or fails naming <paramref name="what"/> with the last value.</summary>
    public async Task<T> WaitForAsync<T>(string what, Func<Task<T>> read, Func<T, bool> condition, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (true)
        {
            var value = await read();
            if (condition(value))
                return value;
            if (DateTime.UtcNow > until)
                throw new TimeoutException($"Waited {timeout.TotalSeconds:0.#} s for {what}; last seen: " +
                    (value is System.Collections.IEnumerable rows and not string ? $"[{string.Join(", ", rows.Cast<object>())}]" : $"{value}"));
            await Task.Delay(20);
        }
    }

    /// <summary>
    /// Records every write to <c>Jobs</c> and <c>JobNodes</c> from now on, with the process that made it (its
    /// <c>application_name</c>, the node id) and, for a graph node, the job's owner and epoch at that moment. Installed
    /// after the first node created the schema; the rows are the test's evidence of who wrote what, under which lease.
    /// </summary>
    public Task InstallWriteAuditAsync() => ExecuteAsync("""
        CREATE TABLE "AuditJobs" (
            "Seq" bigserial PRIMARY KEY, "JobId" text NOT NULL, "Writer" text NOT NULL, "Op" text NOT NULL,
            "OldStatus" text, "NewStatus" text, "OldEpoch" bigint, "NewEpoch" bigint, "OldOwner" text, "NewOwner" text,
            "LeaseOnly" boolean NOT NULL, "Tx" bigint NOT NULL DEFAULT txid_current(), "At" timestamptz NOT NULL DEFAULT clock_timestamp());
        CREATE TABLE "AuditJobNodes" (
            "Seq" bigserial PRIMARY KEY, "JobId" text NOT NULL, "NodeId" text NOT NULL, "Writer" text NOT NULL, "Op" text NOT NULL,
            "Kind" text, "OldStatus" text, "NewStatus" text, "Attempts" int, "JobOwner" text, "JobEpoch" bigint,
            "At" timestamptz NOT NULL DEFAULT clock_timestamp());
        CREATE FUNCTION audit_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO "AuditJobs" ("JobId", "Writer", "Op", "NewStatus", "NewEpoch", "NewOwner", "LeaseOnly")
                VALUES (NEW."Id", current_setting('application_name'), 'insert', NEW."Status", NEW."Epoch", NEW."Owner", false);
            ELSE
                INSERT INTO "AuditJobs" ("JobId", "Writer", "Op", "OldStatus", "NewStatus", "OldEpoch", "NewEpoch", "OldOwner", "NewOwner", "LeaseOnly")
                VALUES (NEW."Id", current_setting('application_name'), 'update', OLD."Status", NEW."Status", OLD."Epoch", NEW."Epoch",
                        OLD."Owner", NEW."Owner", (to_jsonb(OLD) - 'LeaseUntil') = (to_jsonb(NEW) - 'LeaseUntil'));
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER audit_jobs AFTER INSERT OR UPDATE ON "Jobs" FOR EACH ROW EXECUTE FUNCTION audit_jobs();
        CREATE FUNCTION audit_job_nodes() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE owner text; epoch bigint;
        BEGIN
            SELECT "Owner", "Epoch" INTO owner, epoch FROM "Jobs" WHERE "Id" = NEW."JobId";
            INSERT INTO "AuditJobNodes" ("JobId", "NodeId", "Writer", "Op", "Kind", "OldStatus", "NewStatus", "Attempts", "JobOwner", "JobEpoch")
            VALUES (NEW."JobId", NEW."NodeId", current_setting('application_name'), lower(TG_OP), NEW."Kind",
                    CASE WHEN TG_OP = 'UPDATE' THEN OLD."Status" END, NEW."Status", NEW."Attempts", owner, epoch);
            RETURN NULL;
        END $$;
        CREATE TRIGGER audit_job_nodes AFTER INSERT OR UPDATE ON "JobNodes" FOR EACH ROW EXECUTE FUNCTION audit_job_nodes();
        """);

    /// <summary>Closes the test's pooled connections; the database itself goes with the run (see <see cref="PostgresServer"/>).</summary>
    public ValueTask DisposeAsync()
    {
        using (var pooled = new NpgsqlConnection(ConnectionString("test")))
            NpgsqlConnection.ClearPool(pooled);
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// Several nodes of the service on one PostgreSQL store: each a real process (<see cref="ServiceProcess"/>) with its
/// own port and <c>Orchestrator:Node:Id</c>, all sharing one folder for workspaces, with short leases and polls so a
/// lost node's jobs move on within seconds.
/// </summary>
public sealed class MultiNode : IAsyncDisposable
{
    public const string OperatorKey = OrchestratorApp.OperatorKey;

    readonly List<ServiceProcess> _nodes = [];

    MultiNode(PostgresDatabase store, string folder)
    {
        Store = store;
        Folder = folder;
    }

    public PostgresDatabase Store { get; }

    /// <summary>The folder the nodes share: workspaces and one log per node.</summary>
    public string Folder { get; }

    public IReadOnlyList<ServiceProcess> Nodes => _nodes;

    public static async Task<MultiNode> CreateAsync() =>
        new(await PostgresDatabase.CreateAsync(), Directory.CreateTempSubdirectory("orchestrator-nodes-").FullName);

    /// <summary>A node's settings: the shared store, its name, lease 3 s, poll 0.2 s, propagation 250 ms, an operator key; then <paramref name="settings"/>.</summary>
    public ServiceProcess Add(string nodeId, IDictionary<string, string>? settings = null)
    {
        var all = new Dictionary<string, string>
        {
            ["Orchestrator:Store:Provider"] = "Postgres",
            ["ConnectionStrings:Orchestrator"] = Store.ConnectionString(nodeId),
            ["Orchestrator:Node:Id"] = nodeId,
            ["Orchestrator:Node:LeaseDuration"] = "00:00:03",
            ["Orchestrator:Node:PollInterval"] = "00:00:00.2",
            ["Orchestrator:Node:PropagationMs"] = "250",
            ["Orchestrator:ApiKeys:1:Key"] = OperatorKey,
            ["Orchestrator:ApiKeys:1:Tenant"] = "ops",
            ["Orchestrator:ApiKeys:1:Principal"] = "olga",
            ["Orchestrator:ApiKeys:1:Roles:0"] = "operator",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
            all[key] = value;
        var node = new ServiceProcess(Folder, all);
        _nodes.Add(node);
        return node;
    }

    /// <summary>
    /// <see cref="PostgresDatabase.WaitForAsync"/>, and on a timeout the store's sessions (a node holding a transaction
    /// open shows there) and every node's recent log in the message.
    /// </summary>
    public async Task<T> WaitForAsync<T>(string what, Func<Task<T>> read, Func<T, bool> condition, TimeSpan timeout)
    {
        try
        {
            return await Store.WaitForAsync(what, read, condition, timeout);
        }
        catch (TimeoutException timedOut)
        {
            var sessions = await Store.QueryAsync(
                """
                SELECT application_name || ' ' || coalesce(state, '') || ' for ' || coalesce((now() - state_change)::text, '-') || ': ' || left(query, 160)
                FROM pg_stat_activity WHERE datname = current_database() AND application_name <> 'test'
                """, r => r.GetString(0));
            throw new TimeoutException($"{timedOut.Message}\nStore sessions:\n{string.Join("\n", sessions)}\n{Logs()}", timedOut);
        }
    }

    /// <summary>Every node's recent log, for a failure message.</summary>
    public string Logs() => string.Join("\n", _nodes.Select(n => $"--- {n.NodeId} ({n.Log}) ---\n{n.ReadLog()}"));

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes)
            await node.DisposeAsync();
        await Store.DisposeAsync();
        OrchestratorApp.TryDelete(Folder);
    }
}
