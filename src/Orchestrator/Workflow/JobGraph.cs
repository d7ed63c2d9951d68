using Microsoft.EntityFrameworkCore;
using Orchestrator.Storage;

namespace Orchestrator.Workflow;

/// <summary>A job's execution graph as the runner holds it: the nodes persisted so far, in creation order.</summary>
internal sealed class JobGraph(string jobId, List<JobNode> nodes)
{
    readonly Dictionary<string, JobNode> _byId = nodes.ToDictionary(n => n.NodeId, StringComparer.Ordinal);

    public IReadOnlyList<JobNode> Nodes => nodes;

    public JobNode? Find(string nodeId) => _byId.GetValueOrDefault(nodeId);

    /// <summary>A new pending node after <paramref name="parents"/>; the caller writes it.</summary>
    public JobNode Add(string nodeId, string kind, string name, IEnumerable<string> parents)
    {
        var node = new JobNode
        {
            JobId = jobId,
            NodeId = nodeId,
            Seq = nodes.Count + 1,
            Kind = kind,
            Name = name,
            Status = NodeStatus.Pending,
            Parents = string.Join(',', parents) is { Length: > 0 } joined ? joined : null,
        };
        nodes.Add(node);
        _byId[nodeId] = node;
        return node;
    }

    public string? LastId => nodes.Count == 0 ? null : nodes[^1].NodeId;

    /// <summary>What the model calls that succeeded so far cost: a job that ends early (canceled, past its deadline) still pays for them.</summary>
    public Gateway.TokenUsage Spent() => nodes
        .Where(n => n is { Kind: NodeKinds.Model, Status: NodeStatus.Succeeded, Output: not null })
        .Select(n => System.Text.Json.JsonSerializer.Deserialize(n.Output!, WorkflowJson.Default.ModelCheckpoint)?.Usage ?? Gateway.TokenUsage.None)
        .Aggregate(Gateway.TokenUsage.None, (sum, usage) => sum.Add(usage));

    /// <summary>
    /// The job ended without completing and will not run again: a node it never reached becomes <c>skipped</c>, a node
    /// cut off while running (a cancel, the deadline) <c>failed</c> with the job's code. Returns the writes, each
    /// guarded on the status it replaces, so they land only over what the run itself last wrote.
    /// </summary>
    public List<StoreWrite> Close(string code, string message, DateTime now)
    {
        var writes = new List<StoreWrite>();
        foreach (var node in nodes)
        {
            var expected = node.Status;
            if (expected == NodeStatus.Pending)
                node.Status = NodeStatus.Skipped;
            else if (expected == NodeStatus.Running)
            {
                node.Status = NodeStatus.Failed;
                node.ErrorCode = code;
                node.ErrorMessage = NodeKindHandlers.Find(node.Kind) is { } handler
                    ? handler.Interrupted(code, message)
                    : $"The job ended ({code}) while this node ran. {message}";
            }
            else
                continue;
            node.CompletedAt = now;
            writes.Add(NodeWrites.End(node, expected));
        }
        return writes;
    }
}

/// <summary>Loads a job's graph, or plans a new one (the policy's nodes, pending) for a job that has none yet.</summary>
internal sealed class JobGraphs(IDbContextFactory<OrchestratorDb> dbs)
{
    public async Task<JobGraph> LoadAsync(IWorkflowRun run, IntentPolicy policy, CancellationToken cancellationToken)
    {
        // A job admitted by this process on its first attempt has no nodes yet: no need to ask the store.
        List<JobNode> nodes;
        if (run.Fresh)
            nodes = [];
        else
        {
            await using var db = await dbs.CreateDbContextAsync(cancellationToken);
            var jobId = run.JobId;
            nodes = await db.Set<JobNode>().AsNoTracking().Where(n => n.JobId == jobId).OrderBy(n => n.Seq).ToListAsync(cancellationToken);
        }
        var graph = new JobGraph(run.JobId, nodes);
        if (nodes.Count == 0)
            Plan(run, graph, policy);
        return graph;
    }

    /// <summary>
    /// The nodes the policy fixes up front; an agent loop shows its first model turn until it unfolds. A turn with
    /// memory starts with its recall; the write after the answer is added when the answer is there.
    /// </summary>
    static void Plan(IWorkflowRun run, JobGraph graph, IntentPolicy policy)
    {
        if (MemoryTurn.For(policy, run.Request) is not null)
            _ = run.WriteAsync(NodeWrites.Add(graph.Add(MemoryIds.Recall, NodeKinds.Memory, MemoryOperations.Recall, [])));
        foreach (var step in policy.Nodes)
        {
            var id = step.Kind == NodeKinds.Agent ? AgentIds.Model(step.Id, 1) : step.Id;
            var node = graph.Add(id, NodeKinds.Model, step.Role ?? step.Id, graph.LastId is { } last ? [last] : []);
            _ = run.WriteAsync(NodeWrites.Add(node));
        }
    }
}

/// <summary>Node ids of an agent loop: <c>agent/model-2</c> is its second model turn, <c>agent/effect-2-1</c> that turn's first tool call.</summary>
internal static class AgentIds
{
    public static string Model(string agent, int step) => $"{agent}/model-{step}";

    public static string Effect(string agent, int step, int call) => $"{agent}/effect-{step}-{call}";

    /// <summary>The approval node before an effect node: <c>agent/approval-2-1</c> gates <c>agent/effect-2-1</c>.</summary>
    public static string Approval(string effectNodeId) => effectNodeId.Replace("/effect-", "/approval-", StringComparison.Ordinal);
}
