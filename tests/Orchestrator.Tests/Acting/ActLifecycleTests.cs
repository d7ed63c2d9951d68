using System.Net;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Acting;

public sealed class ActLifecycleTests : IClassFixture<ActLifecycleTests.App>, IDisposable
{
    public sealed class App() : IDisposable
    {
        public OrchestratorApp Host { get; } = new();
        public void Dispose() => Host.Dispose();
    }

    readonly HttpClient _client;

    public ActLifecycleTests(App app) => _client = app.Host.ClientFor();

    public void Dispose() => _client.Dispose();

    [Fact]
    public async Task Sync_act_answers_200_with_the_completed_job()
    {
        var (response, job) = await _client.ActAsync(new { intent = "text/respond", input = "hello there" });

        response.StatusCode.Should().Be(HttpStatusCode.OK, job.ToJsonString());
        job.Str("status").Should().Be("completed");
        job.Str("mode").Should().Be("sync");
        job.Str("tenant").Should().Be("acme");
        job.Str("principal").Should().Be("alice");
        job.Str("output.text").Should().Contain("hello there");
        job.Str("output.model").Should().Be("simulated");
        long.Parse(job.Str("output.usage.inputTokens")).Should().BePositive();
        job.Str("attempts").Should().Be("1");
        job.Str("traceId").Should().MatchRegex("^[0-9a-f]{32}$");
        job.Str("links.self").Should().Be($"/v1/jobs/{job.Str("jobId")}");
        job["sla"]!["breached"]!.GetValue<bool>().Should().BeFalse();
    }

    [Fact]
    public async Task Async_act_answers_202_with_location_then_completes()
    {
        var (response, accepted) = await _client.ActAsync(new { input = "later please", mode = "async" });

        response.StatusCode.Should().Be(HttpStatusCode.Accepted);
        accepted.Str("status").Should().Be("accepted");
        response.Headers.Location!.ToString().Should().Be($"/v1/jobs/{accepted.Str("jobId")}");

        var done = await _client.WaitForEndAsync(accepted.Str("jobId"));
        done.Str("status").Should().Be("completed");
        done.Str("output.text").Should().Contain("later please");
        done.Str("intent").Should().Be("text/respond", "the default intent applies when none is named");
    }

    [Fact]
    public async Task Messages_can_replace_input()
    {
        var (response, job) = await _client.ActAsync(new
        {
            messages = new[] { new { role = "system", content = "be brief" }, new { role = "user", content = "from messages" } },
        });

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        job.Str("output.text").Should().Contain("from messages");
    }

    [Fact]
    public async Task Result_of_a_finished_job_answers_200_at_once()
    {
        var (_, job) = await _client.ActAsync(new { input = "x" });

        var response = await _client.GetAsync($"/v1/jobs/{job.Str("jobId")}/result?waitMs=0");

        response.StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Job_list_is_newest_first_and_pages_with_a_cursor()
    {
        using var client = new OrchestratorApp().ClientFor(OrchestratorApp.AcmeOtherKey);
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
            ids.Add((await client.ActAsync(new { input = $"n{i}" })).Body.Str("jobId"));

        var first = await Api.BodyOf(await client.GetAsync("/v1/jobs?limit=3&principal=carol"));
        var items = first["items"]!.AsArray().Select(j => j.Str("jobId")).ToList();
        var second = await Api.BodyOf(await client.GetAsync($"/v1/jobs?limit=3&principal=carol&cursor={first.Str("nextCursor")}"));
        items.AddRange(second["items"]!.AsArray().Select(j => j.Str("jobId")));

        items.Should().Equal(Enumerable.Reverse(ids), "pages run newest first and the cursor continues where the page ended");
        second["nextCursor"].Should().BeNull();
    }

    [Fact]
    public async Task Job_list_filters_by_status_and_intent()
    {
        await _client.ActAsync(new { input = "filtered" });

        var page = await Api.BodyOf(await _client.GetAsync("/v1/jobs?status=completed&intent=text/respond&limit=200"));

        page["items"]!.AsArray().Should().NotBeEmpty()
            .And.OnlyContain(j => j.Str("status") == "completed" && j.Str("intent") == "text/respond");
    }
}
