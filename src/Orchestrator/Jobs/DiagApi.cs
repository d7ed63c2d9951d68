using Microsoft.AspNetCore.Http.HttpResults;
using Orchestrator.Telemetry;
using Orchestrator.Tenancy;

namespace Orchestrator.Jobs;

/// <summary>
/// <c>/v1/diag</c> (operator): <c>telemetry</c>, the service's counters and latency summaries per tenant and principal,
/// and <c>nodes</c>, the nodes sharing this store (<see cref="NodesApi"/>).
/// </summary>
public static class DiagApi
{
    public static RouteGroupBuilder MapDiag(this IEndpointRouteBuilder app)
    {
        var diag = app.MapGroup("/v1/diag").WithTags("Diagnostics").RequireAuthorization(TenancySetup.OperatorPolicy);
        diag.MapGet("/telemetry", Telemetry)
            .WithSummary("Counters (accepted, rejected by code, completed, failed by code, retries, SLA breaches) and latency summaries, with the queue's state.");
        diag.MapNodes();
        return diag;
    }

    static Ok<TelemetryView> Telemetry(
        string? tenant, string? principal, OrchestratorTelemetry telemetry, JobQueue queue, JobWorkers workers, RunningJobs running, JobSlots slots,
        Gateway.ModelGateway gateway, Gateway.GatewayTelemetry gatewayTelemetry)
    {
        var (counters, latencies) = telemetry.Read(tenant, principal);
        var (high, normal, low) = queue.Depth;
        return TypedResults.Ok(new TelemetryView(
            tenant, principal,
            new QueueView(queue.Capacity, queue.Held, new LaneDepth(high, normal, low), Math.Round(queue.DrainPerSecond, 1), workers.Count, running.Count)
            {
                WaitingForSlot = slots.Count,
            },
            counters, latencies,
            new GatewayView(gatewayTelemetry.CircuitEvents, gateway.Models.Select(Gateway.ModelView.Of).ToList())));
    }
}

public sealed record TelemetryView(
    string? Tenant,
    string? Principal,
    QueueView Queue,
    SortedDictionary<string, long> Counters,
    SortedDictionary<string, LatencyView> Latency,
    GatewayView Gateway);

/// <summary>The node's models (as <c>GET /v1/models</c>) and how often their circuits changed state.</summary>
public sealed record GatewayView(long CircuitEvents, IReadOnlyList<Gateway.ModelView> Models);

/// <summary>The node's queue: capacity, jobs held (queued), depth by lane, recent drain rate, workers and running jobs.</summary>
public sealed record QueueView(int Capacity, int Held, LaneDepth Depth, double DrainPerSecond, int Workers, int Running)
{
    /// <summary>Jobs that found every slot of their tenant's <c>maxConcurrentJobs</c> taken and wait for one, outside the lanes.</summary>
    public int WaitingForSlot { get; init; }
}

public sealed record LaneDepth(int High, int Normal, int Low);
