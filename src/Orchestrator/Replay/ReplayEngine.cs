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
    public const string Diverged = RecordedSteps.Diverged;

    public static async Task<RerunReport> RerunAsync(ReplayPackage package, IntentPolicy policy, string policySource, CancellationToken cancellationToken)
    {
        var steps = Recorded(package);
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
            status, walk.Path, walk.Text, error, pathDiff, outputDiff, steps.Sources.Select(s => new RerunNode(s.Id, s.Kind, s.Source)).ToList());
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
            if (NodeKindHandlers.Find(node.Kind) is not { } handler)
                continue;
            if (node.Input is { } input && !handler.ReadsInput(input))
                return ($"nodes[{i}].input", $"It is not what a {node.Kind} node records as its input.");
            if (node.Status == "succeeded" && node.Output is { } output && !handler.ReadsOutput(output))
                return ($"nodes[{i}].output", $"It is not what a {node.Kind} node records as its output.");
        }
        try
        {
            _ = Recorded(package);
        }
        catch (Exception error) when (error is JsonException or InvalidOperationException or NullReferenceException)
        {
            return ("nodes", "The recorded nodes cannot be read back.");
        }
        return null;
    }

    /// <summary>The path the recorded run took: its output's path, or (for a failed run) its succeeded nodes in order.</summary>
    public static IReadOnlyList<string> OriginalPath(ReplayPackage package) =>
        package.Outcome.Output?.Path is { Count: > 0 } path ? path : package.Nodes.Where(n => n.Status == "succeeded").Select(n => n.Id).ToList();

    /// <summary>The recording as the handlers read it back.</summary>
    static RecordedSteps Recorded(ReplayPackage package) => new(package.Nodes.Select(n =>
        new RecordedNode(n.Id, n.Kind, n.Name, n.Status, n.Input, n.Output, n.Error?.Code, n.Error?.Message)));
}

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
