using System.Diagnostics;
using System.Diagnostics.Metrics;
using Orchestrator.Telemetry;

namespace Orchestrator.Workflow;

/// <summary>Per-node metrics and spans: which nodes ran, how they ended, how long they took.</summary>
internal sealed class NodeTelemetry(OrchestratorTelemetry telemetry)
{
    readonly Counter<long> _ended = telemetry.Counter("orchestrator.nodes.ended", "{node}", "Graph nodes that ended, by kind, name and status.");
    readonly Histogram<double> _duration = telemetry.Histogram("orchestrator.nodes.duration", "ms", "Time from a node's start to its end.");
    readonly Counter<long> _resumed = telemetry.Counter("orchestrator.nodes.resumed", "{node}", "Nodes taken from their checkpoint instead of run again.");

    public Activity? Start(JobNode node, string tenant)
    {
        var activity = OrchestratorTelemetry.Source.StartActivity($"{node.Kind} {node.Name}");
        activity?.SetTag("orchestrator.job.id", node.JobId);
        activity?.SetTag("orchestrator.node.id", node.NodeId);
        activity?.SetTag("orchestrator.node.attempt", node.Attempts);
        activity?.SetTag("orchestrator.tenant", tenant);
        return activity;
    }

    public void Ended(JobNode node, string tenant, string principal)
    {
        var tags = new TagList { { "kind", node.Kind }, { "name", node.Name }, { "status", NodeStatuses.Of(node.Status) } };
        _ended.Add(1, tags);
        if (node.StartedAt is { } started && node.CompletedAt is { } completed)
            _duration.Record((completed - started).TotalMilliseconds, new TagList { { "kind", node.Kind }, { "name", node.Name } });
        telemetry.Count(tenant, principal, $"nodes.{node.Kind}.{NodeStatuses.Of(node.Status)}");
    }

    public void Resumed(JobNode node) =>
        _resumed.Add(1, new TagList { { "kind", node.Kind }, { "name", node.Name } });
}
