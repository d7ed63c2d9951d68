using System.ComponentModel.DataAnnotations;

namespace Orchestrator.Jobs;

/// <summary>Section <c>Orchestrator:Queue</c>.</summary>
public sealed class QueueOptions
{
    public const string Section = "Orchestrator:Queue";

    /// <summary>Accepted-but-not-started jobs held, all lanes together; past it <c>/v1/act</c> answers 429.</summary>
    [Range(1, 10_000_000, ErrorMessage = "Orchestrator:Queue:Capacity must be between 1 and 10000000.")]
    public int Capacity { get; set; } = 1000;

    /// <summary>Jobs this node runs at once. Default: 2 x processors.</summary>
    [Range(1, 4096, ErrorMessage = "Orchestrator:Queue:Workers must be between 1 and 4096.")]
    public int Workers { get; set; } = 2 * Environment.ProcessorCount;

    /// <summary>Dispatch shares of the lanes when all are backlogged: high gets most, low is never starved.</summary>
    [Range(1, 1000, ErrorMessage = "Orchestrator:Queue:HighWeight must be between 1 and 1000.")]
    public int HighWeight { get; set; } = 6;

    [Range(1, 1000, ErrorMessage = "Orchestrator:Queue:NormalWeight must be between 1 and 1000.")]
    public int NormalWeight { get; set; } = 3;

    [Range(1, 1000, ErrorMessage = "Orchestrator:Queue:LowWeight must be between 1 and 1000.")]
    public int LowWeight { get; set; } = 1;

    /// <summary>How often queued jobs are checked against their deadlines.</summary>
    public TimeSpan DeadlineSweep { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Ceiling of the <c>Retry-After</c> a full queue answers with.</summary>
    public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>Section <c>Orchestrator:Jobs</c>.</summary>
public sealed class JobsOptions
{
    public const string Section = "Orchestrator:Jobs";

    /// <summary>Cap on <c>waitMs</c> of <c>GET /v1/jobs/{id}/result</c>.</summary>
    public TimeSpan MaxLongPoll { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Largest page of <c>GET /v1/jobs</c>.</summary>
    [Range(1, 1000)]
    public int MaxPageSize { get; set; } = 200;

    public JobRetryOptions Retry { get; set; } = new();
}

/// <summary>Section <c>Orchestrator:Jobs:Retry</c>: whole-job retry of transient failures.</summary>
public sealed class JobRetryOptions
{
    /// <summary>Attempts in all, the first included. 1 turns job retry off.</summary>
    [Range(1, 20)]
    public int MaxAttempts { get; set; } = 3;

    /// <summary>Delay before the first retry; it doubles each time, with jitter.</summary>
    public TimeSpan BaseDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromSeconds(10);
}
