using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Orchestrator.Memory;

namespace Orchestrator.Workflow;

/// <summary>A memory node to run: recall before the first model node, write after the turn, or store a summary.</summary>
/// <remarks>Whose memory is not part of the step: the live handler takes tenant and principal from the job, which took them from the caller's key.</remarks>
internal sealed record MemoryStep(
    string NodeId, string Operation, string Session, MemoryPolicy Policy, IReadOnlyList<string> Parents,
    string? Query = null, IReadOnlyList<NewMemoryItem>? Items = null, string? Summary = null, IReadOnlyList<string>? Replaces = null)
{
    public MemoryInput Input() => new(Operation, Session, Policy.Scope, Query, Items, Summary, Replaces);
}

/// <summary>A memory node's recorded input: what it was asked (the session, the words recalled for, the items written).</summary>
public sealed record MemoryInput(
    string Operation, string Session, string Scope, string? Query, IReadOnlyList<NewMemoryItem>? Items, string? Summary, IReadOnlyList<string>? Replaces);

/// <summary>A memory node's checkpoint: what was recalled, or what a write did. A rerun reads the recall from here, not from the store.</summary>
public sealed record MemoryCheckpoint(string Operation, MemoryRecall? Recall, MemoryWritten? Written, MemorySummarized? Summarized);

/// <summary>What the graph shows of a memory node: counts, tokens and item ids, not the remembered text.</summary>
public sealed record MemoryNodeView(
    string Operation, RecallCounts? Counts, int? Tokens, int? BudgetTokens, int? Dropped, IReadOnlyList<string>? ItemIds,
    int? Evicted, MemoryTotals? Totals, bool? SummaryDue, string? SummaryId, string? KeptBecause);

public static class MemoryOperations
{
    public const string Recall = "recall";
    public const string Write = "write";
    public const string Summary = "summary";
}

/// <summary>
/// A memory node. Live, it recalls from the store or writes to it (a write waits for the job's claim, as every side
/// effect does, and is written once however often the node runs). Recorded, it answers with the recorded recall or
/// write for the same question, so a rerun sees exactly what the run saw even after the store changed.
/// </summary>
internal sealed class MemoryNode : NodeHandler<MemoryStep, MemoryCheckpoint>
{
    public override string Kind => NodeKinds.Memory;

    public override async Task<MemoryCheckpoint> LiveAsync(MemoryStep step, LiveSteps live, CancellationToken cancellationToken)
    {
        var (run, graph, telemetry) = (live.Run, live.Graph, live.Telemetry);
        var node = graph.Find(step.NodeId);
        if (node is { Status: NodeStatus.Succeeded })
        {
            telemetry.Resumed(node);
            return JsonSerializer.Deserialize(node.Output!, WorkflowJson.Default.MemoryCheckpoint)!;
        }
        node ??= live.Add(step.NodeId, Kind, step.Operation, step.Parents);
        _ = live.Start(node, JsonSerializer.Serialize(step.Input(), WorkflowJson.Default.MemoryInput));
        using var activity = telemetry.Start(node, run.Tenant);
        var memory = live.Memory;
        var key = new MemoryKey(run.Tenant, run.Principal, step.Session);
        MemoryCheckpoint checkpoint;
        if (step.Operation == MemoryOperations.Recall)
            checkpoint = new MemoryCheckpoint(step.Operation, await memory.RecallAsync(key, step.Policy, step.Query ?? "", cancellationToken), null, null);
        else
        {
            // A write changes what later runs see: nothing of it lands before the job's claim is committed. It need not wait
            // for its own start to commit (as an effect does): written again after a crash, it inserts nothing new.
            if (!await run.Claimed)
                throw new OperationCanceledException("The job's claim was lost.");
            checkpoint = step.Operation == MemoryOperations.Write
                ? new MemoryCheckpoint(step.Operation, null, await memory.RememberAsync(key, run.JobId, step.NodeId, step.Items ?? [], step.Policy), null)
                : new MemoryCheckpoint(step.Operation, null, null, await memory.SummarizeAsync(key, run.JobId, step.NodeId, step.Summary ?? "",
                    step.Items ?? [], step.Replaces ?? [], step.Policy));
        }
        live.End(node, NodeStatus.Succeeded, JsonSerializer.Serialize(checkpoint, WorkflowJson.Default.MemoryCheckpoint));
        return checkpoint;
    }

    public override Task<MemoryCheckpoint> RecordedAsync(MemoryStep step, RecordedSteps recorded)
    {
        var key = Key(step.Input());
        if (recorded.TryAnswer(step.NodeId, Kind, key, out var answer))
            return Task.FromResult((MemoryCheckpoint)answer!);
        if (recorded.TryFail(step.NodeId, Kind, step.Operation, key, out var failed))
            return Task.FromException<MemoryCheckpoint>(failed);
        return Task.FromException<MemoryCheckpoint>(recorded.Diverge(step.NodeId, Kind,
            $"Memory node '{step.NodeId}' ({step.Operation}) is asked something the recording never asked; the run diverges here."));
    }

    public override bool ReadsInput(JsonElement input) => Reads(input, WorkflowJson.Default.MemoryInput);

    public override bool ReadsOutput(JsonElement output) => Reads(output, WorkflowJson.Default.MemoryCheckpoint);

    public override string? RecordedKey(JsonElement input) =>
        input.Deserialize(WorkflowJson.Default.MemoryInput) is { } memory ? Key(memory) : null;

    public override object? ReadOutput(JsonElement output) => output.Deserialize(WorkflowJson.Default.MemoryCheckpoint);

    /// <summary>The graph's view of a memory node's checkpoint; null when it has none.</summary>
    public static MemoryNodeView? View(string? output)
    {
        if (output is null)
            return null;
        var checkpoint = JsonSerializer.Deserialize(output, WorkflowJson.Default.MemoryCheckpoint);
        return checkpoint switch
        {
            { Recall: { } r } => new MemoryNodeView(checkpoint.Operation, r.Counts, r.Tokens, r.BudgetTokens, r.Dropped, r.Items.Select(i => i.Id).ToList(),
                null, null, null, null, null),
            { Written: { } w } => new MemoryNodeView(checkpoint.Operation, null, null, null, null, w.ItemIds, w.Evicted, w.Totals, w.SummaryDue is not null, null, null),
            { Summarized: { } s } => new MemoryNodeView(checkpoint.Operation, null, null, null, null, s.FactIds, s.Evicted, null, null, s.SummaryId, s.KeptBecause),
            _ => null,
        };
    }

    /// <summary>A recorded memory answer matches the same operation on the same session with the same words (hashed).</summary>
    static string Key(MemoryInput input) =>
        input.Operation + " " + input.Session + " " + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
            JsonSerializer.Serialize(input with { Operation = "", Session = "" }, WorkflowJson.Default.MemoryInput))));
}
