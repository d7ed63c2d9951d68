using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Orchestrator.Storage;
using Orchestrator.Tenancy;
using Orchestrator.Workflow;

namespace Orchestrator.Jobs;

/// <summary><c>GET /v1/jobs/{id}/graph</c>: the job's execution graph as persisted.</summary>
public static class GraphApi
{
    public static RouteGroupBuilder MapGraph(this IEndpointRouteBuilder app)
    {
        var graph = app.MapGroup("/v1/jobs").WithTags("Jobs");
        graph.MapGet("/{jobId}/graph", Get).WithSummary("The job's execution graph: nodes with status, attempts and timings, and edges.");
        return graph;
    }

    internal static async Task<Results<Ok<GraphView>, ProblemHttpResult>> Get(
        string jobId, Caller caller, JobQueries jobs, OrchestratorDb db, CancellationToken cancellationToken)
    {
        if (await jobs.FindAsync(caller, jobId, cancellationToken) is not { } job)
            return JobsApi.NotFound(jobId);
        var nodes = await db.Set<JobNode>().AsNoTracking().Where(n => n.JobId == jobId).OrderBy(n => n.Seq).ToListAsync(cancellationToken);
        return TypedResults.Ok(new GraphView(
            job.Id,
            WireNames.Of(job.Status),
            job.CurrentNode,
            nodes.Select(n => new NodeView(
                n.NodeId, n.Kind, n.Name, NodeStatuses.Of(n.Status), n.Attempts, n.StartedAt, n.CompletedAt,
                n.ErrorCode is null ? null : new JobError(n.ErrorCode, n.ErrorMessage ?? n.ErrorCode),
                n.Kind == NodeKinds.Memory ? MemoryNode.View(n.Output) : null)).ToList(),
            nodes.SelectMany(n => n.ParentIds.Select(p => new EdgeView(p, n.NodeId))).ToList()));
    }
}

/// <summary>A job's execution graph (API.md, Jobs).</summary>
public sealed record GraphView(string JobId, string Status, string? CurrentNode, IReadOnlyList<NodeView> Nodes, IReadOnlyList<EdgeView> Edges);

/// <summary>A graph node; a memory node also shows what it recalled or wrote (counts, tokens, item ids), never the remembered text.</summary>
public sealed record NodeView(
    string Id, string Kind, string Name, string Status, int Attempts, DateTime? StartedAt, DateTime? CompletedAt, JobError? Error, MemoryNodeView? Memory = null);

public sealed record EdgeView(string From, string To);
