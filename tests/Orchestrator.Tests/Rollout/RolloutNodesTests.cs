using System.Net.Http.Json;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Rollout;

/// <summary>Artifacts and rollouts across two real nodes on one PostgreSQL store (skipped without PostgreSQL, failed under CI=true).</summary>
public sealed class RolloutNodesTests
{
    static readonly Dictionary<string, string> Settings = new()
    {
        ["Orchestrator:Models:0:Id"] = "sim",
        ["Orchestrator:Models:0:Provider"] = "simulated",
        ["Orchestrator:Models:1:Id"] = "alt",
        ["Orchestrator:Models:1:Provider"] = "simulated",
        ["Orchestrator:Models:1:Quality"] = "0.1",
        // Slower, so the shipped routing (latency-first over both) always picks sim on a node that ran alt for a while.
        ["Orchestrator:Models:1:LatencyMs"] = "30",
    };

    static async Task<string> ModelOfNextJob(HttpClient user)
    {
        var (response, job) = await user.ActAsync(new { intent = "text/respond", input = "hi" });
        response.EnsureSuccessStatusCode();
        return $"{Rollouts.ModelOf(job)}/{job.Str("versions.routing.version")}";
    }

    [SkippableFact]
    public async Task Two_nodes_starting_at_once_import_v1_once_and_a_rollback_holds_on_both_for_the_next_job()
    {
        await using var cluster = await MultiNode.CreateAsync();
        var a = cluster.Add("node-a", Settings);
        var b = cluster.Add("node-b", Settings);
        await Task.WhenAll(a.StartAsync(), b.StartAsync());
        using var opsA = a.Client(MultiNode.OperatorKey);
        using var userA = a.Client();
        using var userB = b.Client();

        (await cluster.Store.ScalarAsync<long>("""SELECT count(*) FROM "ArtifactVersions" """)).Should().Be(3, "one v1 per kind, whoever started first");
        (await cluster.Store.ScalarAsync<long>("""SELECT count(*) FROM "Rollouts" """)).Should().Be(3);

        (await opsA.PostAsJsonAsync("/v1/admin/artifacts/routing", Rollouts.RoutingTo("alt"))).StatusCode.Should().Be(System.Net.HttpStatusCode.Created);
        (await opsA.PutAsJsonAsync("/v1/admin/rollouts/routing", new { stable = "v2" })).EnsureSuccessStatusCode();
        // node-b reads the change within its propagation interval (250 ms); nothing it answers says when, so wait for it.
        await cluster.WaitForAsync("node-b runs routing v2", () => ModelOfNextJob(userB), m => m == "alt/v2", TimeSpan.FromSeconds(10));
        (await ModelOfNextJob(userA)).Should().Be("alt/v2", "node-a made the change and holds it at once");

        var back = await Api.BodyOf(await opsA.PostAsJsonAsync("/v1/admin/rollouts/routing/rollback", new { reason = "bad answers" }));
        back.Str("changed").Should().Be("True");
        (await ModelOfNextJob(userA)).Should().Be("sim/v1", "the next job on the node that rolled back");
        await cluster.WaitForAsync("node-b runs routing v1 again", () => ModelOfNextJob(userB), m => m == "sim/v1", TimeSpan.FromSeconds(10));

        // The second rollback, sent to the other node: a no-op.
        using var opsB = b.Client(MultiNode.OperatorKey);
        var again = await Api.BodyOf(await opsB.PostAsJsonAsync("/v1/admin/rollouts/routing/rollback", new { reason = "again" }));
        again.Str("changed").Should().Be("False");
        again.Str("stable.version").Should().Be("v1");
        (await ModelOfNextJob(userB)).Should().Be("sim/v1");
        var history = (await Api.BodyOf(await opsB.GetAsync("/v1/admin/rollouts/routing")))["history"]!.AsArray();
        history.Select(h => h.Str("action")).Should().Equal(["rollback", "update", "start"]);
    }
}
