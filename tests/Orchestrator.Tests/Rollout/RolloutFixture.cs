using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Rollout;

/// <summary>Settings and calls the rollout tests share: two simulated models, so a routing version visibly changes which one answers.</summary>
internal static class Rollouts
{
    public static Dictionary<string, string?> TwoModels(IDictionary<string, string?>? more = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Orchestrator:Models:0:Id"] = "sim",
            ["Orchestrator:Models:0:Provider"] = "simulated",
            ["Orchestrator:Models:1:Id"] = "alt",
            ["Orchestrator:Models:1:Provider"] = "simulated",
            ["Orchestrator:Models:1:Quality"] = "0.1",
            // Slower, so latency-first over both models (the shipped routing) always picks sim: without it the two
            // score alike and which answers depends on this node's latency samples.
            ["Orchestrator:Models:1:LatencyMs"] = "30",
            ["Orchestrator:Node:PropagationMs"] = "100",
        };
        foreach (var (k, v) in more ?? new Dictionary<string, string?>())
            settings[k] = v;
        return settings;
    }

    /// <summary>A routing artifact sending text/respond to <paramref name="model"/> only.</summary>
    public static object RoutingTo(string model) => new { routing = new Dictionary<string, object> { ["text/respond"] = new { strategy = "latency-first", models = new[] { model }, hedge = false } } };

    public static async Task<JsonObject> PostArtifactAsync(this HttpClient ops, string kind, object body, HttpStatusCode expected = HttpStatusCode.Created)
    {
        var response = await ops.PostAsJsonAsync($"/v1/admin/artifacts/{kind}", body);
        var json = await Api.BodyOf(response);
        response.StatusCode.Should().Be(expected, json.ToJsonString());
        return json;
    }

    public static async Task<JsonObject> PutRolloutAsync(this HttpClient ops, string kind, object body, HttpStatusCode expected = HttpStatusCode.OK)
    {
        var response = await ops.PutAsJsonAsync($"/v1/admin/rollouts/{kind}", body);
        var json = await Api.BodyOf(response);
        response.StatusCode.Should().Be(expected, json.ToJsonString());
        return json;
    }

    public static async Task<JsonObject> PostAsync(this HttpClient ops, string path, object? body, HttpStatusCode expected = HttpStatusCode.OK)
    {
        var response = await ops.PostAsJsonAsync(path, body ?? new { });
        var json = await Api.BodyOf(response);
        response.StatusCode.Should().Be(expected, json.ToJsonString());
        return json;
    }

    /// <summary>A sync act's job view.</summary>
    public static async Task<JsonObject> RespondAsync(this HttpClient client, string input = "hello", object? versions = null)
    {
        var (response, body) = await client.ActAsync(new { intent = "text/respond", input, versions });
        response.StatusCode.Should().Be(HttpStatusCode.OK, body.ToJsonString());
        return body;
    }

    /// <summary>The model that answered the job's (first) model call.</summary>
    public static string ModelOf(JsonObject job) => job["routing"]![0]!.Str("decision.chosen");
}
