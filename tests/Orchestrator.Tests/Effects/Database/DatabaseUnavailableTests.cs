using System.Security.Cryptography;
using System.Text.Json;
using Npgsql;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Effects.Database;

/// <summary>
/// On PostgreSQL, db/* needs a store user that may make each tenant's login role (CREATEROLE). Without it the service
/// still runs, says so in <c>/health/ready</c>, and refuses db/* with <c>db.unavailable</c> rather than running a statement
/// unconfined; a grant made while it runs is picked up by the next call. Needs PostgreSQL whatever store the suite runs on
/// (skipped without it, failed under CI=true).
/// </summary>
public sealed class DatabaseUnavailableTests
{
    static string Query(string sql) => "Keep the records.\n/call db_query " + JsonSerializer.Serialize(new { sql });

    [SkippableFact]
    public async Task A_store_user_without_CREATEROLE_is_reported_degraded_db_is_refused_and_a_later_grant_works_without_a_restart()
    {
        var postgres = await PostgresServer.RequireAsync();
        var admin = await postgres.NewDatabaseAsync();
        var database = new NpgsqlConnectionStringBuilder(admin).Database!;
        var role = "orch_test_nocr_" + RandomNumberGenerator.GetHexString(8, lowercase: true);
        var password = RandomNumberGenerator.GetHexString(24, lowercase: true);
        async Task Admin(string sql)
        {
            await using var connection = new NpgsqlConnection(admin);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(sql, connection);
            await command.ExecuteNonQueryAsync();
        }
        // A login that owns nothing and may create nothing but the store's tables: no CREATEROLE.
        await Admin($"CREATE ROLE {role} LOGIN NOCREATEROLE PASSWORD '{password}'");
        try
        {
            await Admin($"GRANT CREATE, CONNECT ON DATABASE {database} TO {role}; GRANT ALL ON SCHEMA public TO {role}");
            var store = new NpgsqlConnectionStringBuilder(admin) { Username = role, Password = password }.ConnectionString;
            using (var app = new OrchestratorApp(new Dictionary<string, string?>
            {
                ["Orchestrator:Store:Provider"] = "Postgres",
                ["ConnectionStrings:Orchestrator"] = store,
            }))
            {
                using var client = app.ClientFor(OrchestratorApp.AcmeKey);
                var ready = await Api.BodyOf(await client.GetAsync("/health/ready"));
                ready.Str("checks.database.status").Should().Be("Degraded", ready.ToJsonString());
                ready.Str("checks.database.description").Should().Contain("CREATEROLE");
                ready.Str("checks.store.status").Should().Be("Healthy", "the service itself runs: only db/* is unavailable");

                var (_, refused) = await client.ActAsync(new { intent = "agent/run", input = Query("SELECT 1 AS one") });
                refused.Str("code").Should().Be("capability_denied", refused.ToJsonString());
                refused.Str("rule").Should().Be("db.unavailable");

                await Admin($"ALTER ROLE {role} CREATEROLE");
                (await Api.BodyOf(await client.GetAsync("/health/ready"))).Str("checks.database.status").Should().Be("Healthy");
                var (_, job) = await client.ActAsync(new { intent = "agent/run", input = Query("SELECT 1 AS one") });
                job.Str("status").Should().Be("completed", job.ToJsonString());
                job.Str("output.text").Should().Contain("\"rows\":[{\"one\":1}]", "the grant is picked up by the next call, without a restart");
            }
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            try
            {
                // Roles are the cluster's: leave none behind. Without the database they own and hold grants in nothing.
                await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(admin) { Database = "postgres" }.ConnectionString);
                await connection.OpenAsync();
                var tenantRole = Orchestrator.Effects.Database.PostgresTenantDatabase.RoleFor(database, "acme");
                foreach (var sql in new[] { $"DROP DATABASE IF EXISTS {database} WITH (FORCE)", $"DROP ROLE IF EXISTS \"{tenantRole}\"", $"DROP ROLE IF EXISTS {role}" })
                {
                    await using var command = new NpgsqlCommand(sql, connection);
                    await command.ExecuteNonQueryAsync();
                }
            }
            catch (PostgresException)
            {
                // A role left on a throwaway test server is harmless; the test's verdict stands.
            }
        }
    }
}
