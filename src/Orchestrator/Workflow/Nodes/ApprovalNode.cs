using System.Text.Json;
using Orchestrator.Approvals;
using Orchestrator.Hosting;
using Orchestrator.Storage;

namespace Orchestrator.Workflow;

/// <summary>The gate before one effect call of an agent turn: its approval node id and what the model said with the call.</summary>
internal sealed record ApprovalStep(EffectStep Effect, string NodeId, string? Reason);

/// <summary>What an approval node asked: the capability, the arguments as people see them (canonical, secrets masked), and the rule.</summary>
public sealed record ApprovalInput(string Capability, string Arguments, string ApprovalId, string Rule, string RuleVersion);

/// <summary>
/// How the gate answered: <c>not-required</c> (no rule fired; no node), <c>pending</c>, <c>approved</c> (with the arguments to run
/// when an approver edited them), <c>rejected</c>, <c>timed_out</c> or <c>canceled</c>, and who decided, in words.
/// </summary>
public sealed record ApprovalCheckpoint(string Verdict, string? ApprovalId = null, JsonElement? Arguments = null, string? Summary = null)
{
    public const string NotRequiredVerdict = "not-required";
    public const string Pending = "pending";
    public const string Approved = "approved";
    public const string Rejected = "rejected";
    public const string TimedOut = "timed_out";
    public const string Canceled = "canceled";

    public static readonly ApprovalCheckpoint NotRequired = new(NotRequiredVerdict);
}

/// <summary>
/// An approval node, before an effect a rule gates (<c>Orchestrator:Approvals:Rules</c>). Live, the first time: the rule is
/// evaluated; if it fires, the approval row is written under the run's lease and the node stays <c>running</c> while it
/// waits (the walk then parks the job: no worker is held). When the job goes on, the node reads the decision and ends:
/// <c>succeeded</c> when approved, <c>failed</c> otherwise, its output the decision, so a resumed run (and a replay) reads
/// it back without asking again. Recorded, the recorded decision answers; a call the recording did not gate was not gated.
/// </summary>
internal sealed class ApprovalNode : NodeHandler<ApprovalStep, ApprovalCheckpoint>
{
    public override string Kind => NodeKinds.Approval;

    public override async Task<ApprovalCheckpoint> LiveAsync(ApprovalStep step, LiveSteps live, CancellationToken cancellationToken)
    {
        var (run, graph, store) = (live.Run, live.Graph, live.Approvals);
        var node = graph.Find(step.NodeId);
        if (node is { Status: NodeStatus.Succeeded or NodeStatus.Failed, Output: { } output })
        {
            live.Telemetry.Resumed(node);
            return JsonSerializer.Deserialize(output, WorkflowJson.Default.ApprovalCheckpoint)!;
        }
        var effect = step.Effect;
        var capability = effect.Capability!;
        var id = ApprovalStore.IdFor(run.JobId, step.NodeId);
        var approval = node is null && !store.Rules.MayGate(run.Tenant, capability) ? null : await store.FindAsync(id, cancellationToken);
        if (approval is null)
        {
            var risk = EffectNode.RiskName(live.Effects.Find(capability)!.RiskOf(effect.Call.Arguments));
            if (store.Rules.Evaluate(run.Tenant, capability, risk, effect.Call.Arguments) is not { } gate)
                return ApprovalCheckpoint.NotRequired;
            if (!await run.Claimed)
                throw new OperationCanceledException("The job's claim was lost.");
            approval = store.New(gate, run.JobId, step.NodeId, run.TraceId, run.Tenant, run.Principal, capability, effect.Call.Arguments, step.Reason, run.DeadlineAt);
            node ??= live.Add(step.NodeId, Kind, capability, [effect.Parent]);
            _ = live.Start(node, Input(approval));
            if (!await run.WriteAsync(new Insert<Approval>(approval)))
                throw new OperationCanceledException("The job's lease was lost while its approval was asked.");
            await store.RequestedAsync(approval);
            return new ApprovalCheckpoint(ApprovalCheckpoint.Pending, approval.Id, Summary: ApprovalStore.Describe(approval));
        }
        node ??= live.Add(step.NodeId, Kind, capability, [effect.Parent]);
        if (node.Status != NodeStatus.Running)
            _ = live.Start(node, Input(approval));
        var summary = ApprovalStore.Describe(approval);
        var checkpoint = approval.Status switch
        {
            ApprovalStatus.Pending => new ApprovalCheckpoint(ApprovalCheckpoint.Pending, approval.Id, Summary: summary),
            ApprovalStatus.Approved => new ApprovalCheckpoint(ApprovalCheckpoint.Approved, approval.Id,
                approval.ApprovedArguments is { } edited ? JsonDocument.Parse(edited).RootElement.Clone() : null, summary),
            ApprovalStatus.Rejected => new ApprovalCheckpoint(ApprovalCheckpoint.Rejected, approval.Id, Summary: summary),
            ApprovalStatus.TimedOut => new ApprovalCheckpoint(ApprovalCheckpoint.TimedOut, approval.Id, Summary: summary),
            _ => new ApprovalCheckpoint(ApprovalCheckpoint.Canceled, approval.Id, Summary: summary),
        };
        if (checkpoint.Verdict == ApprovalCheckpoint.Pending)
            return checkpoint;
        var json = JsonSerializer.Serialize(checkpoint, WorkflowJson.Default.ApprovalCheckpoint);
        if (checkpoint.Verdict == ApprovalCheckpoint.Approved)
            live.End(node, NodeStatus.Succeeded, json);
        else
            live.End(node, NodeStatus.Failed, json, checkpoint.Verdict switch
            {
                ApprovalCheckpoint.Rejected => ApprovalCodes.Rejected,
                ApprovalCheckpoint.TimedOut => ApprovalCodes.Timeout,
                _ => Problems.Canceled,
            }, summary);
        return checkpoint;
    }

    static string Input(Approval approval) => JsonSerializer.Serialize(
        new ApprovalInput(approval.Capability, approval.Arguments, approval.Id, approval.Rule, approval.RuleVersion), WorkflowJson.Default.ApprovalInput);

    public override Task<ApprovalCheckpoint> RecordedAsync(ApprovalStep step, RecordedSteps recorded)
    {
        var key = Key(step.Effect.Capability!, ApprovalArguments.Masked(step.Effect.Call.Arguments));
        return Task.FromResult(recorded.TryAnswer(step.NodeId, Kind, key, out var answer) ? (ApprovalCheckpoint)answer! : ApprovalCheckpoint.NotRequired);
    }

    public override bool ReadsInput(JsonElement input) => Reads(input, WorkflowJson.Default.ApprovalInput);

    public override bool ReadsOutput(JsonElement output) => Reads(output, WorkflowJson.Default.ApprovalCheckpoint);

    public override string? RecordedKey(JsonElement input) =>
        input.Deserialize(WorkflowJson.Default.ApprovalInput) is { } approval ? Key(approval.Capability, approval.Arguments) : null;

    public override object? ReadOutput(JsonElement output) => output.Deserialize(WorkflowJson.Default.ApprovalCheckpoint);

    public override string Interrupted(string code, string message) => $"The job ended ({code}) while this call waited for approval. {message}";

    static string Key(string capability, string maskedArguments) => capability + " " + maskedArguments;
}
