using System.ClientModel;
using System.ClientModel.Primitives;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using OpenAI;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Clients;

/// <summary>
/// Real OpenAI clients nobody here wrote, pointed at <c>/v1/chat/completions</c>: the official <c>openai</c> npm package
/// against the started service, and Microsoft.Extensions.AI's OpenAI client from .NET. Plain, streamed, and with tools.
/// </summary>
public sealed class OpenAiClientTests
{
    [SkippableFact]
    public async Task The_official_openai_npm_package_calls_plain_streamed_and_with_tools()
    {
        var folder = Directory.CreateTempSubdirectory("orchestrator-openai-node-").FullName;
        try
        {
            var script = await NodeScript.PrepareAsync();
            await using var service = new ServiceProcess(folder, new Dictionary<string, string>());
            await service.StartAsync();

            var output = await NodeScript.RunAsync(script, new Dictionary<string, string>
            {
                ["ORCHESTRATOR_BASE_URL"] = new Uri(service.BaseAddress, "/v1").ToString(),
                ["ORCHESTRATOR_API_KEY"] = OrchestratorApp.AcmeKey,
            });

            var summary = JsonNode.Parse(output)!;
            summary.Str("plain.text").Should().Contain("hello from node");
            summary.Str("plain.finish").Should().Be("stop");
            summary.Str("plain.id").Should().StartWith("chatcmpl-job_");
            int.Parse(summary.Str("plain.totalTokens")).Should().BeGreaterThan(0);
            summary.Str("stream.text").Should().Contain("stream these few words");
            int.Parse(summary.Str("stream.chunks")).Should().BeGreaterThan(2, "the answer arrives in pieces");
            summary.Str("stream.finish").Should().Be("stop");
            int.Parse(summary.Str("stream.completionTokens")).Should().BeGreaterThan(0, "include_usage puts usage in the last chunk");
            summary.Str("tools.finish").Should().Be("tool_calls");
            summary.Str("tools.name").Should().Be("get_weather");
            summary.Str("tools.arguments.city").Should().Be("Oslo");
            summary.Str("tools.answer").Should().Contain("sunny, 21C", "the tool's result went back to the model");
            summary.Str("error.status").Should().Be("400");
            summary.Str("error.code").Should().Be("validation_failed");
            summary.Str("error.type").Should().Be("invalid_request_error");
        }
        finally
        {
            OrchestratorApp.TryDelete(folder);
        }
    }

    [Fact]
    public async Task Microsoft_Extensions_AI_openai_client_calls_plain_streamed_and_with_tools()
    {
        using var app = new OrchestratorApp();
        var http = app.CreateClient();
        using var chat = new OpenAI.Chat.ChatClient("auto", new ApiKeyCredential(OrchestratorApp.AcmeKey), new OpenAIClientOptions
        {
            Endpoint = new Uri(http.BaseAddress!, "/v1"),
            Transport = new HttpClientPipelineTransport(http),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        }).AsIChatClient();

        var plain = await chat.GetResponseAsync("hello from dotnet", new ChatOptions { Temperature = 0.1f, MaxOutputTokens = 40 });
        plain.Text.Should().Contain("hello from dotnet");
        plain.FinishReason.Should().Be(ChatFinishReason.Stop);
        plain.Usage!.TotalTokenCount.Should().BeGreaterThan(0);

        var pieces = new List<string>();
        UsageDetails? usage = null;
        await foreach (var update in chat.GetStreamingResponseAsync("streamed from dotnet"))
        {
            if (update.Text.Length > 0)
                pieces.Add(update.Text);
            usage ??= update.Contents.OfType<UsageContent>().FirstOrDefault()?.Details;
        }
        string.Concat(pieces).Should().Contain("streamed from dotnet");
        pieces.Count.Should().BeGreaterThan(1, "the answer arrives in pieces");
        usage!.OutputTokenCount.Should().BeGreaterThan(0, "the OpenAI client asks for usage, and gets it in the last chunk");

        var weather = AIFunctionFactory.CreateDeclaration("get_weather", "Weather in a city",
            JsonDocument.Parse("""{"type":"object","properties":{"city":{"type":"string"}}}""").RootElement);
        var options = new ChatOptions { Tools = [weather] };
        List<ChatMessage> messages = [new(ChatRole.User, "What is the weather?\n/call get_weather {\"city\":\"Oslo\"}")];
        var first = await chat.GetResponseAsync(messages, options);
        var call = first.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Single();
        call.Name.Should().Be("get_weather");
        call.Arguments!["city"]!.ToString().Should().Be("Oslo");
        first.FinishReason.Should().Be(ChatFinishReason.ToolCalls);

        messages.AddRange(first.Messages);
        messages.Add(new ChatMessage(ChatRole.Tool, [new FunctionResultContent(call.CallId, "sunny, 21C")]));
        var answer = await chat.GetResponseAsync(messages, options);
        answer.Text.Should().Contain("sunny, 21C");
    }
}

/// <summary>
/// The node script beside this file (<c>openai-node/check.mjs</c>) and its packages. Without Node.js the test is skipped
/// on a developer's machine but fails under CI (<c>CI=true</c>), where <c>.ci/run</c> installs what it needs.
/// </summary>
internal static class NodeScript
{
    public static async Task<string> PrepareAsync()
    {
        var onCi = string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);
        var node = Which("node");
        if (node is null)
        {
            if (onCi)
                throw new InvalidOperationException("Node.js (node) is not on the PATH; CI needs it for the openai npm client test (.ci/run installs it).");
            Skip.If(true, "Node.js is not installed; the openai npm client test needs it (it fails instead under CI=true).");
        }
        var folder = Folder();
        if (!Directory.Exists(Path.Combine(folder, "node_modules", "openai")))
        {
            var (code, output) = await RunAsync("npm", ["ci", "--no-audit", "--no-fund"], folder, new Dictionary<string, string>(), TimeSpan.FromMinutes(5));
            code.Should().Be(0, $"npm ci in {folder} should install the openai package:\n{output}");
        }
        return Path.Combine(folder, "check.mjs");
    }

    public static async Task<string> RunAsync(string script, IDictionary<string, string> environment)
    {
        var (code, output) = await RunAsync("node", [script], Path.GetDirectoryName(script)!, environment, TimeSpan.FromMinutes(2));
        code.Should().Be(0, $"the node script should succeed; its output:\n{output}");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last(l => l.StartsWith('{'));
    }

    static async Task<(int Code, string Output)> RunAsync(string file, string[] arguments, string folder, IDictionary<string, string> environment, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(file, arguments)
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (key, value) in environment)
            start.Environment[key] = value;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', arguments)} did not finish within {timeout}.");
        }
        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>The script's folder in the source tree (found from the test binary upwards), where its packages are installed.</summary>
    static string Folder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "Orchestrator.Tests", "Clients", "openai-node");
            if (File.Exists(Path.Combine(candidate, "package.json")))
                return candidate;
        }
        throw new DirectoryNotFoundException("tests/Orchestrator.Tests/Clients/openai-node not found above " + AppContext.BaseDirectory);
    }

    static string? Which(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
        .Select(dir => Path.Combine(dir, name))
        .FirstOrDefault(File.Exists);
}
