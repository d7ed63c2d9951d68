using System.Net;
using System.Net.Http.Json;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Jobs;

/// <summary>maxConcurrentJobs holds (jobs over it wait, they are not refused) and one tenant's flood does not starve another.</summary>
public sealed class FairnessTests
{
    static Dictionary<string, string?> Settings(int workers, int latencyMs, int capacity = 5000) => new()
    {
        ["Orchestrator:Queue:Workers"] = workers.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Orchestrator:Queue:Capacity"] = capacity.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Orchestrator:Models:0:Id"] = "sim",
        ["Orchestrator:Models:0:Provider"] = "simulated",
        ["Orchestrator:Models:0:LatencyMs"] = latencyMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    [Fact]
    public async Task Jobs_over_max_concurrent_jobs_wait_in_the_queue_and_all_finish()
    {
        using var app = new OrchestratorApp(Settings(workers: 8, latencyMs: 300));
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        (await ops.PutAsJsonAsync("/v1/admin/tenants/acme", new
        {
            limits = new { maxConcurrentJobs = 3 },
            principals = new Dictionary<string, object> { ["carol"] = new { maxConcurrentJobs = 1 } },
        })).StatusCode.Should().Be(HttpStatusCode.OK);
        using var alice = app.ClientFor();
        using var carol = app.ClientFor(OrchestratorApp.AcmeOtherKey);

        var ids = new List<string>();
        for (var i = 0; i < 6; i++)
            ids.Add((await alice.ActAsync(new { input = $"a{i}", mode = "async" })).Body.Str("jobId"));
        for (var i = 0; i < 3; i++)
            ids.Add((await carol.ActAsync(new { input = $"c{i}", mode = "async" })).Body.Str("jobId"));

        var most = 0;
        var mostCarol = 0;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            var running = (await Api.BodyOf(await ops.GetAsync("/v1/jobs?tenant=acme&status=running&limit=100")))["items"]!.AsArray();
            most = Math.Max(most, running.Count);
            mostCarol = Math.Max(mostCarol, running.Count(j => j.Str("principal") == "carol"));
            var completed = (await Api.BodyOf(await ops.GetAsync("/v1/jobs?tenant=acme&status=completed&limit=100")))["items"]!.AsArray().Count;
            if (completed == ids.Count)
                break;
            await Task.Delay(20);
        }
        most.Should().BeInRange(1, 3, "the tenant may run 3 jobs at once, with 8 workers free");
        mostCarol.Should().BeLessThanOrEqualTo(1, "carol may run 1 at once inside the tenant's 3");
        foreach (var id in ids)
            (await alice.GetAsync($"/v1/jobs/{id}")).IsSuccessStatusCode.Should().BeTrue();
        (await Api.BodyOf(await ops.GetAsync("/v1/jobs?tenant=acme&status=completed&limit=100")))["items"]!.AsArray()
            .Should().HaveCount(ids.Count, "jobs over the limit wait; none is refused or lost");
    }

    [Fact]
    public async Task Jobs_waiting_for_a_slot_keep_their_place_in_the_queue_capacity()
    {
        using var app = new OrchestratorApp(Settings(workers: 2, latencyMs: 30_000, capacity: 3));
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        (await ops.PutAsJsonAsync("/v1/admin/tenants/acme", new { limits = new { maxConcurrentJobs = 1 } })).StatusCode.Should().Be(HttpStatusCode.OK);
        using var alice = app.ClientFor();

        // One at a time, so each answer sees the places the ones before it hold: one job runs (it left the queue), and
        // the three that wait for its slot fill the capacity of 3 however long they wait.
        var answers = new List<HttpStatusCode>();
        for (var i = 0; i < 12; i++)
            answers.Add((await alice.ActAsync(new { input = $"a{i}", mode = "async" })).Response.StatusCode);
        answers.Count(s => s == HttpStatusCode.Accepted).Should().BeInRange(4, 6, "1 running and 3 waiting fill it; a job a worker holds between the lanes and its wait may add up to one per worker");
        answers.Skip(6).Should().OnlyContain(s => s == HttpStatusCode.TooManyRequests, "past capacity the queue is full");
        var waiting = (answers.Count(s => s == HttpStatusCode.Accepted) - 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var until = DateTime.UtcNow.AddSeconds(10);
        string held;
        while ((held = (await Api.BodyOf(await ops.GetAsync("/v1/diag/telemetry"))).Str("queue.held")) != waiting && DateTime.UtcNow < until)
            await Task.Delay(20);
        held.Should().Be(waiting, "every accepted job but the running one holds a place");
    }

    [Fact]
    public async Task A_flood_from_one_tenant_does_not_delay_another_tenants_first_job()
    {
        using var app = new OrchestratorApp(Settings(workers: 2, latencyMs: 20));
        using var alice = app.ClientFor();
        using var bob = app.ClientFor(OrchestratorApp.GlobexKey);
        const int Flood = 300;
        var flood = await Task.WhenAll(Enumerable.Range(0, Flood).Select(i => alice.ActAsync(new { input = $"flood {i}", mode = "async" })));
        flood.Should().OnlyContain(f => f.Response.StatusCode == HttpStatusCode.Accepted);

        var (_, first) = await bob.ActAsync(new { input = "my first job", mode = "async" });
        var done = await bob.WaitForEndAsync(first.Str("jobId"));
        done.Str("status").Should().Be("completed");

        var page = await Api.BodyOf(await alice.GetAsync("/v1/jobs?status=accepted&limit=200"));
        page["items"]!.AsArray().Count.Should().BeGreaterThan(Flood / 2,
            "globex's job ran while most of acme's flood still waited: dispatch takes turns between tenants");
    }
}
