using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Replay;

public sealed class ReplayTests : IAsyncLifetime
{
    const string ModelSecret = "sk-live-model-secret-0123456789abcdef";
    FakeModelServer _failing = null!;
    OrchestratorApp _app = null!;

    public async Task InitializeAsync()
    {
        _failing = await FakeModelServer.StartAsync();
        _failing.Default = FakeModelServer.Behavior.Fail(500);
        _app = new OrchestratorApp(new Dictionary<string, string?>
        {
            ["Orchestrator:Gateway:MaxRetries"] = "0",
            ["Orchestrator:Models:0:Id"] = "flaky",
            ["Orchestrator:Models:0:Provider"] = "openai",
            ["Orchestrator:Models:0:Endpoint"] = _failing.BaseUrl,
            ["Orchestrator:Models:0:ApiKey"] = ModelSecret,
            ["Orchestrator:Models:0:Quality"] = "0.9",
            ["Orchestrator:Models:1:Id"] = "steady",
            ["Orchestrator:Models:1:Provider"] = "simulated",
            ["Orchestrator:Models:1:Quality"] = "0.5",
        });
    }

    public async Task DisposeAsync()
    {
        _app.Dispose();
        await _failing.DisposeAsync();
    }

    static string Script(params string[] calls) => "Do it.\n" + string.Join("\n", calls.Select(c => "/call " + c));

    static object Steady(object request) => request;

    async Task<JsonObject> Run(HttpClient client, object request)
    {
        var (response, job) = await client.ActAsync(request);
        response.StatusCode.Should().Be(HttpStatusCode.OK, job.ToJsonString());
        return job;
    }

    static async Task<JsonObject> Rerun(HttpClient client, string traceId, object? body = null)
    {
        var response = await client.PostAsync($"/v1/replays/{traceId}/rerun", body is null ? null : JsonContent.Create(body));
        var report = await Api.BodyOf(response);
        response.StatusCode.Should().Be(HttpStatusCode.OK, report.ToJsonString());
        return report;
    }

    [Fact]
    public async Task Rerunning_any_completed_job_reproduces_its_path_and_output()
    {
        using var client = _app.ClientFor();
        var file = $"r-{Guid.NewGuid():N}.txt";
        var jobs = new[]
        {
            await Run(client, new { input = "plain", routing = new { models = new[] { "steady" } } }),
            await Run(client, new { intent = "problem/solve", input = "2+2?", routing = new { models = new[] { "steady" } } }),
            await Run(client, new
            {
                intent = "agent/run",
                routing = new { models = new[] { "steady" } },
                input = Script($$"""fs_write {"path":"{{file}}","content":"a"}""", $$"""fs_append {"path":"{{file}}","content":"b"}""", $$"""fs_read {"path":"{{file}}"}"""),
            }),
            // quality-first tries the failing model first and falls back to the steady one.
            await Run(client, new { input = "fall back", routing = new { strategy = "quality-first" } }),
        };
        jobs[3]["routing"]![0]!["decision"]!["attempts"]!.AsArray().Select(a => a.Str("outcome")).Should().Equal("failed", "succeeded");
        var content = File.ReadAllText(Path.Combine(_app.Folder, "workspaces", "acme", file));

        foreach (var job in jobs)
        {
            var report = await Rerun(client, job.Str("traceId"));

            report["identical"]!.GetValue<bool>().Should().BeTrue(report.ToJsonString());
            report["path"]!.AsArray().Select(p => p!.GetValue<string>()).Should().Equal(job["output"]!["path"]!.AsArray().Select(p => p!.GetValue<string>()));
            report.Str("output").Should().Be(job.Str("output.text"));
            report["nodes"]!.AsArray().Should().OnlyContain(n => n.Str("source") == "recorded");
        }
        File.ReadAllText(Path.Combine(_app.Folder, "workspaces", "acme", file)).Should().Be(content, "a rerun applies no effect");
    }

    [Fact]
    public async Task A_changed_prompt_shows_the_divergence_at_the_node_it_changes()
    {
        using var client = _app.ClientFor();
        var job = await Run(client, new { intent = "problem/solve", input = "Why is the sky blue?", routing = new { models = new[] { "steady" } } });
        var package = await Api.BodyOf(await client.GetAsync($"/v1/replays/{job.Str("traceId")}"));
        var policy = package["policy"]!.DeepClone().AsObject();
        policy["nodes"]![1]!["prompt"] = "You are a poet. Answer in verse.";

        var report = await Rerun(client, job.Str("traceId"), new { policy });

        report["identical"]!.GetValue<bool>().Should().BeFalse();
        report.Str("status").Should().Be("diverged");
        report.Str("pathDiff.divergedAt").Should().Be("writer");
        report["path"]!.AsArray().Select(p => p!.GetValue<string>()).Should().Equal("solver");
        report["nodes"]!.AsArray().Select(n => (n.Str("id"), n.Str("source"))).Should().Equal(("solver", "recorded"), ("writer", "missing"));
    }

    [Fact]
    public async Task A_policy_offering_other_tools_diverges_at_the_first_model_turn()
    {
        using var client = _app.ClientFor();
        var file = $"c-{Guid.NewGuid():N}.txt";
        var job = await Run(client, new
        {
            intent = "agent/run",
            routing = new { models = new[] { "steady" } },
            input = Script($$"""fs_write {"path":"{{file}}","content":"x"}""", $$"""fs_append {"path":"{{file}}","content":"y"}"""),
        });
        var package = await Api.BodyOf(await client.GetAsync($"/v1/replays/{job.Str("traceId")}"));
        var policy = package["policy"]!.DeepClone().AsObject();
        policy["capabilities"] = new JsonArray("fs/read", "fs/write");

        var report = await Rerun(client, job.Str("traceId"), new { policy });

        // The model would be offered other functions: what it answers then is not in the recording.
        report.Str("status").Should().Be("diverged");
        report.Str("pathDiff.divergedAt").Should().Be("agent/model-1");
        report["path"]!.AsArray().Should().BeEmpty();
    }

    [Fact]
    public async Task A_run_that_was_denied_a_capability_replays_to_the_same_denial()
    {
        using var client = _app.ClientFor();
        var (_, problem) = await client.ActAsync(new
        {
            intent = "agent/run",
            tools = new[] { "fs/read" },
            routing = new { models = new[] { "steady" } },
            input = Script("""fs_write {"path":"denied.txt","content":"x"}"""),
        });
        problem.Str("code").Should().Be("capability_denied");

        var report = await Rerun(client, problem.Str("traceId"));

        report["identical"]!.GetValue<bool>().Should().BeTrue(report.ToJsonString());
        report.Str("error.code").Should().Be("capability_denied");
        report["nodes"]!.AsArray().Select(n => (n.Str("id"), n.Str("source"))).Should().Equal(("agent/model-1", "recorded"), ("agent/effect-1-1", "denied"));
    }

    [Theory]
    [InlineData("capability_denied", """fs_read {"path":"../globex/theirs.txt"}""")]
    [InlineData("sandbox_violation", """process_run {"argv":["not-on-the-allow-list"]}""")]
    [InlineData("effect_failed", """fs_write {"path":".","content":"x"}""")]
    [InlineData("model_unavailable", null)]
    public async Task A_failed_run_reruns_to_the_same_failure_at_the_same_node(string code, string? call)
    {
        using var client = _app.ClientFor();
        var (_, problem) = call is null
            ? await client.ActAsync(new { input = "no model answers", routing = new { models = new[] { "flaky" } } })
            : await client.ActAsync(new { intent = "agent/run", routing = new { models = new[] { "steady" } }, input = Script(call) });
        problem.Str("code").Should().Be(code);

        var report = await Rerun(client, problem.Str("traceId"));

        report["identical"]!.GetValue<bool>().Should().BeTrue(report.ToJsonString());
        report.Str("status").Should().Be("failed");
        report.Str("error.code").Should().Be(code);
        report["nodes"]!.AsArray().Last()!.Str("source").Should().Be("recorded-failure");
    }

    [Fact]
    public async Task Secrets_never_appear_in_a_package()
    {
        using var client = _app.ClientFor();
        var job = await Run(client, new
        {
            input = $"My key is {OrchestratorApp.AcmeKey}, the header was Bearer abcdef0123456789 and a token sk-proj-abcdefghijklmnop1234",
            routing = new { strategy = "quality-first" },
        });

        var text = await (await client.GetAsync($"/v1/replays/{job.Str("traceId")}")).Content.ReadAsStringAsync();

        text.Should().NotContain(OrchestratorApp.AcmeKey).And.NotContain("abcdef0123456789").And.NotContain("sk-proj-abcdefghijklmnop1234")
            .And.NotContain(ModelSecret).And.Contain("[scrubbed]");
        var package = JsonNode.Parse(text)!;
        package["routing"]!["models"]!.AsArray().Single(m => m.Str("id") == "flaky")!["hasApiKey"]!.GetValue<bool>().Should().BeTrue();
    }

    [Fact]
    public async Task The_package_has_what_decided_the_run()
    {
        using var client = _app.ClientFor();
        var job = await Run(client, new { input = "what decided me?", routing = new { strategy = "quality-first" } });

        var package = await Api.BodyOf(await client.GetAsync($"/v1/replays/{job.Str("traceId")}?download=true"));

        package.Str("format").Should().Be("orchestrator.replay/1");
        package.Str("intent").Should().Be("text/respond");
        package.Str("request.input").Should().Be("what decided me?");
        package.Str("versions.policy.version").Should().Be("1");
        package.Str("versions.policy.hash").Should().MatchRegex("^[0-9a-f]{64}$");
        package.Str("versions.prompts.hash").Should().MatchRegex("^[0-9a-f]{64}$");
        package.Str("versions.routing.hash").Should().MatchRegex("^[0-9a-f]{64}$");
        var node = package["nodes"]![0]!;
        node.Str("output.decision.strategy").Should().Be("quality-first");
        node["output"]!["decision"]!["candidates"]!.AsArray().Should().HaveCount(2);
        node["input"]!["messages"]!.AsArray().Should().NotBeEmpty();
        package["seeds"]!["perNode"]!["respond"].Should().NotBeNull();
        package["seeds"]!["perNode"]!.AsObject().Select(s => s.Value!.GetValue<long>()).Should()
            .OnlyContain(seed => seed >= 0 && seed < (1L << 53), "a seed must survive any JSON reader, JavaScript's included");
        package.Str("timings.deadlineMs").Should().Be("30000");
    }

    [Fact]
    public async Task Another_tenant_cannot_read_rerun_or_diff_a_package()
    {
        using var acme = _app.ClientFor();
        using var globex = _app.ClientFor(OrchestratorApp.GlobexKey);
        var job = await Run(acme, new { input = "mine", routing = new { models = new[] { "steady" } } });
        var trace = job.Str("traceId");

        (await globex.GetAsync($"/v1/replays/{trace}")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await globex.PostAsync($"/v1/replays/{trace}/rerun", null)).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await globex.GetAsync($"/v1/replays/{trace}/diff?against={trace}")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await _app.ClientFor(OrchestratorApp.OperatorKey).GetAsync($"/v1/replays/{trace}")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Diff_compares_path_routing_output_and_timing()
    {
        using var client = _app.ClientFor();
        var a = await Run(client, new { input = "compare me", routing = new { models = new[] { "steady" } } });
        var b = await Run(client, new { input = "compare me", routing = new { models = new[] { "steady" } } });
        var c = await Run(client, new { intent = "problem/solve", input = "compare me", routing = new { models = new[] { "steady" } } });

        var same = await Api.BodyOf(await client.GetAsync($"/v1/replays/{a.Str("traceId")}/diff?against={b.Str("traceId")}"));
        var different = await Api.BodyOf(await client.GetAsync($"/v1/replays/{a.Str("traceId")}/diff?against={c.Str("traceId")}"));

        same["identical"]!.GetValue<bool>().Should().BeTrue(same.ToJsonString());
        same["timing"]!["runMs"].Should().NotBeNull();
        different["identical"]!.GetValue<bool>().Should().BeFalse();
        different["path"]!["same"]!.GetValue<bool>().Should().BeFalse();
        different.Str("path.divergedAt").Should().Be("respond");
        different["versions"]!["samePolicy"]!.GetValue<bool>().Should().BeFalse();
        (await client.GetAsync($"/v1/replays/{a.Str("traceId")}/diff")).StatusCode.Should().Be(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task An_exported_package_imports_elsewhere_and_replays_there()
    {
        using var client = _app.ClientFor();
        var job = await Run(client, new { intent = "problem/solve", input = "portable", routing = new { models = new[] { "steady" } } });
        var exported = await (await client.GetAsync($"/v1/replays/{job.Str("traceId")}?download=true")).Content.ReadAsStringAsync();

        using var laptop = new OrchestratorApp();
        using var ops = laptop.ClientFor(OrchestratorApp.OperatorKey);
        var imported = await ops.PostAsync("/v1/replays", new StringContent(exported, System.Text.Encoding.UTF8, "application/json"));
        var again = await ops.PostAsync("/v1/replays", new StringContent(exported, System.Text.Encoding.UTF8, "application/json"));
        var notOperator = await laptop.ClientFor().PostAsync("/v1/replays", new StringContent(exported, System.Text.Encoding.UTF8, "application/json"));

        imported.StatusCode.Should().Be(HttpStatusCode.Created, await imported.Content.ReadAsStringAsync());
        again.StatusCode.Should().Be(HttpStatusCode.Conflict);
        notOperator.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        var report = await Rerun(ops, job.Str("traceId"));
        report["identical"]!.GetValue<bool>().Should().BeTrue(report.ToJsonString());
        var bad = await ops.PostAsync("/v1/replays", JsonContent.Create(new { format = "something/else" }));
        bad.StatusCode.Should().Be(HttpStatusCode.BadRequest);
    }

    [Theory]
    [InlineData("output-not-a-checkpoint")]
    [InlineData("duplicate-node-ids")]
    [InlineData("no-outcome")]
    [InlineData("no-versions")]
    [InlineData("attempts-not-a-number")]
    public async Task A_package_the_rerun_or_diff_could_not_read_is_refused_at_import(string damage)
    {
        using var client = _app.ClientFor();
        var job = await Run(client, new { intent = "problem/solve", input = "to be damaged", routing = new { models = new[] { "steady" } } });
        var package = JsonNode.Parse(await (await client.GetAsync($"/v1/replays/{job.Str("traceId")}")).Content.ReadAsStringAsync())!.AsObject();
        var traceId = Guid.NewGuid().ToString("N");
        package["traceId"] = traceId;
        var nodes = package["nodes"]!.AsArray();
        switch (damage)
        {
            case "output-not-a-checkpoint": nodes[0]!["output"] = "x"; break;
            case "duplicate-node-ids": nodes.Add(nodes[0]!.DeepClone()); break;
            case "no-outcome": package.Remove("outcome"); break;
            case "no-versions": package.Remove("versions"); break;
            case "attempts-not-a-number": nodes[0]!["attempts"] = "many"; break;
        }
        using var ops = _app.ClientFor(OrchestratorApp.OperatorKey);

        var imported = await ops.PostAsync("/v1/replays", new StringContent(package.ToJsonString(), System.Text.Encoding.UTF8, "application/json"));

        imported.StatusCode.Should().Be(HttpStatusCode.BadRequest, await imported.Content.ReadAsStringAsync());
        var problem = await Api.BodyOf(imported);
        problem.Str("code").Should().Be("validation_failed");
        problem.Str("detail").Should().NotContain("Orchestrator.", "a problem speaks of fields, not of the service's types");
        (await ops.GetAsync($"/v1/replays/{traceId}")).StatusCode.Should().Be(HttpStatusCode.NotFound, "nothing was imported");
    }

    [Fact]
    public async Task A_rerun_with_the_recorded_policy_reports_its_recorded_hash()
    {
        using var client = _app.ClientFor();
        var job = await Run(client, new { intent = "problem/solve", input = "which policy", routing = new { models = new[] { "steady" } } });
        var package = await Api.BodyOf(await client.GetAsync($"/v1/replays/{job.Str("traceId")}"));

        var report = await Rerun(client, job.Str("traceId"));

        report.Str("policy.hash").Should().NotBeEmpty().And.Be(package.Str("versions.policy.hash"));
    }

    [Fact]
    public async Task The_command_line_verb_reruns_a_file_and_exits_non_zero_when_the_path_differs()
    {
        using var client = _app.ClientFor();
        var job = await Run(client, new { intent = "problem/solve", input = "offline", routing = new { models = new[] { "steady" } } });
        var folder = Directory.CreateTempSubdirectory("replay-cli-").FullName;
        try
        {
            var package = Path.Combine(folder, "package.json");
            await File.WriteAllTextAsync(package, await (await client.GetAsync($"/v1/replays/{job.Str("traceId")}")).Content.ReadAsStringAsync());
            var policy = JsonNode.Parse(await File.ReadAllTextAsync(package))!["policy"]!.AsObject();
            policy["nodes"]![0]!["prompt"] = "A different solver.";
            var edited = Path.Combine(folder, "policy.json");
            await File.WriteAllTextAsync(edited, policy.ToJsonString());

            var (same, sameOut) = await Cli("replay", package);
            var (differs, differsOut) = await Cli("replay", package, "--policy", edited);
            var (missing, _) = await Cli("replay", Path.Combine(folder, "nope.json"));

            same.Should().Be(0, sameOut);
            JsonNode.Parse(sameOut)!["identical"]!.GetValue<bool>().Should().BeTrue();
            differs.Should().Be(1, differsOut);
            JsonNode.Parse(differsOut)!.Str("pathDiff.divergedAt").Should().Be("solver");
            missing.Should().Be(2);
        }
        finally
        {
            OrchestratorApp.TryDelete(folder);
        }
    }

    static async Task<(int ExitCode, string Output)> Cli(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet", [ServiceProcess.Binary(), .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await output + await error is var all && process.ExitCode == 2 ? all : await output);
    }

    [Fact]
    public async Task A_replay_past_its_retention_is_gone()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));
        using var app = new OrchestratorApp(new Dictionary<string, string?> { ["Orchestrator:Replay:Retention"] = "1.00:00:00" }, time);
        using var client = app.ClientFor();
        var job = await Run(client, new { input = "short-lived" });
        (await client.GetAsync($"/v1/replays/{job.Str("traceId")}")).StatusCode.Should().Be(HttpStatusCode.OK);

        time.Advance(TimeSpan.FromDays(2));
        var gone = await client.GetAsync($"/v1/replays/{job.Str("traceId")}");

        gone.StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await Api.BodyOf(gone)).Str("detail").Should().Contain("retention");
        for (var i = 0; i < 200 && (await Api.BodyOf(await client.GetAsync($"/v1/jobs/{job.Str("jobId")}/graph")))["nodes"]!.AsArray().Count > 0; i++)
            await Task.Delay(10);
        (await Api.BodyOf(await client.GetAsync($"/v1/jobs/{job.Str("jobId")}/graph")))["nodes"]!.AsArray().Should().BeEmpty("the sweep removed the recorded nodes");
    }
}
