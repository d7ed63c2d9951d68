using System.Text.Json;
using Orchestrator.Jobs;
using Orchestrator.Workflow;

using Orchestrator.Gateway;

namespace Orchestrator.Replay;

/// <summary>
/// Everything that decided a run, frozen (API.md, Replay): the request, the resolved intent, the policy,
/// prompt and routing versions with their content hashes and contents, every node's recorded input and
/// output (model replies with their routing decisions, effect results), timings, and the seeds. Scrubbed
/// of secrets. A package is also the export format: <c>POST /v1/replays</c> takes it back.
/// </summary>
public sealed record ReplayPackage(
    string Format,
    string TraceId,
    string JobId,
    string Tenant,
    string Principal,
    DateTime CapturedAt,
    string Intent,
    ActRequest Request,
    ReplayVersions Versions,
    IntentPolicy Policy,
    RoutingConfiguration? Routing,
    ReplayOutcome Outcome,
    ReplayTimings Timings,
    IReadOnlyList<ReplayNode> Nodes,
    ReplaySeeds Seeds)
{
    public const string CurrentFormat = "orchestrator.replay/1";

    /// <summary>The artifact versions (prompts, policy, routing) the job ran with and why; null for jobs from before versions.</summary>
    public JobVersions? Assigned { get; init; }
}

public sealed record ReplayVersions(VersionRef Policy, VersionRef Prompts, VersionRef Routing);

/// <summary>A version and the SHA-256 of its content.</summary>
public sealed record VersionRef(string? Version, string? Hash);

public sealed record ReplayOutcome(string Status, JobOutput? Output, JobError? Error, IReadOnlyList<NodeRouting>? Routing, int Attempts);

public sealed record ReplayTimings(DateTime CreatedAt, DateTime? StartedAt, DateTime? CompletedAt, int DeadlineMs, long QueueMs, long RunMs);

/// <summary>One node as it ran: its recorded input and output are the JSON the store kept.</summary>
public sealed record ReplayNode(
    string Id,
    string Kind,
    string Name,
    string Status,
    int Attempts,
    IReadOnlyList<string> Parents,
    JsonElement? Input,
    JsonElement? Output,
    JobError? Error,
    DateTime? StartedAt,
    DateTime? CompletedAt,
    long? DurationMs);

/// <summary>How the run's randomness was seeded: every seed derives from the trace id and the node id.</summary>
public sealed record ReplaySeeds(string Derivation, IReadOnlyDictionary<string, long> PerNode);
