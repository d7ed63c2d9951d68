using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Tenancy;

public sealed class AuditTests
{
    const string AuditorKey = "test-key-acme-auditor-01";

    static Dictionary<string, string?> WithAuditor => new()
    {
        ["Orchestrator:ApiKeys:4:Key"] = AuditorKey,
        ["Orchestrator:ApiKeys:4:Tenant"] = "acme",
        ["Orchestrator:ApiKeys:4:Principal"] = "audrey",
        ["Orchestrator:ApiKeys:4:Roles:0"] = "auditor",
    };

    [Fact]
    public async Task Admin_changes_and_refusals_are_entries_whose_actor_comes_from_the_key()
    {
        using var app = new OrchestratorApp(WithAuditor);
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        using var user = app.ClientFor();

        (await ops.PostAsync("/v1/admin/models/simulated/quarantine", null)).StatusCode.Should().Be(HttpStatusCode.OK);
        (await ops.PostAsync("/v1/admin/models/simulated/release", null)).StatusCode.Should().Be(HttpStatusCode.OK);
        var (refused, _) = await user.ActAsync(new { intent = "text/respond", input = "write it", tools = new[] { "fs/write" } });
        refused.StatusCode.Should().Be(HttpStatusCode.Forbidden);

        var page = await Api.BodyOf(await ops.GetAsync("/v1/audit"));
        var items = page["items"]!.AsArray().Select(i => i!.AsObject()).ToList();
        items.Select(i => i.Str("action")).Should().Equal(["act.refused", "model.release", "model.quarantine"], "newest first");
        items[2].Str("principal").Should().Be("olga", "the actor is the key's principal");
        items[2].Str("resource").Should().Be("models/simulated");
        items[0].Str("tenant").Should().Be("acme");
        items[0].Str("decision").Should().Be("denied");
        items[0].Str("details.code").Should().Be("capability_denied");

        var verify = await Api.BodyOf(await ops.GetAsync("/v1/audit/verify"));
        verify.Str("ok").Should().Be("True");
        verify.Str("checked").Should().Be("3");
    }

    [Fact]
    public async Task Auditors_read_their_tenant_users_read_nothing()
    {
        using var app = new OrchestratorApp(WithAuditor);
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        (await ops.PostAsync("/v1/admin/models/simulated/quarantine", null)).EnsureSuccessStatusCode();
        using var user = app.ClientFor();
        (await user.ActAsync(new { input = "x", tools = new[] { "fs/write" } })).Response.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        using var globex = app.ClientFor(OrchestratorApp.GlobexKey);
        (await globex.ActAsync(new { input = "x", tools = new[] { "fs/write" } })).Response.StatusCode.Should().Be(HttpStatusCode.Forbidden);

        using var auditor = app.ClientFor(AuditorKey);
        var page = await Api.BodyOf(await auditor.GetAsync("/v1/audit"));
        page["items"]!.AsArray().Select(i => i.Str("tenant")).Should().OnlyContain(t => t == "acme", "an auditor sees its own tenant");
        page["items"]!.AsArray().Should().HaveCount(1);
        (await auditor.GetAsync("/v1/audit?tenant=globex")).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await user.GetAsync("/v1/audit")).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await user.GetAsync("/v1/audit/verify")).StatusCode.Should().Be(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task An_edited_or_deleted_row_breaks_verify_at_that_row()
    {
        using var app = new OrchestratorApp();
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        for (var i = 0; i < 3; i++)
        {
            (await ops.PostAsync("/v1/admin/models/simulated/quarantine", null)).EnsureSuccessStatusCode();
            (await ops.PostAsync("/v1/admin/models/simulated/release", null)).EnsureSuccessStatusCode();
        }
        (await Verify(ops))["ok"]!.GetValue<bool>().Should().BeTrue();

        Sql(app, "UPDATE \"AuditEntries\" SET \"Principal\" = 'mallory' WHERE \"Seq\" = 3");
        var edited = await Verify(ops);
        edited["ok"]!.GetValue<bool>().Should().BeFalse();
        edited.Str("brokenAt").Should().Be("3");

        Sql(app, "UPDATE \"AuditEntries\" SET \"Principal\" = 'olga' WHERE \"Seq\" = 3");
        Sql(app, "DELETE FROM \"AuditEntries\" WHERE \"Seq\" = 5");
        var deleted = await Verify(ops);
        deleted["ok"]!.GetValue<bool>().Should().BeFalse();
        deleted.Str("brokenAt").Should().Be("5");
    }

    [Fact]
    public async Task Pages_follow_the_cursor_and_filters_narrow()
    {
        using var app = new OrchestratorApp();
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        for (var i = 0; i < 3; i++)
        {
            (await ops.PostAsync("/v1/admin/models/simulated/quarantine", null)).EnsureSuccessStatusCode();
            (await ops.PostAsync("/v1/admin/models/simulated/release", null)).EnsureSuccessStatusCode();
        }
        var first = await Api.BodyOf(await ops.GetAsync("/v1/audit?limit=4"));
        first["items"]!.AsArray().Should().HaveCount(4);
        var second = await Api.BodyOf(await ops.GetAsync($"/v1/audit?limit=4&cursor={first.Str("nextCursor")}"));
        second["items"]!.AsArray().Select(i => i.Str("seq")).Should().Equal(["2", "1"]);
        second["nextCursor"].Should().BeNull();
        var releases = await Api.BodyOf(await ops.GetAsync("/v1/audit?action=model.release"));
        releases["items"]!.AsArray().Should().HaveCount(3);
        (await ops.GetAsync("/v1/audit?limit=0")).StatusCode.Should().Be(HttpStatusCode.BadRequest);
    }

    static async Task<JsonObject> Verify(HttpClient client) => await Api.BodyOf(await client.GetAsync("/v1/audit/verify"));

    /// <summary>Edits the store behind the service's back, as a tamperer would (identifiers quoted: both stores read them).</summary>
    static void Sql(OrchestratorApp app, string sql)
    {
        using System.Data.Common.DbConnection connection = TestStore.IsPostgres
            ? new Npgsql.NpgsqlConnection(TestStore.ConnectionFor(app.Folder))
            : new SqliteConnection($"Data Source={Path.Combine(app.Folder, "orchestrator.db")};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery().Should().Be(1, sql);
    }
}
