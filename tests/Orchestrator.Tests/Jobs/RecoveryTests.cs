using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Jobs;

public sealed class RecoveryTests
{
    [Fact]
    public async Task A_restart_on_the_same_store_picks_up_accepted_and_running_jobs()
    {
        var folder = Directory.CreateTempSubdirectory("orchestrator-restart-").FullName;
        try
        {
            string running;
            var queued = new List<string>();
            using (var first = new OrchestratorApp(Settings(slowLatencyMs: 600_000), folder: folder))
            {
                using var client = first.ClientFor();
                var (_, blocker) = await client.ActAsync(new { input = "long", mode = "async", routing = new { models = new[] { "slow" } } });
                running = blocker.Str("jobId");
                await client.WaitForAsync(running, j => j.Str("status") == "running");
                for (var i = 0; i < 3; i++)
                    queued.Add((await client.ActAsync(new { input = $"q{i}", mode = "async", routing = new { models = new[] { "slow" } } })).Body.Str("jobId"));
            }

            // The same store, now with a quick "slow" model: everything left unfinished must complete.
            using var second = new OrchestratorApp(Settings(slowLatencyMs: 0), folder: folder);
            using var after = second.ClientFor();
            var resumed = await after.WaitForEndAsync(running);
            resumed.Str("status").Should().Be("completed");
            resumed.Str("attempts").Should().Be("2", "the interrupted run counts as the first attempt");
            foreach (var id in queued)
            {
                var job = await after.WaitForEndAsync(id);
                job.Str("status").Should().Be("completed");
                job.Str("attempts").Should().Be("1");
            }
        }
        finally
        {
            OrchestratorApp.TryDelete(folder);
        }
    }

    static Dictionary<string, string?> Settings(int slowLatencyMs) => new()
    {
        ["Orchestrator:Queue:Workers"] = "1",
        ["Orchestrator:Models:0:Id"] = "slow",
        ["Orchestrator:Models:0:Provider"] = "simulated",
        ["Orchestrator:Models:0:LatencyMs"] = slowLatencyMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
