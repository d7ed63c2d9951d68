using System.Text.Json;
using System.Text.Json.Nodes;
using Orchestrator.Approvals;
using Orchestrator.Effects;
using Orchestrator.Gateway;
using Orchestrator.Hosting;
using Orchestrator.Memory;
using Orchestrator.Workflow;

namespace Orchestrator.Rollout;

/// <summary>
/// The shadow executor: model calls go live through the gateway (same routing rules, the primary's seeds); nothing else
/// does. An effect is answered with the primary run's recorded result of the same capability and arguments, or stubbed
/// (<c>{"shadow":true,"applied":false}</c>); it never runs. An approval is never asked: the primary's recorded decision,
/// else refused where a rule would gate the call. Memory is read (recorded, else recalled live: a read) and never written.
/// Nothing is persisted as a job node: the walk's result is the shadow run's row.
/// </summary>
internal sealed class ShadowSteps(
    ModelGateway gateway, EffectRegistry effects, ApprovalStore approvals, MemoryStore memory, string defaultStrategy,
    string traceId, string seedBase, string tenant, string principal, ActRequest request, IntentPolicy policy, RecordedSteps recorded) : IStepExecutor
{
    public static readonly string Stub = new JsonObject { ["shadow"] = true, ["applied"] = false }.ToJsonString();

    public TokenUsage Usage { get; private set; } = TokenUsage.None;

    public List<ShadowSource> Sources { get; } = [];

    public async Task<TCheckpoint> RunAsync<TStep, TCheckpoint>(NodeHandler<TStep, TCheckpoint> handler, TStep step, CancellationToken cancellationToken)
    {
        object answer = step switch
        {
            ModelStep model => await ModelAsync(model, cancellationToken),
            EffectStep effect => await EffectAsync(effect),
            ApprovalStep approval => await ApprovalAsync(approval),
            MemoryStep remember => await MemoryAsync(remember, cancellationToken),
            _ => throw new InvalidOperationException($"A shadow run has no answer for a {handler.Kind} node."),
        };
        return (TCheckpoint)answer;
    }

    public void Denied(EffectStep step, string message) => Sources.Add(new ShadowSource(step.NodeId, NodeKinds.Effect, "denied"));

    async Task<ModelCheckpoint> ModelAsync(ModelStep step, CancellationToken cancellationToken)
    {
        var routing = Routing.For(request, policy, step.Policy, defaultStrategy);
        var seed = Seeds.For(request.Seed ?? seedBase, step.NodeId);
        var tools = step.Chat is { } chat ? chat.Tools() : step.Offered is null ? null : effects.Declarations(step.Offered);
        var options = step.Chat?.Settings?.ToOptions() ?? new Microsoft.Extensions.AI.ChatOptions();
        options.MaxOutputTokens = Math.Min(options.MaxOutputTokens ?? int.MaxValue, policy.MaxOutputTokens);
        try
        {
            var reply = await gateway.CompleteAsync(new ModelCall(traceId, step.NodeId, step.Messages, tools, routing, seed, options), cancellationToken);
            var checkpoint = ModelCheckpoint.Of(reply);
            Usage = Usage.Add(checkpoint.Usage);
            return checkpoint;
        }
        catch (ModelUnavailableException error)
        {
            throw new StepFailed(StepFailure.Failed(Problems.ModelUnavailable, error.Message));
        }
        catch (ModelCallException error)
        {
            throw new StepFailed(StepFailure.Failed(Problems.ModelFailed, error.Message));
        }
    }

    /// <summary>
    /// The arguments as the store wrote them (the recording's keys are its text): a fresh model reply's JSON may be
    /// escaped otherwise than the same JSON written and read back.
    /// </summary>
    static EffectStep Stored(EffectStep step) => step with
    {
        Call = step.Call with { Arguments = JsonDocument.Parse(JsonSerializer.Serialize(step.Call.Arguments, WorkflowJson.Default.JsonElement)).RootElement.Clone() },
    };

    async Task<EffectCheckpoint> EffectAsync(EffectStep step)
    {
        step = Stored(step);
        try
        {
            var answer = await NodeKindHandlers.Effect.RecordedAsync(step, recorded);
            Sources.Add(new ShadowSource(step.NodeId, NodeKinds.Effect, "recorded"));
            return answer;
        }
        catch (StepFailed failed) when (failed.Failure.Code == RecordedSteps.Diverged)
        {
            // The primary never made this call: it is not made now either.
            Sources.Add(new ShadowSource(step.NodeId, NodeKinds.Effect, "stubbed"));
            return new EffectCheckpoint(step.Call.CallId, true, Stub);
        }
    }

    async Task<ApprovalCheckpoint> ApprovalAsync(ApprovalStep step)
    {
        step = step with { Effect = Stored(step.Effect) };
        var before = recorded.Sources.Count;
        var answer = await NodeKindHandlers.Approval.RecordedAsync(step, recorded);
        if (recorded.Sources.Count > before)
        {
            Sources.Add(new ShadowSource(step.NodeId, NodeKinds.Approval, "recorded"));
            return answer;
        }
        var capability = step.Effect.Capability!;
        var risk = EffectNode.RiskName(effects.Find(capability)!.RiskOf(step.Effect.Call.Arguments));
        if (approvals.Rules.Evaluate(tenant, capability, risk, step.Effect.Call.Arguments) is null)
            return ApprovalCheckpoint.NotRequired;
        // A rule would ask people; a shadow run never does.
        Sources.Add(new ShadowSource(step.NodeId, NodeKinds.Approval, "refused"));
        return new ApprovalCheckpoint(ApprovalCheckpoint.Rejected, Summary: $"Shadow run: {capability} would need an approval, which a shadow run never asks; refused.");
    }

    async Task<MemoryCheckpoint> MemoryAsync(MemoryStep step, CancellationToken cancellationToken)
    {
        try
        {
            var answer = await NodeKindHandlers.Memory.RecordedAsync(step, recorded);
            Sources.Add(new ShadowSource(step.NodeId, NodeKinds.Memory, "recorded"));
            return answer;
        }
        catch (StepFailed failed) when (failed.Failure.Code == RecordedSteps.Diverged)
        {
            if (step.Operation != MemoryOperations.Recall)
            {
                Sources.Add(new ShadowSource(step.NodeId, NodeKinds.Memory, "stubbed"));
                return new MemoryCheckpoint(step.Operation, null, null, null);
            }
            Sources.Add(new ShadowSource(step.NodeId, NodeKinds.Memory, "live-read"));
            return new MemoryCheckpoint(step.Operation,
                await memory.RecallAsync(new MemoryKey(tenant, principal, step.Session), step.Policy, step.Query ?? "", cancellationToken), null, null);
        }
    }
}
