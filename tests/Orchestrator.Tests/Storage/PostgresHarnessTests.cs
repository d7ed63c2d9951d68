using Npgsql;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Storage;

public sealed class PostgresHarnessTests
{
    [SkippableFact]
    public async Task Each_new_database_is_its_own_empty_database_that_takes_a_table()
    {
        var postgres = await PostgresServer.RequireAsync();

        var first = await postgres.NewDatabaseAsync();
        var second = await postgres.NewDatabaseAsync();

        var firstName = new NpgsqlConnectionStringBuilder(first).Database;
        var secondName = new NpgsqlConnectionStringBuilder(second).Database;
        firstName.Should().StartWith("orch_test_").And.NotBe(secondName, "each call creates a database of its own");
        (await TablesIn(first)).Should().BeEmpty("a new database starts empty");
        (await TablesIn(second)).Should().BeEmpty("a new database starts empty");

        await Execute(first, "CREATE TABLE probe (id integer PRIMARY KEY, note text NOT NULL)");
        await Execute(first, "INSERT INTO probe VALUES (1, 'first')");

        (await TablesIn(first)).Should().Equal(["probe"], "the database accepts a table");
        (await TablesIn(second)).Should().BeEmpty("a table in one test's database is not in another's");
        await Execute(second, "CREATE TABLE probe (id integer PRIMARY KEY)");
    }

    static async Task Execute(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    static async Task<List<string>> TablesIn(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY table_name",
            connection);
        await using var reader = await command.ExecuteReaderAsync();
        var tables = new List<string>();
        while (await reader.ReadAsync())
            tables.Add(reader.GetString(0));
        return tables;
    }
}
