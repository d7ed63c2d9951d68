using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Orchestrator.Workflow;

/// <summary>
/// One kind of graph node (<c>model</c>, <c>effect</c>, <c>memory</c>, <c>approval</c>): everything that differs by kind lives in its handler, so a
/// new kind is one class and one line in <see cref="NodeKindHandlers"/>. This part is what a kind knows about its
/// recorded JSON: reading and validating its input and output, and the key a rerun matches recorded answers by.
/// </summary>
internal abstract class NodeHandler
{
    public abstract string Kind { get; }

    /// <summary>Whether <paramref name="input"/> is what a node of this kind records as its input.</summary>
    public abstract bool ReadsInput(JsonElement input);

    /// <summary>Whether <paramref name="output"/> is what a node of this kind records as its output.</summary>
    public abstract bool ReadsOutput(JsonElement output);

    /// <summary>The key of the question a recorded input asked, to match a rerun's step by; null when it reads as nothing.</summary>
    public abstract string? RecordedKey(JsonElement input);

    /// <summary>A recorded output as the walk gets it (the kind's checkpoint).</summary>
    public abstract object? ReadOutput(JsonElement output);

    /// <summary>The error message of a node of this kind cut off while it ran (a cancel, the deadline).</summary>
    public virtual string Interrupted(string code, string message) => $"The job ended ({code}) while this node ran. {message}";

    protected static bool Reads<T>(JsonElement json, JsonTypeInfo<T> type)
    {
        try
        {
            return json.Deserialize(type) is not null;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}

/// <summary>A node kind's two behaviours: live (the gateway, the effects, every node persisted) and recorded (a replay).</summary>
internal abstract class NodeHandler<TStep, TCheckpoint> : NodeHandler
{
    public abstract Task<TCheckpoint> LiveAsync(TStep step, LiveSteps live, CancellationToken cancellationToken);

    public abstract Task<TCheckpoint> RecordedAsync(TStep step, RecordedSteps recorded);
}

/// <summary>The node kinds there are, each resolved by its kind string.</summary>
internal static class NodeKindHandlers
{
    public static ModelNode Model { get; } = new();

    public static EffectNode Effect { get; } = new();

    public static MemoryNode Memory { get; } = new();

    public static ApprovalNode Approval { get; } = new();

    static readonly Dictionary<string, NodeHandler> ByKind = new NodeHandler[] { Model, Effect, Memory, Approval }.ToDictionary(h => h.Kind, StringComparer.Ordinal);

    public static NodeHandler? Find(string kind) => ByKind.GetValueOrDefault(kind);
}
