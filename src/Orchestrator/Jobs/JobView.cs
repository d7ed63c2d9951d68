using System.Text.Json;

using Orchestrator.Gateway;

using Orchestrator.Workflow;

namespace Orchestrator.Jobs;

/// <summary>A job as API.md shows it.</summary>
public sealed record JobView(
    string JobId,
    string TraceId,
    string Tenant,
    string Principal,
    string Intent,
    string Status,
    string Priority,
    string Mode,
    int Attempts,
    DateTime CreatedAt,
    DateTime? StartedAt,
    DateTime? CompletedAt,
    DateTime DeadlineAt,
    DateTime? NextAttemptAt,
    string? CurrentNode,
    string? Node,
    string? Session,
    bool CancelRequested,
    JobOutput? Output,
    JobError? Error,
    JobSla Sla,
    JobLinks Links,
    IReadOnlyList<NodeRouting>? Routing)
{
    /// <summary>What the job reserved of its tenant's daily budgets at admission (its worst case); null when no budget applied.</summary>
    public JobBudget? Budget { get; init; }

    /// <summary>The prompts, policy and routing versions the job runs with and why (pinned, rollout, stable); null for jobs from before versions.</summary>
    public JobVersions? Versions { get; init; }

    public static JobView From(Job job, DateTime now)
    {
        var started = job.StartedAt;
        var end = job.CompletedAt ?? now;
        var queueMs = job.QueueMs ?? (long)Math.Max(0, ((started ?? end) - job.CreatedAt).TotalMilliseconds);
        var runMs = job.RunMs ?? (started is null ? 0 : (long)Math.Max(0, (end - started.Value).TotalMilliseconds));
        var breached = job.Breached || (!job.IsTerminal && now > job.DeadlineAt);
        return new JobView(
            job.Id, job.TraceId, job.Tenant, job.Principal, job.Intent,
            WireNames.Of(job.Status), WireNames.Of(job.Priority), job.Sync ? "sync" : "async",
            job.Attempts, job.CreatedAt, job.StartedAt, job.CompletedAt, job.DeadlineAt, job.NextAttemptAt,
            job.CurrentNode, job.Owner, job.Session, job.CancelRequested,
            job.Output is null ? null : JsonSerializer.Deserialize(job.Output, JobsJson.Default.JobOutput),
            job.ErrorCode is null ? null : new JobError(job.ErrorCode, job.ErrorMessage ?? job.ErrorCode),
            new JobSla(job.DeadlineMs, queueMs, runMs, breached),
            JobLinks.For(job.Id, job.TraceId),
            job.Routing is null ? null : JsonSerializer.Deserialize(job.Routing, WorkflowJson.Default.IReadOnlyListNodeRouting))
        {
            Budget = job.HeldTokens is { } tokens
                ? new JobBudget(tokens, (job.HeldMicros ?? 0) / (decimal)Tenancy.Ledger.MicrosPerUsd, job.IsTerminal)
                : null,
            Versions = job.Versions is null ? null : JsonSerializer.Deserialize(job.Versions, WorkflowJson.Default.JobVersions),
        };
    }
}

/// <summary>The budget hold of a job: reserved at admission, settled with the actual usage when it ends.</summary>
public sealed record JobBudget(long ReservedTokens, decimal ReservedCostUsd, bool Settled);

/// <summary>What a completed job produced.</summary>
public sealed record JobOutput(string Text, string? Model, TokenUsage Usage, IReadOnlyList<string>? Path = null);

public sealed record JobError(string Code, string Message)
{
    /// <summary>For a block (<c>sandbox_violation</c>, <c>capability_denied</c>): the rule that fired, e.g. <c>sandbox.cpu</c>.</summary>
    public string? Rule { get; } = Effects.BlockRules.Of(Code, Message);
}

public sealed record JobSla(int DeadlineMs, long QueueMs, long RunMs, bool Breached);

public sealed record JobLinks(string Self, string Result, string Cancel, string Graph, string Replay)
{
    public static JobLinks For(string jobId, string traceId) => new(
        $"/v1/jobs/{jobId}", $"/v1/jobs/{jobId}/result", $"/v1/jobs/{jobId}/cancel",
        $"/v1/jobs/{jobId}/graph", $"/v1/replays/{traceId}");
}

/// <summary>One page of <c>GET /v1/jobs</c>.</summary>
public sealed record JobPage(IReadOnlyList<JobView> Items, string? NextCursor);
