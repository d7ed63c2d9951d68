using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Jobs;

/// <summary><c>GET /v1/jobs/{id}/events</c> and a sync act sent with <c>Accept: text/event-stream</c>.</summary>
public sealed class JobEventsTests
{
    sealed record Sse(string? Id, string Type, JsonNode Data);

    static OrchestratorApp App() => new(new Dictionary<string, string?> { ["Orchestrator:Node:PropagationMs"] = "100" });

    static async Task<List<Sse>> ReadAsync(HttpResponseMessage response)
    {
        response.StatusCode.Should().Be(HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        response.Content.Headers.ContentType!.MediaType.Should().Be("text/event-stream");
        var text = await response.Content.ReadAsStringAsync();
        return text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(block =>
        {
            string? id = null, type = "message", data = "";
            foreach (var line in block.Split('\n'))
            {
                if (line.StartsWith("id: ", StringComparison.Ordinal))
                    id = line[4..];
                else if (line.StartsWith("event: ", StringComparison.Ordinal))
                    type = line[7..];
                else if (line.StartsWith("data: ", StringComparison.Ordinal))
                    data += line[6..];
            }
            return new Sse(id, type, JsonNode.Parse(data)!);
        }).ToList();
    }

    static async Task<List<Sse>> EventsAsync(HttpClient client, string jobId, string? lastEventId = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/jobs/{jobId}/events");
        if (lastEventId is not null)
            request.Headers.Add("Last-Event-ID", lastEventId);
        return await ReadAsync(await client.SendAsync(request));
    }

    [Fact]
    public async Task Events_follow_a_job_to_its_end_and_resume_after_the_last_event_id()
    {
        using var app = App();
        using var client = app.ClientFor();
        var (_, accepted) = await client.ActAsync(new { intent = "problem/solve", input = "plan a picnic", mode = "async" });

        var events = await EventsAsync(client, accepted.Str("jobId"));

        events.Where(e => e.Id is not null).Select(e => e.Type == "job.status" ? $"status:{e.Data.Str("status")}" : $"{e.Type}:{e.Data.Str("node")}")
            .Where(e => !e.StartsWith("job.end", StringComparison.Ordinal)).Should().Equal(
                "status:accepted", "status:running",
                "node.started:solver", "node.completed:solver", "node.started:writer", "node.completed:writer",
                "status:completed");
        events[^1].Type.Should().Be("job.end");
        events[^1].Data.Str("status").Should().Be("completed");
        events[^1].Data.Str("output.text").Should().NotBeNullOrEmpty();

        var resumed = await EventsAsync(client, accepted.Str("jobId"), lastEventId: events[2].Id);
        resumed.Select(e => e.Id).Should().Equal(events.Skip(3).Where(e => e.Id is not null).Select(e => e.Id),
            "a resumed stream starts after the event it names and repeats none");
    }

    [Fact]
    public async Task Another_tenants_job_has_no_events_to_show()
    {
        using var app = App();
        using var acme = app.ClientFor();
        using var globex = app.ClientFor(OrchestratorApp.GlobexKey);
        var (_, job) = await acme.ActAsync(new { input = "mine", mode = "async" });

        var response = await globex.GetAsync($"/v1/jobs/{job.Str("jobId")}/events");

        response.StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await Api.BodyOf(response)).Str("code").Should().Be("not_found");
    }

    [Fact]
    public async Task A_sync_act_asking_for_an_event_stream_streams_its_progress_and_tokens()
    {
        using var app = App();
        using var client = app.ClientFor();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/act")
        {
            Content = JsonContent.Create(new { intent = "problem/solve", input = "count to three in words" }),
        };
        request.Headers.Accept.ParseAdd("text/event-stream");

        var events = await ReadAsync(await client.SendAsync(request));

        var deltas = events.Where(e => e.Type == "model.delta").ToList();
        deltas.Should().NotBeEmpty("the job's model calls stream while the act is watched");
        deltas.Should().OnlyContain(d => d.Id == null, "tokens are live only: they carry no id to resume at");
        string.Concat(deltas.Where(d => d.Data.Str("node") == "writer").Select(d => d.Data.Str("text")))
            .Should().Be(events[^1].Data.Str("output.text"), "the writer's tokens make up the answer");
        var solverDone = events.FindIndex(e => e.Type == "node.completed" && e.Data.Str("node") == "solver");
        events.FindIndex(e => e.Type == "model.delta" && e.Data.Str("node") == "solver").Should().BeLessThan(solverDone);
        events[^1].Type.Should().Be("job.end");
        events[^1].Data.Str("status").Should().Be("completed");
    }

    [SkippableFact]
    public async Task Another_node_serves_the_events_of_a_job_and_resumes_them_after_an_id_it_did_not_give()
    {
        await using var cluster = await MultiNode.CreateAsync();
        var settings = new Dictionary<string, string>
        {
            ["Orchestrator:Node:PropagationMs"] = "100",
            ["Orchestrator:Models:0:Id"] = "sim",
            ["Orchestrator:Models:0:Provider"] = "simulated",
            ["Orchestrator:Models:0:LatencyMs"] = "300",
        };
        var a = cluster.Add("node-a", settings);
        var b = cluster.Add("node-b", settings);
        await a.StartAsync();
        await b.StartAsync();
        using var clientA = a.Client();
        using var clientB = b.Client();
        var (_, accepted) = await clientA.ActAsync(new { intent = "problem/solve", input = "two nodes", mode = "async" });
        var jobId = accepted.Str("jobId");

        var fromB = await EventsAsync(clientB, jobId);

        fromB.Where(e => e.Type is "node.started" or "node.completed").Select(e => $"{e.Type}:{e.Data.Str("node")}").Should().Equal(
            "node.started:solver", "node.completed:solver", "node.started:writer", "node.completed:writer");
        fromB[^1].Type.Should().Be("job.end");
        var resumedOnA = await EventsAsync(clientA, jobId, lastEventId: fromB[3].Id);
        resumedOnA.Select(e => e.Id).Should().Equal(fromB.Skip(4).Where(e => e.Id is not null).Select(e => e.Id),
            "an event's id is its place in the job's history, the same on every node");
    }
}
