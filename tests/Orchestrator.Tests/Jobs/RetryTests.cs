using System.Net;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Jobs;

public sealed class RetryTests
{
    static Dictionary<string, string?> With(string endpoint) => new()
    {
        ["Orchestrator:Jobs:Retry:MaxAttempts"] = "3",
        ["Orchestrator:Jobs:Retry:BaseDelay"] = "00:00:00.001",
        // Job-level retry is what these tests are about: the gateway's own per-call retries are off.
        ["Orchestrator:Gateway:MaxRetries"] = "0",
        ["Orchestrator:Models:0:Id"] = "remote",
        ["Orchestrator:Models:0:Provider"] = "openai",
        ["Orchestrator:Models:0:Endpoint"] = endpoint,
        ["Orchestrator:Models:0:Model"] = "fake-1",
    };

    [Fact]
    public async Task A_transient_failure_is_retried_and_the_attempts_show()
    {
        await using var server = await FakeModelServer.StartAsync();
        server.Then(FakeModelServer.Behavior.Fail(503), FakeModelServer.Behavior.Fail(503));
        server.Default = FakeModelServer.Behavior.Reply("third time lucky");
        using var app = new OrchestratorApp(With(server.BaseUrl));
        using var client = app.ClientFor();

        var (response, job) = await client.ActAsync(new { input = "try hard" });

        response.StatusCode.Should().Be(HttpStatusCode.OK, job.ToJsonString());
        job.Str("output.text").Should().Be("third time lucky");
        job.Str("attempts").Should().Be("3");
    }

    [Fact]
    public async Task A_transient_failure_that_persists_fails_after_the_last_attempt()
    {
        await using var server = await FakeModelServer.StartAsync();
        server.Default = FakeModelServer.Behavior.Fail(500);
        using var app = new OrchestratorApp(With(server.BaseUrl));
        using var client = app.ClientFor();

        var (response, problem) = await client.ActAsync(new { input = "doomed" });

        response.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable, problem.ToJsonString());
        problem.Str("code").Should().Be("model_unavailable");
        response.Headers.RetryAfter.Should().NotBeNull();
        var job = await client.GetJobAsync(problem.Str("jobId"));
        job.Str("attempts").Should().Be("3");
    }

    [Fact]
    public async Task A_request_the_model_refuses_is_not_retried()
    {
        await using var server = await FakeModelServer.StartAsync();
        server.Default = FakeModelServer.Behavior.Fail(400);
        using var app = new OrchestratorApp(With(server.BaseUrl));
        using var client = app.ClientFor();

        var (_, problem) = await client.ActAsync(new { input = "refused" });

        problem.Str("code").Should().Be("model_failed");
        var job = await client.GetJobAsync(problem.Str("jobId"));
        job.Str("attempts").Should().Be("1", "a refused request fails the same way every time");
        server.Calls.Should().Be(1);
    }

    [Fact]
    public async Task A_retry_waiting_for_its_due_time_holds_no_worker()
    {
        await using var server = await FakeModelServer.StartAsync();
        server.Then(FakeModelServer.Behavior.Fail(503));
        server.Default = FakeModelServer.Behavior.Reply("back again");
        var settings = With(server.BaseUrl);
        settings["Orchestrator:Queue:Workers"] = "1";
        settings["Orchestrator:Jobs:Retry:BaseDelay"] = "00:00:05"; // the first retry is due 2.5 to 5 s after the failure
        settings["Orchestrator:Models:1:Id"] = "sim";
        settings["Orchestrator:Models:1:Provider"] = "simulated";
        using var app = new OrchestratorApp(settings);
        using var client = app.ClientFor();

        var (_, accepted) = await client.ActAsync(new { input = "flaky", mode = "async", deadlineMs = 60_000, routing = new { models = new[] { "remote" } } });
        var flaky = accepted.Str("jobId");
        var parked = await client.WaitForAsync(flaky, j => j["nextAttemptAt"] is not null);
        var (response, quick) = await client.ActAsync(new { input = "quick", deadlineMs = 10_000, routing = new { models = new[] { "sim" } } });

        parked.Str("status").Should().Be("accepted", "a job waiting for its retry is a committed row, not a running one");
        parked.Str("error.code").Should().Be("model_unavailable", "the view says why it waits");
        response.StatusCode.Should().Be(HttpStatusCode.OK, quick.ToJsonString());
        var due = DateTime.Parse(parked.Str("nextAttemptAt"), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.RoundtripKind);
        DateTime.Parse(quick.Str("completedAt"), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.RoundtripKind)
            .Should().BeBefore(due, "the only worker ran the second job during the first one's backoff");
        (await client.GetJobAsync(flaky)).Str("attempts").Should().Be("1", "the retry is not due yet");

        var retried = await client.WaitForEndAsync(flaky, waitMs: 15_000);
        retried.Str("status").Should().Be("completed", "the retry ran when it came due");
        retried.Str("output.text").Should().Be("back again");
        retried.Str("attempts").Should().Be("2");
        DateTime.Parse(retried.Str("startedAt"), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.RoundtripKind)
            .Should().BeOnOrAfter(due, "not before its due time");
    }

    [Fact]
    public async Task No_retry_is_started_that_would_end_past_the_deadline()
    {
        await using var server = await FakeModelServer.StartAsync();
        server.Default = FakeModelServer.Behavior.Fail(503);
        var settings = With(server.BaseUrl);
        settings["Orchestrator:Jobs:Retry:BaseDelay"] = "00:00:10";
        using var app = new OrchestratorApp(settings);
        using var client = app.ClientFor();

        var (_, problem) = await client.ActAsync(new { input = "hurry", deadlineMs = 5_000 });

        problem.Str("code").Should().Be("model_unavailable");
        (await client.GetJobAsync(problem.Str("jobId"))).Str("attempts").Should().Be("1");
    }
}
