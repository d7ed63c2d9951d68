using Microsoft.Extensions.Options;
using Orchestrator.Effects;
using Orchestrator.Gateway;
using Orchestrator.Hosting;
using Orchestrator.Memory;

using Orchestrator.Tenancy;

namespace Orchestrator.Workflow;

/// <summary>
/// Runs a job's intent as a durable graph. Each node is persisted pending -> running -> succeeded/failed
/// with its checkpoint; on resume a succeeded node is never run again, its checkpoint stands in for it.
/// Model calls write without waiting (they have no side effects; writes land in order). An effect waits
/// for its intent to commit before it runs, so a crash leaves it visibly started, and it is then re-run
/// only if that is safe: read-only and idempotent effects yes, others only if they can tell they did not
/// happen; otherwise the job stops for an operator with <c>effect_outcome_unknown</c>.
/// </summary>
internal sealed class WorkflowRunner(
    IntentCatalog intents,
    IPolicySnapshots snapshots,
    ModelGateway gateway,
    EffectRegistry effects,
    MemoryStore memory,
    Approvals.ApprovalStore approvals,
    JobGraphs graphs,
    NodeTelemetry telemetry,
    IOptions<GatewayOptions> gatewayOptions,
    AuditTrail audit,
    ModelDeltas deltas,
    TimeProvider time,
    ILogger<WorkflowRunner> log)
{
    public async Task<WorkflowResult> RunAsync(IWorkflowRun run, CancellationToken cancellationToken)
    {
        var policy = intents.Find(run.Intent);
        // A job admitted under another policy than the catalog's (an evaluation's candidate, a policy file changed since)
        // walks the policy it was admitted under: its snapshot, stored by content hash before the job was.
        if (run.PolicyHash is { Length: > 0 } hash && policy?.ContentHash != hash && await snapshots.FindAsync(hash, cancellationToken) is { } admitted)
            policy = admitted;
        if (policy is null)
            return new WorkflowResult(null, [], null, TokenUsage.None, [],
                StepFailure.Failed(Problems.ValidationFailed, $"Intent '{run.Intent}' has no policy on this node."));

        var request = run.Request;
        var graph = run.Graph ??= await graphs.LoadAsync(run, policy, cancellationToken);
        var steps = new LiveSteps(gateway, effects, memory, approvals, telemetry, audit, deltas, gatewayOptions.Value.DefaultStrategy, time, log, run, request, policy, graph);
        var result = await WorkflowWalk.RunAsync(policy, request, steps, cancellationToken);
        return new WorkflowResult(result.Failure is null ? result.Text ?? "" : null, result.Path, steps.LastModel, steps.Usage, steps.Routing, result.Failure);
    }
}

/// <summary>
/// Policies by content hash, from the store's snapshots (a content hash names one content, so a policy read once is good
/// forever). Defined here, implemented where the snapshots live (Replay), so the workflow needs nothing above it.
/// </summary>
public interface IPolicySnapshots
{
    Task<IntentPolicy?> FindAsync(string contentHash, CancellationToken cancellationToken);
}

internal static class Routing
{
    /// <summary>The request's routing, then the intent policy's, then the gateway default, in that order.</summary>
    public static RoutingRequest For(ActRequest request, IntentPolicy policy, PolicyNode node, string defaultStrategy) => new(
        request.Routing?.Strategy ?? policy.Routing.Strategy ?? defaultStrategy,
        request.Routing?.Models ?? policy.Routing.Models,
        request.Routing?.Hedge ?? policy.Routing.Hedge,
        node.Requires);
}
