using System.Net;
using System.Text.Json.Nodes;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Workflow;

/// <summary>Intents as graphs: the agent loop with real file effects, multi-node intents, capabilities.</summary>
public sealed class AgentTests : IClassFixture<AgentTests.App>
{
    public sealed class App : IDisposable
    {
        public OrchestratorApp Host { get; } = new(new Dictionary<string, string?>
        {
            ["Orchestrator:Effects:ProcessAllowList:0"] = "echo",
        });
        public void Dispose() => Host.Dispose();
    }

    readonly OrchestratorApp _app;

    public AgentTests(App app) => _app = app.Host;

    string Workspace(string tenant) => Path.Combine(_app.Folder, "workspaces", tenant);

    static string Script(params string[] calls) => "Do the work.\n" + string.Join("\n", calls.Select(c => "/call " + c));

    async Task<JsonObject> Graph(HttpClient client, string jobId) => await Api.BodyOf(await client.GetAsync($"/v1/jobs/{jobId}/graph"));

    [Fact]
    public async Task Agent_run_with_scripted_tool_calls_performs_real_file_effects()
    {
        using var client = _app.ClientFor();
        var file = $"notes-{Guid.NewGuid():N}.txt";

        var (response, job) = await client.ActAsync(new
        {
            intent = "agent/run",
            input = Script(
                $$"""fs_write {"path":"{{file}}","content":"first\n"}""",
                $$"""fs_append {"path":"{{file}}","content":"second\n"}""",
                $$"""fs_read {"path":"{{file}}"}"""),
        });

        response.StatusCode.Should().Be(HttpStatusCode.OK, job.ToJsonString());
        File.ReadAllText(Path.Combine(Workspace("acme"), file)).Should().Be("first\nsecond\n");
        job.Str("output.text").Should().Contain("Done after 3 tool call(s)").And.Contain("first\\nsecond\\n");
        job["output"]!["path"]!.AsArray().Select(n => n!.GetValue<string>()).Should().Equal(
            "agent/model-1", "agent/effect-1-1", "agent/model-2", "agent/effect-2-1", "agent/model-3", "agent/effect-3-1", "agent/model-4");

        var graph = await Graph(client, job.Str("jobId"));
        var nodes = graph["nodes"]!.AsArray();
        nodes.Should().HaveCount(7).And.OnlyContain(n => n.Str("status") == "succeeded" && n.Str("attempts") == "1");
        nodes.Where(n => n.Str("kind") == "effect").Select(n => n.Str("name")).Should().Equal("fs/write", "fs/append", "fs/read");
        graph["edges"]!.AsArray().Select(e => (e.Str("from"), e.Str("to"))).Should().Contain(
            [("agent/model-1", "agent/effect-1-1"), ("agent/effect-1-1", "agent/model-2")]);
    }

    [Fact]
    public async Task Tenants_have_separate_workspaces()
    {
        using var globex = _app.ClientFor(OrchestratorApp.GlobexKey);

        var (_, job) = await globex.ActAsync(new { intent = "agent/run", input = Script("""fs_write {"path":"mine.txt","content":"globex"}""") });

        job.Str("status").Should().Be("completed");
        File.Exists(Path.Combine(Workspace("globex"), "mine.txt")).Should().BeTrue();
        File.Exists(Path.Combine(Workspace("acme"), "mine.txt")).Should().BeFalse();
    }

    [Fact]
    public async Task A_path_outside_the_workspace_fails_capability_denied()
    {
        using var client = _app.ClientFor();

        var (response, problem) = await client.ActAsync(new { intent = "agent/run", input = Script("""fs_read {"path":"../globex/mine.txt"}""") });

        response.StatusCode.Should().Be(HttpStatusCode.Forbidden, problem.ToJsonString());
        problem.Str("code").Should().Be("capability_denied");
        var graph = await Graph(client, problem.Str("jobId"));
        graph["nodes"]!.AsArray().Single(n => n.Str("kind") == "effect").Str("error.code").Should().Be("capability_denied");
    }

    [Theory]
    [InlineData("""fs_write {"path":".","content":"x"}""")]
    [InlineData("""fs_write {"path":"","content":"x"}""")]
    [InlineData("""fs_append {"path":".","content":"x"}""")]
    [InlineData("""fs_write {"path":5,"content":"x"}""")]
    [InlineData("""fs_write {"path":"no-content.txt"}""")]
    public async Task Arguments_the_model_gets_wrong_fail_effect_failed_and_leave_nothing_behind(string call)
    {
        using var client = _app.ClientFor();
        var workspaces = Path.Combine(_app.Folder, "workspaces");
        Directory.CreateDirectory(Workspace("acme"));
        var before = Directory.GetFileSystemEntries(workspaces, "*", SearchOption.AllDirectories).ToHashSet();

        var (response, problem) = await client.ActAsync(new { intent = "agent/run", input = Script(call) });

        response.StatusCode.Should().Be(HttpStatusCode.BadGateway, problem.ToJsonString());
        problem.Str("code").Should().Be("effect_failed", "the caller's request was valid; the model's arguments were not");
        problem.Str("detail").Should().NotContain(_app.Folder, "a problem never shows the server's folders");
        Directory.GetFileSystemEntries(workspaces, "*", SearchOption.AllDirectories).Should().BeEquivalentTo(before,
            "a refused write creates no file, inside the workspace or beside it");
    }

    [Fact]
    public async Task A_write_that_fails_on_disk_names_workspace_paths_and_leaves_no_temporary_file()
    {
        using var client = _app.ClientFor();
        var folder = $"parent-{Guid.NewGuid():N}";
        File.WriteAllText(Path.Combine(Workspace("acme"), folder), "a file where a folder is expected");

        var (response, problem) = await client.ActAsync(new { intent = "agent/run", input = Script($$"""fs_write {"path":"{{folder}}/child.txt","content":"x"}""") });

        response.StatusCode.Should().Be(HttpStatusCode.BadGateway, problem.ToJsonString());
        problem.Str("code").Should().Be("effect_failed");
        problem.Str("detail").Should().NotContain(_app.Folder);
        Directory.GetFiles(Workspace("acme"), "*.tmp-*", SearchOption.AllDirectories).Should().BeEmpty();
    }

    [Fact]
    public async Task The_request_tools_narrow_what_the_model_may_call()
    {
        using var client = _app.ClientFor();

        var (response, problem) = await client.ActAsync(new
        {
            intent = "agent/run",
            tools = new[] { "fs/read" },
            input = Script("""fs_write {"path":"sneaky.txt","content":"x"}"""),
        });

        problem.Str("code").Should().Be("capability_denied", problem.ToJsonString());
        problem.Str("detail").Should().Contain("fs_write");
        File.Exists(Path.Combine(Workspace("acme"), "sneaky.txt")).Should().BeFalse();
    }

    [Fact]
    public async Task A_function_that_is_no_effect_is_capability_denied()
    {
        using var client = _app.ClientFor();

        var (_, problem) = await client.ActAsync(new { intent = "agent/run", input = Script("""shell_exec {"cmd":"rm -rf /"}""") });

        problem.Str("code").Should().Be("capability_denied");
    }

    [Fact]
    public async Task Process_run_takes_argv_without_a_shell_and_refuses_programs_off_the_list()
    {
        using var client = _app.ClientFor();

        var (_, ok) = await client.ActAsync(new { intent = "agent/run", input = Script("""process_run {"argv":["echo","hello; rm -rf /"]}""") });
        var (_, refused) = await client.ActAsync(new { intent = "agent/run", input = Script("""process_run {"argv":["sh","-c","true"]}""") });

        ok.Str("status").Should().Be("completed", ok.ToJsonString());
        ok.Str("output.text").Should().Contain("hello; rm -rf /", "the argument reaches echo untouched, no shell interprets it");
        refused.Str("code").Should().Be("sandbox_violation");
    }

    [Fact]
    public async Task Problem_solve_runs_solver_then_writer()
    {
        using var client = _app.ClientFor();

        var (_, job) = await client.ActAsync(new { intent = "problem/solve", input = "What is 6 x 7?" });

        job.Str("status").Should().Be("completed");
        job["output"]!["path"]!.AsArray().Select(n => n!.GetValue<string>()).Should().Equal("solver", "writer");
        job["routing"]!.AsArray().Select(r => r.Str("node")).Should().Equal("solver", "writer");
        var graph = await Graph(client, job.Str("jobId"));
        graph["edges"]!.AsArray().Select(e => (e.Str("from"), e.Str("to"))).Should().Equal([("solver", "writer")]);
    }

    [Fact]
    public async Task An_agent_that_never_stops_calling_tools_hits_the_step_limit()
    {
        using var client = _app.ClientFor();
        var calls = Enumerable.Range(0, 10).Select(i => $$"""fs_list {"path":"."}""").ToArray();

        var (_, problem) = await client.ActAsync(new { intent = "agent/run", input = Script(calls) });

        problem.Str("code").Should().Be("step_limit_exceeded");
    }

    [Fact]
    public async Task The_graph_of_another_tenants_job_is_404()
    {
        using var acme = _app.ClientFor();
        using var globex = _app.ClientFor(OrchestratorApp.GlobexKey);
        var (_, job) = await acme.ActAsync(new { input = "private" });

        (await globex.GetAsync($"/v1/jobs/{job.Str("jobId")}/graph")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await acme.GetAsync($"/v1/jobs/{job.Str("jobId")}/graph")).StatusCode.Should().Be(HttpStatusCode.OK);
    }
}
