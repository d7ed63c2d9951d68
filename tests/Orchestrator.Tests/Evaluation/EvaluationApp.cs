using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Evaluation;

/// <summary>
/// The service with simulated models made for evaluations, each picked by a tag a policy node requires: <c>fast</c>
/// (2 ms), <c>slow</c> (40 ms), <c>flaky</c> (fails half its calls), <c>p80</c> and <c>p65</c> (fail 20% and 35%: the
/// same seed draws the same number for both, so their runs pair as a real regression would), and the judge (a fixed
/// JSON score). Retries and the circuit breaker are off, so a failing draw fails its case run and nothing else.
/// </summary>
public static class EvaluationApp
{
    public static Dictionary<string, string?> Settings(string? judgeReply = null) => new()
    {
        ["Orchestrator:Models:0:Id"] = "sim-fast",
        ["Orchestrator:Models:0:Provider"] = "simulated",
        ["Orchestrator:Models:0:LatencyMs"] = "2",
        ["Orchestrator:Models:0:Tags:0"] = "fast",
        ["Orchestrator:Models:1:Id"] = "sim-slow",
        ["Orchestrator:Models:1:Provider"] = "simulated",
        ["Orchestrator:Models:1:LatencyMs"] = "40",
        ["Orchestrator:Models:1:Tags:0"] = "slow",
        ["Orchestrator:Models:2:Id"] = "sim-flaky",
        ["Orchestrator:Models:2:Provider"] = "simulated",
        ["Orchestrator:Models:2:FailureRate"] = "0.5",
        ["Orchestrator:Models:2:Tags:0"] = "flaky",
        ["Orchestrator:Models:3:Id"] = "sim-p80",
        ["Orchestrator:Models:3:Provider"] = "simulated",
        ["Orchestrator:Models:3:FailureRate"] = "0.2",
        ["Orchestrator:Models:3:Tags:0"] = "p80",
        ["Orchestrator:Models:4:Id"] = "sim-p65",
        ["Orchestrator:Models:4:Provider"] = "simulated",
        ["Orchestrator:Models:4:FailureRate"] = "0.35",
        ["Orchestrator:Models:4:Tags:0"] = "p65",
        ["Orchestrator:Models:5:Id"] = "judge",
        ["Orchestrator:Models:5:Provider"] = "simulated",
        ["Orchestrator:Models:5:Reply"] = judgeReply ?? """{"score": 0.9, "reason": "names the order"}""",
        ["Orchestrator:Models:5:CostPer1kInputUsd"] = "0.01",
        ["Orchestrator:Models:5:CostPer1kOutputUsd"] = "0.02",
        ["Orchestrator:Models:5:Tags:0"] = "judge",
        ["Orchestrator:Evaluation:JudgeModel"] = "judge",
        ["Orchestrator:Evaluation:PollInterval"] = "00:00:00.050",
        ["Orchestrator:Gateway:MaxRetries"] = "0",
        ["Orchestrator:Gateway:BreakerMinimumThroughput"] = "10000",
        ["Orchestrator:Jobs:Retry:MaxAttempts"] = "1",
    };

    public const string Prompt = "You are a helpful assistant. Always keep order ids.";

    /// <summary>A <c>text/respond</c> policy whose one node runs on the models tagged <paramref name="tag"/>, with this prompt.</summary>
    public static JsonObject Policy(string tag, string prompt = Prompt, string version = "1") => new()
    {
        ["intent"] = "text/respond",
        ["version"] = version,
        ["nodes"] = new JsonArray(new JsonObject
        {
            ["id"] = "respond", ["kind"] = "model", ["role"] = "responder", ["prompt"] = prompt,
            ["requires"] = new JsonObject { ["tags"] = new JsonArray(tag) },
        }),
    };

    public static JsonObject Case(string name, string input, params JsonObject[] assertions) => new()
    {
        ["name"] = name,
        ["act"] = new JsonObject { ["intent"] = "text/respond", ["input"] = input },
        ["assertions"] = new JsonArray(assertions.Select(a => (JsonNode)a).ToArray()),
    };

    public static JsonObject Contains(string value) => new() { ["type"] = "contains", ["value"] = value };

    public static JsonObject Suite(string name, JsonObject gates, params JsonObject[] cases) => new()
    {
        ["name"] = name,
        ["cases"] = new JsonArray(cases.Select(c => (JsonNode)c).ToArray()),
        ["gates"] = gates,
    };

    public static async Task<string> SubmitAsync(this HttpClient client, JsonObject suite, JsonObject baseline, JsonObject candidate, object? extra = null)
    {
        var body = new JsonObject
        {
            ["suite"] = suite.DeepClone(),
            ["baseline"] = new JsonObject { ["policy"] = baseline.DeepClone() },
            ["candidate"] = new JsonObject { ["policy"] = candidate.DeepClone() },
        };
        var response = await client.PostAsJsonAsync("/v1/admin/evaluations", body);
        var answer = await Api.BodyOf(response);
        response.StatusCode.Should().Be(HttpStatusCode.Accepted, answer.ToJsonString());
        return (string)answer["id"]!;
    }

    /// <summary>Polls the evaluation until it is terminal and returns its view.</summary>
    public static async Task<JsonObject> EvaluatedAsync(this HttpClient client, string id, TimeSpan? timeout = null)
    {
        var until = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (true)
        {
            var response = await client.GetAsync($"/v1/admin/evaluations/{id}");
            var view = await Api.BodyOf(response);
            response.StatusCode.Should().Be(HttpStatusCode.OK, view.ToJsonString());
            if ((string?)view["status"] is "completed" or "failed" or "canceled")
                return view;
            if (DateTime.UtcNow > until)
                throw new TimeoutException($"Evaluation {id} did not end; last view: {view.ToJsonString()}");
            await Task.Delay(50);
        }
    }

    public static JsonObject Gate(this JsonObject view, string name) =>
        view["gates"]!.AsArray().Select(g => g!.AsObject()).FirstOrDefault(g => (string?)g["name"] == name)
        ?? throw new InvalidOperationException($"No gate {name} in {view["gates"]!.ToJsonString()}");

    public static JsonObject CaseNamed(this JsonObject view, string name) =>
        view["cases"]!.AsArray().Select(c => c!.AsObject()).First(c => (string?)c["name"] == name);
}
