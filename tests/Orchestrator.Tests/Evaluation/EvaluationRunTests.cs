using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Orchestrator.Tests.Harness;
using static Orchestrator.Tests.Evaluation.EvaluationApp;

namespace Orchestrator.Tests.Evaluation;

/// <summary>Cancel, extra repeats, replay-backed cases, and the act's seed field.</summary>
public sealed class EvaluationRunTests : IDisposable
{
    readonly OrchestratorApp _app = new(Settings());
    readonly HttpClient _operator;

    public EvaluationRunTests() => _operator = _app.ClientFor(OrchestratorApp.OperatorKey);

    public void Dispose() => _app.Dispose();

    [Fact]
    public async Task A_canceled_evaluation_stops_before_its_next_case_run()
    {
        var suite = Suite("long", new JsonObject(), Case("slow", "hi", Contains("hi")));
        suite["cases"]![0]!["repeats"] = 100;
        var id = await _operator.SubmitAsync(suite, Policy("slow"), Policy("slow"));
        var canceled = await _operator.PostAsync($"/v1/admin/evaluations/{id}/cancel", null);
        canceled.StatusCode.Should().Be(HttpStatusCode.Accepted);

        var view = await _operator.EvaluatedAsync(id);
        view["status"]!.GetValue<string>().Should().Be("canceled");
        view["verdict"].Should().BeNull();
        view["progress"]!["caseRuns"]!.GetValue<int>().Should().BeLessThan(200);
        (await _operator.PostAsync($"/v1/admin/evaluations/{id}/cancel", null)).StatusCode.Should().Be(HttpStatusCode.Conflict);
        (await _operator.GetAsync($"/v1/admin/evaluations/{id}/report")).StatusCode.Should().Be(HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task Extra_repeats_go_only_to_cases_whose_runs_disagree_within_the_budget()
    {
        var suite = Suite("extra", new JsonObject(),
            Case("coin", "heads", Contains("heads")),
            // Cost is measured for failed runs too: this case passes every run whatever the model draws.
            Case("steady", "tails", new JsonObject { ["type"] = "max-cost-usd", ["value"] = 1 }));
        foreach (var c in suite["cases"]!.AsArray())
            c!["repeats"] = 4;
        suite["extra"] = new JsonObject { ["max"] = 6, ["callBudget"] = 6 };
        var view = await _operator.EvaluatedAsync(await _operator.SubmitAsync(suite, Policy("flaky"), Policy("flaky")));

        var coin = view.CaseNamed("coin");
        var steady = view.CaseNamed("steady");
        steady["candidate"]!["runs"]!.GetValue<int>().Should().Be(4, "a case that passed every run keeps its k runs");
        // The seeds are fixed (evaluation seed 0, the case id, the repeat), so whether the coin's first 4 runs disagree is too.
        coin["candidate"]!["verdict"]!.GetValue<string>().Should().Be("flaky", coin.ToJsonString());
        (coin["candidate"]!["runs"]!.GetValue<int>() - 4).Should().Be(3, "the budget of 6 extra case runs is 3 more pairs");
        coin["baseline"]!["runs"]!.GetValue<int>().Should().Be(coin["candidate"]!["runs"]!.GetValue<int>(), "extra repeats stay paired");
    }

    [Fact]
    public async Task A_replay_backed_run_answers_effects_from_the_recording_and_applies_none()
    {
        var user = _app.ClientFor();
        var (response, job) = await user.ActAsync(new
        {
            intent = "agent/run",
            input = "Write it.\n/call fs_write {\"path\":\"note.txt\",\"content\":\"recorded\"}",
            routing = new { models = new[] { "sim-fast" } },
        });
        response.StatusCode.Should().Be(HttpStatusCode.OK, job.ToJsonString());
        var file = Path.Combine(_app.Folder, "workspaces", "acme", "note.txt");
        File.Exists(file).Should().BeTrue();
        File.Delete(file);

        var built = await _operator.PostAsJsonAsync("/v1/admin/evaluations/suites/from-traces", new { name = "production", traceIds = new[] { (string)job["traceId"]! } });
        var suite = await Api.BodyOf(built);
        built.StatusCode.Should().Be(HttpStatusCode.OK, suite.ToJsonString());
        suite["cases"]![0]!["replay"]!.GetValue<string>().Should().Be((string)job["traceId"]!);
        suite["gates"] = new JsonObject { ["minPassRate"] = 1.0 };

        var policy = JsonNode.Parse(File.ReadAllText(Path.Combine(Path.GetDirectoryName(ServiceProcess.Binary())!, "policies", "agent-run.json")))!.AsObject();
        var changed = policy.DeepClone().AsObject();
        changed["nodes"]![0]!["prompt"] = "You are a different agent.";

        var same = await _operator.EvaluatedAsync(await _operator.SubmitAsync(suite, policy, policy));
        same["verdict"]!.GetValue<string>().Should().Be("pass", same.ToJsonString());
        // A new prompt asks the model what the recording never answered: the rerun diverges there, and says so.
        var diverged = await _operator.EvaluatedAsync(await _operator.SubmitAsync(suite, policy, changed));
        diverged["verdict"]!.GetValue<string>().Should().Be("fail");
        diverged["cases"]![0]!["candidate"]!["failures"]!.ToJsonString().Should().Contain("replay_diverged");

        File.Exists(file).Should().BeFalse("no live effect is ever applied by a replay-backed run");
        var jobs = await Api.BodyOf(await _operator.GetAsync("/v1/jobs?tenant=ops&limit=50"));
        jobs["items"]!.AsArray().Should().BeEmpty("replay cases run no job");
    }

    [Fact]
    public async Task An_act_may_not_set_its_own_seed()
    {
        var (response, problem) = await _app.ClientFor().ActAsync(new { input = "hi", seed = "42" });
        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        problem["errors"]!["seed"].Should().NotBeNull();
    }
}
