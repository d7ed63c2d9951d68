using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Tenancy;

/// <summary>Limits, budgets, tenant changes and revoked keys hold across two real nodes on one PostgreSQL store.</summary>
public sealed class GovernanceNodesTests
{
    static readonly Dictionary<string, string> Settings = new()
    {
        ["Orchestrator:Models:0:Id"] = "sim",
        ["Orchestrator:Models:0:Provider"] = "simulated",
        ["Orchestrator:Models:0:LatencyMs"] = "100",
        ["Orchestrator:Models:0:CostPer1kInputUsd"] = "0.01",
        ["Orchestrator:Models:0:CostPer1kOutputUsd"] = "0.02",
    };

    static async Task<(ServiceProcess A, ServiceProcess B)> TwoNodes(MultiNode cluster, int latencyMs = 100)
    {
        var settings = new Dictionary<string, string>(Settings) { ["Orchestrator:Models:0:LatencyMs"] = latencyMs.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        var a = cluster.Add("node-a", settings);
        var b = cluster.Add("node-b", settings);
        await a.StartAsync();
        await b.StartAsync();
        return (a, b);
    }

    static async Task Put(HttpClient ops, string tenant, object body) =>
        (await ops.PutAsJsonAsync($"/v1/admin/tenants/{tenant}", body)).StatusCode.Should().Be(HttpStatusCode.OK);

    /// <summary>Waits until the rest of the current UTC minute is long enough for a burst, so a burst counts in one window.</summary>
    static async Task AwayFromAMinuteBoundary()
    {
        while (DateTime.UtcNow.Second >= 50)
            await Task.Delay(100);
    }

    [SkippableFact]
    public async Task A_rate_limit_of_r_per_minute_admits_r_across_two_nodes_not_2r()
    {
        await using var cluster = await MultiNode.CreateAsync();
        var (a, b) = await TwoNodes(cluster);
        using var ops = a.Client(MultiNode.OperatorKey);
        await Put(ops, "acme", new { limits = new { requestsPerMinute = 20 } });
        using var userA = a.Client();
        using var userB = b.Client();
        // Real processes, so no fake clock: node-b applies the change within its propagation interval (250 ms), and
        // nothing it answers tells when, so the test gives it that bound twice over.
        await Task.Delay(600);

        await AwayFromAMinuteBoundary();
        var answers = await Task.WhenAll(Enumerable.Range(0, 40).Select(i => (i % 2 == 0 ? userA : userB).ActAsync(new { input = "hi", mode = "async" })));
        answers.Count(x => x.Response.StatusCode == HttpStatusCode.Accepted).Should().Be(20, "the limit is one counter row for both nodes");
        answers.Where(x => x.Response.StatusCode != HttpStatusCode.Accepted).Select(x => x.Body.Str("code")).Should().OnlyContain(c => c == "rate_limited");
    }

    [SkippableFact]
    public async Task Fifty_concurrent_acts_on_two_nodes_against_a_budget_for_ten_admit_exactly_ten()
    {
        await using var cluster = await MultiNode.CreateAsync();
        // A job that ends settles its hold and frees what it did not spend, which rightly admits more: the model is slow
        // enough that no job of the burst ends before the burst is answered, so exactly ten fit.
        var (a, b) = await TwoNodes(cluster, latencyMs: 4_000);
        using var ops = a.Client(MultiNode.OperatorKey);
        // A probe in a tenant of its own tells what one act reserves.
        var probeKey = await Api.BodyOf(await ops.PostAsJsonAsync("/v1/admin/keys", new { tenant = "probe", principal = "p" }));
        await Put(ops, "probe", new { limits = new { dailyTokenBudget = 1_000_000_000 } });
        using var probe = a.Client(probeKey.Str("key"));
        const string input = "What is the capital of France?";
        var (_, held) = await probe.ActAsync(new { input, mode = "async" });
        var hold = long.Parse(held.Str("budget.reservedTokens"));

        var budget = hold * 10 + hold / 2;
        await Put(ops, "acme", new { limits = new { dailyTokenBudget = budget } });
        using var userA = a.Client();
        using var userB = b.Client();
        await Task.Delay(600); // node-b's propagation interval is 250 ms; see the rate-limit test

        var burst = Stopwatch.StartNew();
        var answers = await Task.WhenAll(Enumerable.Range(0, 50).Select(i => (i % 2 == 0 ? userA : userB).ActAsync(new { input, mode = "async" })));
        burst.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(4), "the burst must be answered before its first job can end");
        answers.Count(x => x.Response.StatusCode == HttpStatusCode.Accepted).Should().Be(10);
        answers.Where(x => x.Response.StatusCode != HttpStatusCode.Accepted).Select(x => x.Body.Str("code")).Should().OnlyContain(c => c == "quota_exceeded");
        foreach (var (_, job) in answers.Where(x => x.Response.StatusCode == HttpStatusCode.Accepted))
            (await userA.WaitForEndAsync(job.Str("jobId"))).Str("status").Should().Be("completed");

        var usage = await Api.BodyOf(await userB.GetAsync("/v1/tenants/acme/usage"));
        (long.Parse(usage.Str("tokens.input")) + long.Parse(usage.Str("tokens.output"))).Should().BeLessThanOrEqualTo(budget);
        usage.Str("reservedCostUsd").Should().Be("0");
    }

    [SkippableFact]
    public async Task A_tenant_change_and_a_revoked_key_hold_on_the_other_node_within_the_propagation_interval()
    {
        await using var cluster = await MultiNode.CreateAsync();
        var (a, b) = await TwoNodes(cluster);
        using var ops = a.Client(MultiNode.OperatorKey);
        using var userB = b.Client();
        (await userB.ActAsync(new { input = "before", mode = "async" })).Response.StatusCode.Should().Be(HttpStatusCode.Accepted);

        await Put(ops, "acme", new { limits = new { requestsPerMinute = 0 } });
        var clock = Stopwatch.StartNew();
        while ((await userB.ActAsync(new { input = "after", mode = "async" })).Response.StatusCode != HttpStatusCode.TooManyRequests)
            clock.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(3), "node-b must apply node-a's change");
        var applied = clock.Elapsed;

        var created = await Api.BodyOf(await ops.PostAsJsonAsync("/v1/admin/keys", new { tenant = "initech", principal = "peter" }));
        using var peterB = b.Client(created.Str("key"));
        (await peterB.GetAsync("/v1/jobs")).StatusCode.Should().Be(HttpStatusCode.OK, "a key made on node-a works on node-b at once");
        (await ops.DeleteAsync($"/v1/admin/keys/{created.Str("id")}")).StatusCode.Should().Be(HttpStatusCode.NoContent);
        clock.Restart();
        while ((await peterB.GetAsync("/v1/jobs")).StatusCode != HttpStatusCode.Unauthorized)
            clock.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(3), "a key revoked on node-a must stop working on node-b");
        var revoked = clock.Elapsed;

        applied.Should().BeLessThan(TimeSpan.FromMilliseconds(250 + 1_500), "PropagationMs is 250");
        revoked.Should().BeLessThan(TimeSpan.FromMilliseconds(250 + 1_500), "PropagationMs is 250");
        System.Console.WriteLine($"[multi-node] tenant change seen on node-b after {applied.TotalMilliseconds:0} ms, revocation after {revoked.TotalMilliseconds:0} ms");
        using var peterA = a.Client(created.Str("key"));
        (await peterA.GetAsync("/v1/jobs")).StatusCode.Should().Be(HttpStatusCode.Unauthorized, "on the node that revoked it, at once");
    }

    [SkippableFact]
    public async Task Max_concurrent_jobs_holds_across_two_nodes()
    {
        await using var cluster = await MultiNode.CreateAsync();
        var settings = new Dictionary<string, string>(Settings) { ["Orchestrator:Models:0:LatencyMs"] = "400", ["Orchestrator:Queue:Workers"] = "4" };
        var a = cluster.Add("node-a", settings);
        var b = cluster.Add("node-b", settings);
        await a.StartAsync();
        await b.StartAsync();
        using var ops = a.Client(MultiNode.OperatorKey);
        await Put(ops, "acme", new { limits = new { maxConcurrentJobs = 2 } });
        await Task.Delay(600); // node-b's propagation interval is 250 ms; see the rate-limit test
        using var userA = a.Client();
        using var userB = b.Client();

        var ids = (await Task.WhenAll(Enumerable.Range(0, 8).Select(i => (i % 2 == 0 ? userA : userB).ActAsync(new { input = $"job {i}", mode = "async" }))))
            .Select(x => x.Body.Str("jobId")).ToList();
        long most = 0;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            most = Math.Max(most, await cluster.Store.ScalarAsync<long>("SELECT count(*) FROM \"Jobs\" WHERE \"Status\" = 'running'"));
            if (await cluster.Store.ScalarAsync<long>("SELECT count(*) FROM \"Jobs\" WHERE \"Status\" = 'completed'") == ids.Count)
                break;
        }
        most.Should().BeInRange(1, 2, "two nodes with 4 workers each still run at most the tenant's 2 at once");
        foreach (var id in ids)
            (await userA.GetJobAsync(id)).Str("status").Should().Be("completed");
    }
}
