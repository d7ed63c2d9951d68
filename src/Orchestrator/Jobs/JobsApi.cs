using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Orchestrator.Hosting;
using Orchestrator.Storage;
using Orchestrator.Tenancy;

namespace Orchestrator.Jobs;

/// <summary><c>/v1/jobs</c>: the job view, long-poll for the result, cancel, and the tenant's job list.</summary>
public static class JobsApi
{
    public static RouteGroupBuilder MapJobs(this IEndpointRouteBuilder app)
    {
        var jobs = app.MapGroup("/v1/jobs").WithTags("Jobs");
        jobs.MapGet("/", List).WithSummary("Jobs of the caller's tenant, newest first, paged.");
        jobs.MapGet("/{jobId}", Get).WithSummary("The job view.");
        jobs.MapGet("/{jobId}/result", Result).WithSummary("Long-poll for the job's end: 200 when terminal, 202 with Retry-After when not.");
        jobs.MapPost("/{jobId}/cancel", Cancel).WithSummary("Cancel a queued job at once, a running one at its next cancellation point.");
        jobs.MapGet("/{jobId}/events", Events)
            .WithSummary("The job's progress as server-sent events until its end; resumable with Last-Event-ID.")
            .Produces(StatusCodes.Status200OK, contentType: "text/event-stream");
        return jobs;
    }

    internal static async Task<Results<Ok<JobView>, ProblemHttpResult>> Get(
        string jobId, Caller caller, JobQueries queries, TimeProvider time, CancellationToken cancellationToken) =>
        await queries.FindAsync(caller, jobId, cancellationToken) is { } job
            ? TypedResults.Ok(JobView.From(job, time.GetUtcNow().UtcDateTime))
            : NotFound(jobId);

    static async Task<Results<Ok<JobView>, Accepted<JobView>, ProblemHttpResult>> Result(
        string jobId, long? waitMs, Caller caller, JobQueries queries, JobCompletions completions,
        IOptions<JobsOptions> options, TimeProvider time, HttpContext http, CancellationToken cancellationToken)
    {
        if (waitMs is < 0)
            return Problems.Validation("waitMs", "waitMs must be zero or more milliseconds.");
        var wait = TimeSpan.FromMilliseconds(Math.Min(waitMs ?? 0, options.Value.MaxLongPoll.TotalMilliseconds));

        var watch = completions.Watch(jobId);
        var job = await queries.FindAsync(caller, jobId, cancellationToken);
        if (job is null || job.IsTerminal)
        {
            completions.Forget(jobId, watch);
            return job is null ? NotFound(jobId) : TypedResults.Ok(JobView.From(job, time.GetUtcNow().UtcDateTime));
        }

        var until = time.GetUtcNow() + wait;
        while (true)
        {
            var remaining = until - time.GetUtcNow();
            if (remaining <= TimeSpan.Zero)
                break;
            // The watch fires when this node ends the job; the store is read again now and then in
            // case another node ran it.
            var slice = Task.Delay(remaining < StorePoll ? remaining : StorePoll, time, cancellationToken);
            if (await Task.WhenAny(watch, slice) == watch)
            {
                // Published when it ended, or when it was parked for approval (not an end: that answers 202 now).
                job = await watch;
                if (job.IsTerminal)
                    return TypedResults.Ok(JobView.From(job, time.GetUtcNow().UtcDateTime));
                break;
            }
            await slice;
            job = await queries.FindAsync(caller, jobId, cancellationToken) ?? job;
            if (job.IsTerminal)
                return TypedResults.Ok(JobView.From(job, time.GetUtcNow().UtcDateTime));
        }
        http.Response.Headers.RetryAfter = "1";
        return TypedResults.Accepted($"/v1/jobs/{jobId}/result", JobView.From(job, time.GetUtcNow().UtcDateTime));
    }

    static readonly TimeSpan StorePoll = TimeSpan.FromSeconds(1);

    internal static async Task<Results<ServerSentEventsResult<string>, ProblemHttpResult>> Events(
        string jobId, Caller caller, JobQueries queries, JobEvents events,
        [Microsoft.AspNetCore.Mvc.FromHeader(Name = "Last-Event-ID")] string? lastEventId, CancellationToken cancellationToken) =>
        await queries.FindAsync(caller, jobId, cancellationToken) is null
            ? NotFound(jobId)
            : TypedResults.ServerSentEvents(events.StreamAsync(jobId, lastEventId));

    internal static async Task<Results<Accepted<JobView>, ProblemHttpResult>> Cancel(
        string jobId, Caller caller, JobQueries queries, JobQueue queue, RunningJobs running,
        JobExecution execution, StoreWriter writer, ParkedJobs parked, TimeProvider time, CancellationToken cancellationToken)
    {
        for (var round = 0; round < 3; round++)
        {
            var job = await queries.FindAsync(caller, jobId, cancellationToken);
            if (job is null)
                return NotFound(jobId);
            if (job.IsTerminal)
                return Problems.For(Problems.Conflict, $"Job {jobId} is already {WireNames.Of(job.Status)}; only unfinished jobs can be canceled.");

            if (job.Status is JobStatus.Accepted or JobStatus.AwaitingApproval)
            {
                // Queued here: out of its lane and canceled at once. Not in a lane (just admitted, or a
                // worker is claiming it): the guarded write decides between the cancel and the claim.
                var target = queue.TryRemove(jobId) ?? job;
                var waited = job.Status == JobStatus.AwaitingApproval;
                if (await execution.FinishUnstartedAsync(target, JobOutcome.Canceled(waited ? "The job was canceled while it waited for approval." : "The job was canceled before it started.")))
                {
                    if (waited)
                        await parked.CloseNodesAsync(jobId, Problems.Canceled, "The job was canceled while it waited for approval.", cancellationToken);
                    return TypedResults.Accepted($"/v1/jobs/{jobId}", JobView.From(target, time.GetUtcNow().UtcDateTime));
                }
                continue;
            }

            // Running: the flag is committed first (so a restart does not run it again), then the run is signaled.
            job.CancelRequested = true;
            if (!await writer.WriteAsync(JobWrites.RequestCancel(job)))
                continue;
            running.TryCancel(jobId);
            return TypedResults.Accepted($"/v1/jobs/{jobId}", JobView.From(job, time.GetUtcNow().UtcDateTime));
        }
        return Problems.For(Problems.Conflict, $"Job {jobId} changed state while it was being canceled; try again.");
    }

    internal static async Task<Results<Ok<JobPage>, ProblemHttpResult>> List(
        Caller caller, OrchestratorDb db, IOptions<JobsOptions> options, TimeProvider time,
        string? status, string? intent, string? tenant, string? principal, int? limit, string? cursor,
        CancellationToken cancellationToken, DateTime? from = null, DateTime? to = null)
    {
        var errors = new Dictionary<string, string[]>();
        JobStatus parsed = default;
        if (status is not null && !WireNames.TryParseStatus(status, out parsed))
            errors["status"] = ["status must be one of accepted, running, awaiting_approval, completed, failed, canceled."];
        var max = options.Value.MaxPageSize;
        if (limit is not null && (limit < 1 || limit > max))
            errors["limit"] = [$"limit must be between 1 and {max}."];
        if (cursor is not null && !IsJobId(cursor))
            errors["cursor"] = ["cursor must be the nextCursor of a previous page."];
        // No job carries a NUL in these (the store keeps none); refused alike on both stores rather than matching nothing on one.
        foreach (var (name, value) in (ReadOnlySpan<(string, string?)>)[("intent", intent), ("tenant", tenant), ("principal", principal)])
            if (value?.Contains('\0') == true)
                errors[name] = [$"{name} must not contain a NUL character (\\u0000)."];
        if (from is { } f0 && to is { } t0 && f0 > t0)
            errors["from"] = ["from must not be after to."];
        if (errors.Count > 0)
            return Problems.Validation(errors);
        if (tenant is not null && !caller.CanSee(tenant))
            return Problems.For(Problems.Forbidden, "Only operators may list another tenant's jobs.");

        var query = db.Set<Job>().AsNoTracking();
        var scope = tenant ?? (caller.IsOperator ? null : caller.Tenant);
        if (scope is not null)
            query = query.Where(j => j.Tenant == scope);
        if (status is not null)
            query = query.Where(j => j.Status == parsed);
        if (intent is not null)
            query = query.Where(j => j.Intent == intent);
        if (principal is not null)
            query = query.Where(j => j.Principal == principal);
        if (cursor is not null)
            query = query.Where(j => string.Compare(j.Id, cursor) < 0);
        if (from is { } f)
        {
            var since = f.ToUniversalTime();
            query = query.Where(j => j.CreatedAt >= since);
        }
        if (to is { } t)
        {
            var until = t.ToUniversalTime();
            query = query.Where(j => j.CreatedAt < until);
        }
        var take = limit ?? Math.Min(50, max);
        var page = await query.OrderByDescending(j => j.Id).Take(take + 1).ToListAsync(cancellationToken);

        var now = time.GetUtcNow().UtcDateTime;
        var items = page.Take(take).Select(j => JobView.From(j, now)).ToList();
        return TypedResults.Ok(new JobPage(items, page.Count > take ? items[^1].JobId : null));
    }

    static bool IsJobId(string value) => value.Length == 30 && value.StartsWith("job_", StringComparison.Ordinal);

    internal static ProblemHttpResult NotFound(string jobId) =>
        Problems.For(Problems.NotFound, $"No job {jobId} here.");
}
