using System.Diagnostics;
using System.Text.Json.Nodes;
using Orchestrator.Tests.Harness;
using static Orchestrator.Tests.Evaluation.EvaluationApp;

namespace Orchestrator.Tests.Evaluation;

/// <summary>The <c>eval</c> command as a real process, and an evaluation that survives a SIGKILL.</summary>
public sealed class EvaluationProcessTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("orchestrator-eval-").FullName;

    public void Dispose() => OrchestratorApp.TryDelete(_folder);

    static string Repository => Path.GetFullPath(Path.Combine(Path.GetDirectoryName(ServiceProcess.Binary())!, "..", "..", "..", "..", ".."));

    /// <summary>Runs the command; <paramref name="models"/>: the tagged simulated models, else the default one simulated model.</summary>
    async Task<(int Code, string Output)> EvalAsync(bool models, params string[] args)
    {
        var binary = ServiceProcess.Binary();
        var start = new ProcessStartInfo("dotnet", [binary, "eval", .. args])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Path.GetDirectoryName(binary)!,
        };
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment["ConnectionStrings__Orchestrator"] = TestStore.ConnectionFor(_folder);
        start.Environment["Orchestrator__Store__Provider"] = TestStore.Provider;
        start.Environment["Orchestrator__Effects__WorkspaceRoot"] = Path.Combine(_folder, "workspaces");
        start.Environment["Serilog__MinimumLevel__Default"] = "Warning";
        start.Environment["Orchestrator__Evaluation__PollInterval"] = "00:00:00.050";
        foreach (var (key, value) in Settings().Where(s => models && s.Key.StartsWith("Orchestrator:Models", StringComparison.Ordinal)))
            start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await output + await error);
    }

    string Write(string name, JsonNode content)
    {
        var path = Path.Combine(_folder, name);
        File.WriteAllText(path, content.ToJsonString());
        return path;
    }

    [Fact]
    public async Task The_cli_exit_code_is_the_verdict_across_gate_combinations()
    {
        var sample = Path.Combine(Repository, "eval", "suites", "sample.json");
        var baseline = Path.Combine(Repository, "eval", "policies", "text-respond-baseline.json");
        var terse = Path.Combine(Repository, "eval", "policies", "text-respond-terse.json");
        var report = Path.Combine(_folder, "report.html");

        // The shipped sample, baseline against itself: every gate passes.
        var pass = await EvalAsync(false, "--suite", sample, "--baseline", baseline, "--candidate", baseline, "--report", report);
        pass.Code.Should().Be(0, pass.Output);
        pass.Output.Should().Contain("verdict: pass");
        File.ReadAllText(report).Should().Contain("<svg");

        // A terse prompt drops what one case looks for: the pass-rate gate fails and names it.
        var fail = await EvalAsync(false, "--suite", sample, "--baseline", baseline, "--candidate", terse);
        fail.Code.Should().Be(1, fail.Output);
        fail.Output.Should().Contain("FAIL minPassRate").And.Contain("prompt-reaches-the-model").And.Contain("verdict: fail");

        // Only a latency gate, a slower candidate: 1; the same candidate: 0.
        var latencySuite = Write("latency.json", Suite("latency", new JsonObject { ["maxP95LatencyRatio"] = 1.5 }, Case("hi", "hi", Contains("hi"))));
        var fast = Write("fast.json", Policy("fast"));
        var slow = Write("slow.json", Policy("slow"));
        (await EvalAsync(true, "--suite", latencySuite, "--baseline", fast, "--candidate", slow)).Code.Should().Be(1);
        (await EvalAsync(true, "--suite", latencySuite, "--baseline", fast, "--candidate", fast)).Code.Should().Be(0);

        // Bad input: an unknown assertion type, a missing file, a missing argument.
        var bad = Write("bad.json", new JsonObject { ["name"] = "bad", ["cases"] = new JsonArray(new JsonObject { ["act"] = new JsonObject { ["input"] = "x" }, ["assertions"] = new JsonArray(new JsonObject { ["type"] = "vibes" }) }) });
        var refused = await EvalAsync(true, "--suite", bad, "--baseline", fast, "--candidate", fast);
        refused.Code.Should().Be(2, refused.Output);
        refused.Output.Should().Contain("suite.cases[0].assertions[0].type");
        (await EvalAsync(true, "--suite", Path.Combine(_folder, "missing.json"), "--baseline", fast, "--candidate", fast)).Code.Should().Be(2);
        (await EvalAsync(true, "--suite", latencySuite, "--baseline", fast)).Code.Should().Be(2);
    }

    [Fact]
    public async Task An_evaluation_killed_halfway_resumes_without_rerunning_finished_case_runs_and_ends_with_the_same_report()
    {
        var settings = new Dictionary<string, string>
        {
            ["Orchestrator:ApiKeys:1:Key"] = OrchestratorApp.OperatorKey,
            ["Orchestrator:ApiKeys:1:Tenant"] = "ops",
            ["Orchestrator:ApiKeys:1:Principal"] = "olga",
            ["Orchestrator:ApiKeys:1:Roles:0"] = "operator",
            ["Orchestrator:Evaluation:LeaseDuration"] = "00:00:02",
            ["Orchestrator:Evaluation:PollInterval"] = "00:00:00.100",
            ["Orchestrator:Node:LeaseDuration"] = "00:00:02",
        };
        foreach (var (key, value) in Settings())
            settings[key] = value!;
        settings["Orchestrator:Models:1:LatencyMs"] = "150";
        var suite = Suite("resume", new JsonObject { ["maxP95LatencyRatio"] = 1.5, ["minPassRate"] = 0.5 }, Case("hi", "hi", Contains("hi")), Case("bye", "bye", Contains("bye")));
        foreach (var c in suite["cases"]!.AsArray())
            c!["repeats"] = 4;

        await using var service = new ServiceProcess(_folder, settings);
        await service.StartAsync();
        var client = service.Client(OrchestratorApp.OperatorKey);
        var id = await client.SubmitAsync(suite, Policy("slow"), Policy("slow"));
        var until = DateTime.UtcNow.AddSeconds(60);
        while ((await Api.BodyOf(await client.GetAsync($"/v1/admin/evaluations/{id}")))["progress"]!["caseRuns"]!.GetValue<int>() < 4)
        {
            DateTime.UtcNow.Should().BeBefore(until, "the evaluation should make progress");
            await Task.Delay(50);
        }
        service.Kill();
        await service.StartAsync();
        var resumed = await client.EvaluatedAsync(id, TimeSpan.FromSeconds(90));
        resumed["status"]!.GetValue<string>().Should().Be("completed", resumed.ToJsonString());

        // Every case run is one job: the one in flight at the kill was found again by its key, not run a second time.
        var jobs = await Api.BodyOf(await client.GetAsync("/v1/jobs?tenant=ops&limit=100"));
        jobs["items"]!.AsArray().Should().HaveCount(16);

        var again = await client.EvaluatedAsync(await client.SubmitAsync(suite, Policy("slow"), Policy("slow")), TimeSpan.FromSeconds(90));
        foreach (var part in new[] { "verdict", "gates", "cases", "baseline", "candidate", "pins" })
            again[part]!.ToJsonString().Should().Be(resumed[part]!.ToJsonString(), $"{part}: a resumed evaluation ends as an uninterrupted one");
        var first = await (await client.GetAsync($"/v1/admin/evaluations/{id}/report")).Content.ReadAsStringAsync();
        var second = await (await client.GetAsync($"/v1/admin/evaluations/{(string)again["id"]!}/report")).Content.ReadAsStringAsync();
        second.Replace((string)again["id"]!, id, StringComparison.Ordinal).Should().Be(first);
    }
}
