using System.Net;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Workflow;

public sealed class OpenAiToolCallTests
{
    [Fact]
    public async Task Tool_calls_work_over_the_openai_wire_format()
    {
        await using var server = await FakeModelServer.StartAsync();
        server.Then(FakeModelServer.Behavior.CallTool("fs_write", new { path = "wire.txt", content = "over the wire" }));
        server.Default = FakeModelServer.Behavior.Reply("The file is written.");
        using var app = new OrchestratorApp(new Dictionary<string, string?>
        {
            ["Orchestrator:Models:0:Id"] = "remote",
            ["Orchestrator:Models:0:Provider"] = "openai",
            ["Orchestrator:Models:0:Endpoint"] = server.BaseUrl,
        });
        using var client = app.ClientFor();

        var (response, job) = await client.ActAsync(new { intent = "agent/run", input = "Write wire.txt", tools = new[] { "fs/write", "fs/read" } });

        response.StatusCode.Should().Be(HttpStatusCode.OK, job.ToJsonString());
        job.Str("output.text").Should().Be("The file is written.");
        File.ReadAllText(Path.Combine(app.Folder, "workspaces", "acme", "wire.txt")).Should().Be("over the wire");

        var requests = server.Requests.ToArray();
        requests.Should().HaveCount(2);
        // The functions offered are the intersection of the intent's capabilities and the request's tools.
        requests[0]["tools"]!.AsArray().Select(t => t!["function"]!.Str("name")).Should().BeEquivalentTo("fs_write", "fs_read");
        var messages = requests[1]["messages"]!.AsArray();
        var assistant = messages.Single(m => m.Str("role") == "assistant");
        assistant!["tool_calls"]![0]!["function"]!.Str("name").Should().Be("fs_write");
        var tool = messages.Single(m => m.Str("role") == "tool");
        tool.Str("tool_call_id").Should().Be(assistant["tool_calls"]![0]!.Str("id"));
        tool.Str("content").Should().Contain("written");
    }
}
