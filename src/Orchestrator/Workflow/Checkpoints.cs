using System.Text.Json;
using Microsoft.Extensions.AI;
using Orchestrator.Gateway;

namespace Orchestrator.Workflow;

/// <summary>A tool call a model asked for: the id it gave, the function name, and the JSON arguments.</summary>
public sealed record ToolCallRecord(string CallId, string Name, JsonElement Arguments);

/// <summary>A model node's checkpoint: its reply, who answered, what it cost and how it was routed.</summary>
public sealed record ModelCheckpoint(string? Text, IReadOnlyList<ToolCallRecord> ToolCalls, string Model, TokenUsage Usage, RoutingDecision Decision)
{
    public static ModelCheckpoint Of(ModelReply reply) => new(
        reply.Message.Text is { Length: > 0 } text ? text : null,
        reply.Message.Contents.OfType<FunctionCallContent>()
            .Select(c => new ToolCallRecord(c.CallId, c.Name, JsonSerializer.SerializeToElement(c.Arguments ?? new Dictionary<string, object?>(), AIJsonUtilities.DefaultOptions)))
            .ToList(),
        reply.ModelId, reply.Usage, reply.Decision);

    /// <summary>The reply as the next turn's conversation sees it.</summary>
    public ChatMessage ToMessage()
    {
        var contents = new List<AIContent>();
        if (Text is not null)
            contents.Add(new TextContent(Text));
        foreach (var call in ToolCalls)
            contents.Add(new FunctionCallContent(call.CallId, call.Name, Arguments(call.Arguments)));
        return new ChatMessage(ChatRole.Assistant, contents);
    }

    internal static Dictionary<string, object?> Arguments(JsonElement arguments) =>
        arguments.ValueKind == JsonValueKind.Object
            ? arguments.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone())
            : [];
}

/// <summary>A model node's input: the conversation it was given and the functions it was offered.</summary>
public sealed record ModelInput(IReadOnlyList<MessageRecord> Messages, IReadOnlyList<string> Tools, RoutingRequest Routing, long Seed);

/// <summary>One message of a conversation, in a form that stores and compares well.</summary>
public sealed record MessageRecord(string Role, string? Text, IReadOnlyList<ToolCallRecord>? ToolCalls = null, string? ToolCallId = null)
{
    public static MessageRecord Of(ChatMessage message) => new(
        message.Role.Value,
        message.Contents.OfType<FunctionResultContent>().FirstOrDefault()?.Result?.ToString() ?? (message.Text is { Length: > 0 } t ? t : null),
        message.Contents.OfType<FunctionCallContent>().Select(c => new ToolCallRecord(
            c.CallId, c.Name, JsonSerializer.SerializeToElement(c.Arguments ?? new Dictionary<string, object?>(), AIJsonUtilities.DefaultOptions))).ToList() is { Count: > 0 } calls ? calls : null,
        message.Contents.OfType<FunctionResultContent>().FirstOrDefault()?.CallId);

    /// <summary>The message again, as the model is given it: <see cref="Of"/> of the result is this record.</summary>
    public ChatMessage ToMessage()
    {
        var contents = new List<AIContent>();
        if (ToolCallId is not null)
            contents.Add(new FunctionResultContent(ToolCallId, Text ?? ""));
        else if (Text is not null)
            contents.Add(new TextContent(Text));
        foreach (var call in ToolCalls ?? [])
            contents.Add(new FunctionCallContent(call.CallId, call.Name, ModelCheckpoint.Arguments(call.Arguments)));
        return new ChatMessage(new ChatRole(Role), contents);
    }
}

/// <summary>An effect node's input: the call, its risk class, and what the effect planned (facts to reconcile by).</summary>
public sealed record EffectInput(string CallId, string Capability, JsonElement Arguments, string Risk, string IdempotencyKey, Dictionary<string, JsonElement>? Facts);

/// <summary>An effect node's checkpoint: what the model is told.</summary>
public sealed record EffectCheckpoint(string CallId, bool Ok, string Content, string? Reconciled = null);

/// <summary>How the gateway chose the model for one node's call.</summary>
public sealed record NodeRouting(string Node, RoutingDecision Decision);
