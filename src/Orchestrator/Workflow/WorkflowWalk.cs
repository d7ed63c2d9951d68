using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using Orchestrator.Approvals;
using Orchestrator.Effects;
using Orchestrator.Hosting;
using Orchestrator.Memory;

namespace Orchestrator.Workflow;

/// <summary>
/// Carries out one step of a walk: a live run calls the gateway and the effects and persists the node; a
/// replay answers from the recorded checkpoints. The walk itself is the same for both, so a replay takes
/// exactly the path a run would.
/// </summary>
internal interface IStepExecutor
{
    /// <summary>Runs one step by its kind's handler: its live behaviour or its recorded one.</summary>
    Task<TCheckpoint> RunAsync<TStep, TCheckpoint>(NodeHandler<TStep, TCheckpoint> handler, TStep step, CancellationToken cancellationToken);

    /// <summary>The model called a function this job may not use; the walk ends with <c>capability_denied</c>.</summary>
    void Denied(EffectStep step, string message);
}

/// <summary>A model node to run: its id, the policy node it serves, its conversation, and the capabilities offered (null: none).</summary>
/// <remarks><paramref name="Chat"/>: a chat call's own functions and settings, offered instead of capabilities (the caller runs them).</remarks>
internal sealed record ModelStep(string NodeId, PolicyNode Policy, List<ChatMessage> Messages, IReadOnlyList<string>? Offered, IReadOnlyList<string> Parents, ChatTranscript? Chat = null)
{
    public IReadOnlyList<string> ToolNames =>
        Chat is not null ? Chat.Functions?.Select(f => f.Name).ToList() ?? [] : Offered?.Select(Capabilities.FunctionName).ToList() ?? [];
}

/// <summary>An effect node to run: the tool call and the capability it maps to (null when it maps to none).</summary>
/// <remarks><paramref name="ApprovalId"/>: the approval it runs under, checked again at the moment it runs.</remarks>
internal sealed record EffectStep(string NodeId, ToolCallRecord Call, string? Capability, string Parent, string? ApprovalId = null);

/// <summary>How a walk ended: the final text and the path on success, or the failure.</summary>
internal sealed record WalkResult(string? Text, IReadOnlyList<string> Path, StepFailure? Failure);

/// <summary>
/// Why a run stopped short: a problem code and message; <paramref name="Transient"/> failures may succeed if tried
/// again (the job retry decides); <paramref name="Canceled"/> marks a run that was canceled rather than failed.
/// </summary>
internal sealed record StepFailure(string Code, string Message, bool Transient = false, TimeSpan? RetryAfter = null, bool Canceled = false, bool Parked = false)
{
    public const string AwaitingApproval = "awaiting_approval";

    /// <summary>Not a failure: the walk stops until people decide; the job is parked <c>awaiting_approval</c>.</summary>
    public static StepFailure WaitForApproval(string message) => new(AwaitingApproval, message, Parked: true);

    public static StepFailure Failed(string code, string message, bool transient = false, TimeSpan? retryAfter = null) =>
        new(code, message, transient, retryAfter);

    public static StepFailure CanceledWith(string message) => new(Problems.Canceled, message, Canceled: true);
}

/// <summary>A step that ends the walk with this failure.</summary>
internal sealed class StepFailed(StepFailure failure) : Exception(failure.Message)
{
    public StepFailure Failure { get; } = failure;
}

/// <summary>
/// The walk over an intent's policy: its nodes in order, each model node given the request and the previous
/// node's answer; an agent node unfolds into model turns and the effects they call until the model answers
/// without tool calls or the policy's step limit is hit. Capabilities are checked here, for both kinds of run.
/// A request with a <c>session</c> on an intent with a <c>memory</c> block is wrapped in its memory turn
/// (<see cref="MemoryTurn"/>): recall before the first node, write (and perhaps summarise) after the last.
/// </summary>
internal static class WorkflowWalk
{
    public static async Task<WalkResult> RunAsync(IntentPolicy policy, ActRequest request, IStepExecutor steps, CancellationToken cancellationToken)
    {
        var path = new List<string>();
        var memory = MemoryTurn.For(policy, request);
        try
        {
            var recalled = memory is null ? null : await memory.RecallAsync(steps, path, cancellationToken);
            string? previous = null;
            foreach (var node in policy.Nodes)
            {
                // What memory recalled goes to the node that meets the user's words first; later nodes build on its answer.
                var recall = node == policy.Nodes[0] ? recalled : null;
                previous = node.Kind == NodeKinds.Agent
                    ? await AgentAsync(policy, request, node, previous, recall, memory, steps, path, cancellationToken)
                    : (await ModelAsync(steps, new ModelStep(node.Id, node, Conversation.For(request, node, previous, recall), null, Last(path), request.Chat), path, cancellationToken)).Text;
            }
            if (memory is not null)
                await memory.RememberAsync(previous ?? "", steps, path, cancellationToken);
            return new WalkResult(previous ?? "", path, null);
        }
        catch (StepFailed failed)
        {
            return new WalkResult(null, path, failed.Failure);
        }
    }

    static async Task<string> AgentAsync(
        IntentPolicy policy, ActRequest request, PolicyNode node, string? previous, MemoryRecall? recall, MemoryTurn? memory, IStepExecutor steps,
        List<string> path, CancellationToken cancellationToken)
    {
        var offered = Offered(policy, request);
        var messages = Conversation.For(request, node, previous, recall);
        IReadOnlyList<string> parents = Last(path);
        for (var turn = 1; turn <= policy.MaxSteps; turn++)
        {
            var modelId = AgentIds.Model(node.Id, turn);
            var reply = await ModelAsync(steps, new ModelStep(modelId, node, messages, offered, parents), path, cancellationToken);
            messages.Add(reply.ToMessage());
            if (reply.ToolCalls.Count == 0)
                return reply.Text ?? "";
            // Fail closed: every call of the turn is checked before any of them runs, so a turn that asks for one
            // forbidden capability has no side effect at all.
            var turnSteps = reply.ToolCalls.Select((call, i) =>
                new EffectStep(AgentIds.Effect(node.Id, turn, i + 1), call, Capabilities.FromFunctionName(call.Name), modelId)).ToList();
            if (turnSteps.FirstOrDefault(s => s.Capability is null || !offered.Contains(s.Capability)) is { } forbidden)
            {
                var message = $"The model called '{forbidden.Call.Name}', which this job does not allow; allowed: {(offered.Count == 0 ? "none" : string.Join(", ", offered.Select(Capabilities.FunctionName)))}." +
                              (turnSteps.Count > 1 ? " None of this turn's calls ran." : "");
                steps.Denied(forbidden, message);
                throw new StepFailed(StepFailure.Failed(Problems.CapabilityDenied, message));
            }
            var gates = await GateAsync(turnSteps, reply.Text, steps, cancellationToken);
            var done = new List<string>();
            for (var i = 0; i < turnSteps.Count; i++)
            {
                var (step, gate) = (turnSteps[i], gates[i]);
                var call = step.Call;
                string content;
                if (gate.Verdict == ApprovalCheckpoint.Rejected)
                {
                    // Decided one by one: a rejected call of a turn whose other calls run reaches the model as refused.
                    content = new JsonObject { ["refused"] = ApprovalCodes.Rejected, ["message"] = gate.Summary }.ToJsonString();
                    path.Add(AgentIds.Approval(step.NodeId));
                    done.Add(AgentIds.Approval(step.NodeId));
                }
                else
                {
                    var run = gate.Verdict == ApprovalCheckpoint.Approved
                        ? step with { Call = gate.Arguments is { } edited ? call with { Arguments = edited } : call, Parent = AgentIds.Approval(step.NodeId), ApprovalId = gate.ApprovalId }
                        : step;
                    if (run.ApprovalId is not null)
                        path.Add(run.Parent);
                    var result = await steps.RunAsync(NodeKindHandlers.Effect, run, cancellationToken);
                    path.Add(step.NodeId);
                    content = result.Content;
                    done.Add(step.NodeId);
                }
                messages.Add(new ChatMessage(ChatRole.Tool, [new FunctionResultContent(call.CallId, content)]));
                memory?.ToolCalled(call, content);
            }
            parents = done;
        }
        throw new StepFailed(StepFailure.Failed(Problems.StepLimitExceeded,
            $"The agent took {policy.MaxSteps} model turns (the intent's maxSteps) without a final answer."));
    }

    /// <summary>
    /// The approval gate of a turn: every call a rule gates gets its approval node before any call runs, so people see
    /// the whole turn at once. Any still pending: the job parks. One timed out: the job fails <c>approval_timeout</c>.
    /// Every call rejected (none left to run): <c>approval_rejected</c>. Otherwise the approved and ungated calls run.
    /// </summary>
    static async Task<List<ApprovalCheckpoint>> GateAsync(List<EffectStep> turn, string? reason, IStepExecutor steps, CancellationToken cancellationToken)
    {
        var gates = new List<ApprovalCheckpoint>();
        foreach (var step in turn)
            gates.Add(await steps.RunAsync(NodeKindHandlers.Approval, new ApprovalStep(step, AgentIds.Approval(step.NodeId), reason), cancellationToken));
        string Summaries(string verdict) => string.Join(" ", gates.Where(g => g.Verdict == verdict).Select(g => g.Summary));
        if (gates.Any(g => g.Verdict == ApprovalCheckpoint.Pending))
            throw new StepFailed(StepFailure.WaitForApproval(Summaries(ApprovalCheckpoint.Pending)));
        if (gates.Any(g => g.Verdict == ApprovalCheckpoint.TimedOut))
            throw new StepFailed(StepFailure.Failed(ApprovalCodes.Timeout, Summaries(ApprovalCheckpoint.TimedOut)));
        if (gates.Any(g => g.Verdict == ApprovalCheckpoint.Canceled))
            throw new StepFailed(StepFailure.CanceledWith(Summaries(ApprovalCheckpoint.Canceled)));
        if (gates.All(g => g.Verdict == ApprovalCheckpoint.Rejected))
            throw new StepFailed(StepFailure.Failed(ApprovalCodes.Rejected, Summaries(ApprovalCheckpoint.Rejected)));
        return gates;
    }

    internal static async Task<ModelCheckpoint> ModelAsync(IStepExecutor steps, ModelStep step, List<string> path, CancellationToken cancellationToken)
    {
        var reply = await steps.RunAsync(NodeKindHandlers.Model, step, cancellationToken);
        path.Add(step.NodeId);
        return reply;
    }

    /// <summary>What the agent's model is offered: the intent's capabilities, narrowed by the request's <c>tools</c>.</summary>
    public static List<string> Offered(IntentPolicy policy, ActRequest request) =>
        policy.Capabilities.Where(c => request.Tools is null || request.Tools.Contains(c)).ToList();

    internal static IReadOnlyList<string> Last(List<string> path) => path.Count == 0 ? [] : [path[^1]];
}

/// <summary>How a node's model conversation begins: the node's prompt, what memory recalled, the request, and the previous node's answer.</summary>
internal static class Conversation
{
    public static List<ChatMessage> For(ActRequest request, PolicyNode node, string? previousAnswer, MemoryRecall? recall = null)
    {
        // A chat call's conversation is the caller's, word for word: no prompt of ours is added to it.
        if (request.Chat is { } chat)
            return chat.ToMessages();
        var messages = new List<ChatMessage>();
        if (!string.IsNullOrWhiteSpace(node.Prompt))
            messages.Add(new ChatMessage(ChatRole.System, node.Prompt));
        // Recalled memory comes before the request, as earlier conversation does, each part with the role it was said in.
        if (recall is not null)
            messages.AddRange(recall.Messages().Select(m => new ChatMessage(new ChatRole(m.Role), m.Text)));
        if (request.Messages is { Count: > 0 })
            messages.AddRange(request.Messages.Select(m => new ChatMessage(new ChatRole(m.Role!), m.Content)));
        if (!string.IsNullOrEmpty(request.Input))
            messages.Add(new ChatMessage(ChatRole.User, request.Input));
        if (previousAnswer is not null)
            messages.Add(new ChatMessage(ChatRole.User, $"Work so far (from the previous step):\n{previousAnswer}"));
        return messages;
    }
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
        // 53 bits: every JSON reader (JavaScript, jq) holds it exactly.
        return (long)(hash & ((1UL << 53) - 1));
    }
}
