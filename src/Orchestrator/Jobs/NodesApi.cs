using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Orchestrator.Storage;

namespace Orchestrator.Jobs;

/// <summary><c>GET /v1/diag/nodes</c>: the nodes sharing this store, as their heartbeat rows tell; mapped in <see cref="DiagApi"/>'s group.</summary>
public static class NodesApi
{
    internal static RouteGroupBuilder MapNodes(this RouteGroupBuilder diag)
    {
        diag.MapGet("/nodes", List)
            .WithSummary("Every node that has run on this store: when it started, its last heartbeat, whether it is alive (a heartbeat within the lease duration) and the jobs it runs.");
        return diag;
    }

    internal static async Task<Ok<ServiceNodeList>> List(OrchestratorDb db, ThisNode self, IOptions<NodeOptions> options, TimeProvider time, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var rows = await db.Set<ServiceNode>().AsNoTracking().OrderBy(n => n.Id).ToListAsync(cancellationToken);
        var items = rows
            .Select(n => new ServiceNodeView(n.Id, n.StartedAt, n.HeartbeatAt, now - n.HeartbeatAt <= options.Value.LeaseDuration, n.Running, n.Id == self.Id))
            .ToList();
        return TypedResults.Ok(new ServiceNodeList(items));
    }
}

/// <summary>One node: <c>alive</c> while its heartbeat is younger than the lease duration; <c>self</c> marks the node that answered.</summary>
public sealed record ServiceNodeView(string Id, DateTime StartedAt, DateTime HeartbeatAt, bool Alive, int Running, bool Self);

public sealed record ServiceNodeList(IReadOnlyList<ServiceNodeView> Items);
