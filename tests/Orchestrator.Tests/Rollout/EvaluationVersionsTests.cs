using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Orchestrator.Tests.Evaluation;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Rollout;

/// <summary>Evaluation sides as artifact versions: what promotion looks for is the pinned version's content hash.</summary>
public sealed class EvaluationVersionsTests
{
    static JsonObject Suite() => EvaluationApp.Suite("versions", new JsonObject { ["minPassRate"] = 1.0 },
        EvaluationApp.Case("says-hello", "hello", EvaluationApp.Contains("hello")));

    static async Task<(HttpStatusCode Status, JsonObject Body)> SubmitAsync(HttpClient ops, object baseline, object candidate)
    {
        var response = await ops.PostAsJsonAsync("/v1/admin/evaluations", new { suite = Suite(), baseline = new { versions = baseline }, candidate = new { versions = candidate } });
        return (response.StatusCode, await Api.BodyOf(response));
    }

    [Fact]
    public async Task Evaluating_prompts_v1_against_v2_by_version_lets_v2_be_promoted_without_force()
    {
        using var app = new OrchestratorApp();
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        var v2 = await ops.PostArtifactAsync("prompts", new { prompts = new Dictionary<string, object> { ["text/respond"] = new { respond = "You are helpful. Keep order ids intact." } } });
        await ops.PutRolloutAsync("prompts", new { stable = "v1", candidate = "v2", mode = "canary", percent = 10 });
        await ops.PostAsync("/v1/admin/rollouts/prompts/promote", new { }, HttpStatusCode.Conflict);

        var (status, submitted) = await SubmitAsync(ops, new { prompts = "v1" }, new { prompts = "v2" });
        status.Should().Be(HttpStatusCode.Accepted, submitted.ToJsonString());
        var view = await ops.EvaluatedAsync(submitted.Str("id"));
        view.Str("verdict").Should().Be("pass", view.ToJsonString());
        var listed = await Api.BodyOf(await ops.GetAsync($"/v1/admin/evaluations?candidateHash={v2.Str("contentHash")}&verdict=pass"));
        listed.ToJsonString().Should().Contain(submitted.Str("id"), "the evaluation is recorded under prompts v2's content hash");

        var promoted = await ops.PostAsync("/v1/admin/rollouts/prompts/promote", new { });
        promoted.Str("stable.version").Should().Be("v2");
    }

    [Fact]
    public async Task An_unknown_version_or_an_empty_versions_side_is_a_field_error()
    {
        using var app = new OrchestratorApp();
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);

        var (status, problem) = await SubmitAsync(ops, new { prompts = "v1" }, new { policy = "v9" });
        status.Should().Be(HttpStatusCode.BadRequest, problem.ToJsonString());
        problem["errors"]!["candidate.versions.policy"]![0]!.GetValue<string>().Should().Contain("Unknown policies version 'v9'");

        (status, problem) = await SubmitAsync(ops, new { }, new { routing = "v1" });
        status.Should().Be(HttpStatusCode.BadRequest, problem.ToJsonString());
        problem["errors"]!.AsObject().Select(e => e.Key).Should().Equal("baseline.versions");
    }
}
