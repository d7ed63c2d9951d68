using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Workflow;

/// <summary>
/// The real service, killed with SIGKILL at several points of agent runs and started again on the same
/// SQLite file: every job finishes, and every file effect is applied exactly once.
/// </summary>
public sealed class CrashResumeTests : IAsyncLifetime
{
    const int AppendJobs = 8;
    /// <summary>How long the HTTP target takes to answer: long enough for a kill to land while the fetch runs.</summary>
    static readonly TimeSpan SlowAnswer = TimeSpan.FromSeconds(1.5);

    const int LinesPerJob = 6; // six appends and the answer: seven model turns, within agent/run's maxSteps of 8

    readonly string _folder = Searchable(Directory.CreateTempSubdirectory("orchestrator-crash-").FullName);

    /// <summary>process/run's sandbox runs as nobody when the tests run as root: it must be able to reach the workspaces.</summary>
    static string Searchable(string folder)
    {
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(folder, File.GetUnixFileMode(folder) | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        return folder;
    }
    WebApplication _slow = null!;
    int _slowCalls;
    string _slowUrl = "";

    public async Task InitializeAsync()
    {
        // An HTTP target that answers slowly, so a kill can land while an effect is running.
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        _slow = builder.Build();
        _slow.MapGet("/slow", async (HttpContext http) =>
        {
            Interlocked.Increment(ref _slowCalls);
            await Task.Delay(SlowAnswer, http.RequestAborted);
            return "slow answer";
        });
        await _slow.StartAsync();
        _slowUrl = _slow.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First() + "/slow";
    }

    public async Task DisposeAsync()
    {
        await _slow.DisposeAsync();
        OrchestratorApp.TryDelete(_folder);
    }

    Dictionary<string, string> Settings() => new()
    {
        ["Orchestrator:Queue:Workers"] = "4",
        ["Orchestrator:Models:0:Id"] = "sim",
        ["Orchestrator:Models:0:Provider"] = "simulated",
        ["Orchestrator:Models:0:LatencyMs"] = "100",
        // The slow server is on loopback, which http/fetch reaches only where a rule names the address.
        ["Orchestrator:Effects:HttpRules:0:Host"] = "127.0.0.1",
        ["Orchestrator:Effects:HttpRules:0:AllowAddresses:0"] = "127.0.0.1/32",
        ["Orchestrator:Effects:ProcessAllowList:0"] = "sleep",
    };

    static string Script(IEnumerable<string> calls) => "Work.\n" + string.Join("\n", calls.Select(c => "/call " + c));

    static string Line(int job, int line) => $"job{job}-line{line}\n";

    [Fact]
    public async Task Killed_at_any_point_every_job_finishes_and_each_effect_is_applied_once()
    {
        await using var service = new ServiceProcess(_folder, Settings());
        await service.StartAsync();
        using var client = service.Client();

        var fetch = await Submit(client, Script([$$"""http_fetch {"url":"{{_slowUrl}}"}""", """fs_write {"path":"fetched.txt","content":"done"}"""]));
        var process = await Submit(client, Script(["""process_run {"argv":["sleep","3"]}"""]));
        var appends = new List<string>();
        for (var job = 0; job < AppendJobs; job++)
        {
            var calls = Enumerable.Range(1, LinesPerJob).Select(line =>
                $$"""fs_append {"path":"out-{{job}}.txt","content":"{{Line(job, line).Replace("\n", "\\n")}}"}""");
            appends.Add(await Submit(client, Script(calls)));
        }

        // 1. During effects: the fetch (read-only) and the process (not idempotent, not reconcilable) are running.
        // The fetch node is marked running before its request leaves, so the kill also waits for the slow server to
        // see the request: only then is the effect really in flight.
        await WaitUntil(client, [fetch, process], graphs =>
            graphs.All(g => Nodes(g).Any(n => n.Str("kind") == "effect" && n.Str("status") == "running")) && Volatile.Read(ref _slowCalls) >= 1);
        service.Kill();

        // 2. After an effect: once the restarted service has finished a new append, kill it again.
        await service.StartAsync();
        var before = await SucceededAppends(client, appends);
        await WaitUntil(client, appends, _ => true, until: async () => await SucceededAppends(client, appends) > before);
        service.Kill();

        // 3. Before an effect: as soon as a model turn is running again.
        await service.StartAsync();
        await WaitUntil(client, appends, graphs => graphs.Any(g => Nodes(g).Any(n => n.Str("kind") == "model" && n.Str("status") == "running")));
        service.Kill();

        // 4. Let everything finish.
        await service.StartAsync();
        foreach (var id in appends.Append(fetch).Append(process))
            await client.WaitForEndAsync(id, waitMs: 60_000);

        for (var job = 0; job < AppendJobs; job++)
        {
            var view = await client.GetJobAsync(appends[job]);
            view.Str("status").Should().Be("completed", $"append job {job} must finish: {view.ToJsonString()}\n{(await Graph(client, appends[job])).ToJsonString()}");
            var expected = string.Concat(Enumerable.Range(1, LinesPerJob).Select(line => Line(job, line)));
            File.ReadAllText(Path.Combine(_folder, "workspaces", "acme", $"out-{job}.txt")).Should().Be(expected,
                $"every append of job {job} must be applied exactly once, in order");
        }

        var fetched = await client.GetJobAsync(fetch);
        fetched.Str("status").Should().Be("completed");
        var fetchNode = Nodes(await Graph(client, fetch)).Single(n => n.Str("name") == "http/fetch");
        fetchNode.Str("status").Should().Be("succeeded");
        int.Parse(fetchNode.Str("attempts")).Should().BeGreaterThanOrEqualTo(2, "a read-only effect interrupted by the kill is simply run again");
        _slowCalls.Should().BeGreaterThanOrEqualTo(2);

        var stopped = await client.GetJobAsync(process);
        stopped.Str("status").Should().Be("failed");
        stopped.Str("error.code").Should().Be("effect_outcome_unknown", "a process that may or may not have run is not run twice");
    }

    static async Task<string> Submit(HttpClient client, string input)
    {
        var (response, job) = await client.ActAsync(new { intent = "agent/run", input, mode = "async", deadlineMs = 300_000 });
        response.IsSuccessStatusCode.Should().BeTrue(job.ToJsonString());
        return job.Str("jobId");
    }

    static async Task<JsonObject> Graph(HttpClient client, string jobId) =>
        await Api.BodyOf(await client.GetAsync($"/v1/jobs/{jobId}/graph"));

    static IEnumerable<JsonNode> Nodes(JsonObject graph) => graph["nodes"]!.AsArray()!.OfType<JsonNode>();

    static async Task<int> SucceededAppends(HttpClient client, IEnumerable<string> jobs)
    {
        var total = 0;
        foreach (var id in jobs)
            total += Nodes(await Graph(client, id)).Count(n => n.Str("name") == "fs/append" && n.Str("status") == "succeeded");
        return total;
    }

    /// <summary>Polls the jobs' graphs until the condition holds (no fixed sleep: as fast as the service answers).</summary>
    static async Task WaitUntil(HttpClient client, IReadOnlyList<string> jobs, Func<List<JsonObject>, bool> condition, Func<Task<bool>>? until = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        List<JsonObject> graphs = [];
        while (DateTime.UtcNow < deadline)
        {
            graphs = (await Task.WhenAll(jobs.Select(j => Graph(client, j)))).ToList();
            if (until is not null ? await until() : condition(graphs))
                return;
            await Task.Delay(5);
        }
        throw new TimeoutException("The service never reached the state the test waits for. Graphs:\n" +
            string.Join("\n", graphs.Select(g => g.ToJsonString())));
    }
}
