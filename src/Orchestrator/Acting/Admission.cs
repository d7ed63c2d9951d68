using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Orchestrator.Hosting;
using Orchestrator.Jobs;
using Orchestrator.Storage;
using Orchestrator.Telemetry;
using Orchestrator.Tenancy;

using Orchestrator.Workflow;

namespace Orchestrator.Acting;

/// <summary>
/// The act hot path: validation, then the ordered admission checks (idempotency, ..., queue capacity), the
/// committed job row, and the lane.
/// It does nothing it can avoid: capacity is an interlocked counter (a full queue answers without
/// touching the store), the row goes through the group-commit writer, and the response view is built
/// from memory.
/// </summary>
internal sealed class Admission(
    ActValidator validator,
    JobQueue queue,
    StoreWriter writer,
    JobQueries queries,
    JobIds ids,
    JobCompletions completions,
    TimeProvider time,
    OrchestratorTelemetry telemetry,
    Gateway.ModelGateway gateway,
    Gateway.RoutingSnapshot routing,
    IOptions<ActingOptions> options,
    IOptions<NodeOptions> nodeOptions,
    IEnumerable<AdmissionCheck> checks,
    JobEvents events,
    AuditTrail audit,
    TenantDirectory tenants,
    IVersionChooser? versions = null)
{
    AdmissionCheck[]? _checks;

    /// <summary>The registered checks and this class's own idempotency check, in their order; built once.</summary>
    AdmissionCheck[] Checks => _checks ??= [.. checks.Append(new IdempotencyCheck(queries, ReplayAsync)).OrderBy(c => c.Order)];

    /// <summary>
    /// Admits an act. <paramref name="streamed"/>: a sync act whose caller follows its events instead of waiting for its
    /// end; it is answered as accepted at once, with a watch of its model tokens taken before it can start.
    /// </summary>
    /// <remarks><paramref name="policy"/>: see <see cref="ActValidator.Check"/> (an evaluation's baseline or candidate).</remarks>
    public async Task<ActAnswer> ActAsync(ActRequest request, string? headerKey, Caller caller, CancellationToken cancellationToken, bool streamed = false,
        IntentPolicy? policy = null)
    {
        var check = validator.Check(request, headerKey, policy, (caller.Tenant, caller.Principal));
        if (check.Admitted is not { } act)
        {
            var code = check.Errors is not null ? Problems.ValidationFailed : Problems.CapabilityDenied;
            Reject(caller, code);
            writer.Count(caller.Tenant, caller.Principal, CounterKinds.RejectedPrefix + code, Ledger.Day(time.GetUtcNow().UtcDateTime));
            if (check.CapabilityDenied is not null)
                await audit.RecordAsync(caller, "act.refused", "act", allowed: false, check.CapabilityDenied, details: new { code });
            return check.Errors is not null
                ? ActAnswer.Refused(Problems.Validation(check.Errors))
                : ActAnswer.Refused(Problems.For(Problems.CapabilityDenied, check.CapabilityDenied));
        }

        // A streamed act is not awaited here (its caller follows its events), so a repeated idempotency key answers with
        // the original job at once, as for an async act, and its events are streamed from there.
        var admitting = new Admitting(streamed ? act with { Sync = false } : act, caller);
        if (await CheckAsync(admitting, cancellationToken) is { } refused)
            return refused;
        // The act as the tenant's rules let it run (priority, deadline, routing clamped), still sync if it was.
        act = admitting.Act with { Sync = act.Sync };

        // The policy chosen for these versions is named by content hash: its snapshot must be stored before the job is.
        if (act.Versions is not null && versions is not null)
            await versions.EnsureStoredAsync(act.Policy, cancellationToken);

        var now = time.GetUtcNow().UtcDateTime;
        var job = new Job
        {
            Id = ids.Next(),
            TraceId = TraceIdForNewJob(),
            Tenant = caller.Tenant,
            Principal = caller.Principal,
            Intent = act.Request.Intent!,
            Status = JobStatus.Accepted,
            Priority = act.Priority,
            Sync = act.Sync,
            IdempotencyKey = act.IdempotencyKey,
            Session = act.Request.Session,
            Request = JsonSerializer.Serialize(act.Request, WorkflowJson.Default.ActRequest),
            DeadlineMs = act.DeadlineMs,
            PolicyHash = act.Policy.ContentHash,
            RoutingHash = routing.Hash,
            Versions = act.Versions is null ? null : JsonSerializer.Serialize(act.Versions, WorkflowJson.Default.JobVersions),
            CreatedAt = now,
            DeadlineAt = now.AddMilliseconds(act.DeadlineMs),
        };

        job.Admitted = act.Request;
        if (admitting.Hold is { } hold)
        {
            hold.JobId = job.Id;
            job.HeldTokens = hold.Tokens;
            job.HeldMicros = hold.Micros;
        }

        // From here the worker owns the Job instance: the view is taken before it is queued.
        var view = JobView.From(job, now);
        var watch = act.Sync && !streamed ? completions.Watch(job.Id) : null;
        var tokens = streamed ? events.WatchDeltas(job.Id) : null;
        var governed = admitting.Takes.Count > 0 || admitting.Hold is not null ? new AdmitWithTakes(job.Snapshot(), admitting.Takes, admitting.Hold) : null;
        var committed = writer.WriteAsync(governed ?? JobWrites.Admit(job));
        // Queued before the row commits, so the run overlaps the commit: the writer applies writes in order and
        // the worker's claim is guarded on the row, so a job whose row never lands is never claimed. A job that takes
        // from the tenant's limits is queued only once they passed: a refused request must not even reach a model.
        if (governed is null)
            queue.Enqueue(new QueuedJob(job));
        var admitted = await committed;
        if (admitted && governed is not null)
            queue.Enqueue(new QueuedJob(job));
        if (!admitted)
        {
            if (watch is not null)
                completions.Forget(job.Id, watch);
            tokens?.Dispose();
            if (governed?.RefusedBy is { } take)
            {
                queue.Unreserve();
                var refusal = GovernanceCheck.Refusal(take, now, tenants.Find(caller.Tenant));
                await RefusedAsync(caller, refusal, refusal.RefusedWith!, admitting.Resource, take);
                return refusal;
            }
            // Another request with the same idempotency key committed first: answer with its job.
            if (governed is not null)
                queue.Unreserve();
            var winner = await queries.FindByIdempotencyKeyAsync(caller.Tenant, act.IdempotencyKey!, CancellationToken.None);
            return winner is null
                ? ActAnswer.Refused(Problems.For(Problems.Conflict, "The job could not be stored; retry."))
                : await ReplayAsync(winner, act.Sync && !streamed, cancellationToken);
        }

        telemetry.Accepted.Add(1, JobExecution.TagsOf(job));
        telemetry.Count(job.Tenant, job.Principal, "jobs.accepted");
        return watch is null
            ? ActAnswer.Accepted(view) with { Tokens = tokens }
            : await AwaitAsync(job.Id, job.TraceId, job.DeadlineAt, watch, cancellationToken);
    }

    /// <summary>
    /// The ordered checks: each passes or answers; a refusal gives back what the checks before it took. Shared by every
    /// way in (<c>/v1/act</c>, <c>/v1/chat/completions</c>), so a check added here holds for all of them.
    /// </summary>
    public async ValueTask<ActAnswer?> CheckAsync(Admitting admitting, CancellationToken cancellationToken)
    {
        var caller = admitting.Caller;
        var ordered = Checks;
        for (var i = 0; i < ordered.Length; i++)
        {
            if (await ordered[i].CheckAsync(admitting, cancellationToken) is not { } answer)
                continue;
            for (var j = i - 1; j >= 0; j--)
                ordered[j].Undo(admitting);
            if (answer.RefusedWith is { } refused)
                await RefusedAsync(caller, answer, refused, admitting.Resource);
            return answer;
        }
        return null;
    }

    /// <summary>
    /// For a job that runs on its request (a chat completion, recorded after its answer): commits what the checks asked
    /// to take from the tenant's counters, and its budget hold under the job's id, before the model is called.
    /// Null when they passed (the job then carries its hold, to settle when it is recorded); else the 429.
    /// </summary>
    public async ValueTask<ActAnswer?> TakeAsync(Admitting admitting, Job job)
    {
        if (admitting.Takes.Count == 0 && admitting.Hold is null)
            return null;
        if (admitting.Hold is { } hold)
        {
            hold.JobId = job.Id;
            job.HeldTokens = hold.Tokens;
            job.HeldMicros = hold.Micros;
        }
        var take = new TakeAll(admitting.Takes, admitting.Hold);
        if (await writer.WriteAsync(take))
            return null;
        job.HeldTokens = job.HeldMicros = null;
        var refusal = GovernanceCheck.Refusal(take.RefusedBy!, time.GetUtcNow().UtcDateTime, tenants.Find(admitting.Caller.Tenant));
        await RefusedAsync(admitting.Caller, refusal, refusal.RefusedWith!, admitting.Resource, take.RefusedBy);
        return refusal;
    }

    async Task<ActAnswer> ReplayAsync(Job original, bool sync, CancellationToken cancellationToken)
    {
        if (!sync)
            return ActAnswer.Accepted(JobView.From(original, time.GetUtcNow().UtcDateTime)) with { Replayed = true };
        if (original.IsTerminal)
            return Finished(original) with { Replayed = true };
        var watch = completions.Watch(original.Id);
        // Read again after watching, so an end in between is not missed.
        var current = await queries.FindByIdempotencyKeyAsync(original.Tenant, original.IdempotencyKey!, cancellationToken) ?? original;
        if (current.IsTerminal)
        {
            completions.Forget(original.Id, watch);
            return Finished(current) with { Replayed = true };
        }
        return await AwaitAsync(original.Id, original.TraceId, original.DeadlineAt, watch, cancellationToken) with { Replayed = true };
    }

    async Task<ActAnswer> AwaitAsync(string jobId, string traceId, DateTime deadlineAt, Task<Job> watch, CancellationToken cancellationToken)
    {
        var until = deadlineAt + options.Value.SyncGrace;
        var poll = nodeOptions.Value.Propagation;
        while (true)
        {
            var remaining = until - time.GetUtcNow().UtcDateTime;
            if (remaining <= TimeSpan.Zero)
                break;
            try
            {
                // The watch fires when this node ends the job; the store is read every propagation interval in case
                // another node runs it (it was rescued, or claimed by an idle node).
                return Finished(await watch.WaitAsync(remaining < poll ? remaining : poll, time, cancellationToken));
            }
            catch (TimeoutException)
            {
                if (await queries.FindByIdAsync(jobId, cancellationToken) is { } ended && (ended.IsTerminal || ended.Status == JobStatus.AwaitingApproval))
                {
                    completions.Forget(jobId, watch);
                    return Finished(ended);
                }
            }
        }
        completions.Forget(jobId, watch);
        // The job did not report back by its deadline (plus grace); say so rather than hang.
        return ActAnswer.Refused(Problems.For(Problems.DeadlineExceeded,
            "The job did not finish before its deadline.", extensions: JobFields(jobId, traceId)));
    }

    ActAnswer Finished(Job job)
    {
        if (job.Status == JobStatus.Completed)
            return ActAnswer.Done(JobView.From(job, time.GetUtcNow().UtcDateTime));
        // A sync act that reaches an approval answers 202 with the job: people decide in their own time.
        if (job.Status == JobStatus.AwaitingApproval)
            return ActAnswer.Accepted(JobView.From(job, time.GetUtcNow().UtcDateTime));
        var code = job.ErrorCode ?? (job.Status == JobStatus.Canceled ? Problems.Canceled : Problems.Internal);
        KeyValuePair<string, object?>[] fields = Effects.BlockRules.Of(code, job.ErrorMessage) is { } rule
            ? [.. JobFields(job.Id, job.TraceId), new("rule", rule)]
            : JobFields(job.Id, job.TraceId);
        return ActAnswer.Refused(Problems.For(code, job.ErrorMessage, extensions: fields),
            retryAfterSeconds: code == Problems.ModelUnavailable ? (int)gateway.RetryAfter().TotalSeconds : null);
    }

    static KeyValuePair<string, object?>[] JobFields(string jobId, string traceId) =>
        [new("jobId", jobId), new("traceId", traceId)];

    /// <summary>Counts a refusal; governance refusals are on record before they are answered (a full queue is load, not a decision about the caller).</summary>
    async Task RefusedAsync(Caller caller, ActAnswer answer, string code, string resource, CounterTake? take = null)
    {
        Reject(caller, code);
        if (code == Problems.QueueFull)
            return;
        writer.Count(caller.Tenant, caller.Principal, CounterKinds.RejectedPrefix + code, Ledger.Day(time.GetUtcNow().UtcDateTime));
        await audit.RecordAsync(caller, "act.refused", resource, allowed: false, answer.Problem?.ProblemDetails.Detail,
            details: take is null ? new { code } : new { code, scope = take.ScopeName, limit = take.Limit, kind = take.Kind });
    }

    void Reject(Caller caller, string code)
    {
        telemetry.Rejected.Add(1, new TagList { { "tenant", caller.Tenant }, { "code", code } });
        telemetry.Count(caller.Tenant, caller.Principal, $"jobs.rejected.{code}");
    }

    /// <summary>
    /// Each job is its own trace, so a replay by trace id finds exactly one run. A request that arrived
    /// without a trace of its own already started a fresh one: the job takes it, and the request log,
    /// the problem and the job share one id. A request inside a caller's trace gets a new one.
    /// </summary>
    internal static string TraceIdForNewJob()
    {
        var current = Activity.Current;
        return current is { ParentId: null, HasRemoteParent: false }
            ? current.TraceId.ToHexString()
            : ActivityTraceId.CreateRandom().ToHexString();
    }
}

/// <summary>What <c>/v1/act</c> answers: a finished job (200), an accepted one (202), or a problem.</summary>
internal sealed record ActAnswer(JobView? View, bool IsAccepted, Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult? Problem, int? RetryAfterSeconds, bool Replayed = false)
{
    /// <summary>The code of an admission refusal (counted as rejected); null for answers that are not refusals.</summary>
    public string? RefusedWith { get; init; }

    /// <summary>A streamed act's watch of its model tokens, taken before the job could start.</summary>
    public Workflow.ModelDeltas.Watch? Tokens { get; init; }

    public static ActAnswer Done(JobView view) => new(view, false, null, null);

    public static ActAnswer Accepted(JobView view) => new(view, true, null, null);

    public static ActAnswer Refused(Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult problem, int? retryAfterSeconds = null) =>
        new(null, false, problem, retryAfterSeconds);
}
