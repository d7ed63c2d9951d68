using System.Text.Json;
using Microsoft.Extensions.Options;
using Orchestrator.Effects;
using Orchestrator.Gateway;
using Orchestrator.Hosting;

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
    ModelGateway gateway,
    EffectRegistry effects,
    JobGraphs graphs,
    NodeTelemetry telemetry,
    IOptions<GatewayOptions> gatewayOptions,
    TimeProvider time,
    ILogger<WorkflowRunner> log)
{
    public async Task<WorkflowResult> RunAsync(IWorkflowRun run, CancellationToken cancellationToken)
    {
        if (intents.Find(run.Intent) is not { } policy)
            return new WorkflowResult(null, [], null, TokenUsage.None, [],
                StepFailure.Failed(Problems.ValidationFailed, $"Intent '{run.Intent}' has no policy on this node."));

        var request = run.Request;
        var graph = run.Graph ??= await graphs.LoadAsync(run, policy, cancellationToken);
        var steps = new LiveSteps(gateway, effects, telemetry, gatewayOptions.Value.DefaultStrategy, time, log, run, request, policy, graph);
        var result = await WorkflowWalk.RunAsync(policy, request, steps, cancellationToken);
        return new WorkflowResult(result.Failure is null ? result.Text ?? "" : null, result.Path, steps.LastModel, steps.Usage, steps.Routing, result.Failure);
    }

    /// <summary>The live executor: the gateway and the effects, every node persisted.</summary>
    sealed class LiveSteps(
        ModelGateway gateway, EffectRegistry effects, NodeTelemetry telemetry, string defaultStrategy,
        TimeProvider time, ILogger log, IWorkflowRun run, ActRequest request, IntentPolicy policy, JobGraph graph) : IStepExecutor
    {
        readonly List<(string Node, ModelCheckpoint? Checkpoint, RoutingDecision Decision)> _models = [];

        public List<NodeRouting> Routing => _models.Select(m => new NodeRouting(m.Node, m.Decision)).ToList();

        public string? LastModel => _models.LastOrDefault(m => m.Checkpoint is not null).Checkpoint?.Model;

        public TokenUsage Usage => _models.Where(m => m.Checkpoint is not null).Aggregate(TokenUsage.None, (sum, m) => sum.Add(m.Checkpoint!.Usage));

        public async Task<ModelCheckpoint> ModelAsync(ModelStep step, CancellationToken cancellationToken)
        {
            var node = graph.Find(step.NodeId);
            if (node is { Status: NodeStatus.Succeeded })
            {
                telemetry.Resumed(node);
                return Recorded(step.NodeId, JsonSerializer.Deserialize(node.Output!, WorkflowJson.Default.ModelCheckpoint)!);
            }
            node ??= Add(step.NodeId, NodeKinds.Model, step.Policy.Role ?? step.Policy.Id, step.Parents);

            var routing = Workflow.Routing.For(request, policy, step.Policy, defaultStrategy);
            var seed = Seeds.For(run.TraceId, step.NodeId);
            var input = new ModelInput(step.Messages.Select(MessageRecord.Of).ToList(), step.ToolNames, routing, seed);
            _ = Start(node, JsonSerializer.Serialize(input, WorkflowJson.Default.ModelInput));
            using var activity = telemetry.Start(node, run.Tenant);
            try
            {
                var tools = step.Offered is null ? null : effects.Declarations(step.Offered);
                var reply = await gateway.CompleteAsync(new ModelCall(run.TraceId, step.NodeId, step.Messages, tools, routing, seed), cancellationToken);
                var checkpoint = ModelCheckpoint.Of(reply);
                End(node, NodeStatus.Succeeded, JsonSerializer.Serialize(checkpoint, WorkflowJson.Default.ModelCheckpoint));
                return Recorded(step.NodeId, checkpoint);
            }
            catch (ModelUnavailableException error)
            {
                _models.Add((step.NodeId, null, error.Decision));
                End(node, NodeStatus.Failed, null, Problems.ModelUnavailable, error.Message);
                throw new StepFailed(StepFailure.Failed(Problems.ModelUnavailable, error.Message, transient: error.Transient, retryAfter: error.RetryAfter));
            }
            catch (ModelCallException error)
            {
                End(node, NodeStatus.Failed, null, Problems.ModelFailed, error.Message);
                throw new StepFailed(StepFailure.Failed(Problems.ModelFailed, error.Message, transient: ModelFailureClasses.IsRetryable(error.Failure)));
            }
        }

        ModelCheckpoint Recorded(string nodeId, ModelCheckpoint checkpoint)
        {
            _models.Add((nodeId, checkpoint, checkpoint.Decision));
            return checkpoint;
        }

        public void Denied(EffectStep step, string message)
        {
            log.LogWarning("Job {JobId} node {NodeId}: {Message}", run.JobId, step.NodeId, message);
            var node = graph.Find(step.NodeId) ?? Add(step.NodeId, NodeKinds.Effect, step.Capability ?? step.Call.Name, [step.Parent]);
            End(node, NodeStatus.Failed, null, Problems.CapabilityDenied, message);
        }

        public async Task<EffectCheckpoint> EffectAsync(EffectStep step, CancellationToken cancellationToken)
        {
            var node = graph.Find(step.NodeId);
            if (node is { Status: NodeStatus.Succeeded })
            {
                telemetry.Resumed(node);
                return JsonSerializer.Deserialize(node.Output!, WorkflowJson.Default.EffectCheckpoint)!;
            }
            var capability = step.Capability!;
            var effect = effects.Find(capability)!;
            node ??= Add(step.NodeId, NodeKinds.Effect, capability, [step.Parent]);

            var call = new EffectCall(capability, step.Call.Arguments, run.Tenant, $"{run.JobId}/{step.NodeId}");
            if (node.Status == NodeStatus.Running && await ReconcileAsync(node, effect, call, cancellationToken) is { } settled)
                return settled;

            // Nothing with a side effect runs before the job's claim is committed.
            if (!await run.Claimed)
                throw new OperationCanceledException("The job's claim was lost.");

            try
            {
                using var plan = await effect.PlanAsync(call, cancellationToken);
                var input = new EffectInput(step.Call.CallId, capability, step.Call.Arguments, RiskName(effect.RiskOf(step.Call.Arguments)), call.IdempotencyKey, plan.Facts);
                // The intent is committed before the effect runs: after a crash the node says it may have happened.
                if (!await Start(node, JsonSerializer.Serialize(input, WorkflowJson.Default.EffectInput)))
                    throw new InvalidOperationException($"Node {step.NodeId} of job {run.JobId} changed in the store while this run held it.");
                using var activity = telemetry.Start(node, run.Tenant);
                var result = await effect.RunAsync(call, plan, cancellationToken);
                var checkpoint = new EffectCheckpoint(step.Call.CallId, result.Ok, result.Content);
                End(node, NodeStatus.Succeeded, JsonSerializer.Serialize(checkpoint, WorkflowJson.Default.EffectCheckpoint));
                return checkpoint;
            }
            catch (EffectRefusedException refused)
            {
                End(node, NodeStatus.Failed, null, refused.Code, refused.Message);
                throw new StepFailed(StepFailure.Failed(refused.Code, $"{capability} refused: {refused.Message}"));
            }
            catch (Exception error) when (error is IOException or UnauthorizedAccessException or JsonException)
            {
                log.LogWarning(error, "Job {JobId} node {NodeId}: {Capability} failed", run.JobId, step.NodeId, capability);
                End(node, NodeStatus.Failed, null, Problems.EffectFailed, error.Message);
                throw new StepFailed(StepFailure.Failed(Problems.EffectFailed, $"{capability} failed: {error.Message}"));
            }
        }

        /// <summary>
        /// An effect found started but unfinished (the process died, or the attempt was cut short). Read-only and
        /// idempotent effects simply run again (null). Others are asked whether they happened: applied -> its
        /// checkpoint is written now; not applied -> it runs again (null); unknown -> the job stops for an operator.
        /// </summary>
        async Task<EffectCheckpoint?> ReconcileAsync(JobNode node, IEffect effect, EffectCall call, CancellationToken cancellationToken)
        {
            if (effect.RiskOf(call.Arguments) != EffectRisk.NonIdempotent)
                return null;
            var recorded = node.Input is null ? null : JsonSerializer.Deserialize(node.Input, WorkflowJson.Default.EffectInput);
            var verdict = recorded is null
                ? Reconciliation.Unknown
                : await effect.ReconcileAsync(call, new EffectPlan(recorded.Facts), cancellationToken);
            switch (verdict)
            {
                case Reconciliation.Applied:
                    var checkpoint = new EffectCheckpoint(recorded!.CallId, true,
                        JsonSerializer.Serialize(new { reconciled = "applied before a restart" }, EffectJson.Options), Reconciled: "applied");
                    End(node, NodeStatus.Succeeded, JsonSerializer.Serialize(checkpoint, WorkflowJson.Default.EffectCheckpoint));
                    log.LogInformation("Effect {Key} was applied before the restart; not repeated", call.IdempotencyKey);
                    return checkpoint;
                case Reconciliation.NotApplied:
                    log.LogInformation("Effect {Key} had not happened before the restart; running it", call.IdempotencyKey);
                    return null;
                default:
                    var message = $"Effect {call.Capability} ({call.IdempotencyKey}) was started before a restart and may or may not have happened; " +
                                  "it is not idempotent, so it is not repeated. An operator must check its outcome.";
                    End(node, NodeStatus.Failed, null, Problems.EffectOutcomeUnknown, message);
                    throw new StepFailed(StepFailure.Failed(Problems.EffectOutcomeUnknown, message));
            }
        }

        JobNode Add(string nodeId, string kind, string name, IEnumerable<string> parents)
        {
            var node = graph.Add(nodeId, kind, name, parents);
            _ = run.WriteAsync(NodeWrites.Add(node));
            return node;
        }

        /// <summary>pending/failed/running -> running, counting the attempt; also moves the job's current node.</summary>
        Task<bool> Start(JobNode node, string input)
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

        void End(JobNode node, NodeStatus status, string? output, string? code = null, string? message = null)
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

        static string RiskName(EffectRisk risk) => risk switch
        {
            EffectRisk.ReadOnly => "read-only",
            EffectRisk.IdempotentWrite => "idempotent-write",
            _ => "non-idempotent",
        };
    }
}

internal static class Routing
{
    /// <summary>The request's routing, then the intent policy's, then the gateway default, in that order.</summary>
    public static RoutingRequest For(ActRequest request, IntentPolicy policy, PolicyNode node, string defaultStrategy) => new(
        request.Routing?.Strategy ?? policy.Routing.Strategy ?? defaultStrategy,
        request.Routing?.Models,
        request.Routing?.Hedge ?? policy.Routing.Hedge,
        node.Requires);
}
