using Orchestrator.Effects;
using Orchestrator.Gateway;
using Orchestrator.Memory;

using Orchestrator.Tenancy;

namespace Orchestrator.Workflow;

/// <summary>
/// The live executor: each step is run by its kind's handler against the gateway and the effects, every node
/// persisted pending -> running -> succeeded/failed with its checkpoint; on resume a succeeded node is never run
/// again, its checkpoint stands in for it.
/// </summary>
internal sealed class LiveSteps(
    ModelGateway gateway, EffectRegistry effects, MemoryStore memory, Approvals.ApprovalStore approvals, NodeTelemetry telemetry, AuditTrail audit, ModelDeltas deltas, string defaultStrategy,
    TimeProvider time, ILogger log, IWorkflowRun run, ActRequest request, IntentPolicy policy, JobGraph graph) : IStepExecutor
{
    readonly List<(string Node, ModelCheckpoint? Checkpoint, RoutingDecision Decision)> _models = [];

    public ModelGateway Gateway => gateway;
    public ModelDeltas Deltas => deltas;
    public EffectRegistry Effects => effects;
    public MemoryStore Memory => memory;
    public Approvals.ApprovalStore Approvals => approvals;
    public NodeTelemetry Telemetry => telemetry;

    /// <summary>Records a denied effect in the audit trail, as the run's principal, and counts it by tenant, tool and rule.</summary>
    public void AuditDenied(EffectStep step, string code, string message, string? rule = null)
    {
        var tool = step.Capability ?? step.Call.Name;
        audit.Record(new Caller(run.Tenant, run.Principal, false), "effect.denied", $"jobs/{run.JobId}/nodes/{step.NodeId}", allowed: false,
            message, run.TraceId, new { capability = tool, code, rule });
        effects.Denials.Record(run.Tenant, run.Principal, tool, code, rule);
    }
    public string DefaultStrategy => defaultStrategy;
    public ILogger Log => log;
    public IWorkflowRun Run => run;
    public ActRequest Request => request;
    public IntentPolicy Policy => policy;
    public JobGraph Graph => graph;

    public List<NodeRouting> Routing => _models.Select(m => new NodeRouting(m.Node, m.Decision)).ToList();

    /// <summary>The model that answered the request: a summary of the session's memory, made after the answer, is not it.</summary>
    public string? LastModel => _models.LastOrDefault(m => m.Checkpoint is not null && !MemoryIds.IsMemory(m.Node)).Checkpoint?.Model;

    public TokenUsage Usage => _models.Where(m => m.Checkpoint is not null).Aggregate(TokenUsage.None, (sum, m) => sum.Add(m.Checkpoint!.Usage));

    public Task<TCheckpoint> RunAsync<TStep, TCheckpoint>(NodeHandler<TStep, TCheckpoint> handler, TStep step, CancellationToken cancellationToken) =>
        handler.LiveAsync(step, this, cancellationToken);

    public void Denied(EffectStep step, string message) => NodeKindHandlers.Effect.DeniedLive(step, message, this);

    /// <summary>A model node answered (run now or resumed): its model, usage and routing count toward the job's.</summary>
    public ModelCheckpoint Modeled(string nodeId, ModelCheckpoint checkpoint)
    {
        _models.Add((nodeId, checkpoint, checkpoint.Decision));
        return checkpoint;
    }

    /// <summary>A model node the gateway found no model for: only its routing decision counts.</summary>
    public void Unrouted(string nodeId, RoutingDecision decision) => _models.Add((nodeId, null, decision));

    public JobNode Add(string nodeId, string kind, string name, IEnumerable<string> parents)
    {
        var node = graph.Add(nodeId, kind, name, parents);
        _ = run.WriteAsync(NodeWrites.Add(node));
        return node;
    }

    /// <summary>pending/failed/running -> running, counting the attempt; also moves the job's current node.</summary>
    public Task<bool> Start(JobNode node, string input)
    {
        var expected = node.Status;
        node.Status = NodeStatus.Running;
        node.Attempts++;
        node.Input = input;
        node.StartedAt = time.GetUtcNow().UtcDateTime;
        node.CompletedAt = null;
        node.ErrorCode = null;
        node.ErrorMessage = null;
        var started = run.WriteAsync(NodeWrites.Start(node, expected));
        run.MovedTo(node.NodeId);
        return started;
    }

    public void End(JobNode node, NodeStatus status, string? output, string? code = null, string? message = null)
    {
        var expected = node.Status;
        node.Status = status;
        node.Output = output;
        node.CompletedAt = time.GetUtcNow().UtcDateTime;
        node.ErrorCode = code;
        node.ErrorMessage = message;
        _ = run.WriteAsync(NodeWrites.End(node, expected));
        telemetry.Ended(node, run.Tenant, run.Principal);
    }
}
