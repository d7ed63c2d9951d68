using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Npgsql;

namespace Orchestrator.Tests.Harness;

/// <summary>
/// A PostgreSQL server for the whole test run, handing each test a fresh, empty database of its own.
/// The server is the one <c>ORCHESTRATOR_TEST_POSTGRES</c> names (what <c>.ci/run</c> exports); without it, a private
/// throwaway cluster started from the installed binaries on 127.0.0.1 and removed when the test process exits.
/// With neither, <see cref="RequireAsync"/> skips the test, except in CI (<c>CI=true</c>), where it fails it.
/// </summary>
/// <example>
/// <code>
/// [SkippableFact]
/// public async Task Something_on_postgres()
/// {
///     var postgres = await PostgresServer.RequireAsync();
///     var connectionString = await postgres.NewDatabaseAsync();
///     ...
/// }
/// </code>
/// </example>
public sealed partial class PostgresServer
{
    /// <summary>An Npgsql connection string to a login that may create databases; its <c>Database</c> is where it connects to do so.</summary>
    public const string EnvironmentVariable = "ORCHESTRATOR_TEST_POSTGRES";

    const string HowToProvide =
        $"set {EnvironmentVariable} to an Npgsql connection string of a login with CREATEDB " +
        "(Host=127.0.0.1;Port=5432;Username=...;Password=...;Database=postgres), or install the postgresql package " +
        "so the tests start a private cluster from /usr/lib/postgresql/*/bin; .ci/run installs it and exports the variable";

    // One server per test process, whatever the collection: a cluster takes seconds to start, a database milliseconds.
    static readonly Lazy<Task<Found>> Shared = new(() => Task.Run(Find));

    readonly string _admin;
    readonly string _prefix;
    // Works by staying open until this process ends, however it ends: the private cluster's watchdog pipe, or the
    // run's lease on a server that outlives the run.
    readonly IDisposable _heldForTheRun;

    PostgresServer(string admin, string prefix, IDisposable heldForTheRun)
    {
        _admin = admin;
        _prefix = prefix;
        _heldForTheRun = heldForTheRun;
    }

    /// <summary>The run's server, or the test is skipped (failed under <c>CI=true</c>) with the reason and how to provide one.</summary>
    public static async Task<PostgresServer> RequireAsync()
    {
        var found = await Shared.Value;
        if (found.Server is { } server)
            return server;
        if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
            throw new InvalidOperationException($"PostgreSQL is required in CI (CI=true) and is not available: {found.Problem}. To provide it, {HowToProvide}.");
        throw new SkipException($"PostgreSQL is not available: {found.Problem}. To run this test, {HowToProvide}.");
    }

    /// <summary>
    /// Creates an empty database (UTF8, C collation) and returns an Npgsql connection string to it, with the server's login.
    /// By default its name is a unique <c>orch_test_…</c>, removed with the private cluster, or by the next run on a server
    /// that outlives this one; a <paramref name="name"/> of the test's own (lower-case letters, digits, underscores) is
    /// used as it is, and left there.
    /// </summary>
    public async Task<string> NewDatabaseAsync(string? name = null)
    {
        name ??= _prefix + RandomNumberGenerator.GetHexString(12, lowercase: true);
        if (!DatabaseName().IsMatch(name))
            throw new ArgumentException($"'{name}' is not a plain database name: lower-case letters, digits and underscores, at most 63.", nameof(name));

        await using (var connection = new NpgsqlConnection(_admin))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand(
                $"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'", connection);
            await create.ExecuteNonQueryAsync();
        }
        // Each test's database is its own pool in the test process, and a finished test's app leaves its idle connections
        // in it (Npgsql closes idle ones after 300 s by default): closed after 2 s, so a run's pools never add up to
        // max_connections ("53300: sorry, too many clients already").
        return new NpgsqlConnectionStringBuilder(_admin) { Database = name, ConnectionIdleLifetime = 2, ConnectionPruningInterval = 1 }.ConnectionString;
    }

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,62}$")]
    private static partial Regex DatabaseName();

    sealed record Found(PostgresServer? Server, string? Problem);

    static Found Find()
    {
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } configured)
            return Lease(configured);
        return Binaries() is { } bin
            ? StartPrivateCluster(bin)
            : new Found(null, $"{EnvironmentVariable} is not set and no PostgreSQL binaries were found (/usr/lib/postgresql/*/bin/initdb, or initdb on PATH)");
    }

    // Advisory lock keys are (namespace, run): 0x6f726368 is "orch".
    const int LeaseNamespace = 0x6f726368;

    /// <summary>
    /// On a server that outlives the run, the databases cannot go with the test process: vstest kills the test host
    /// about 100 ms after the run, too soon to drop them at exit. So the run holds a session advisory lock named after
    /// it, on a connection kept open until the process ends, and names its databases <c>orch_test_{run}_…</c>;
    /// each run first drops the databases of every run whose lock it can take, which is to say of every run that is over.
    /// Advisory locks belong to a database: runs sharing a server share the variable, so their leases meet in its one.
    /// </summary>
    static Found Lease(string configured)
    {
        NpgsqlConnection? lease = null;
        try
        {
            // Its own connection, out of the pool, kept busy so that no idle_session_timeout ends the lease early.
            var builder = new NpgsqlConnectionStringBuilder(configured) { Timeout = 10, Pooling = false, KeepAlive = 30 };
            lease = new NpgsqlConnection(builder.ConnectionString);
            lease.Open();
            if (Scalar(lease, "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user") is not true)
            {
                lease.Dispose();
                return new Found(null, $"{EnvironmentVariable} is set, but its login '{builder.Username}' may not create databases (it needs CREATEDB)");
            }

            var run = RandomNumberGenerator.GetInt32(int.MaxValue);
            Scalar(lease, $"SELECT pg_advisory_lock({LeaseNamespace}, {run})");
            DropDatabasesOfEndedRuns(lease, run);
            return new Found(new PostgresServer(configured, $"orch_test_{run:x8}_", lease), null);
        }
        catch (Exception e) when (e is NpgsqlException or ArgumentException)
        {
            lease?.Dispose();
            return new Found(null, $"{EnvironmentVariable} is set, but the server did not accept it: {e.Message}");
        }
    }

    static void DropDatabasesOfEndedRuns(NpgsqlConnection lease, int ours)
    {
        var databases = new List<string>();
        using (var list = new NpgsqlCommand("SELECT datname FROM pg_database WHERE datname ~ '^orch_test_[0-9a-f]{8}_[0-9a-f]+$'", lease))
        using (var reader = list.ExecuteReader())
        {
            while (reader.Read())
                databases.Add(reader.GetString(0));
        }
        foreach (var runDatabases in databases.GroupBy(name => int.Parse(name.AsSpan(10, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture)))
        {
            if (runDatabases.Key == ours || Scalar(lease, $"SELECT pg_try_advisory_lock({LeaseNamespace}, {runDatabases.Key})") is not true)
                continue;
            foreach (var name in runDatabases)
            {
                try
                {
                    Scalar(lease, $"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                }
                catch (PostgresException e)
                {
                    // Another login's session in it, say: the database stays, costing disk, never a wrong result.
                    System.Console.Error.WriteLine($"Could not drop {name}, left by an earlier test run: {e.MessageText}");
                }
            }
            Scalar(lease, $"SELECT pg_advisory_unlock({LeaseNamespace}, {runDatabases.Key})");
        }
    }

    static object? Scalar(NpgsqlConnection connection, string sql)
    {
        using var command = new NpgsqlCommand(sql, connection);
        return command.ExecuteScalar();
    }

    /// <summary>The folder holding initdb and pg_ctl: the newest Debian-packaged version, else the first on PATH.</summary>
    static string? Binaries()
    {
        static bool HasTools(string folder) => File.Exists(Path.Combine(folder, "initdb")) && File.Exists(Path.Combine(folder, "pg_ctl"));

        const string debian = "/usr/lib/postgresql";
        if (Directory.Exists(debian))
        {
            var newest = Directory.GetDirectories(debian)
                .Where(version => HasTools(Path.Combine(version, "bin")))
                .OrderByDescending(version => int.TryParse(Path.GetFileName(version), NumberStyles.None, CultureInfo.InvariantCulture, out var major) ? major : -1)
                .FirstOrDefault();
            if (newest is not null)
                return Path.Combine(newest, "bin");
        }
        return (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .FirstOrDefault(HasTools);
    }

    /// <summary>
    /// initdb into a temp folder and pg_ctl start on a free 127.0.0.1 port, password auth, no Unix socket, no fsync
    /// (the cluster lives for one run). PostgreSQL refuses to run as root, so a root process runs it as the postgres user.
    /// </summary>
    static Found StartPrivateCluster(string bin)
    {
        const string superuser = "orchestrator_test";
        var asPostgres = Environment.IsPrivilegedProcess;
        var folder = Directory.CreateTempSubdirectory("orchestrator-pg-").FullName;
        var data = Path.Combine(folder, "data");
        string[] stop = [Path.Combine(bin, "pg_ctl"), "stop", "--pgdata", data, "--mode", "immediate", "--wait"];
        // First, so that whatever happens from here on, the folder (and a server started in it) goes with this process.
        Process watchdog;
        try
        {
            watchdog = StartWatchdog(asPostgres, folder, stop);
        }
        catch (Win32Exception e)
        {
            OrchestratorApp.TryDelete(folder);
            return new Found(null, $"the watchdog that removes the private cluster could not start (setsid, sh): {e.Message}");
        }

        Found Fail(string what, (int ExitCode, string Output) run)
        {
            // Closing the pipe is the watchdog's signal to clean up now.
            watchdog.StandardInput.Close();
            watchdog.Dispose();
            return new Found(null, $"{what} exited with {run.ExitCode}: {run.Output}");
        }

        var passwordFile = Path.Combine(folder, "password");
        var password = RandomNumberGenerator.GetHexString(32, lowercase: true);
        File.WriteAllText(passwordFile, password);

        if (asPostgres && Run(false, folder, "chown", "-R", "postgres:", folder) is { ExitCode: not 0 } chown)
            return Fail("giving the cluster folder to the postgres user (the tests run as root)", chown);
        var init = Run(asPostgres, folder, Path.Combine(bin, "initdb"),
            "--pgdata", data, "--username", superuser, "--pwfile", passwordFile, "--auth", "scram-sha-256",
            "--encoding", "UTF8", "--locale", "C", "--no-sync");
        if (init.ExitCode != 0)
            return Fail("initdb", init);
        File.Delete(passwordFile);
        File.AppendAllText(Path.Combine(data, "postgresql.conf"), """

            # A private cluster for one test run (tests/Orchestrator.Tests/Harness/PostgresServer.cs).
            listen_addresses = '127.0.0.1'
            unix_socket_directories = ''
            fsync = off
            synchronous_commit = off
            full_page_writes = off
            max_connections = 300

            """);

        // The port is free when asked but could be taken before the server binds it: try another one then.
        var log = Path.Combine(folder, "postgres.log");
        (int ExitCode, string Output) start;
        int port;
        for (var attempt = 1; ; attempt++)
        {
            port = FreePort();
            start = Run(asPostgres, folder, Path.Combine(bin, "pg_ctl"),
                "start", "--pgdata", data, "--log", log, "--wait", "--timeout", "60", "-o", $"-p {port}");
            if (start.ExitCode == 0 || attempt == 3)
                break;
        }
        if (start.ExitCode != 0)
            return Fail($"pg_ctl start (log: {ReadLog(log)})", start);

        var admin = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = port,
            Username = superuser,
            Password = password,
            Database = "postgres",
        };
        return new Found(new PostgresServer(admin.ConnectionString, "orch_test_", watchdog), null);
    }

    /// <summary>
    /// Stops the cluster and deletes its folder once this process is gone, however it ends: vstest kills the test host
    /// about 100 ms after the run, too soon for a ProcessExit handler, and a killed or crashed host runs none at all.
    /// The watchdog waits for end-of-file on a pipe that only this process holds, in a session of its own so that
    /// Ctrl+C on the test run spares it. pg_ctl stop returns once the pid file is gone, while the server's last
    /// processes may still be removing files, so the delete is retried.
    /// </summary>
    static Process StartWatchdog(bool asPostgres, string folder, string[] stop)
    {
        const string script = """
            exec >/dev/null 2>&1
            cat
            folder=$1
            shift
            "$@"
            for attempt in 1 2 3 4 5 6 7 8 9 10; do rm -rf "$folder" && break; sleep 0.5; done
            """;
        string[] asUser = asPostgres ? ["runuser", "-u", "postgres", "--"] : [];
        var start = new ProcessStartInfo("setsid", ["sh", "-c", script, "orchestrator-pg-watchdog", folder, .. asUser, .. stop])
        {
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = "/",
        };
        return Process.Start(start)!;
    }

    static string ReadLog(string log) => File.Exists(log) ? File.ReadAllText(log).Trim() : "none";

    /// <summary>Runs a tool to its end (as the postgres user when asked, through runuser) and returns its exit code and output.</summary>
    static (int ExitCode, string Output) Run(bool asPostgres, string workingDirectory, string program, params string[] arguments)
    {
        var start = asPostgres
            ? new ProcessStartInfo("runuser", ["-u", "postgres", "--", program, .. arguments])
            : new ProcessStartInfo(program, arguments);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        // A root process's working directory may be one the postgres user cannot enter.
        start.WorkingDirectory = workingDirectory;

        var output = new StringBuilder();
        void Append(string? line)
        {
            if (line is null)
                return;
            lock (output)
                output.AppendLine(line);
        }

        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            return (-1, $"{start.FileName} could not be started: {e.Message}");
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            return (-1, $"{program} did not finish within 2 minutes");
        }
        // The parameterless wait also drains the redirected output.
        process.WaitForExit();
        lock (output)
            return (process.ExitCode, output.ToString().Trim());
    }

    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
