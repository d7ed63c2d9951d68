namespace Orchestrator.Replay;

/// <summary>Two recorded runs compared: path, routing, output and timing (<c>GET /v1/replays/{traceId}/diff</c>).</summary>
public sealed record RunDiff(
    string TraceId,
    string Against,
    bool Identical,
    PathDiff Path,
    IReadOnlyList<RoutingDiff> Routing,
    OutputDiff Output,
    TimingDiff Timing,
    VersionsDiff Versions)
{
    public static RunDiff Of(ReplayPackage a, ReplayPackage b)
    {
        var path = PathDiff.Of(ReplayEngine.OriginalPath(a), ReplayEngine.OriginalPath(b));
        var routeA = (a.Outcome.Routing ?? []).ToDictionary(r => r.Node, r => r.Decision);
        var routeB = (b.Outcome.Routing ?? []).ToDictionary(r => r.Node, r => r.Decision);
        var routing = routeA.Keys.Union(routeB.Keys).Select(node =>
        {
            var x = routeA.GetValueOrDefault(node);
            var y = routeB.GetValueOrDefault(node);
            return new RoutingDiff(node, x?.Strategy, x?.Chosen, y?.Strategy, y?.Chosen, x?.Strategy == y?.Strategy && x?.Chosen == y?.Chosen);
        }).ToList();
        var output = new OutputDiff(
            a.Outcome.Output?.Text == b.Outcome.Output?.Text && a.Outcome.Status == b.Outcome.Status,
            a.Outcome.Output?.Text, b.Outcome.Output?.Text, a.Outcome.Status, b.Outcome.Status);
        var durationsA = a.Nodes.ToDictionary(n => n.Id, n => n.DurationMs);
        var durationsB = b.Nodes.ToDictionary(n => n.Id, n => n.DurationMs);
        var timing = new TimingDiff(
            a.Timings.QueueMs, b.Timings.QueueMs, a.Timings.RunMs, b.Timings.RunMs, b.Timings.RunMs - a.Timings.RunMs,
            durationsA.Keys.Union(durationsB.Keys).Select(n => new NodeTiming(n, durationsA.GetValueOrDefault(n), durationsB.GetValueOrDefault(n))).ToList());
        var versions = new VersionsDiff(
            a.Versions.Policy.Hash == b.Versions.Policy.Hash, a.Versions.Prompts.Hash == b.Versions.Prompts.Hash,
            a.Versions.Routing.Hash == b.Versions.Routing.Hash);
        return new RunDiff(a.TraceId, b.TraceId, path.Same && output.Same && routing.All(r => r.Same), path, routing, output, timing, versions);
    }
}

public sealed record RoutingDiff(string Node, string? Strategy, string? Chosen, string? AgainstStrategy, string? AgainstChosen, bool Same);

public sealed record TimingDiff(long QueueMs, long AgainstQueueMs, long RunMs, long AgainstRunMs, long RunMsDelta, IReadOnlyList<NodeTiming> Nodes);

public sealed record NodeTiming(string Node, long? Ms, long? AgainstMs);

/// <summary>Whether the two runs ran with the same policy, prompts and routing configuration (by content hash).</summary>
public sealed record VersionsDiff(bool SamePolicy, bool SamePrompts, bool SameRouting);
