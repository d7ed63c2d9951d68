using System.Text.Json;
using Microsoft.Data.Sqlite;
using Npgsql;
using Orchestrator.Effects.Database;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Effects.Database;

/// <summary>
/// The real service, SIGKILLed three times while 50 agent jobs write to their tenant's database at once, on the store the
/// suite runs on: every job finishes and every row is there exactly once, because each write commits with its journal row.
/// </summary>
public sealed class DatabaseCrashTests : IDisposable
{
    const int Jobs = 50;
    const int LinesPerJob = 3;

    readonly string _folder = Directory.CreateTempSubdirectory("orchestrator-db-crash-").FullName;

    public void Dispose() => OrchestratorApp.TryDelete(_folder);

    Dictionary<string, string> Settings() => new()
    {
        ["Orchestrator:Queue:Workers"] = "8",
        ["Orchestrator:Models:0:Id"] = "sim",
        ["Orchestrator:Models:0:Provider"] = "simulated",
        ["Orchestrator:Models:0:LatencyMs"] = "20",
        // Nobody approves here: the shipped db-writes rule is switched off.
        ["Orchestrator:Approvals:Rules:100:Enabled"] = "false",
        ["Orchestrator:Effects:Database:DdlTenants:0"] = "acme",
        // A killed node's jobs are rescued after its lease (PostgreSQL); kept short so the test stays fast.
        ["Orchestrator:Node:LeaseDuration"] = "00:00:02",
        ["Orchestrator:Node:PollInterval"] = "00:00:00.200",
    };

    static string Script(IEnumerable<string> calls) => "Record.\n" + string.Join("\n", calls.Select(c => "/call " + c));

    static string Write(string sql, object? parameters = null) =>
        "db_write " + JsonSerializer.Serialize(parameters is null ? new { sql } : (object)new { sql, @params = parameters });

    [Fact]
    public async Task Killed_three_times_during_50_concurrent_writing_jobs_every_row_is_there_exactly_once()
    {
        await using var service = new ServiceProcess(_folder, Settings());
        await service.StartAsync();
        using var client = service.Client();

        var setup = await Submit(client, Script([Write("CREATE TABLE ledger (job integer NOT NULL, line integer NOT NULL, note text)")]));
        (await client.WaitForEndAsync(setup, waitMs: 30_000)).Str("status").Should().Be("completed");

        var jobs = new List<string>();
        for (var job = 0; job < Jobs; job++)
            jobs.Add(await Submit(client, Script(Enumerable.Range(1, LinesPerJob).Select(line =>
                Write("INSERT INTO ledger (job, line, note) VALUES ($1, $2, $3) RETURNING line", new object[] { job, line, $"job {job} line {line}" })))));

        // Three kills, each once more rows have landed since the last start: writes are in flight at every one.
        var rows = 0L;
        for (var kill = 0; kill < 3; kill++)
        {
            var before = rows;
            rows = await WaitForRows(n => n >= before + 8 || n >= Jobs * LinesPerJob, client, jobs, service);
            service.Kill();
            rows = await CountAsync("SELECT count(*) FROM ledger");
            await service.StartAsync();
        }

        foreach (var id in jobs)
        {
            var view = await client.WaitForEndAsync(id, waitMs: 60_000);
            view.Str("status").Should().Be("completed", $"every job finishes after the kills: {view.ToJsonString()}");
        }

        var duplicates = await CountAsync("SELECT count(*) FROM (SELECT job, line FROM ledger GROUP BY job, line HAVING count(*) > 1) d");
        duplicates.Should().Be(0, "no write is applied twice");
        (await CountAsync("SELECT count(*) FROM ledger")).Should().Be(Jobs * LinesPerJob, "every write is applied, exactly once");
        (await CountAsync("SELECT count(DISTINCT job * 10 + line) FROM ledger")).Should().Be(Jobs * LinesPerJob);
        (await CountAsync($"SELECT count(*) FROM {TenantDatabase.JournalTable}")).Should().Be(Jobs * LinesPerJob + 1,
            "each write committed with one journal row (the table's creation too)");
    }

    static async Task<string> Submit(HttpClient client, string input)
    {
        var (response, job) = await client.ActAsync(new { intent = "agent/run", input, mode = "async", deadlineMs = 300_000 });
        response.IsSuccessStatusCode.Should().BeTrue(job.ToJsonString());
        return job.Str("jobId");
    }

    async Task<long> WaitForRows(Func<long, bool> enough, HttpClient client, List<string> jobs, ServiceProcess service)
    {
        var until = DateTime.UtcNow.AddSeconds(60);
        long rows = 0;
        while (DateTime.UtcNow < until)
        {
            rows = await CountAsync("SELECT count(*) FROM ledger");
            if (enough(rows))
                return rows;
            await Task.Delay(5);
        }
        var views = await Task.WhenAll(jobs.Select(client.GetJobAsync));
        throw new TimeoutException($"The ledger stayed at {rows} rows. Jobs: " +
            string.Join(", ", views.GroupBy(v => v.Str("status")).Select(g => $"{g.Key} {g.Count()}")) + "; first not completed: " +
            views.FirstOrDefault(v => v.Str("status") != "completed")?.ToJsonString() + "\nLog:\n" + service.ReadLog());
    }

    /// <summary>Reads the tenant's database beside the service: its SQLite file, or its schema in the PostgreSQL store.</summary>
    async Task<long> CountAsync(string sql)
    {
        if (TestStore.IsPostgres)
        {
            // The store's user cannot read a tenant's tables (they are the tenant role's): the test takes that role to look.
            var store = new NpgsqlConnectionStringBuilder(TestStore.ConnectionFor(_folder));
            var role = PostgresTenantDatabase.RoleFor(store.Database!, "acme");
            await using var connection = new NpgsqlConnection(store.ConnectionString);
            await connection.OpenAsync();
            await using (var grant = new NpgsqlCommand($"GRANT \"{role}\" TO CURRENT_USER", connection))
                await grant.ExecuteNonQueryAsync();
            await using var command = new NpgsqlCommand($"SET ROLE \"{role}\"; SET search_path = \"{PostgresTenantDatabase.SchemaOf("acme")}\"; {sql}", connection);
            return Convert.ToInt64(await command.ExecuteScalarAsync());
        }
        var file = Path.Combine(_folder, "workspaces", "acme", ".db", "tenant.db");
        if (!File.Exists(file))
            return 0;
        await using var sqlite = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = file, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        await sqlite.OpenAsync();
        await using var query = sqlite.CreateCommand();
        query.CommandText = sql;
        return Convert.ToInt64(await query.ExecuteScalarAsync());
    }
}
