using System.Text.Json;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using Orchestrator.Acting;
using Orchestrator.Effects;
using Orchestrator.Gateway;
using Orchestrator.Hosting;
using Orchestrator.Jobs;
using Orchestrator.Storage;

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
    StoreWriter writer,
    JobGraphs graphs,
    NodeTelemetry telemetry,
    IOptions<GatewayOptions> gatewayOptions,
    TimeProvider time,
    ILogger<WorkflowRunner> log)
{
    public async Task<JobOutcome> RunAsync(JobRun run, CancellationToken cancellationToken)
    {
        var job = run.Job;
        (_tenant, _principal) = (job.Tenant, job.Principal);
        var request = job.Admitted ?? JsonSerializer.Deserialize(job.Request, OrchestratorJson.Default.ActRequest)!;
        if (intents.Find(job.Intent) is not { } policy)
            return JobOutcome.Failed(Problems.ValidationFailed, $"Intent '{job.Intent}' has no policy on this node.");

        // Kept across retries of this run: the graph in memory is ahead of the store while writes are in flight.
        var graph = run.Graph ??= await graphs.LoadAsync(job, policy, cancellationToken);
        var state = new RunState(run, request, policy, graph);
        try
        {
            string? previous = null;
            foreach (var step in policy.Nodes)
            {
                previous = step.Kind == NodeKinds.Agent
                    ? await AgentAsync(state, step, previous, cancellationToken)
                    : (await ModelStepAsync(state, step.Id, step, Conversation.For(request, step, previous), null, [graph.LastId], cancellationToken)).Text;
            }
            return JobOutcome.Completed(state.Output(previous ?? "")) with { Routing = state.Routing };
        }
        catch (StepFailed failed)
        {
            return failed.Outcome with { Routing = state.Routing };
        }
    }

    async Task<string> AgentAsync(RunState state, PolicyNode step, string? previous, CancellationToken cancellationToken)
    {
        var offered = state.Policy.Capabilities.Where(c => state.Request.Tools is null || state.Request.Tools.Contains(c)).ToList();
        var tools = effects.Declarations(offered);
        var messages = Conversation.For(state.Request, step, previous);
        IEnumerable<string?> parents = [state.Graph.LastId];
        for (var turn = 1; turn <= state.Policy.MaxSteps; turn++)
        {
            var reply = await ModelStepAsync(state, AgentIds.Model(step.Id, turn), step, messages, tools, parents, cancellationToken);
            messages.Add(reply.ToMessage());
            if (reply.ToolCalls.Count == 0)
                return reply.Text ?? "";
            var done = new List<string?>();
            for (var i = 0; i < reply.ToolCalls.Count; i++)
            {
                var id = AgentIds.Effect(step.Id, turn, i + 1);
                var result = await EffectStepAsync(state, id, reply.ToolCalls[i], offered, AgentIds.Model(step.Id, turn), cancellationToken);
                messages.Add(new ChatMessage(ChatRole.Tool, [new FunctionResultContent(reply.ToolCalls[i].CallId, result.Content)]));
                done.Add(id);
            }
            parents = done;
        }
        throw new StepFailed(JobOutcome.Failed(Problems.StepLimitExceeded,
            $"The agent took {state.Policy.MaxSteps} model turns (the intent's maxSteps) without a final answer."));
    }

    async Task<ModelCheckpoint> ModelStepAsync(
        RunState state, string nodeId, PolicyNode step, List<ChatMessage> messages, IList<AITool>? tools,
        IEnumerable<string?> parents, CancellationToken cancellationToken)
    {
        var job = state.Job;
        var node = state.Graph.Find(nodeId);
        if (node is { Status: NodeStatus.Succeeded })
        {
            telemetry.Resumed(node);
            return state.Recorded(nodeId, JsonSerializer.Deserialize(node.Output!, OrchestratorJson.Default.ModelCheckpoint)!);
        }
        node ??= Add(state, nodeId, NodeKinds.Model, step.Role ?? step.Id, parents);

        var routing = Routing.For(state.Request, state.Policy, step, gatewayOptions.Value.DefaultStrategy);
        var seed = Seeds.For(job.TraceId, nodeId);
        var input = new ModelInput(messages.Select(MessageRecord.Of).ToList(), tools?.Select(t => t.Name).ToList() ?? [], routing, seed);
        _ = Start(state, node, JsonSerializer.Serialize(input, OrchestratorJson.Default.ModelInput));
        using var activity = telemetry.Start(node, job.Tenant);
        try
        {
            var reply = await gateway.CompleteAsync(new ModelCall(job.TraceId, nodeId, messages, tools, routing, seed), cancellationToken);
            var checkpoint = ModelCheckpoint.Of(reply);
            End(node, NodeStatus.Succeeded, JsonSerializer.Serialize(checkpoint, OrchestratorJson.Default.ModelCheckpoint));
            return state.Recorded(nodeId, checkpoint);
        }
        catch (ModelUnavailableException error)
        {
            state.Decided(nodeId, error.Decision);
            End(node, NodeStatus.Failed, null, Problems.ModelUnavailable, error.Message);
            throw new StepFailed(JobOutcome.Failed(Problems.ModelUnavailable, error.Message, transient: true));
        }
        catch (ModelCallException error)
        {
            End(node, NodeStatus.Failed, null, Problems.ModelFailed, error.Message);
            throw new StepFailed(JobOutcome.Failed(Problems.ModelFailed, error.Message, transient: ModelFailureClasses.IsRetryable(error.Failure)));
        }
    }

    async Task<EffectCheckpoint> EffectStepAsync(
        RunState state, string nodeId, ToolCallRecord call, IReadOnlyList<string> offered, string parent, CancellationToken cancellationToken)
    {
        var job = state.Job;
        var node = state.Graph.Find(nodeId);
        if (node is { Status: NodeStatus.Succeeded })
        {
            telemetry.Resumed(node);
            return JsonSerializer.Deserialize(node.Output!, OrchestratorJson.Default.EffectCheckpoint)!;
        }

        var capability = Capabilities.FromFunctionName(call.Name);
        node ??= Add(state, nodeId, NodeKinds.Effect, capability ?? call.Name, [parent]);
        if (capability is null || !offered.Contains(capability) || effects.Find(capability) is not { } effect)
        {
            var message = $"The model called '{call.Name}', which this job does not allow; allowed: {(offered.Count == 0 ? "none" : string.Join(", ", offered))}.";
            log.LogWarning("Job {JobId} node {NodeId}: {Message}", job.Id, nodeId, message);
            End(node, NodeStatus.Failed, null, Problems.CapabilityDenied, message);
            throw new StepFailed(JobOutcome.Failed(Problems.CapabilityDenied, message));
        }

        var effectCall = new EffectCall(capability, call.Arguments, job.Tenant, $"{job.Id}/{nodeId}");
        if (node.Status == NodeStatus.Running && await ReconcileAsync(node, effect, effectCall, cancellationToken) is { } settled)
            return settled;

        // Nothing with a side effect runs before the job's claim is committed.
        if (!await state.Run.Claimed)
            throw new OperationCanceledException("The job's claim was lost.");

        try
        {
            using var plan = await effect.PlanAsync(effectCall, cancellationToken);
            var input = new EffectInput(call.CallId, capability, call.Arguments, RiskName(effect.RiskOf(call.Arguments)), effectCall.IdempotencyKey, plan.Facts);
            // The intent is committed before the effect runs: after a crash the node says it may have happened.
            if (!await Start(state, node, JsonSerializer.Serialize(input, OrchestratorJson.Default.EffectInput)))
                throw new InvalidOperationException($"Node {nodeId} of job {job.Id} changed in the store while this run held it.");
            using var activity = telemetry.Start(node, job.Tenant);
            var result = await effect.RunAsync(effectCall, plan, cancellationToken);
            var checkpoint = new EffectCheckpoint(call.CallId, result.Ok, result.Content);
            End(node, NodeStatus.Succeeded, JsonSerializer.Serialize(checkpoint, OrchestratorJson.Default.EffectCheckpoint));
            return checkpoint;
        }
        catch (EffectRefusedException refused)
        {
            End(node, NodeStatus.Failed, null, refused.Code, refused.Message);
            throw new StepFailed(JobOutcome.Failed(refused.Code, $"{capability} refused: {refused.Message}"));
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException or JsonException)
        {
            log.LogWarning(error, "Job {JobId} node {NodeId}: {Capability} failed", job.Id, nodeId, capability);
            End(node, NodeStatus.Failed, null, Problems.EffectFailed, error.Message);
            throw new StepFailed(JobOutcome.Failed(Problems.EffectFailed, $"{capability} failed: {error.Message}"));
        }
    }

    /// <summary>
    /// An effect found started but unfinished (the process died, or the attempt was cut short). Read-only and
    /// idempotent effects simply run again (null). Others are asked whether they happened: applied -> its
    /// checkpoint is written now; not applied -> it runs again (null); unknown -> the job stops for an operator.
    /// </summary>
    async Task<EffectCheckpoint?> ReconcileAsync(JobNode node, IEffect effect, EffectCall call, CancellationToken cancellationToken)
    {
        var recorded = node.Input is null ? null : JsonSerializer.Deserialize(node.Input, OrchestratorJson.Default.EffectInput);
        if (effect.RiskOf(call.Arguments) != EffectRisk.NonIdempotent)
            return null;
        var verdict = recorded is null
            ? Reconciliation.Unknown
            : await effect.ReconcileAsync(call, new EffectPlan(recorded.Facts), cancellationToken);
        switch (verdict)
        {
            case Reconciliation.Applied:
                var checkpoint = new EffectCheckpoint(recorded!.CallId, true,
                    JsonSerializer.Serialize(new { reconciled = "applied before a restart" }, EffectJson.Options), Reconciled: "applied");
                End(node, NodeStatus.Succeeded, JsonSerializer.Serialize(checkpoint, OrchestratorJson.Default.EffectCheckpoint));
                log.LogInformation("Effect {Key} was applied before the restart; not repeated", call.IdempotencyKey);
                return checkpoint;
            case Reconciliation.NotApplied:
                log.LogInformation("Effect {Key} had not happened before the restart; running it", call.IdempotencyKey);
                return null;
            default:
                var message = $"Effect {call.Capability} ({call.IdempotencyKey}) was started before a restart and may or may not have happened; " +
                              "it is not idempotent, so it is not repeated. An operator must check its outcome.";
                End(node, NodeStatus.Failed, null, Problems.EffectOutcomeUnknown, message);
                throw new StepFailed(JobOutcome.Failed(Problems.EffectOutcomeUnknown, message));
        }
    }

    JobNode Add(RunState state, string nodeId, string kind, string name, IEnumerable<string?> parents)
    {
        var node = state.Graph.Add(nodeId, kind, name, parents.OfType<string>());
        _ = writer.WriteAsync(NodeWrites.Add(node));
        return node;
    }

    /// <summary>pending/failed/running -> running, counting the attempt; also moves the job's current node.</summary>
    Task<bool> Start(RunState state, JobNode node, string input)
    {
        var expected = node.Status;
        node.Status = NodeStatus.Running;
        node.Attempts++;
        node.Input = input;
        node.StartedAt = time.GetUtcNow().UtcDateTime;
        node.CompletedAt = null;
        node.ErrorCode = null;
        node.ErrorMessage = null;
        var started = writer.WriteAsync(NodeWrites.Start(node, expected));
        state.Job.CurrentNode = node.NodeId;
        _ = writer.WriteAsync(JobWrites.Progress(state.Job));
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
        _ = writer.WriteAsync(NodeWrites.End(node, expected));
        telemetry.Ended(node, _tenant, _principal);
    }

    // The runner is scoped to one job's run, so who it runs for is known for the node telemetry.
    string _tenant = "";
    string _principal = "";

    static string RiskName(EffectRisk risk) => risk switch
    {
        EffectRisk.ReadOnly => "read-only",
        EffectRisk.IdempotentWrite => "idempotent-write",
        _ => "non-idempotent",
    };

    /// <summary>A step that ends the job's attempt with this outcome.</summary>
    sealed class StepFailed(JobOutcome outcome) : Exception(outcome.ErrorMessage)
    {
        public JobOutcome Outcome { get; } = outcome;
    }

    /// <summary>What one attempt of a run knows: the job, its request and policy, the graph, and the model nodes' results.</summary>
    sealed class RunState(JobRun run, ActRequest request, IntentPolicy policy, JobGraph graph)
    {
        readonly List<(string Node, ModelCheckpoint? Checkpoint, RoutingDecision Decision)> _models = [];

        public JobRun Run => run;
        public Job Job => run.Job;
        public ActRequest Request => request;
        public IntentPolicy Policy => policy;
        public JobGraph Graph => graph;

        public ModelCheckpoint Recorded(string node, ModelCheckpoint checkpoint)
        {
            _models.Add((node, checkpoint, checkpoint.Decision));
            return checkpoint;
        }

        public void Decided(string node, RoutingDecision decision) => _models.Add((node, null, decision));

        public List<NodeRouting> Routing => _models.Select(m => new NodeRouting(m.Node, m.Decision)).ToList();

        public JobOutput Output(string text) => new(
            text,
            _models.LastOrDefault(m => m.Checkpoint is not null).Checkpoint?.Model,
            _models.Where(m => m.Checkpoint is not null).Aggregate(JobUsage.None, (sum, m) => sum.Add(m.Checkpoint!.Usage)),
            graph.Nodes.Where(n => n.Status == NodeStatus.Succeeded).Select(n => n.NodeId).ToList());
    }
}

/// <summary>How a node's model conversation begins: the node's prompt, the request, and the previous node's answer.</summary>
internal static class Conversation
{
    public static List<ChatMessage> For(ActRequest request, PolicyNode node, string? previousAnswer)
    {
        var messages = new List<ChatMessage>();
        if (!string.IsNullOrWhiteSpace(node.Prompt))
            messages.Add(new ChatMessage(ChatRole.System, node.Prompt));
        if (request.Messages is { Count: > 0 })
            messages.AddRange(request.Messages.Select(m => new ChatMessage(new ChatRole(m.Role!), m.Content)));
        if (!string.IsNullOrEmpty(request.Input))
            messages.Add(new ChatMessage(ChatRole.User, request.Input));
        if (previousAnswer is not null)
            messages.Add(new ChatMessage(ChatRole.User, $"Work so far (from the previous step):\n{previousAnswer}"));
        return messages;
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

/// <summary>Per-trace seeds: everything random in a run derives from its trace id, so replay repeats it.</summary>
internal static class Seeds
{
    public static long For(string traceId, string scope)
    {
        // FNV-1a, stable across processes (string.GetHashCode is randomized per process).
        var hash = 14695981039346656037UL;
        foreach (var c in traceId)
            hash = (hash ^ c) * 1099511628211UL;
        hash = (hash ^ '/') * 1099511628211UL;
        foreach (var c in scope)
            hash = (hash ^ c) * 1099511628211UL;
        return (long)(hash & long.MaxValue);
    }
}
