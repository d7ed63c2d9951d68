using System.Diagnostics;
using System.Text.Json;
using Orchestrator.Hosting;
using Orchestrator.Storage;
using Orchestrator.Telemetry;
using Orchestrator.Workflow;
using Microsoft.Extensions.Options;

namespace Orchestrator.Jobs;

/// <summary>
/// One job's life on a worker: claim it (a guarded write on its status and epoch, so no two workers or nodes both
/// run it), run its workflow under its deadline and its lease, and commit how it ended before anyone is told. A
/// transient failure parks the job with a due time instead of holding the worker through the backoff.
/// </summary>
internal sealed class JobExecution(
    StoreWriter writer,
    JobCompletions completions,
    RunningJobs running,
    JobRetry retry,
    JobWakeups wakeups,
    ThisNode node,
    IOptions<NodeOptions> nodeOptions,
    TimeProvider time,
    OrchestratorTelemetry telemetry,
    IServiceScopeFactory scopes,
    JobSlots slots,
    IHostApplicationLifetime lifetime,
    ILogger<JobExecution> log)
{
    DateTime Now => time.GetUtcNow().UtcDateTime;

    public async Task RunAsync(Job job, CancellationToken stopping)
    {
        var expected = job.Status;
        if (job.CancelRequested)
        {
            await FinishAsync(job, expected, JobOutcome.Canceled("The job was canceled."));
            return;
        }
        var now = Now;
        if (now >= job.DeadlineAt)
        {
            await FinishAsync(job, expected, DeadlineInQueue);
            return;
        }

        // A job this node leased from the store already carries its epoch; one admitted here is claimed at the next.
        var knownEpoch = job.Epoch;
        // Under a maxConcurrentJobs limit the start takes a slot, counted in the store on all nodes; the job as it was
        // waits for a slot if none is free.
        var limits = slots.LimitsOf(job);
        var waiting = limits is null ? null : job.Snapshot();
        var epoch = job.LeasedHere ? knownEpoch : knownEpoch + 1;
        // Registered before the claim, so a cancel that races the claim still reaches this run.
        var handle = running.Start(job.Id, epoch, stopping);
        try
        {
            job.Status = JobStatus.Running;
            job.StartedAt = now;
            job.QueueMs = Milliseconds(now - job.CreatedAt);
            job.Attempts++;
            job.NextAttemptAt = null;
            job.CurrentNode = null;
            job.ErrorCode = null;
            job.ErrorMessage = null;
            job.Owner = node.Id;
            job.Epoch = epoch;
            job.LeaseUntil = now + nodeOptions.Value.LeaseDuration;
            // The claim is committed while the job already runs: the writer applies writes in order, so the
            // claim lands before anything the run writes, and the run awaits it before any side effect and
            // before it ends. If it lost (a cancel or another node got there first), the run is stopped and
            // writes nothing more.
            var start = JobWrites.Start(job, expected, knownEpoch);
            var slotted = limits is { } max ? new SlotStart(start, job.Snapshot(), now, max.Tenant, max.Principal) : null;
            var claim = writer.WriteAsync(slotted ?? start);
            handle.Claim = claim;
            _ = claim.ContinueWith(static (claimed, state) =>
            {
                if (claimed.IsCompletedSuccessfully && !claimed.Result)
                    ((RunHandle)state!).LoseLease();
            }, handle, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            // A job that waited in this lane longer than a poll may meanwhile have been taken from the store by an idle
            // node: then its run here must not even call a model, so it waits for its claim. A fresh job keeps the
            // fast path (no node takes a job younger than a poll), its claim landing while it already runs.
            if ((slotted is not null || (!job.LeasedHere && now - job.CreatedAt >= nodeOptions.Value.PollInterval / 2)) && !await claim)
            {
                if (slotted is { NoSlot: true })
                {
                    log.LogDebug("Job {JobId} waits for a slot: its tenant runs as many jobs as it may", job.Id);
                    slots.Wait(waiting!);
                    return;
                }
                log.LogDebug("Job {JobId} was taken by another node while it waited here", job.Id);
                return;
            }
            var tags = TagsOf(job);
            telemetry.QueueWait.Record(job.QueueMs.Value, tags);
            telemetry.Latency(job.Tenant, job.Principal, "queueMs", job.QueueMs.Value);

            using var deadline = new CancellationTokenSource(job.DeadlineAt - now, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(handle.Token, deadline.Token);
            JobOutcome outcome;
            var run = new JobRun(job, claim, epoch, node.Id, writer, handle);
            using (var activity = StartActivity(job))
            {
                try
                {
                    outcome = await AttemptAsync(run, linked.Token);
                }
                catch (OperationCanceledException) when (linked.IsCancellationRequested)
                {
                    if (!await claim)
                    {
                        log.LogDebug("Job {JobId} was no longer {Status} at epoch {Epoch} when claimed; another party took it", job.Id, expected, knownEpoch);
                        return;
                    }
                    if (handle.LeaseLost)
                    {
                        LostLease(job);
                        return;
                    }
                    if (handle.CancelRequested)
                        outcome = JobOutcome.Canceled("The job was canceled while running.");
                    else if (deadline.IsCancellationRequested)
                        outcome = JobOutcome.Failed(Problems.DeadlineExceeded, $"The job ran past its deadline ({job.DeadlineMs} ms) and was stopped.");
                    else
                    {
                        // Shutting down: give the lease back, so any node (this one after a restart) takes the job at once.
                        log.LogInformation("Job {JobId} interrupted by shutdown; its lease is released for another node to resume it", job.Id);
                        job.LeaseUntil = null;
                        _ = writer.WriteAsync(JobWrites.Release(job));
                        return;
                    }
                }
                activity?.SetTag("orchestrator.job.status", WireNames.Of(outcome.Status));
                if (outcome.ErrorCode is not null)
                    activity?.SetStatus(ActivityStatusCode.Error, outcome.ErrorCode);
            }
            if (run.LeaseLost)
            {
                // The walk ended, but its claim or a write of it found another node's epoch: that node owns the job now.
                if (await claim)
                    LostLease(job);
                return;
            }
            // The end commits behind the worker, which takes its next job now: a job that stopped running
            // holds no worker while its row is written. The write is queued here, after the claim, and is
            // guarded on this run's status, epoch and owner, so it lands only if the claim did and the lease holds.
            if (outcome.Status == JobStatus.AwaitingApproval)
            {
                _ = AwaitApprovalAsync(job);
                return;
            }
            if (outcome.Status == JobStatus.Failed && retry.DueAfter(job, outcome, Now) is { } due)
            {
                _ = ParkAsync(job, outcome, due);
                return;
            }
            if (outcome.Status != JobStatus.Completed && run.Graph is { } graph)
                foreach (var write in graph.Close(outcome.ErrorCode ?? WireNames.Of(outcome.Status), outcome.ErrorMessage ?? "", Now))
                    _ = run.WriteAsync(write);
            _ = EndAsync(job, outcome, run.Graph?.Spent());
        }
        finally
        {
            running.End(job.Id, handle);
        }
    }

    void LostLease(Job job)
    {
        log.LogWarning("Job {JobId}: this node ({Node}) lost its lease at epoch {Epoch}; the run is stopped and writes nothing more",
            job.Id, node.Id, job.Epoch);
        telemetry.LeasesLost.Add(1, TagsOf(job));
    }

    /// <summary>Parks a job for its retry: accepted again with a due time, holding no worker and no lease.</summary>
    async Task ParkAsync(Job job, JobOutcome outcome, DateTime due)
    {
        job.Status = JobStatus.Accepted;
        job.NextAttemptAt = due;
        job.LeaseUntil = null;
        job.ErrorCode = outcome.ErrorCode;
        job.ErrorMessage = outcome.ErrorMessage;
        try
        {
            if (!await writer.WriteAsync(JobWrites.Park(job)))
            {
                LostLease(job);
                return;
            }
            slots.Freed(job.Tenant);
            telemetry.Retries.Add(1, TagsOf(job));
            telemetry.Count(job.Tenant, job.Principal, "jobs.retries");
            log.LogInformation("Job {JobId} failed {Code} (transient); attempt {Attempt} is due at {Due:O}", job.Id, outcome.ErrorCode, job.Attempts + 1, due);
            wakeups.At(due);
        }
        catch (Exception error)
        {
            log.LogError(error, "Could not park job {JobId} for its retry; it resumes when its lease expires", job.Id);
        }
    }

    /// <summary>Parks a job for approval: no worker, no lease, no concurrency slot while it waits; a sync act waiting on it answers 202.</summary>
    async Task AwaitApprovalAsync(Job job)
    {
        job.Status = JobStatus.AwaitingApproval;
        job.LeaseUntil = null;
        job.NextAttemptAt = null;
        try
        {
            if (!await writer.WriteAsync(JobWrites.AwaitApproval(job)))
            {
                LostLease(job);
                return;
            }
            slots.Freed(job.Tenant);
            telemetry.Count(job.Tenant, job.Principal, "jobs.awaiting_approval");
            log.LogInformation("Job {JobId} waits for approval at {Node}", job.Id, job.CurrentNode);
            completions.Publish(job);
        }
        catch (Exception error)
        {
            log.LogError(error, "Could not park job {JobId} for approval; it resumes when its lease expires", job.Id);
        }
    }

    async Task EndAsync(Job job, JobOutcome outcome, Gateway.TokenUsage? spent)
    {
        try
        {
            await FinishAsync(job, JobStatus.Running, outcome, spent);
        }
        catch (Exception error)
        {
            // The row stays running under this node's lease; once it expires, a node runs the job again.
            log.LogError(error, "Could not record the end of job {JobId}", job.Id);
        }
    }

    static readonly JobOutcome DeadlineInQueue =
        JobOutcome.Failed(Problems.DeadlineExceeded, "The deadline passed while the job waited in the queue; it did not run.");

    /// <summary>Ends a job that never started (canceled or expired while queued).</summary>
    public Task<bool> FinishUnstartedAsync(Job job, JobOutcome outcome) => FinishAsync(job, job.Status, outcome);

    public Task<bool> ExpireAsync(Job job) => FinishAsync(job, job.Status, DeadlineInQueue);

    async Task<JobOutcome> AttemptAsync(JobRun run, CancellationToken cancellationToken)
    {
        var job = run.Job;
        await using var scope = scopes.CreateAsyncScope();
        try
        {
            return JobOutcome.Of(await scope.ServiceProvider.GetRequiredService<WorkflowRunner>().RunAsync(run, cancellationToken));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception error) when (run.LeaseLost)
        {
            // Another node holds the job (a refused claim or write, say an effect's intent): the walk's way out of that
            // is no fault of the service. The outcome is dropped; RunAsync sees the lost lease and writes nothing.
            log.LogDebug(error, "Job {JobId} stopped after losing its lease", job.Id);
            return JobOutcome.Canceled("This node lost the job's lease.");
        }
        catch (System.Data.Common.DbException error)
        {
            // The store did not answer a read of the run (PostgreSQL out of connections, a failover): not the job's
            // fault and likely to pass, so the job is retried, parked with a due time, rather than failed.
            log.LogWarning(error, "Job {JobId}: the store failed during the run; the job is retried", job.Id);
            return JobOutcome.Failed(Problems.Internal, "The store could not be read during the run: " + error.Message, transient: true);
        }
        catch (Exception error)
        {
            log.LogError(error, "Job {JobId} failed unexpectedly", job.Id);
            return JobOutcome.Failed(Problems.Internal, "The job failed because of an error in the service; see the service log for trace " + job.TraceId + ".");
        }
    }

    /// <summary>
    /// Records a job that ran outside the queue, on the request that asked for it (a chat completion): its row, already
    /// ended, and its nodes, queued to the group-commit writer behind the answer, which does not wait for them. Until they
    /// commit (a few milliseconds) a crash loses the record, never the answer; doc/api.md says so. A budget hold taken at
    /// admission settles with the row.
    /// </summary>
    public async Task<bool> RecordInlineAsync(Job job, JobOutcome outcome, IReadOnlyList<StoreWrite> nodes)
    {
        var usage = Close(job, outcome, null);
        var admit = Settled(JobWrites.Admit(job), job, usage);
        // The caller already has its answer, so a store that cannot take the record now (PostgreSQL down, a failover)
        // must not lose it: the record is tried again with backoff for as long as RecordRetryFor, unless the host stops.
        // Every write in it is an insert that does nothing when its row exists, so a repeat after a partial commit
        // (the job's row in, a node's not) completes it without writing anything twice.
        var since = time.GetTimestamp();
        var delay = RecordRetryFirst;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var row = writer.WriteAsync(admit);
                var written = nodes.Select(writer.WriteAsync).ToList();
                var admitted = await row;
                await Task.WhenAll(written);
                if (!admitted && attempt == 1)
                    return false;
                break;
            }
            catch (Exception error) when (!lifetime.ApplicationStopping.IsCancellationRequested && time.GetElapsedTime(since) < RecordRetryFor)
            {
                log.LogWarning(error, "Could not record job {JobId}, answered on its request; trying again in {Delay} (attempt {Attempt})", job.Id, delay, attempt);
            }
            catch (Exception error)
            {
                log.LogError(error, "Could not record job {JobId}, answered on its request; given up after {Attempts} attempts", job.Id, attempt);
                return false;
            }
            try
            {
                await Task.Delay(delay, time, lifetime.ApplicationStopping);
            }
            catch (OperationCanceledException)
            {
                log.LogError("Could not record job {JobId}, answered on its request; the host stopped before the store took it", job.Id);
                return false;
            }
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, RecordRetryMost.Ticks));
        }
        telemetry.Accepted.Add(1, TagsOf(job));
        telemetry.Count(job.Tenant, job.Principal, "jobs.accepted");
        Ended(job, outcome);
        return true;
    }

    static readonly TimeSpan RecordRetryFirst = TimeSpan.FromMilliseconds(200);
    static readonly TimeSpan RecordRetryMost = TimeSpan.FromSeconds(5);

    /// <summary>How long a job answered on its request (a chat call) is kept in memory while the store cannot take its record.</summary>
    internal static readonly TimeSpan RecordRetryFor = TimeSpan.FromMinutes(10);

    /// <summary>A job that holds budget settles in the same transaction as its end: the actual usage is spent, the rest released.</summary>
    static StoreWrite Settled(StoreWrite end, Job job, Gateway.TokenUsage usage) =>
        job.HeldTokens is null ? end : Tenancy.SettledEnd.Of(end, job.Id, usage.InputTokens + usage.OutputTokens, usage.CostUsd);

    /// <summary>Sets the job's end on it; answers what its model calls used.</summary>
    Gateway.TokenUsage Close(Job job, JobOutcome outcome, Gateway.TokenUsage? spent)
    {
        var now = Now;
        job.Status = outcome.Status;
        job.CompletedAt = now;
        job.QueueMs ??= Milliseconds(now - job.CreatedAt);
        job.RunMs = job.StartedAt is { } started ? Milliseconds(now - started) : 0;
        job.Output = outcome.Output is null ? null : JsonSerializer.Serialize(outcome.Output, JobsJson.Default.JobOutput);
        job.ErrorCode = outcome.ErrorCode;
        job.ErrorMessage = outcome.ErrorMessage;
        if (outcome.Routing is { Count: > 0 } routing)
            job.Routing = JsonSerializer.Serialize(routing, WorkflowJson.Default.IReadOnlyListNodeRouting);
        job.NextAttemptAt = null;
        job.Breached = now > job.DeadlineAt || outcome.ErrorCode == Problems.DeadlineExceeded;
        // What the model calls used: the answer's own count, or (a job cut short) what its succeeded model nodes recorded.
        var usage = outcome.Output?.Usage ?? spent ?? Gateway.TokenUsage.None;
        job.InputTokens = usage.InputTokens;
        job.OutputTokens = usage.OutputTokens;
        job.CostMicros = Tenancy.Ledger.MicrosUp(usage.CostUsd);
        return usage;
    }

    async Task<bool> FinishAsync(Job job, JobStatus expected, JobOutcome outcome, Gateway.TokenUsage? spent = null)
    {
        var usage = Close(job, outcome, spent);
        var write = Settled(expected == JobStatus.Running && job.Owner == node.Id ? JobWrites.End(job) : JobWrites.Finish(job, expected), job, usage);
        if (!await writer.WriteAsync(write))
        {
            log.LogWarning("Job {JobId} was no longer {Status} when it ended as {Outcome}", job.Id, expected, outcome.Status);
            return false;
        }
        Ended(job, outcome);
        return true;
    }

    /// <summary>What follows a committed end: the counters, and whoever waits on the job is told.</summary>
    void Ended(Job job, JobOutcome outcome)
    {
        var tags = TagsOf(job);
        switch (outcome.Status)
        {
            case JobStatus.Completed:
                telemetry.Completed.Add(1, tags);
                telemetry.Count(job.Tenant, job.Principal, "jobs.completed");
                break;
            case JobStatus.Canceled:
                telemetry.Canceled.Add(1, tags);
                telemetry.Count(job.Tenant, job.Principal, "jobs.canceled");
                break;
            default:
                tags.Add("code", outcome.ErrorCode);
                telemetry.Failed.Add(1, tags);
                telemetry.Count(job.Tenant, job.Principal, $"jobs.failed.{outcome.ErrorCode}");
                break;
        }
        if (job.StartedAt is not null && job.RunMs is { } runMs)
        {
            telemetry.RunTime.Record(runMs, TagsOf(job));
            telemetry.Latency(job.Tenant, job.Principal, "runMs", runMs);
        }
        if (job.Breached)
        {
            telemetry.Breaches.Add(1, TagsOf(job));
            telemetry.Count(job.Tenant, job.Principal, "sla.breaches");
        }
        completions.Publish(job);
        if (job.StartedAt is not null)
            slots.Freed(job.Tenant);
    }

    static Activity? StartActivity(Job job)
    {
        // Each job is its own trace (its id is the job's trace id), linked to the request that admitted it.
        var context = new ActivityContext(ActivityTraceId.CreateFromString(job.TraceId), ActivitySpanId.CreateRandom(), ActivityTraceFlags.Recorded);
        var activity = OrchestratorTelemetry.Source.StartActivity("job " + job.Intent, ActivityKind.Internal, context);
        activity?.SetTag("orchestrator.job.id", job.Id);
        activity?.SetTag("orchestrator.tenant", job.Tenant);
        activity?.SetTag("orchestrator.intent", job.Intent);
        activity?.SetTag("orchestrator.attempt", job.Attempts);
        return activity;
    }

    internal static TagList TagsOf(Job job) => new()
    {
        { "tenant", job.Tenant },
        { "intent", job.Intent },
        { "priority", WireNames.Of(job.Priority) },
        { "versions", VersionTag(job.Versions) },
    };

    /// <summary>The job's versions as one metric tag (<c>prompts=v1,policy=v2,routing=v1</c>), read once per distinct JSON.</summary>
    static string? VersionTag(string? versions) => versions is null ? null : VersionTags.GetOrAdd(versions,
        v => JsonSerializer.Deserialize(v, WorkflowJson.Default.JobVersions)?.Tag ?? "");

    static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> VersionTags = new(StringComparer.Ordinal);

    internal static long Milliseconds(TimeSpan span) => Math.Max(0, (long)span.TotalMilliseconds);
}
