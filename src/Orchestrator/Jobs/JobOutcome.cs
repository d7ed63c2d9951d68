using System.Text.Json;
using Orchestrator.Storage;
using Orchestrator.Workflow;

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

    /// <summary>The job's outcome from how its workflow ended.</summary>
    public static JobOutcome Of(WorkflowResult result) =>
        (result.Failure switch
        {
            null => Completed(new JobOutput(result.Text ?? "", result.Model, result.Usage, result.Path)),
            { Canceled: true } failure => Canceled(failure.Message),
            { Parked: true } => new JobOutcome(JobStatus.AwaitingApproval),
            var failure => Failed(failure.Code, failure.Message, failure.Transient, failure.RetryAfter),
        }) with { Routing = result.Routing };

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
/// A job on its worker, under the lease it claimed. <see cref="Claimed"/> completes when the claim is committed
/// (true) or lost (false): anything with a side effect, and the job's end, waits for it. Every write of the run goes
/// through <see cref="WriteAsync"/>, fenced by the run's epoch: a write that finds another epoch means the lease
/// was lost, and the run is stopped at once.
/// </summary>
internal sealed class JobRun(Job job, Task<bool> claimed, long epoch, string node, StoreWriter writer, RunHandle handle) : IWorkflowRun
{
    public Job Job => job;

    public Task<bool> Claimed => claimed;

    /// <summary>The epoch this run claimed the job with.</summary>
    public long Epoch => epoch;

    public string JobId => job.Id;
    public string TraceId => job.TraceId;
    public string Tenant => job.Tenant;
    public string Principal => job.Principal;
    public string Intent => job.Intent;
    public string? PolicyHash => job.PolicyHash;
    public DateTime DeadlineAt => job.DeadlineAt;

    public ActRequest Request { get; } = job.Admitted ?? JsonSerializer.Deserialize(job.Request, WorkflowJson.Default.ActRequest)!;

    public bool Fresh => job.Admitted is not null && job.Attempts <= 1;

    /// <summary>The job's execution graph once loaded.</summary>
    public JobGraph? Graph { get; set; }

    public void MovedTo(string nodeId)
    {
        job.CurrentNode = nodeId;
        _ = WriteAsync(JobWrites.Progress(job));
    }

    /// <summary>
    /// Queues a write of this run, fenced by its lease; a write that lands on another epoch stops the run. The run is
    /// stopped before the answer is returned, so whoever awaits a refused write finds <see cref="LeaseLost"/> set.
    /// </summary>
    public async Task<bool> WriteAsync(StoreWrite write)
    {
        if (write.Entity is not Orchestrator.Jobs.Job)
            write.Fence ??= new Fence(typeof(Job), job.Id, epoch, node);
        var written = await writer.WriteAsync(write);
        if (!written)
            handle.LoseLease();
        return written;
    }

    /// <summary>True once the run's claim or one of its writes was refused: another party holds the job, and whatever the run does next is void.</summary>
    public bool LeaseLost => handle.LeaseLost || claimed is { IsCompletedSuccessfully: true, Result: false };
}
