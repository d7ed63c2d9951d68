using System.Security.Cryptography;
using System.Text.Json;
using Orchestrator.Jobs;
using Orchestrator.Workflow;

namespace Orchestrator.Replay;

/// <summary>
/// Re-executes a recorded run without calling a model or applying an effect: the same walk a live run takes,
/// with every model node answered by the recorded reply to the same question (same conversation, same tools
/// offered) and every effect by its recorded result. With another policy or prompts, the walk asks the
/// recording wherever the new path asks the same question; where it asks a new one, the run has diverged.
/// </summary>
internal static class ReplayEngine
{
    public const string Diverged = "replay_diverged";

    public static async Task<RerunReport> RerunAsync(ReplayPackage package, IntentPolicy policy, string policySource, CancellationToken cancellationToken)
    {
        var steps = new RecordedSteps(package);
        var walk = await WorkflowWalk.RunAsync(policy, package.Request, steps, cancellationToken);
        var status = walk.Failure switch
        {
            null => "completed",
            { Code: Diverged } => "diverged",
            { Canceled: true } => "canceled",
            _ => "failed",
        };
        var error = walk.Failure is { } failure ? new JobError(failure.Code, failure.Message) : null;

        var originalPath = OriginalPath(package);
        var pathDiff = PathDiff.Of(originalPath, walk.Path, steps.DivergedAt);
        var originalText = package.Outcome.Output?.Text;
        var sameStatus = package.Outcome.Status == status && package.Outcome.Error?.Code == error?.Code;
        var outputDiff = new OutputDiff(originalText == walk.Text && sameStatus, originalText, walk.Text, package.Outcome.Status, status);
        return new RerunReport(
            package.TraceId,
            pathDiff.Same && outputDiff.Same,
            new PolicyUsed(policy.Intent, policy.Version, policy.ContentHash, policySource, Hashes.OfPrompts(policy)),
            status, walk.Path, walk.Text, error, pathDiff, outputDiff, steps.Sources);
    }

    /// <summary>
    /// Why a package (an import, a file for the command line) cannot be replayed or compared, as a field path and a
    /// message; null when it can. Every part the rerun and the diff read is checked here, so neither fails later.
    /// </summary>
    public static (string Field, string Message)? Invalid(ReplayPackage package)
    {
        if (package.TraceId is not { Length: 32 } || !package.TraceId.All(char.IsAsciiHexDigitLower))
            return ("traceId", "A replay package needs a 32-hex lower-case trace id.");
        if (!Tenancy.Identifiers.IsValid(package.Tenant))
            return ("tenant", "A replay package needs a valid tenant.");
        if (package.Request is null || package.Outcome is null || package.Timings is null || package.Nodes is null || package.Policy?.Nodes is null)
            return ("body", "A replay package needs request, outcome, timings, nodes and policy.");
        if (package.Versions?.Policy is null || package.Versions.Prompts is null || package.Versions.Routing is null)
            return ("versions", "A replay package needs versions.policy, versions.prompts and versions.routing.");
        var ids = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < package.Nodes.Count; i++)
        {
            if (package.Nodes[i] is not { Id.Length: > 0 } node)
                return ($"nodes[{i}]", "Every node needs an id.");
            if (!ids.Add(node.Id))
                return ($"nodes[{i}].id", $"Node id '{node.Id}' appears twice.");
        }
        if (package.Outcome.Routing is { } routing && routing.Select(r => r?.Node).Distinct().Count() != routing.Count)
            return ("outcome.routing", "Each node may have one routing decision.");
        for (var i = 0; i < package.Nodes.Count; i++)
        {
            var node = package.Nodes[i];
            if (node.Kind is not (NodeKinds.Model or NodeKinds.Effect))
                continue;
            if (node.Input is { } input && !Reads(input, node.Kind, isInput: true))
                return ($"nodes[{i}].input", $"It is not what a {node.Kind} node records as its input.");
            if (node.Status == "succeeded" && node.Output is { } output && !Reads(output, node.Kind, isInput: false))
                return ($"nodes[{i}].output", $"It is not what a {node.Kind} node records as its output.");
        }
        try
        {
            _ = new RecordedSteps(package);
        }
        catch (Exception error) when (error is JsonException or InvalidOperationException or NullReferenceException)
        {
            return ("nodes", "The recorded nodes cannot be read back.");
        }
        return null;
    }

    static bool Reads(JsonElement json, string kind, bool isInput)
    {
        try
        {
            object? read = (kind, isInput) switch
            {
                (NodeKinds.Model, true) => json.Deserialize(WorkflowJson.Default.ModelInput),
                (NodeKinds.Model, false) => json.Deserialize(WorkflowJson.Default.ModelCheckpoint),
                (_, true) => json.Deserialize(WorkflowJson.Default.EffectInput),
                _ => json.Deserialize(WorkflowJson.Default.EffectCheckpoint),
            };
            return read is not null;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>The path the recorded run took: its output's path, or (for a failed run) its succeeded nodes in order.</summary>
    public static IReadOnlyList<string> OriginalPath(ReplayPackage package) =>
        package.Outcome.Output?.Path is { Count: > 0 } path ? path : package.Nodes.Where(n => n.Status == "succeeded").Select(n => n.Id).ToList();

    /// <summary>The recorded answer to a model question: the conversation and tools, hashed.</summary>
    internal static string Question(IEnumerable<MessageRecord> messages, IEnumerable<string> tools) =>
        Convert.ToHexStringLower(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(
            new ModelQuestion(messages.ToList(), tools.ToList()), ReplayJson.Default.ModelQuestion)));

    internal static string EffectCall(string capability, JsonElement arguments) => capability + " " + arguments.GetRawText();

    /// <summary>Answers steps from the recording, in recorded order where a question was asked more than once.</summary>
    sealed class RecordedSteps : IStepExecutor
    {
        readonly Dictionary<string, Queue<ModelCheckpoint>> _models = [];
        readonly Dictionary<string, Queue<EffectCheckpoint>> _effects = [];
        readonly Dictionary<string, RecordedFailure> _failures = new(StringComparer.Ordinal);

        /// <summary>A node that failed: its kind, name (an effect's capability), the question it was asked if it got that far, and its error.</summary>
        sealed record RecordedFailure(string Kind, string Name, string? Key, JobError Error);

        static string? FailureKey(ReplayNode node) => node.Input is not { } input ? null : node.Kind switch
        {
            NodeKinds.Model => input.Deserialize(WorkflowJson.Default.ModelInput) is { } model ? Question(model.Messages, model.Tools) : null,
            NodeKinds.Effect => input.Deserialize(WorkflowJson.Default.EffectInput) is { } effect ? EffectCall(effect.Capability, effect.Arguments) : null,
            _ => null,
        };

        /// <summary>
        /// The recorded failure of this node, if the rerun asks it what the recording asked (or, for an effect refused
        /// before its intent was recorded, calls the same capability there).
        /// </summary>
        bool TryFail(string nodeId, string kind, string name, string key, out StepFailed failed)
        {
            failed = null!;
            if (!_failures.TryGetValue(nodeId, out var recorded) || recorded.Kind != kind || (recorded.Key ?? (recorded.Name == name ? key : null)) != key)
                return false;
            Sources.Add(new RerunNode(nodeId, kind, "recorded-failure"));
            var error = recorded.Error;
            failed = new StepFailed(error.Code == Hosting.Problems.Canceled ? StepFailure.CanceledWith(error.Message) : StepFailure.Failed(error.Code, error.Message));
            return true;
        }

        public RecordedSteps(ReplayPackage package)
        {
            // Where the run stopped: a node that failed with a code (the gateway found no model, an effect was refused or
            // failed, the job was canceled or ran out of time in it) fails the same way when the rerun reaches it with the
            // same question, so a recorded failure reruns to the same failure.
            foreach (var node in package.Nodes.Where(n => n.Status == "failed" && n.Error is not null))
                _failures[node.Id] = new RecordedFailure(node.Kind, node.Name, FailureKey(node), node.Error!);
            foreach (var node in package.Nodes.Where(n => n.Status == "succeeded" && n.Input is not null && n.Output is not null))
            {
                if (node.Kind == NodeKinds.Model)
                {
                    var input = node.Input!.Value.Deserialize(WorkflowJson.Default.ModelInput)!;
                    Enqueue(_models, Question(input.Messages, input.Tools), node.Output!.Value.Deserialize(WorkflowJson.Default.ModelCheckpoint)!);
                }
                else if (node.Kind == NodeKinds.Effect)
                {
                    var input = node.Input!.Value.Deserialize(WorkflowJson.Default.EffectInput)!;
                    Enqueue(_effects, EffectCall(input.Capability, input.Arguments), node.Output!.Value.Deserialize(WorkflowJson.Default.EffectCheckpoint)!);
                }
            }
        }

        public string? DivergedAt { get; private set; }

        public List<RerunNode> Sources { get; } = [];

        public Task<ModelCheckpoint> ModelAsync(ModelStep step, CancellationToken cancellationToken)
        {
            var question = Question(step.Messages.Select(MessageRecord.Of), step.ToolNames);
            if (_models.TryGetValue(question, out var answers) && answers.TryDequeue(out var answer))
            {
                Sources.Add(new RerunNode(step.NodeId, NodeKinds.Model, "recorded"));
                return Task.FromResult(answer);
            }
            if (TryFail(step.NodeId, NodeKinds.Model, "", question, out var failed))
                return Task.FromException<ModelCheckpoint>(failed);
            return Task.FromException<ModelCheckpoint>(Diverge(step.NodeId, NodeKinds.Model,
                $"Model node '{step.NodeId}' is asked something the recording never asked (its conversation or offered tools differ), " +
                "so its answer is unknown without calling a model; the run diverges here."));
        }

        public Task<EffectCheckpoint> EffectAsync(EffectStep step, CancellationToken cancellationToken)
        {
            var key = EffectCall(step.Capability!, step.Call.Arguments);
            if (_effects.TryGetValue(key, out var results) && results.TryDequeue(out var result))
            {
                Sources.Add(new RerunNode(step.NodeId, NodeKinds.Effect, "recorded"));
                return Task.FromResult(result);
            }
            if (TryFail(step.NodeId, NodeKinds.Effect, step.Capability!, key, out var failed))
                return Task.FromException<EffectCheckpoint>(failed);
            return Task.FromException<EffectCheckpoint>(Diverge(step.NodeId, NodeKinds.Effect,
                $"Effect node '{step.NodeId}' ({step.Capability}) has no recorded result for these arguments; it would have to run, so the run diverges here."));
        }

        public void Denied(EffectStep step, string message) => Sources.Add(new RerunNode(step.NodeId, NodeKinds.Effect, "denied"));

        StepFailed Diverge(string nodeId, string kind, string message)
        {
            DivergedAt ??= nodeId;
            Sources.Add(new RerunNode(nodeId, kind, "missing"));
            return new StepFailed(StepFailure.Failed(Diverged, message));
        }

        static void Enqueue<T>(Dictionary<string, Queue<T>> index, string key, T value)
        {
            if (!index.TryGetValue(key, out var queue))
                index[key] = queue = new Queue<T>();
            queue.Enqueue(value);
        }
    }
}

public sealed record ModelQuestion(IReadOnlyList<MessageRecord> Messages, IReadOnlyList<string> Tools);

/// <summary>What <c>POST /v1/replays/{traceId}/rerun</c> (and <c>orchestrator replay</c>) report.</summary>
public sealed record RerunReport(
    string TraceId,
    bool Identical,
    PolicyUsed Policy,
    string Status,
    IReadOnlyList<string> Path,
    string? Output,
    JobError? Error,
    PathDiff PathDiff,
    OutputDiff OutputDiff,
    IReadOnlyList<RerunNode> Nodes);

/// <summary>The policy a rerun walked: where it came from (<c>recorded</c>, <c>current</c>, <c>request</c>, a file) and its hashes.</summary>
public sealed record PolicyUsed(string Intent, string Version, string Hash, string Source, string PromptsHash);

/// <summary>How a rerun's node was answered: <c>recorded</c>, <c>recorded-failure</c> (it fails as it did), <c>missing</c> (the divergence), or <c>denied</c> (capability).</summary>
public sealed record RerunNode(string Id, string Kind, string Source);

/// <summary>Two paths compared: the first node where they part, and both in full.</summary>
public sealed record PathDiff(bool Same, string? DivergedAt, int? Index, IReadOnlyList<string> Original, IReadOnlyList<string> Rerun)
{
    public static PathDiff Of(IReadOnlyList<string> original, IReadOnlyList<string> rerun, string? divergedAt = null)
    {
        var common = 0;
        while (common < original.Count && common < rerun.Count && original[common] == rerun[common])
            common++;
        var same = common == original.Count && common == rerun.Count && divergedAt is null;
        return new PathDiff(same, same ? null : divergedAt ?? (common < original.Count ? original[common] : common < rerun.Count ? rerun[common] : null),
            same ? null : common, original, rerun);
    }
}

public sealed record OutputDiff(bool Same, string? Original, string? Rerun, string OriginalStatus, string RerunStatus);
