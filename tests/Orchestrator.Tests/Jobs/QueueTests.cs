using System.Net;
using Microsoft.Extensions.Time.Testing;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Jobs;

/// <summary>Lanes, capacity, deadlines and cancellation, with one worker and a "slow" model to hold it.</summary>
public sealed class QueueTests
{
    static Dictionary<string, string?> OneWorker(int slowLatencyMs = 600_000, int capacity = 1000) => new()
    {
        ["Orchestrator:Queue:Workers"] = "1",
        ["Orchestrator:Queue:Capacity"] = capacity.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Orchestrator:Models:0:Id"] = "fast",
        ["Orchestrator:Models:0:Provider"] = "simulated",
        ["Orchestrator:Models:1:Id"] = "slow",
        ["Orchestrator:Models:1:Provider"] = "simulated",
        ["Orchestrator:Models:1:LatencyMs"] = slowLatencyMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    static object Slow(int deadlineMs = 3_600_000, string mode = "async") =>
        new { input = "block", mode, deadlineMs, routing = new { models = new[] { "slow" } } };

    static object Fast(string priority = "normal", int deadlineMs = 60_000) =>
        new { input = "quick " + priority, mode = "async", priority, deadlineMs, routing = new { models = new[] { "fast" } } };

    static async Task<string> StartBlockerAsync(HttpClient client)
    {
        var (_, blocker) = await client.ActAsync(Slow());
        var id = blocker.Str("jobId");
        await client.WaitForAsync(id, j => j.Str("status") == "running");
        return id;
    }

    [Fact]
    public async Task Queue_full_answers_429_with_retry_after_while_status_and_health_stay_up()
    {
        using var app = new OrchestratorApp(OneWorker(capacity: 2));
        using var client = app.ClientFor();
        await StartBlockerAsync(client);
        var (_, queued) = await client.ActAsync(Fast());
        await client.ActAsync(Fast());

        var (full, problem) = await client.ActAsync(Fast());

        full.StatusCode.Should().Be(HttpStatusCode.TooManyRequests, problem.ToJsonString());
        problem.Str("code").Should().Be("queue_full");
        full.Headers.RetryAfter!.Delta!.Value.TotalSeconds.Should().BeInRange(1, 30);
        (await client.GetAsync($"/v1/jobs/{queued.Str("jobId")}")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await client.GetAsync("/health/ready")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await client.GetAsync("/v1/jobs")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Cancel_of_a_queued_job_ends_it_at_once_and_a_second_cancel_conflicts()
    {
        using var app = new OrchestratorApp(OneWorker());
        using var client = app.ClientFor();
        await StartBlockerAsync(client);
        var (_, queued) = await client.ActAsync(Fast());

        var cancel = await client.PostAsync($"/v1/jobs/{queued.Str("jobId")}/cancel", null);
        var view = await Api.BodyOf(cancel);
        var again = await client.PostAsync($"/v1/jobs/{queued.Str("jobId")}/cancel", null);

        cancel.StatusCode.Should().Be(HttpStatusCode.Accepted);
        view.Str("status").Should().Be("canceled");
        view.Str("attempts").Should().Be("0", "a canceled queued job never ran");
        view.Str("error.code").Should().Be("canceled");
        again.StatusCode.Should().Be(HttpStatusCode.Conflict);
        (await Api.BodyOf(again)).Str("code").Should().Be("conflict");
    }

    [Fact]
    public async Task Cancel_of_a_running_job_stops_it_at_its_next_cancellation_point()
    {
        using var app = new OrchestratorApp(OneWorker());
        using var client = app.ClientFor();
        var blocker = await StartBlockerAsync(client);

        var cancel = await client.PostAsync($"/v1/jobs/{blocker}/cancel", null);
        var accepted = await Api.BodyOf(cancel);
        var ended = await client.WaitForEndAsync(blocker);

        cancel.StatusCode.Should().Be(HttpStatusCode.Accepted);
        accepted["cancelRequested"]!.GetValue<bool>().Should().BeTrue();
        ended.Str("status").Should().Be("canceled");
        ended.Str("attempts").Should().Be("1");
    }

    [Fact]
    public async Task High_priority_is_preferred_but_low_is_not_starved()
    {
        using var app = new OrchestratorApp(OneWorker());
        using var client = app.ClientFor();
        var blocker = await StartBlockerAsync(client);
        var ids = new Dictionary<string, string>();
        foreach (var priority in new[] { "low", "normal", "high" })
            for (var i = 0; i < 8; i++)
                ids[(await client.ActAsync(Fast(priority))).Body.Str("jobId")] = priority;

        await client.PostAsync($"/v1/jobs/{blocker}/cancel", null);
        var ended = new List<(string Priority, DateTime Started)>();
        foreach (var (id, priority) in ids)
        {
            var job = await client.WaitForEndAsync(id);
            ended.Add((priority, DateTime.Parse(job.Str("startedAt"), null, System.Globalization.DateTimeStyles.RoundtripKind)));
        }
        var order = ended.OrderBy(e => e.Started).Select(e => e.Priority).ToList();

        order.Take(8).Count(p => p == "high").Should().BeGreaterThanOrEqualTo(4, $"high is preferred; order was {string.Join(",", order)}");
        order.IndexOf("low").Should().BeLessThan(order.LastIndexOf("high"), $"low must get a turn while high is backlogged; order was {string.Join(",", order)}");
    }

    [Fact]
    public async Task A_job_whose_deadline_passes_in_the_queue_fails_without_running()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));
        using var app = new OrchestratorApp(OneWorker(slowLatencyMs: 10_000), time);
        using var client = app.ClientFor();
        await StartBlockerAsync(client);
        var (_, queued) = await client.ActAsync(Fast(deadlineMs: 1_000));

        time.Advance(TimeSpan.FromMilliseconds(1_500));
        var ended = await client.WaitForEndAsync(queued.Str("jobId"));

        ended.Str("status").Should().Be("failed");
        ended.Str("error.code").Should().Be("deadline_exceeded");
        ended.Str("attempts").Should().Be("0");
        ended["startedAt"].Should().BeNull("the job never ran");
        ended["sla"]!["breached"]!.GetValue<bool>().Should().BeTrue();
    }

    [Fact]
    public async Task A_sync_act_that_runs_past_its_deadline_is_canceled_and_answers_504()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));
        using var app = new OrchestratorApp(OneWorker(slowLatencyMs: 10_000), time);
        using var client = app.ClientFor();

        var act = client.ActAsync(Slow(deadlineMs: 1_000, mode: "sync"));
        var running = await WaitForRunningAsync(client);
        // Small steps: the run's deadline timer may start a moment after the row says running.
        for (var step = 0; step < 100 && !act.IsCompleted; step++)
        {
            time.Advance(TimeSpan.FromMilliseconds(50));
            await Task.WhenAny(act, Task.Delay(10));
        }
        var (response, problem) = await act;

        response.StatusCode.Should().Be(HttpStatusCode.GatewayTimeout, problem.ToJsonString());
        problem.Str("code").Should().Be("deadline_exceeded");
        problem.Str("jobId").Should().Be(running);
        var job = await client.GetJobAsync(running);
        job.Str("status").Should().Be("failed");
        job["sla"]!["breached"]!.GetValue<bool>().Should().BeTrue();
        long.Parse(job.Str("sla.runMs")).Should().BeInRange(1_000, 1_200, "the run was stopped at its deadline, not before");
    }

    static async Task<string> WaitForRunningAsync(HttpClient client)
    {
        for (var i = 0; i < 400; i++)
        {
            var page = await Api.BodyOf(await client.GetAsync("/v1/jobs?status=running"));
            if (page["items"]!.AsArray().FirstOrDefault() is { } job)
                return job.Str("jobId");
            await Task.Yield();
        }
        throw new TimeoutException("No job started running.");
    }

    [Fact]
    public async Task Long_poll_answers_202_with_retry_after_when_the_wait_ends_first()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));
        using var app = new OrchestratorApp(OneWorker(slowLatencyMs: 10_000), time);
        using var client = app.ClientFor();
        var blocker = await StartBlockerAsync(client);

        var poll = client.GetAsync($"/v1/jobs/{blocker}/result?waitMs=500");
        while (!poll.IsCompleted)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            await Task.WhenAny(poll, Task.Delay(10));
        }
        var response = await poll;

        response.StatusCode.Should().Be(HttpStatusCode.Accepted);
        response.Headers.RetryAfter.Should().NotBeNull();
        (await Api.BodyOf(response)).Str("status").Should().Be("running");
    }

    [Fact]
    public async Task Long_poll_returns_as_soon_as_the_job_ends()
    {
        using var app = new OrchestratorApp(OneWorker(slowLatencyMs: 300));
        using var client = app.ClientFor();
        var (_, job) = await client.ActAsync(Slow());

        var response = await client.GetAsync($"/v1/jobs/{job.Str("jobId")}/result?waitMs=30000");

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await Api.BodyOf(response)).Str("status").Should().Be("completed");
    }
}
