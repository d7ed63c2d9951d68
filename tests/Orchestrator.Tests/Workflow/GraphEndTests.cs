using System.Net;
using System.Text.Json.Nodes;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Workflow;

/// <summary>What a job's graph shows when the job ends without completing: where it stopped, and what it never reached.</summary>
public sealed class GraphEndTests : IDisposable
{
    readonly OrchestratorApp _app = new(new Dictionary<string, string?>
    {
        ["Orchestrator:Models:0:Id"] = "slow",
        ["Orchestrator:Models:0:Provider"] = "simulated",
        ["Orchestrator:Models:0:LatencyMs"] = "600000",
    });

    public void Dispose() => _app.Dispose();

    async Task<JsonArray> NodesOf(HttpClient client, string jobId) =>
        (await Api.BodyOf(await client.GetAsync($"/v1/jobs/{jobId}/graph")))["nodes"]!.AsArray();

    [Fact]
    public async Task A_canceled_job_shows_the_node_it_stopped_in_as_failed_and_the_rest_as_skipped()
    {
        using var client = _app.ClientFor();
        var (_, job) = await client.ActAsync(new { intent = "problem/solve", input = "What is 6 x 7?", mode = "async" });
        var id = job.Str("jobId");
        await client.WaitForAsync(id, j => j.Str("currentNode") == "solver");
        (await NodesOf(client, id)).Select(n => (n.Str("id"), n.Str("status"))).Should().Equal(("solver", "running"), ("writer", "pending"));

        (await client.PostAsync($"/v1/jobs/{id}/cancel", null)).StatusCode.Should().Be(HttpStatusCode.Accepted);
        (await client.WaitForEndAsync(id)).Str("status").Should().Be("canceled");

        var nodes = await NodesOf(client, id);
        nodes.Select(n => (n.Str("id"), n.Str("status"))).Should().Equal(("solver", "failed"), ("writer", "skipped"));
        nodes[0]!.Str("error.code").Should().Be("canceled");
        nodes[0]!["completedAt"].Should().NotBeNull();
        nodes[1]!["startedAt"].Should().BeNull("the writer never ran");

        var rerun = await Api.BodyOf(await client.PostAsync($"/v1/replays/{job.Str("traceId")}/rerun", null));
        rerun["identical"]!.GetValue<bool>().Should().BeTrue(rerun.ToJsonString());
        rerun.Str("status").Should().Be("canceled", "the recorded run was canceled in the solver, and so is its rerun");
    }
}
