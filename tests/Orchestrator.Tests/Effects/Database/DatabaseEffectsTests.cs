using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Orchestrator.Effects;
using Orchestrator.Effects.Database;
using Orchestrator.Tests.Approvals;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Effects.Database;

/// <summary>
/// db/query and db/write through the public API, on the store the suite runs on (SQLite, or PostgreSQL with
/// <c>ORCHESTRATOR_TEST_STORE=Postgres</c>): an agent keeps records in its tenant's database; every statement that is not
/// what the capability allows, or that reaches past the tenant's own tables, is refused with its rule, audited and counted.
/// </summary>
public sealed class DatabaseEffectsTests : IClassFixture<DatabaseEffectsTests.App>
{
    public sealed class App : IDisposable
    {
        public OrchestratorApp Host { get; } = new(ApprovalHelpers.Settings(
            // These tests run writes with nobody to approve them: the shipped db-writes rule is switched off.
            ("Orchestrator:Approvals:Rules:100:Enabled", "false"),
            ("Orchestrator:Effects:Database:DdlTenants:0", "acme"),
            ("Orchestrator:Effects:Database:MaxRows", "5"),
            ("Orchestrator:Effects:Database:StatementTimeout", "00:00:00.500")));

        public void Dispose() => Host.Dispose();
    }

    readonly OrchestratorApp _app;

    public DatabaseEffectsTests(App app) => _app = app.Host;

    static string Call(string function, string sql, object? parameters = null) =>
        $"{function} " + JsonSerializer.Serialize(parameters is null ? new { sql } : (object)new { sql, @params = parameters });

    static string Script(params string[] calls) => "Keep the records.\n" + string.Join("\n", calls.Select(c => "/call " + c));

    async Task<JsonObject> Act(string key, params string[] calls)
    {
        using var client = _app.ClientFor(key);
        var (_, body) = await client.ActAsync(new { intent = "agent/run", input = Script(calls) });
        return body;
    }

    static string Table() => "t" + Guid.NewGuid().ToString("N")[..10];

    [Fact]
    public async Task An_agent_creates_a_table_inserts_rows_and_reads_them_back()
    {
        var table = Table();
        var job = await Act(OrchestratorApp.AcmeKey,
            Call("db_write", $"CREATE TABLE {table} (id integer PRIMARY KEY, body text NOT NULL, score real)"),
            Call("db_write", $"INSERT INTO {table} (id, body, score) VALUES ($1, $2, $3)", new object[] { 1, "first note", 0.5 }),
            Call("db_write", $"INSERT INTO {table} (id, body) VALUES (@id, @body)", new { id = 2, body = "it's 'quoted'; DROP TABLE x; --" }),
            Call("db_query", $"SELECT id, body, score FROM {table} WHERE id >= $1 ORDER BY id", new object[] { 1 }));

        job.Str("status").Should().Be("completed", job.ToJsonString());
        var output = job.Str("output.text");
        output.Should().Contain("\"rows\":[{\"id\":1,\"body\":\"first note\",\"score\":0.5},{\"id\":2,\"body\":\"it's 'quoted'; DROP TABLE x; --\",\"score\":null}]",
            "the rows come back as JSON objects, and a parameter is bound, never spliced into the statement");

        // The tenant's data outlives the job: another job reads it.
        var again = await Act(OrchestratorApp.AcmeKey, Call("db_query", $"SELECT count(*) AS n FROM {table}"));
        again.Str("output.text").Should().Contain("\"rows\":[{\"n\":2}]");
    }

    [Fact]
    public async Task A_write_answers_rows_affected_and_returning_rows_and_a_query_is_cut_at_the_row_cap()
    {
        var table = Table();
        await Act(OrchestratorApp.AcmeKey, Call("db_write", $"CREATE TABLE {table} (id integer PRIMARY KEY, body text)"));
        var insert = await Act(OrchestratorApp.AcmeKey,
            Call("db_write", $"INSERT INTO {table} (id, body) VALUES (1,'a'),(2,'b'),(3,'c'),(4,'d'),(5,'e'),(6,'f'),(7,'g') RETURNING id"));
        insert.Str("output.text").Should().Contain("\"rowsAffected\":7").And.Contain("\"truncated\":true", "RETURNING rows are cut at MaxRows (5) too");

        var query = await Act(OrchestratorApp.AcmeKey, Call("db_query", $"SELECT id FROM {table} ORDER BY id"));
        query.Str("output.text").Should().Contain("\"rows\":[{\"id\":1},{\"id\":2},{\"id\":3},{\"id\":4},{\"id\":5}],\"rowCount\":5,\"truncated\":true");
    }

    [Fact]
    public async Task A_statement_past_its_time_limit_is_stopped_and_the_model_is_told()
    {
        var job = await Act(OrchestratorApp.AcmeKey,
            Call("db_query", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"));
        job.Str("status").Should().Be("completed", job.ToJsonString());
        job.Str("output.text").Should().Contain("time limit of 500 ms");
    }

    /// <summary>The act failed capability_denied with the rule, in the job, one audit entry and the telemetry by tenant and tool.</summary>
    async Task Refused(string call, string rule, string tool, string key = OrchestratorApp.AcmeKey, string tenant = "acme")
    {
        var problem = await Act(key, call);
        problem.Str("code").Should().Be("capability_denied", problem.ToJsonString());
        problem.Str("rule").Should().Be(rule, problem.ToJsonString());
        var jobId = problem.Str("jobId");

        using var client = _app.ClientFor(key);
        (await client.GetJobAsync(jobId)).Str("error.rule").Should().Be(rule);
        using var ops = _app.ClientFor(OrchestratorApp.OperatorKey);
        var audit = await Api.BodyOf(await ops.GetAsync($"/v1/audit?tenant={tenant}&action=effect.denied&limit=200"));
        var entry = audit["items"]!.AsArray().Should().ContainSingle(i => i!.Str("resource").StartsWith($"jobs/{jobId}/"), "every refusal is one audit entry").Subject!;
        entry.ToJsonString().Should().Contain(rule).And.Contain(tool);
        var telemetry = await Api.BodyOf(await ops.GetAsync($"/v1/diag/telemetry?tenant={tenant}"));
        telemetry.ToJsonString().Should().Contain($"effects.denied.{tool}.{rule}", "refusals are counted by tenant, tool and rule");
    }

    [Theory]
    [InlineData("db_query", "INSERT INTO notes (body) VALUES ('x')", "db.read-only")]
    [InlineData("db_query", "WITH x AS (SELECT 1) DELETE FROM notes", "db.read-only")]
    [InlineData("db_query", "CREATE TABLE sneaky (id integer)", "db.read-only")]
    [InlineData("db_query", "SELECT 1; SELECT 2", "db.multiple-statements")]
    [InlineData("db_write", "INSERT INTO notes (body) VALUES ('a'); DELETE FROM notes", "db.multiple-statements")]
    [InlineData("db_query", "SELECT * FROM sqlite_master", "db.catalog")]
    [InlineData("db_query", "SELECT * FROM information_schema.tables", "db.catalog")]
    [InlineData("db_query", "SELECT * FROM pg_catalog.pg_tables", "db.catalog")]
    [InlineData("db_query", "SELECT * FROM \"Jobs\"", "db.store-table")]
    [InlineData("db_query", "SELECT * FROM AuditEntries", "db.store-table")]
    [InlineData("db_query", "SELECT * FROM orchestrator_effects", "db.reserved")]
    [InlineData("db_write", "DELETE FROM orchestrator_effects", "db.reserved")]
    [InlineData("db_write", "ATTACH DATABASE 'orchestrator.db' AS store", "db.attach")]
    [InlineData("db_write", "DETACH DATABASE store", "db.attach")]
    [InlineData("db_write", "PRAGMA query_only = OFF", "db.pragma")]
    [InlineData("db_query", "SELECT load_extension('/tmp/evil.so')", "db.extension")]
    [InlineData("db_write", "CREATE EXTENSION dblink", "db.extension")]
    [InlineData("db_write", "CREATE VIRTUAL TABLE v USING fts5(body)", "db.extension")]
    [InlineData("db_write", "VACUUM INTO '/tmp/copy.db'", "db.vacuum")]
    [InlineData("db_write", "COPY notes TO '/tmp/notes.csv'", "db.copy")]
    [InlineData("db_write", "BEGIN", "db.transaction")]
    [InlineData("db_write", "SET ROLE postgres", "db.session")]
    [InlineData("db_write", "RESET ROLE", "db.session")]
    [InlineData("db_write", "GRANT SELECT ON notes TO PUBLIC", "db.privileges")]
    [InlineData("db_write", "CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql", "db.statement")]
    [InlineData("db_write", "DO 'BEGIN PERFORM 1; END'", "db.statement")]
    public async Task A_statement_the_capability_does_not_allow_is_refused_with_its_rule_and_audited(string function, string sql, string rule) =>
        await Refused(Call(function, sql), rule, function.Replace('_', '/'));

    /// <summary>
    /// PostgreSQL lets every role read its system catalogs, so a name spelled with escapes, or SQL hidden in a string that a
    /// function runs, would list other tenants' schemas and tables (found by a black-box review): refused by the text check.
    /// </summary>
    [Theory]
    [InlineData("db_query", "select * from U&\"\\0070g_catalog\".U&\"\\0070g_roles\"", "db.escape")]
    [InlineData("db_query", "select count(*) from u&\"\\0070g_class\"", "db.escape")]
    [InlineData("db_query", "select U&'\\0041' as a", "db.escape")]
    [InlineData("db_query", "select query_to_xml($q$select string_agg(relname, ',') from pg_class$q$, true, true, '')", "db.dynamic-sql")]
    [InlineData("db_query", "select \"database_to_xml\"(true, true, '')", "db.dynamic-sql")]
    [InlineData("db_query", "select * from ts_stat('select to_tsvector(relname) from pg_class')", "db.dynamic-sql")]
    [InlineData("db_write", "select set_config('search_path', 'public', false)", "db.session")]
    public async Task On_postgres_catalogs_reached_through_escapes_or_sql_in_a_string_are_refused(string function, string sql, string rule)
    {
        if (!TestStore.IsPostgres)
            return; // PostgreSQL's rules: these texts mean something else, or nothing, to SQLite (the PostgreSQL pass runs them).
        await Refused(Call(function, sql), rule, function.Replace('_', '/'));
    }

    [Fact]
    public async Task A_plain_question_mark_parameter_tells_the_model_how_to_number_it()
    {
        var job = await Act(OrchestratorApp.AcmeKey, Call("db_query", "SELECT ? AS a", new object[] { 5 }));
        job.Str("status").Should().Be("completed", job.ToJsonString());
        job.Str("output.text").Should().Contain(TestStore.IsPostgres ? "syntax error" : "parameters are not supported: number them ($1");
        var numbered = await Act(OrchestratorApp.AcmeKey, Call("db_query", "SELECT $1 AS a", new object[] { 5 }));
        numbered.Str("output.text").Should().Contain("\"rows\":[{\"a\":5}]");
    }

    [Fact]
    public async Task A_u_and_operator_in_plain_sql_is_still_an_operator()
    {
        var job = await Act(OrchestratorApp.AcmeKey, Call("db_query", "SELECT u & 6 AS x FROM (SELECT 3 AS u) AS t"));
        job.Str("status").Should().Be("completed", job.ToJsonString());
        job.Str("output.text").Should().Contain("\"rows\":[{\"x\":2}]");
    }

    [Fact]
    public async Task Ddl_is_refused_for_a_tenant_the_options_do_not_name() =>
        await Refused(Call("db_write", "CREATE TABLE mine (id integer)"), "db.ddl", "db/write", OrchestratorApp.GlobexKey, "globex");

    [Fact]
    public async Task A_keyword_inside_a_string_literal_is_data_not_a_statement()
    {
        var table = Table();
        await Act(OrchestratorApp.AcmeKey, Call("db_write", $"CREATE TABLE {table} (body text)"));
        var job = await Act(OrchestratorApp.AcmeKey,
            Call("db_write", $"INSERT INTO {table} (body) VALUES ('ATTACH ''x''; PRAGMA y; -- sqlite_master')"),
            Call("db_query", $"SELECT body FROM {table}"));
        job.Str("status").Should().Be("completed", job.ToJsonString());
        job.Str("output.text").Should().Contain("ATTACH 'x'; PRAGMA y; -- sqlite_master");
    }

    [Fact]
    public async Task Another_tenants_data_is_out_of_reach_whatever_the_statement_says()
    {
        var table = Table();
        var secret = "acme-secret-" + Guid.NewGuid().ToString("N")[..8];
        var written = await Act(OrchestratorApp.AcmeKey,
            Call("db_write", $"CREATE TABLE {table} (body text)"),
            Call("db_write", $"INSERT INTO {table} (body) VALUES ($1)", new[] { secret }));
        written.Str("status").Should().Be("completed", written.ToJsonString());

        // Globex's own database has no such table: the same name is another tenant's table.
        var read = await Act(OrchestratorApp.GlobexKey, Call("db_query", $"SELECT * FROM {table}"));
        read.ToJsonString().Should().NotContain(secret);
        read.Str("output.text").Should().MatchRegex("no such table|does not exist");

        if (TestStore.IsPostgres)
            await Refused(Call("db_query", $"SELECT * FROM {PostgresTenantDatabase.SchemaOf("acme")}.{table}"), "db.reserved", "db/query", OrchestratorApp.GlobexKey, "globex");
        else
        {
            var acmeFile = Path.Combine(_app.Folder, "workspaces", "acme", ".db", "tenant.db");
            File.Exists(acmeFile).Should().BeTrue();
            await Refused(Call("db_write", $"ATTACH DATABASE '{acmeFile}' AS acme"), "db.attach", "db/write", OrchestratorApp.GlobexKey, "globex");
        }
    }

    [Fact]
    public async Task File_effects_do_not_reach_the_tenants_database()
    {
        await Act(OrchestratorApp.AcmeKey, Call("db_query", "SELECT 1 AS one"));
        using var client = _app.ClientFor();
        var (_, problem) = await client.ActAsync(new { intent = "agent/run", input = "Overwrite.\n/call fs_write {\"path\":\".db/tenant.db\",\"content\":\"garbage\"}" });
        problem.Str("code").Should().Be("capability_denied", problem.ToJsonString());
        problem.Str("rule").Should().Be("fs.reserved");
    }

    // ---- the engine confines, not only the text check ----

    TenantDatabase Engine => _app.Services.GetRequiredService<TenantDatabase>();

    static EffectCall Direct(string tenant, string sql) =>
        new("db/query", JsonSerializer.SerializeToElement(new { sql }), tenant, $"job_direct/{Guid.NewGuid():N}", "alice");

    async Task<string?> EngineRule(Func<Task<EffectResult>> run)
    {
        try
        {
            var result = await run();
            return result.Ok ? null : "failed: " + result.Content;
        }
        catch (EffectRefusedException refused)
        {
            return refused.Rule;
        }
    }

    [Fact]
    public async Task The_engine_refuses_what_the_text_check_would_have_let_through()
    {
        var table = Table();
        var call = Direct("acme", "");
        (await Engine.WriteAsync(call, $"CREATE TABLE {table} (id integer)", default, SqlKind.Ddl, CancellationToken.None)).Ok.Should().BeTrue();

        // These go straight to the engine, past SqlRules: the engine alone must refuse them.
        (await EngineRule(() => Engine.QueryAsync(call, $"INSERT INTO {table} (id) VALUES (1)", default, CancellationToken.None)))
            .Should().Be("db.read-only", "db/query's transaction cannot write");
        if (TestStore.IsPostgres)
        {
            (await EngineRule(() => Engine.QueryAsync(call, "SELECT * FROM public.\"Jobs\"", default, CancellationToken.None))).Should().Be("db.privilege");
            (await EngineRule(() => Engine.QueryAsync(call, "SELECT query_to_xml('select * from public.\"AuditEntries\"', true, false, '')", default, CancellationToken.None)))
                .Should().Be("db.privilege", "SQL built at run time reaches no more than the tenant's role may");
            (await EngineRule(() => Engine.WriteAsync(Direct("acme", ""), $"DROP TABLE {TenantDatabase.JournalTable}", default, SqlKind.Ddl, CancellationToken.None)))
                .Should().Be("db.privilege", "the journal is not the tenant role's to drop");
            await Engine.QueryAsync(Direct("globex", ""), "SELECT 1", default, CancellationToken.None);
            (await EngineRule(() => Engine.QueryAsync(Direct("globex", ""), $"SELECT * FROM {PostgresTenantDatabase.SchemaOf("acme")}.{table}", default, CancellationToken.None)))
                .Should().Be("db.privilege", "another tenant's schema is closed to this tenant's role");
            var storeUser = new Npgsql.NpgsqlConnectionStringBuilder(TestStore.ConnectionFor(_app.Folder)).Username;
            (await EngineRule(() => Engine.WriteAsync(Direct("acme", ""), $"SELECT set_config('role', '{storeUser}', true)", default, SqlKind.Write, CancellationToken.None)))
                .Should().Be("db.privilege", "the tenant's role cannot become the store's user, even through set_config");
            (await EngineRule(() => Engine.QueryAsync(call, "SELECT 1; SELECT 2", default, CancellationToken.None))).Should().Be("db.multiple-statements");
        }
        else
        {
            (await EngineRule(() => Engine.WriteAsync(Direct("acme", ""), "ATTACH DATABASE ':memory:' AS other", default, SqlKind.Write, CancellationToken.None))).Should().Be("db.attach");
            (await EngineRule(() => Engine.WriteAsync(Direct("acme", ""), $"INSERT INTO {TenantDatabase.JournalTable} (key, result, at) VALUES ('k', 'r', 'now')", default, SqlKind.Write, CancellationToken.None)))
                .Should().Be("db.reserved", "the journal is Orchestrator's");
            (await EngineRule(() => Engine.QueryAsync(call, "SELECT * FROM sqlite_schema", default, CancellationToken.None))).Should().Be("db.catalog");
            (await EngineRule(() => Engine.WriteAsync(Direct("acme", ""), "PRAGMA writable_schema = ON", default, SqlKind.Write, CancellationToken.None))).Should().Be("db.pragma");
            var extension = await EngineRule(() => Engine.QueryAsync(call, "SELECT load_extension('x')", default, CancellationToken.None));
            extension.Should().Be("db.extension", extension);
            (await EngineRule(() => Engine.QueryAsync(call, "SELECT 1; SELECT 2", default, CancellationToken.None))).Should().Be("db.multiple-statements");
            (await EngineRule(() => Engine.WriteAsync(Direct("globex", ""), "CREATE TABLE x (id integer)", default, SqlKind.Ddl, CancellationToken.None)))
                .Should().Be("db.ddl", "globex may not change its schema");
        }
    }

    [Fact]
    public async Task A_write_runs_once_per_key_and_a_second_run_answers_what_the_first_recorded()
    {
        var table = Table();
        await Engine.WriteAsync(Direct("acme", ""), $"CREATE TABLE {table} (id integer)", default, SqlKind.Ddl, CancellationToken.None);
        var call = Direct("acme", "");
        var first = await Engine.WriteAsync(call, $"INSERT INTO {table} (id) VALUES (1)", default, SqlKind.Write, CancellationToken.None);
        var second = await Engine.WriteAsync(call, $"INSERT INTO {table} (id) VALUES (1)", default, SqlKind.Write, CancellationToken.None);

        second.Should().Be(first, "the journal answers for a key it holds");
        (await Engine.RecordedAsync(call, CancellationToken.None)).Should().Be(first.Content);
        (await Engine.RecordedAsync(Direct("acme", ""), CancellationToken.None)).Should().BeNull("a key never written is not applied");
        var count = await Engine.QueryAsync(call, $"SELECT count(*) AS n FROM {table}", default, CancellationToken.None);
        count.Content.Should().Contain("[{\"n\":1}]", "the statement ran once");
    }
}

/// <summary>The shipped rules: db/write waits for a person by default, and a rerun never runs a statement again.</summary>
public sealed class DatabaseApprovalTests : IDisposable
{
    readonly OrchestratorApp _app = new(ApprovalHelpers.Settings(("Orchestrator:Effects:Database:DdlTenants:0", "acme")));

    public void Dispose() => _app.Dispose();

    [Fact]
    public async Task A_write_waits_for_approval_under_the_shipped_rule_runs_once_and_a_rerun_runs_nothing()
    {
        var table = "t" + Guid.NewGuid().ToString("N")[..10];
        using var alice = _app.ClientFor();
        using var dave = _app.ClientFor(ApprovalHelpers.AcmeApprover);
        var input = "Keep the records.\n" +
                    $"/call db_write {JsonSerializer.Serialize(new { sql = $"CREATE TABLE {table} (body text)" })}\n" +
                    $"/call db_write {JsonSerializer.Serialize(new { sql = $"INSERT INTO {table} (body) VALUES ($1)", @params = new[] { "once" } })}\n" +
                    $"/call db_query {JsonSerializer.Serialize(new { sql = $"SELECT count(*) AS n FROM {table}" })}";
        var jobId = await alice.ActAsync(input);
        for (var write = 0; write < 2; write++)
        {
            await alice.AwaitingAsync(jobId);
            var pending = (await alice.ApprovalsOfAsync(jobId)).Where(a => a!.Str("status") == "pending").ToList();
            pending.Should().ContainSingle();
            pending[0]!.Str("capability").Should().Be("db/write");
            pending[0]!.Str("rule").Should().Be("db-writes", "db/write needs a person by default");
            (await dave.ApproveAsync(pending[0]!.Str("id"))).Response.StatusCode.Should().Be(HttpStatusCode.OK);
        }
        var job = await alice.EndedAsync(jobId);
        job.Str("status").Should().Be("completed", job.ToJsonString());
        job.Str("output.text").Should().Contain("[{\"n\":1}]");

        var response = await alice.PostAsync($"/v1/replays/{job.Str("traceId")}/rerun", null);
        var report = await Api.BodyOf(response);
        response.StatusCode.Should().Be(HttpStatusCode.OK, report.ToJsonString());
        report["identical"]!.GetValue<bool>().Should().BeTrue(report.ToJsonString());
        var database = _app.Services.GetRequiredService<TenantDatabase>();
        var count = await database.QueryAsync(new("db/query", default, "acme", "job_check/1", "alice"), $"SELECT count(*) AS n FROM {table}", default, CancellationToken.None);
        count.Content.Should().Contain("[{\"n\":1}]", "a rerun answers from the recording and runs no statement");
    }
}
