using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Orchestrator.Tests.Harness;

/// <summary>
/// A small OpenAI-compatible chat-completions server on 127.0.0.1 (real Kestrel, real HTTP) that a test
/// can tell to answer, be slow, fail with a status, return garbage, or call tools.
/// </summary>
public sealed class FakeModelServer : IAsyncDisposable
{
    readonly WebApplication _app;
    readonly ConcurrentQueue<Behavior> _script = new();
    int _calls;

    FakeModelServer(WebApplication app) => _app = app;

    public static async Task<FakeModelServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var server = new FakeModelServer(app);
        app.MapPost("/v1/chat/completions", server.HandleAsync);
        await app.StartAsync();
        server.BaseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First() + "/v1";
        return server;
    }

    /// <summary>The base URL as OpenAI SDKs take it (…/v1).</summary>
    public string BaseUrl { get; private set; } = "";

    public int Calls => Volatile.Read(ref _calls);

    /// <summary>Runs on every request before it is answered (a test advances its fake clock here, to give the model a latency).</summary>
    public Action? OnCall { get; set; }

    /// <summary>Requests received, newest last (the parsed JSON bodies).</summary>
    public ConcurrentQueue<JsonObject> Requests { get; } = new();

    /// <summary>What to do when no scripted behavior is left.</summary>
    public Behavior Default { get; set; } = Behavior.Reply("fake answer");

    public void Then(params Behavior[] behaviors)
    {
        foreach (var behavior in behaviors)
            _script.Enqueue(behavior);
    }

    async Task HandleAsync(HttpContext context)
    {
        Interlocked.Increment(ref _calls);
        OnCall?.Invoke();
        var body = await JsonNode.ParseAsync(context.Request.Body) as JsonObject ?? [];
        Requests.Enqueue(body);
        var behavior = _script.TryDequeue(out var next) ? next : Default;
        if (behavior.Delay > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(behavior.Delay, context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
        if (behavior.Status != 200)
        {
            context.Response.StatusCode = behavior.Status;
            if (behavior.RetryAfter is { } retryAfter)
                context.Response.Headers.RetryAfter = retryAfter;
            await context.Response.WriteAsJsonAsync(new { error = new { message = "scripted failure", type = "server_error" } });
            return;
        }
        if (behavior.Garbage)
        {
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync("{\"this is\": not a completion");
            return;
        }
        var model = body["model"]?.GetValue<string>() ?? "fake";
        if (body["stream"]?.GetValue<bool>() == true)
        {
            await StreamAsync(context, body, behavior, model);
            return;
        }
        var message = new JsonObject { ["role"] = "assistant", ["content"] = behavior.Text };
        if (behavior.ToolCall is { } call)
        {
            message["content"] = null;
            message["tool_calls"] = new JsonArray(new JsonObject
            {
                ["id"] = "call_" + Calls,
                ["type"] = "function",
                ["function"] = new JsonObject { ["name"] = call.Name, ["arguments"] = call.Arguments },
            });
        }
        if (behavior.ToolCalls is { } calls)
        {
            message["content"] = behavior.Text;
            message["tool_calls"] = new JsonArray(calls.Select((c, i) => (JsonNode)new JsonObject
            {
                ["id"] = $"call_{Calls}_{i + 1}",
                ["type"] = "function",
                ["function"] = new JsonObject { ["name"] = c.Name, ["arguments"] = c.Arguments },
            }).ToArray());
        }
        var response = new JsonObject
        {
            ["id"] = "chatcmpl-" + Calls,
            ["object"] = "chat.completion",
            ["created"] = 1_700_000_000,
            ["model"] = model,
            ["choices"] = new JsonArray(new JsonObject
            {
                ["index"] = 0,
                ["message"] = message,
                ["finish_reason"] = behavior.FinishReason ?? (behavior.ToolCall is null && behavior.ToolCalls is null ? "stop" : "tool_calls"),
            }),
            ["usage"] = new JsonObject { ["prompt_tokens"] = 11, ["completion_tokens"] = 7, ["total_tokens"] = 18 },
        };
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(response.ToJsonString());
    }

    /// <summary>
    /// A streamed answer as OpenAI sends it: the text in three chunks (or the tool call in one), the finish, the usage
    /// when asked, <c>[DONE]</c>. <see cref="Behavior.CutAfter"/> chunks in, it breaks off with an event that does not parse.
    /// </summary>
    async Task StreamAsync(HttpContext context, JsonObject body, Behavior behavior, string model)
    {
        context.Response.ContentType = "text/event-stream";
        var id = "chatcmpl-" + Calls;
        var sent = 0;
        async Task Send(JsonObject delta, string? finish = null, JsonObject? usage = null, bool noChoice = false)
        {
            var chunk = new JsonObject
            {
                ["id"] = id, ["object"] = "chat.completion.chunk", ["created"] = 1_700_000_000, ["model"] = model,
                ["choices"] = noChoice ? new JsonArray() : new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finish }),
            };
            if (usage is not null)
                chunk["usage"] = usage;
            await context.Response.WriteAsync("data: " + chunk.ToJsonString() + "\n\n");
            await context.Response.Body.FlushAsync();
        }
        await Send(new JsonObject { ["role"] = "assistant", ["content"] = "" });
        if (behavior.ToolCall is { } call)
            await Send(new JsonObject
            {
                ["tool_calls"] = new JsonArray(new JsonObject
                {
                    ["index"] = 0, ["id"] = "call_" + Calls, ["type"] = "function",
                    ["function"] = new JsonObject { ["name"] = call.Name, ["arguments"] = call.Arguments },
                }),
            });
        else
        {
            var text = behavior.Text ?? "";
            var third = Math.Max(1, text.Length / 3);
            for (var at = 0; at < text.Length; at += third)
            {
                if (behavior.CutAfter is { } cut && sent == cut)
                {
                    // Broken mid-way: an event that is not a chunk, then nothing (a reset connection would race the chunks before it).
                    await context.Response.WriteAsync("data: {\"choices\": [{\"delta\": \n\n");
                    return;
                }
                await Send(new JsonObject { ["content"] = text.Substring(at, Math.Min(third, text.Length - at)) });
                sent++;
            }
        }
        await Send(new JsonObject(), behavior.FinishReason ?? (behavior.ToolCall is null ? "stop" : "tool_calls"));
        if (body["stream_options"]?["include_usage"]?.GetValue<bool>() == true)
            await Send(new JsonObject(), usage: new JsonObject { ["prompt_tokens"] = 11, ["completion_tokens"] = 7, ["total_tokens"] = 18 }, noChoice: true);
        await context.Response.WriteAsync("data: [DONE]\n\n");
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    public sealed record Behavior(int Status = 200, string? Text = null, TimeSpan Delay = default, bool Garbage = false, string? RetryAfter = null, (string Name, string Arguments)? ToolCall = null, string? FinishReason = null, int? CutAfter = null, IReadOnlyList<(string Name, string Arguments)>? ToolCalls = null)
    {
        /// <summary>Several tool calls in one answer (not streamed), with <paramref name="text"/> beside them.</summary>
        public static Behavior CallTools(string? text, params (string Name, object Arguments)[] calls) =>
            new(Text: text, ToolCalls: calls.Select(c => (c.Name, JsonSerializer.Serialize(c.Arguments))).ToList());

        /// <summary>A streamed answer that breaks off after <paramref name="chunks"/> text chunks.</summary>
        public static Behavior Cut(string text, int chunks) => new(Text: text, CutAfter: chunks);

        /// <summary>What Azure OpenAI answers when its content filter withholds the answer.</summary>
        public static Behavior Filtered() => new(Text: null, FinishReason: "content_filter");

        public static Behavior Reply(string text, TimeSpan delay = default) => new(Text: text, Delay: delay);
        public static Behavior Fail(int status, string? retryAfter = null) => new(Status: status, RetryAfter: retryAfter);
        public static Behavior Junk() => new(Garbage: true);
        public static Behavior CallTool(string name, object arguments) => new(ToolCall: (name, JsonSerializer.Serialize(arguments)));
    }
}
