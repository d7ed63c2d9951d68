using System.Text.Json;
using Orchestrator.Effects;
using Orchestrator.Hosting;

namespace Orchestrator.Workflow;

/// <summary>
/// An effect node. Live, it waits for its intent to commit before it runs, so a crash leaves it visibly started,
/// and it is then re-run only if that is safe: read-only and idempotent effects yes, others only if they can tell
/// they did not happen; otherwise the job stops for an operator with <c>effect_outcome_unknown</c>. Recorded, it
/// answers with the recorded result of the same capability called with the same arguments.
/// </summary>
internal sealed class EffectNode : NodeHandler<EffectStep, EffectCheckpoint>
{
    public override string Kind => NodeKinds.Effect;

    public override async Task<EffectCheckpoint> LiveAsync(EffectStep step, LiveSteps live, CancellationToken cancellationToken)
    {
        var (run, graph, telemetry, log) = (live.Run, live.Graph, live.Telemetry, live.Log);
        var node = graph.Find(step.NodeId);
        if (node is { Status: NodeStatus.Succeeded })
        {
            telemetry.Resumed(node);
            return JsonSerializer.Deserialize(node.Output!, WorkflowJson.Default.EffectCheckpoint)!;
        }
        var capability = step.Capability!;
        var effect = live.Effects.Find(capability)!;
        node ??= live.Add(step.NodeId, Kind, capability, [step.Parent]);

        var call = new EffectCall(capability, step.Call.Arguments, run.Tenant, $"{run.JobId}/{step.NodeId}", run.Principal);
        if (node.Status == NodeStatus.Running && await ReconcileAsync(node, effect, call, live, cancellationToken) is { } settled)
            return settled;

        // Nothing with a side effect runs before the job's claim is committed.
        if (!await run.Claimed)
            throw new OperationCanceledException("The job's claim was lost.");

        // An approved call runs only as approved, and only while its approvers still may approve (checked now, as it runs).
        if (step.ApprovalId is { } approvalId && await live.Approvals.VerifyAsync(approvalId, capability, step.Call.Arguments, cancellationToken) is { } broken)
        {
            log.LogWarning("Job {JobId} node {NodeId}: {Message}", run.JobId, step.NodeId, broken.Message);
            live.End(node, NodeStatus.Failed, null, broken.Code, broken.Message);
            live.AuditDenied(step, broken.Code, broken.Message);
            throw new StepFailed(StepFailure.Failed(broken.Code, broken.Message));
        }

        try
        {
            using var plan = await effect.PlanAsync(call, cancellationToken);
            var input = new EffectInput(step.Call.CallId, capability, step.Call.Arguments, RiskName(effect.RiskOf(step.Call.Arguments)), call.IdempotencyKey, plan.Facts);
            // The intent is committed before the effect runs: after a crash the node says it may have happened.
            if (!await live.Start(node, JsonSerializer.Serialize(input, WorkflowJson.Default.EffectInput)))
                throw new InvalidOperationException($"Node {step.NodeId} of job {run.JobId} changed in the store while this run held it.");
            using var activity = telemetry.Start(node, run.Tenant);
            var result = await effect.RunAsync(call, plan, cancellationToken);
            var checkpoint = new EffectCheckpoint(step.Call.CallId, result.Ok, result.Content);
            live.End(node, NodeStatus.Succeeded, JsonSerializer.Serialize(checkpoint, WorkflowJson.Default.EffectCheckpoint));
            return checkpoint;
        }
        catch (EffectRefusedException refused)
        {
            // A block names the rule that fired, in the node's and the job's error and in the audit entry.
            var message = refused.Rule is { } rule ? $"{refused.Message} (rule {rule})" : refused.Message;
            live.End(node, NodeStatus.Failed, null, refused.Code, message);
            live.AuditDenied(step, refused.Code, message, refused.Rule);
            throw new StepFailed(StepFailure.Failed(refused.Code, $"{capability} refused: {message}"));
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException or JsonException)
        {
            log.LogWarning(error, "Job {JobId} node {NodeId}: {Capability} failed", run.JobId, step.NodeId, capability);
            live.End(node, NodeStatus.Failed, null, Problems.EffectFailed, error.Message);
            throw new StepFailed(StepFailure.Failed(Problems.EffectFailed, $"{capability} failed: {error.Message}"));
        }
    }

    /// <summary>
    /// An effect found started but unfinished (the process died, or the attempt was cut short). Read-only and
    /// idempotent effects simply run again (null). Others are asked whether they happened: applied -> its
    /// checkpoint is written now; not applied -> it runs again (null); unknown -> the job stops for an operator.
    /// </summary>
    static async Task<EffectCheckpoint?> ReconcileAsync(JobNode node, IEffect effect, EffectCall call, LiveSteps live, CancellationToken cancellationToken)
    {
        if (effect.RiskOf(call.Arguments) != EffectRisk.NonIdempotent)
            return null;
        var recorded = node.Input is null ? null : JsonSerializer.Deserialize(node.Input, WorkflowJson.Default.EffectInput);
        var settled = recorded is null
            ? new Settlement(Reconciliation.Unknown, null)
            : await effect.SettleAsync(call, new EffectPlan(recorded.Facts), cancellationToken);
        switch (settled.Verdict)
        {
            case Reconciliation.Applied:
                // The answer the effect recorded with its change, where it keeps one (db/write); otherwise only that it happened.
                var checkpoint = new EffectCheckpoint(recorded!.CallId, settled.Result?.Ok ?? true,
                    settled.Result?.Content ?? JsonSerializer.Serialize(new { reconciled = "applied before a restart" }, EffectJson.Options), Reconciled: "applied");
                live.End(node, NodeStatus.Succeeded, JsonSerializer.Serialize(checkpoint, WorkflowJson.Default.EffectCheckpoint));
                live.Log.LogInformation("Effect {Key} was applied before the restart; not repeated", call.IdempotencyKey);
                return checkpoint;
            case Reconciliation.NotApplied:
                live.Log.LogInformation("Effect {Key} had not happened before the restart; running it", call.IdempotencyKey);
                return null;
            default:
                var message = $"Effect {call.Capability} ({call.IdempotencyKey}) was started before a restart and may or may not have happened; " +
                              "it is not idempotent, so it is not repeated. An operator must check its outcome.";
                live.End(node, NodeStatus.Failed, null, Problems.EffectOutcomeUnknown, message);
                throw new StepFailed(StepFailure.Failed(Problems.EffectOutcomeUnknown, message));
        }
    }

    /// <summary>The model called a capability this job may not use: live, the node is written failed with <c>capability_denied</c>.</summary>
    public void DeniedLive(EffectStep step, string message, LiveSteps live)
    {
        live.Log.LogWarning("Job {JobId} node {NodeId}: {Message}", live.Run.JobId, step.NodeId, message);
        var node = live.Graph.Find(step.NodeId) ?? live.Add(step.NodeId, Kind, step.Capability ?? step.Call.Name, [step.Parent]);
        live.End(node, NodeStatus.Failed, null, Problems.CapabilityDenied, message);
        live.AuditDenied(step, Problems.CapabilityDenied, message, "capability.not-offered");
    }

    /// <summary>Recorded, a denial is checked again by the walk, not taken from the recording.</summary>
    public void DeniedRecorded(EffectStep step, RecordedSteps recorded) => recorded.Answered(step.NodeId, Kind, "denied");

    public override Task<EffectCheckpoint> RecordedAsync(EffectStep step, RecordedSteps recorded)
    {
        var key = Key(step.Capability!, step.Call.Arguments);
        if (recorded.TryAnswer(step.NodeId, Kind, key, out var result))
            return Task.FromResult((EffectCheckpoint)result!);
        if (recorded.TryFail(step.NodeId, Kind, step.Capability!, key, out var failed))
            return Task.FromException<EffectCheckpoint>(failed);
        return Task.FromException<EffectCheckpoint>(recorded.Diverge(step.NodeId, Kind,
            $"Effect node '{step.NodeId}' ({step.Capability}) has no recorded result for these arguments; it would have to run, so the run diverges here."));
    }

    public override bool ReadsInput(JsonElement input) => Reads(input, WorkflowJson.Default.EffectInput);

    public override bool ReadsOutput(JsonElement output) => Reads(output, WorkflowJson.Default.EffectCheckpoint);

    public override string? RecordedKey(JsonElement input) =>
        input.Deserialize(WorkflowJson.Default.EffectInput) is { } effect ? Key(effect.Capability, effect.Arguments) : null;

    public override object? ReadOutput(JsonElement output) => output.Deserialize(WorkflowJson.Default.EffectCheckpoint);

    public override string Interrupted(string code, string message) =>
        $"The job ended ({code}) while this effect ran; it may or may not have taken effect. {message}";

    /// <summary>A recorded effect result answers the same capability called with the same arguments.</summary>
    static string Key(string capability, JsonElement arguments) => capability + " " + arguments.GetRawText();

    internal static string RiskName(EffectRisk risk) => risk switch
    {
        EffectRisk.ReadOnly => "read-only",
        EffectRisk.IdempotentWrite => "idempotent-write",
        _ => "non-idempotent",
    };
}
