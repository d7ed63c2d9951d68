using System.Globalization;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Orchestrator.Storage;
using Orchestrator.Workflow;

namespace Orchestrator.Jobs;

/// <summary>
/// A job's progress as server-sent events (<c>GET /v1/jobs/{id}/events</c>, and a sync act sent with
/// <c>Accept: text/event-stream</c>): <c>job.status</c>, <c>node.started</c>, <c>node.completed</c>,
/// <c>model.delta</c>, <c>approval.requested</c>, and <c>job.end</c> with the job view, last.
/// </summary>
/// <remarks>
/// Status and node events are derived from the job's row and its node rows, which every node reads alike, so any node
/// serves them: the store is read every propagation interval (<c>Orchestrator:Node:PropagationMs</c>), and at once when
/// this node ends the job. Each such event's id is its place in the job's history (the time it happened, then its rank
/// among events of the same millisecond), so <c>Last-Event-ID</c> resumes after it on any node, and a resumed stream
/// never repeats an event. <c>model.delta</c> events are live only, from the node that runs the job, and carry no id:
/// a resumed or remote stream shows no tokens, only that the node ended.
/// </remarks>
internal sealed class JobEvents(
    IDbContextFactory<OrchestratorDb> dbs,
    JobCompletions completions,
    ModelDeltas deltas,
    IOptions<NodeOptions> nodeOptions,
    TimeProvider time)
{
    public const string Status = "job.status";
    public const string NodeStarted = "node.started";
    public const string NodeCompleted = "node.completed";
    public const string Delta = "model.delta";
    public const string ApprovalRequested = "approval.requested";
    public const string End = "job.end";

    /// <summary>Where an event stands in a job's history: the time it happened (ms), then its rank within that millisecond.</summary>
    internal readonly record struct Position(long Ms, int Rank) : IComparable<Position>
    {
        public int CompareTo(Position other) => Ms != other.Ms ? Ms.CompareTo(other.Ms) : Rank.CompareTo(other.Rank);

        public override string ToString() => $"{Ms}-{Rank}";

        public static Position? Parse(string? id)
        {
            if (id?.Split('-') is [var ms, var rank] &&
                long.TryParse(ms, NumberStyles.None, CultureInfo.InvariantCulture, out var m) &&
                int.TryParse(rank, NumberStyles.None, CultureInfo.InvariantCulture, out var r))
                return new Position(m, r);
            return null;
        }
    }

    sealed record Event(Position At, string Type, string Data);

    /// <summary>Watches a job's deltas from now on (subscribe before the job starts to see all of them).</summary>
    public ModelDeltas.Watch WatchDeltas(string jobId) => deltas.Subscribe(jobId);

    /// <summary>
    /// The job's events after <paramref name="lastEventId"/> (all of them without one) until its end. The caller has checked
    /// that the job exists and is the caller's to see. <paramref name="watch"/>: a delta watch taken earlier; one is taken
    /// now otherwise.
    /// </summary>
    public async IAsyncEnumerable<SseItem<string>> StreamAsync(
        string jobId, string? lastEventId, ModelDeltas.Watch? watch = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var tokens = watch ?? deltas.Subscribe(jobId);
        var last = Position.Parse(lastEventId);
        var started = new HashSet<string>(StringComparer.Ordinal);
        var poll = nodeOptions.Value.Propagation;
        // One watch for the whole stream, shared with whoever else waits on the job here (a sync act): never forgotten
        // while the job runs, since forgetting it would take it from them too; the job's end removes it.
        var ended = completions.Watch(jobId);
        while (!cancellationToken.IsCancellationRequested)
        {
            var (job, nodes) = await LoadAsync(jobId, cancellationToken);
            if (job is null)
                yield break;
            foreach (var e in Derive(job, nodes))
            {
                if (e.Type == NodeStarted)
                    started.Add(NodeOf(e.Data));
                if (last is { } seen && e.At.CompareTo(seen) <= 0)
                    continue;
                // A node's tokens come before its end (and the job's).
                if (e.Type != NodeStarted)
                    while (tokens.Reader.TryPeek(out var delta) && started.Contains(delta.Node) && tokens.Reader.TryRead(out delta))
                        yield return DeltaItem(delta);
                last = e.At;
                yield return new SseItem<string>(e.Data, e.Type) { EventId = e.At.ToString() };
            }
            if (job.IsTerminal)
            {
                // Ended on another node (or before): nobody here will publish it.
                completions.Forget(jobId, ended);
                yield break;
            }
            if (ended.IsCompleted)
                ended = completions.Watch(jobId);

            // Until the next read of the store: tokens as they come; the job's end on this node cuts the wait short, and
            // so does a token of a node not seen started yet (its row is being written: read it first, then the token).
            var next = Task.Delay(poll, time, cancellationToken);
            while (true)
            {
                while (tokens.Reader.TryPeek(out var delta) && started.Contains(delta.Node) && tokens.Reader.TryRead(out delta))
                    yield return DeltaItem(delta);
                if (tokens.Reader.TryPeek(out _))
                    break;
                var more = tokens.Reader.WaitToReadAsync(cancellationToken).AsTask();
                if (await Task.WhenAny(next, ended, more) != more)
                    break;
            }
        }
    }

    static SseItem<string> DeltaItem(ModelDelta delta) =>
        new(JsonSerializer.Serialize(new DeltaEvent(delta.JobId, delta.Node, delta.Text), JobsJson.Default.DeltaEvent), Delta);

    static string NodeOf(string data) => JsonSerializer.Deserialize(data, JobsJson.Default.NodeEvent)!.Node;

    async Task<(Job? Job, List<JobNode> Nodes)> LoadAsync(string jobId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var job = await db.Set<Job>().AsNoTracking().FirstOrDefaultAsync(j => j.Id == jobId, cancellationToken);
        if (job is null)
            return (null, []);
        var nodes = await db.Set<JobNode>().AsNoTracking().Where(n => n.JobId == jobId).OrderBy(n => n.Seq).ToListAsync(cancellationToken);
        return (job, nodes);
    }

    /// <summary>
    /// The job's history as its rows tell it, in order. Only the latest attempt of a job or node is in its row, so a retry
    /// shows as a later <c>running</c> and later node starts: positions are times, and later things happen later.
    /// </summary>
    IEnumerable<Event> Derive(Job job, List<JobNode> nodes)
    {
        var events = new List<Event>
        {
            StatusEvent(job, "accepted", job.CreatedAt, 0),
        };
        if (job.StartedAt is { } startedAt)
            events.Add(StatusEvent(job, "running", startedAt, 1));
        var latest = job.StartedAt ?? job.CreatedAt;
        foreach (var node in nodes)
        {
            if (node.StartedAt is { } at && node.Status != NodeStatus.Pending)
            {
                events.Add(NodeEvent(NodeStarted, job, node, at, 2 + 2 * node.Seq, "running"));
                latest = Max(latest, at);
            }
            // A wait for a person that is over still shows in the history: the job was awaiting_approval from the
            // approval node's start (a wait going on now is told below, after everything else).
            if (node.Kind == NodeKinds.Approval && node.StartedAt is { } asked && node.CompletedAt is not null)
            {
                events.Add(StatusEvent(job, WireNames.Of(JobStatus.AwaitingApproval), asked, WaitRank + 2 * node.Seq));
                events.Add(new Event(new Position(Ms(asked), WaitRank + 2 * node.Seq + 1), ApprovalRequested,
                    JsonSerializer.Serialize(new ApprovalEvent(job.Id, node.NodeId), JobsJson.Default.ApprovalEvent)));
            }
            if (node.CompletedAt is { } done && node.Status is NodeStatus.Succeeded or NodeStatus.Failed or NodeStatus.Skipped)
            {
                events.Add(NodeEvent(NodeCompleted, job, node, done, 3 + 2 * node.Seq, NodeStatuses.Of(node.Status)));
                latest = Max(latest, done);
            }
        }
        const int Late = 1_000_000;
        switch (job.Status)
        {
            case JobStatus.Accepted when job.Attempts > 0:
                // Parked for a retry: after everything its last attempt did.
                events.Add(StatusEvent(job, "accepted", latest, Late));
                break;
            case JobStatus.AwaitingApproval:
                events.Add(StatusEvent(job, WireNames.Of(job.Status), latest, Late));
                events.Add(new Event(new Position(Ms(latest), Late + 1), ApprovalRequested,
                    JsonSerializer.Serialize(new ApprovalEvent(job.Id, job.CurrentNode), JobsJson.Default.ApprovalEvent)));
                break;
            case var status when job.IsTerminal:
                var end = Max(job.CompletedAt ?? latest, latest);
                events.Add(StatusEvent(job, WireNames.Of(status), end, Late));
                events.Add(new Event(new Position(Ms(end), Late + 1), End,
                    JsonSerializer.Serialize(JobView.From(job, time.GetUtcNow().UtcDateTime), JobsJson.Default.JobView)));
                break;
        }
        return events.OrderBy(e => e.At);
    }

    /// <summary>Ranks of a past approval wait's events: after the approval node's start at the same millisecond, before anything late.</summary>
    const int WaitRank = 500_000;

    /// <summary>A status event; the job's error goes with a failure, a cancel, or a retry (<paramref name="rank"/> late).</summary>
    static Event StatusEvent(Job job, string status, DateTime at, int rank)
    {
        var error = job.ErrorCode is { } code && (rank >= 1_000_000 && status is not "completed")
            ? new JobError(code, job.ErrorMessage ?? code)
            : null;
        return new(new Position(Ms(at), rank), Status,
            JsonSerializer.Serialize(new JobStatusEvent(job.Id, status, job.Attempts, at, error), JobsJson.Default.JobStatusEvent));
    }

    static Event NodeEvent(string type, Job job, JobNode node, DateTime at, int rank, string status) => new(new Position(Ms(at), rank), type,
        JsonSerializer.Serialize(new NodeEvent(job.Id, node.NodeId, node.Kind, node.Name, status, node.Attempts, at,
            type == NodeCompleted && node.ErrorCode is not null ? new JobError(node.ErrorCode, node.ErrorMessage ?? node.ErrorCode) : null), JobsJson.Default.NodeEvent));

    static long Ms(DateTime at) => new DateTimeOffset(DateTime.SpecifyKind(at, DateTimeKind.Utc)).ToUnixTimeMilliseconds();

    static DateTime Max(DateTime a, DateTime b) => a > b ? a : b;
}

/// <summary>A <c>job.status</c> event: the status, the attempt, when, and the error that goes with a failure or a retry.</summary>
public sealed record JobStatusEvent(string JobId, string Status, int Attempt, DateTime At, JobError? Error);

/// <summary>A <c>node.started</c> or <c>node.completed</c> event.</summary>
public sealed record NodeEvent(string JobId, string Node, string Kind, string Name, string Status, int Attempts, DateTime At, JobError? Error);

/// <summary>A <c>model.delta</c> event: a piece of a model node's answer, as it was streamed.</summary>
public sealed record DeltaEvent(string JobId, string Node, string Text);

/// <summary>An <c>approval.requested</c> event: the job waits for a decision at this node.</summary>
public sealed record ApprovalEvent(string JobId, string? Node);
