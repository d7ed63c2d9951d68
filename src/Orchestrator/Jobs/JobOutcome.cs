namespace Orchestrator.Jobs;

/// <summary>How one attempt at a job ended.</summary>
internal sealed record JobOutcome(
    JobStatus Status,
    JobOutput? Output = null,
    string? ErrorCode = null,
    string? ErrorMessage = null,
    bool Transient = false,
    IReadOnlyList<NodeRouting>? Routing = null,
    TimeSpan? RetryAfter = null)
{
    public static JobOutcome Completed(JobOutput output) => new(JobStatus.Completed, output);

    public static JobOutcome Canceled(string message) =>
        new(JobStatus.Canceled, ErrorCode: Hosting.Problems.Canceled, ErrorMessage: message);

    /// <summary>A failure; <paramref name="transient"/> failures may succeed if tried again (the job retry policy decides).</summary>
    public static JobOutcome Failed(string code, string message, bool transient = false, TimeSpan? retryAfter = null) =>
        new(JobStatus.Failed, ErrorCode: code, ErrorMessage: message, Transient: transient, RetryAfter: retryAfter);

    /// <summary>What a log line shows (Polly's retry telemetry logs the outcome): the status and why, not the record's members.</summary>
    public override string ToString() =>
        ErrorCode is null ? WireNames.Of(Status) : $"{WireNames.Of(Status)} {ErrorCode}{(Transient ? " (transient)" : "")}: {ErrorMessage}";
}

/// <summary>
/// A job on its worker. <see cref="Claimed"/> completes when the claim is committed (true) or lost (false):
/// anything with a side effect, and the job's end, waits for it.
/// </summary>
internal sealed record JobRun(Job Job, Task<bool> Claimed)
{
    /// <summary>The job's execution graph once loaded; kept across retries within this process.</summary>
    public Workflow.JobGraph? Graph { get; set; }
}
