using System.Text.Json.Serialization;

using Orchestrator.Gateway;
using Orchestrator.Memory;

namespace Orchestrator.Workflow;

/// <summary>
/// An intent's policy, loaded from <c>policies/*.json</c>: its deadline, routing preferences, the
/// capabilities its models may use, and the graph of nodes that serves it.
/// </summary>
public sealed record IntentPolicy
{
    public required string Intent { get; set; }
    public string Version { get; set; } = "1";
    public string? Description { get; set; }

    /// <summary>Deadline when the request names none.</summary>
    public int DeadlineMs { get; set; } = 30_000;

    public PolicyRouting Routing { get; set; } = new();

    /// <summary>Effects (API.md, Effects) this intent's models may call; a request's <c>tools</c> narrows it.</summary>
    public IReadOnlyList<string> Capabilities { get; set; } = [];

    /// <summary>Most model turns an agent loop takes before it stops.</summary>
    public int MaxSteps { get; set; } = 8;

    /// <summary>
    /// Most tokens one model call may answer with, passed to the provider as its output limit. It bounds what a request
    /// can cost, so a budget reserves it for every call the intent may make.
    /// </summary>
    public int MaxOutputTokens { get; set; } = 4096;

    public required IReadOnlyList<PolicyNode> Nodes { get; set; }

    /// <summary>What a request with a <c>session</c> remembers and recalls; null: the intent remembers nothing.</summary>
    public MemoryPolicy? Memory { get; set; }

    /// <summary>SHA-256 of the file's text, so a replay can tell which exact policy ran.</summary>
    [JsonIgnore]
    public string ContentHash { get; set; } = "";

    /// <summary>The file's text as loaded, kept as the policy's snapshot.</summary>
    [JsonIgnore]
    public string Source { get; set; } = "";
}

/// <summary>The intent's routing preferences; the request's <c>routing</c> overrides them, the gateway default fills in.</summary>
public sealed record PolicyRouting
{
    public string? Strategy { get; set; }

    /// <summary>Allow-list of catalog model ids for this intent; the request's <c>routing.models</c> wins.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? Models { get; set; }

    public bool Hedge { get; set; }
}

/// <summary>
/// A node of the intent graph. <c>model</c>: one model call with its role and prompt.
/// <c>agent</c>: the tool-using loop (model -> tool calls -> effects -> model), expanded at run time.
/// Nodes run in the order listed; each gets the user's request and the previous node's answer.
/// </summary>
public sealed record PolicyNode
{
    public required string Id { get; set; }
    public required string Kind { get; set; }
    public string? Role { get; set; }
    public string? Prompt { get; set; }
    public ModelRequirements? Requires { get; set; }
}


public static class NodeKinds
{
    public const string Model = "model";
    public const string Agent = "agent";
    public const string Effect = "effect";
    public const string Memory = "memory";
    public const string Approval = "approval";
}
