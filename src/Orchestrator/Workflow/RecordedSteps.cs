using System.Text.Json;
using Orchestrator.Hosting;

namespace Orchestrator.Workflow;

/// <summary>A node as a recording kept it: what a rerun reads back (the replay package maps its nodes to these).</summary>
internal sealed record RecordedNode(string Id, string Kind, string Name, string Status, JsonElement? Input, JsonElement? Output, string? ErrorCode, string? ErrorMessage);

/// <summary>How a rerun's node was answered: <c>recorded</c>, <c>recorded-failure</c>, <c>missing</c> (the divergence), or <c>denied</c>.</summary>
internal sealed record RecordedSource(string Id, string Kind, string Source);

/// <summary>
/// The recorded executor: each step is answered by its kind's handler from the recording, in recorded order where a
/// question was asked more than once, without calling a model or applying an effect.
/// </summary>
internal sealed class RecordedSteps : IStepExecutor
{
    public const string Diverged = "replay_diverged";

    readonly Dictionary<(string Kind, string Key), Queue<object?>> _answers = [];
    readonly Dictionary<string, RecordedFailure> _failures = new(StringComparer.Ordinal);

    /// <summary>A node that failed: its kind, name (an effect's capability), the question it was asked if it got that far, and its error.</summary>
    sealed record RecordedFailure(string Kind, string Name, string? Key, string Code, string Message);

    public RecordedSteps(IEnumerable<RecordedNode> recording)
    {
        var nodes = recording.ToList();
        // Where the run stopped: a node that failed with a code (the gateway found no model, an effect was refused or
        // failed, the job was canceled or ran out of time in it) fails the same way when the rerun reaches it with the
        // same question, so a recorded failure reruns to the same failure.
        // (An approval node that failed is a decision, rejected or timed out: it answers like a success, below.)
        foreach (var node in nodes.Where(n => n.Status == "failed" && n.ErrorCode is not null && n.Kind != NodeKinds.Approval))
        {
            var key = node.Input is { } input ? NodeKindHandlers.Find(node.Kind)?.RecordedKey(input) : null;
            _failures[node.Id] = new RecordedFailure(node.Kind, node.Name, key, node.ErrorCode!, node.ErrorMessage!);
        }
        foreach (var node in nodes.Where(n => (n.Status == "succeeded" || (n.Status == "failed" && n.Kind == NodeKinds.Approval)) && n.Input is not null && n.Output is not null))
        {
            if (NodeKindHandlers.Find(node.Kind) is not { } handler)
                continue;
            var key = handler.RecordedKey(node.Input!.Value)
                      ?? throw new InvalidOperationException($"Node '{node.Id}' has an input that reads as nothing.");
            if (!_answers.TryGetValue((node.Kind, key), out var queue))
                _answers[(node.Kind, key)] = queue = new Queue<object?>();
            queue.Enqueue(handler.ReadOutput(node.Output!.Value));
        }
    }

    public string? DivergedAt { get; private set; }

    public List<RecordedSource> Sources { get; } = [];

    public Task<TCheckpoint> RunAsync<TStep, TCheckpoint>(NodeHandler<TStep, TCheckpoint> handler, TStep step, CancellationToken cancellationToken) =>
        handler.RecordedAsync(step, this);

    public void Denied(EffectStep step, string message) => NodeKindHandlers.Effect.DeniedRecorded(step, this);

    /// <summary>The next recorded answer of this kind to this question, if one is left.</summary>
    public bool TryAnswer(string nodeId, string kind, string key, out object? answer)
    {
        answer = null;
        if (!_answers.TryGetValue((kind, key), out var answers) || !answers.TryDequeue(out answer))
            return false;
        Answered(nodeId, kind, "recorded");
        return true;
    }

    /// <summary>
    /// The recorded failure of this node, if the rerun asks it what the recording asked (or, for an effect refused
    /// before its intent was recorded, calls the same capability there).
    /// </summary>
    public bool TryFail(string nodeId, string kind, string name, string key, out StepFailed failed)
    {
        failed = null!;
        if (!_failures.TryGetValue(nodeId, out var recorded) || recorded.Kind != kind || (recorded.Key ?? (recorded.Name == name ? key : null)) != key)
            return false;
        Answered(nodeId, kind, "recorded-failure");
        failed = new StepFailed(recorded.Code == Problems.Canceled ? StepFailure.CanceledWith(recorded.Message) : StepFailure.Failed(recorded.Code, recorded.Message));
        return true;
    }

    /// <summary>The rerun asked what the recording never did: the run diverges at this node.</summary>
    public StepFailed Diverge(string nodeId, string kind, string message)
    {
        DivergedAt ??= nodeId;
        Answered(nodeId, kind, "missing");
        return new StepFailed(StepFailure.Failed(Diverged, message));
    }

    public void Answered(string nodeId, string kind, string source) => Sources.Add(new RecordedSource(nodeId, kind, source));
}
