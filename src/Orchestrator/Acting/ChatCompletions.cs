using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using Orchestrator.Gateway;
using Orchestrator.Hosting;
using Orchestrator.Jobs;
using Orchestrator.Storage;
using Orchestrator.Tenancy;
using Orchestrator.Workflow;

namespace Orchestrator.Acting;

/// <summary>
/// An OpenAI-compatible chat completion as a job: checked at the edge, admitted by the same ordered checks as an act
/// (limits, budgets), routed by the gateway with its fallback, answered on the request itself, and recorded as a job of
/// intent <c>chat/completions</c> with one model node, which is what makes it listed and replayable.
/// </summary>
/// <remarks>
/// The caller never waits for the queue or for the store: the model is called at once, on the request, and the job's row
/// and node are queued to the group-commit writer after the answer is made. That is the difference with a sync act,
/// which commits its row before it runs and runs on a worker. The price, written in doc/api.md: a crash in the few
/// milliseconds between the answer and the commit loses the record (never the answer).
/// </remarks>
internal sealed class ChatCompletions(
    Admission admission,
    IntentCatalog intents,
    ModelGateway gateway,
    IOptions<GatewayOptions> gatewayOptions,
    IOptions<ActingOptions> actingOptions,
    JobExecution execution,
    JobIds ids,
    ThisNode node,
    RoutingSnapshot routing,
    TimeProvider time)
{
    public const string Completion = "chat.completion";
    public const string Chunk = "chat.completion.chunk";

    /// <summary>Checks and admits a call; the answer is a call ready to run, or the problem to answer with.</summary>
    public async Task<(ChatCall? Call, ProblemHttpResult? Problem, int? RetryAfterSeconds)> StartAsync(
        ChatCompletionRequest request, Caller caller, CancellationToken requestAborted)
    {
        var policy = intents.Find(ChatIntent.Name)!;
        var errors = new Dictionary<string, string[]>();
        var transcript = ChatRequestReader.Read(request, errors);
        var (strategy, models) = Route(request.Model, policy, errors);
        var maxDeadline = (long)actingOptions.Value.MaxDeadline.TotalMilliseconds;
        var deadlineMs = (int)Math.Min(policy.DeadlineMs, maxDeadline);
        if (errors.Count > 0 || transcript is null)
            return (null, Problems.Validation(errors), null);

        var act = new ActRequest
        {
            Intent = ChatIntent.Name,
            Mode = "sync",
            Priority = WireNames.Of(JobPriority.Normal),
            DeadlineMs = deadlineMs,
            Routing = new ActRouting { Strategy = strategy, Models = models },
            Chat = transcript,
        };
        var admitting = new Admitting(new AdmittedAct(act, policy, true, JobPriority.Normal, deadlineMs, null), caller)
        {
            Queued = false,
            Resource = ChatIntent.Name,
        };
        if (await admission.CheckAsync(admitting, requestAborted) is { } refused)
            return (null, refused.Problem, refused.RetryAfterSeconds);
        // The tenant's rules may have clamped the routing and the deadline.
        act = admitting.Act.Request;
        deadlineMs = admitting.Act.DeadlineMs;
        strategy = act.Routing?.Strategy ?? strategy;
        models = act.Routing?.Models;

        var now = time.GetUtcNow().UtcDateTime;
        var job = new Job
        {
            Id = ids.Next(),
            TraceId = Admission.TraceIdForNewJob(),
            Tenant = caller.Tenant,
            Principal = caller.Principal,
            Intent = ChatIntent.Name,
            Status = JobStatus.Running,
            Priority = JobPriority.Normal,
            Sync = true,
            Request = JsonSerializer.Serialize(act, WorkflowJson.Default.ActRequest),
            DeadlineMs = deadlineMs,
            PolicyHash = policy.ContentHash,
            RoutingHash = routing.Hash,
            CreatedAt = now,
            StartedAt = now,
            QueueMs = 0,
            DeadlineAt = now.AddMilliseconds(deadlineMs),
            Attempts = 1,
            Owner = node.Id,
            Epoch = 1,
            CurrentNode = ChatIntent.Node,
        };
        // Limits and budgets are taken before the model is called (the job's hold settles when it is recorded).
        if (await admission.TakeAsync(admitting, job) is { } limited)
            return (null, limited.Problem, limited.RetryAfterSeconds);
        var messages = transcript.ToMessages();
        var route = new RoutingRequest(strategy, models, policy.Routing.Hedge);
        var seed = transcript.Settings?.Seed ?? Seeds.For(job.TraceId, ChatIntent.Node);
        // The policy's output ceiling bounds the call (a budget reserved it); the caller's max_tokens may only lower it.
        var options = transcript.Settings?.ToOptions() ?? new ChatOptions();
        options.MaxOutputTokens = Math.Min(options.MaxOutputTokens ?? int.MaxValue, policy.MaxOutputTokens);
        var call = new ModelCall(job.TraceId, ChatIntent.Node, messages, transcript.Tools(), route, seed, options);
        var input = new ModelInput(messages.Select(MessageRecord.Of).ToList(), transcript.Functions?.Select(f => f.Name).ToList() ?? [], route, seed);
        return (new ChatCall(job, call, input, request.Stream == true, request.StreamOptions?.IncludeUsage == true,
            TimeSpan.FromMilliseconds(deadlineMs), time, requestAborted), null, null);
    }

    (string Strategy, IReadOnlyList<string>? Models) Route(string? model, IntentPolicy policy, Dictionary<string, string[]> errors)
    {
        var fallback = policy.Routing.Strategy ?? gatewayOptions.Value.DefaultStrategy;
        switch (model)
        {
            case null or "":
                errors["model"] = ["model is required: a catalog id (GET /v1/models) or auto, latency-first, quality-first, cost-first."];
                return (fallback, null);
            case "auto":
                return (fallback, null);
            case var alias when RoutingStrategies.IsKnown(alias):
                return (alias, null);
            case var id when gateway.Models.Any(m => m.Id == id):
                // A named model is the caller's choice: that model only, as routing.models [id] would be on an act.
                return (fallback, [id]);
            default:
                errors["model"] = [$"Unknown model '{model}'; use a catalog id ({string.Join(", ", gateway.Models.Select(m => m.Id))}) or auto, {string.Join(", ", RoutingStrategies.All)}."];
                return (fallback, null);
        }
    }

    /// <summary>A whole answer: the model's reply in OpenAI's shape, the job recorded behind it.</summary>
    public async Task<(ChatCompletion? Completion, ProblemHttpResult? Problem, int? RetryAfterSeconds)> CompleteAsync(ChatCall call)
    {
        try
        {
            var reply = await gateway.CompleteAsync(call.Model, call.Token);
            Succeeded(call, reply);
            var message = reply.Message;
            var calls = ToolCallsOf(message.Contents.OfType<FunctionCallContent>(), indexed: false);
            var completion = new ChatCompletion(
                IdOf(call.Job), Completion, Created(call.Job), reply.ModelId,
                [new ChatChoice(0, new WireReply("assistant", calls is not null && message.Text.Length == 0 ? null : message.Text, calls),
                    FinishReasonOf(reply.FinishReason, calls is not null))],
                UsageOf(reply.Usage), call.Job.Id);
            return (completion, null, null);
        }
        catch (Exception error) when (Failure(call, error) is { } failed)
        {
            return (null, failed.Problem, failed.RetryAfterSeconds);
        }
        finally
        {
            Unrecorded(call);
            call.Dispose();
        }
    }

    /// <summary>A call that ended by a fault of the service (the exception goes on to the error handler) is on record too.</summary>
    void Unrecorded(ChatCall call)
    {
        if (!call.Recorded)
            Record(call, JobOutcome.Failed(Problems.Internal, "The call failed because of an error in the service; see the service log for trace " + call.Job.TraceId + "."),
                NodeStatus.Failed, null, Problems.Internal, "The call failed because of an error in the service.");
    }

    /// <summary>Routes a streamed call to its first content (retries and fallback happen here); a problem if no model gave one.</summary>
    public async Task<(ModelStream? Stream, ProblemHttpResult? Problem, int? RetryAfterSeconds)> OpenAsync(ChatCall call)
    {
        try
        {
            return (await gateway.StreamAsync(call.Model, call.Token), null, null);
        }
        catch (Exception error) when (Failure(call, error) is { } failed)
        {
            call.Dispose();
            return (null, failed.Problem, failed.RetryAfterSeconds);
        }
        catch
        {
            Unrecorded(call);
            call.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The stream as server-sent events in OpenAI's chunk format, ending <c>data: [DONE]</c>. A failure after the first
    /// chunk cannot be answered with a status any more: it ends the stream with an error event, never a silent cut.
    /// </summary>
    public async IAsyncEnumerable<SseItem<string>> EventsAsync(ChatCall call, ModelStream stream, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var chunks = new ChunkWriter(IdOf(call.Job), Created(call.Job), stream.ModelId);
        Exception? failure = null;
        using var aborted = cancellationToken.Register(static state => ((ChatCall)state!).Abort(), call);
        try
        {
            await using (stream)
            {
                await using var updates = stream.ReadAsync(call.Token).GetAsyncEnumerator(call.Token);
                while (true)
                {
                    try
                    {
                        if (!await updates.MoveNextAsync())
                            break;
                    }
                    catch (Exception error) when (error is ModelCallException or OperationCanceledException)
                    {
                        failure = error;
                        break;
                    }
                    if (chunks.Of(updates.Current) is { } chunk)
                        yield return Event(chunk);
                }
            }
            if (failure is null)
            {
                var reply = stream.Reply();
                Succeeded(call, reply);
                yield return Event(chunks.Last(reply.FinishReason));
                if (call.IncludeUsage)
                    yield return Event(new ChatCompletionChunk(chunks.Id, Chunk, chunks.Created, chunks.Model, [], UsageOf(reply.Usage)));
                yield return new SseItem<string>("[DONE]");
            }
            else if (Failure(call, failure, stream) is { } failed && !call.Aborted)
                yield return new SseItem<string>(JsonSerializer.Serialize(OpenAiErrorWriter.BodyOf(failed.Problem), ChatJson.Default.WireErrorBody));
        }
        finally
        {
            // The reader stopped between two events (the caller went away while one was written): recorded as canceled.
            if (!call.Recorded)
            {
                call.Abort();
                Failure(call, new OperationCanceledException(), stream);
            }
            call.Dispose();
        }
    }

    static SseItem<string> Event(ChatCompletionChunk chunk) => new(JsonSerializer.Serialize(chunk, ChatJson.Default.ChatCompletionChunk));

    void Succeeded(ChatCall call, ModelReply reply)
    {
        var checkpoint = ModelCheckpoint.Of(reply);
        var output = new JobOutput(checkpoint.Text ?? "", reply.ModelId, reply.Usage, [ChatIntent.Node]);
        Record(call, JobOutcome.Completed(output) with { Routing = [new NodeRouting(ChatIntent.Node, reply.Decision)] },
            NodeStatus.Succeeded, JsonSerializer.Serialize(checkpoint, WorkflowJson.Default.ModelCheckpoint), null, null);
    }

    /// <summary>
    /// How a failed call is answered and recorded: no model (503 with <c>Retry-After</c>), the model's refusal (502), the
    /// deadline (504), or the caller gone (recorded canceled, nobody to answer). Null for a failure that is a bug.
    /// </summary>
    (ProblemHttpResult Problem, int? RetryAfterSeconds)? Failure(ChatCall call, Exception error, ModelStream? stream = null)
    {
        var (code, message, retryAfter, decision) = error switch
        {
            ModelUnavailableException unavailable => (Problems.ModelUnavailable, unavailable.Message, (int?)Math.Max(1, (int)unavailable.RetryAfter.TotalSeconds), unavailable.Decision),
            ModelCallException failed => (Problems.ModelFailed, failed.Message, null, stream?.Decision),
            OperationCanceledException when call.Aborted => (Problems.Canceled, "The caller went away before the answer was complete.", null, stream?.Decision),
            OperationCanceledException when call.PastDeadline => (Problems.DeadlineExceeded,
                $"The call did not finish within its deadline ({call.Job.DeadlineMs} ms).", null, stream?.Decision),
            _ => (null, null, null, null),
        };
        if (code is null)
            return null;
        var outcome = code == Problems.Canceled ? JobOutcome.Canceled(message!) : JobOutcome.Failed(code, message!);
        if (decision is not null)
            outcome = outcome with { Routing = [new NodeRouting(ChatIntent.Node, decision)] };
        // What a stream said before it failed is kept with the failure, so the record shows how far it got.
        var partial = stream is null ? null : JsonSerializer.Serialize(ModelCheckpoint.Of(stream.Reply()), WorkflowJson.Default.ModelCheckpoint);
        Record(call, outcome, NodeStatus.Failed, partial, code, message);
        return (Problems.For(code, message, extensions: [new("jobId", call.Job.Id), new("traceId", call.Job.TraceId)]), retryAfter);
    }

    void Record(ChatCall call, JobOutcome outcome, NodeStatus status, string? output, string? code, string? message)
    {
        if (!call.MarkRecorded())
            return;
        var job = call.Job;
        var now = time.GetUtcNow().UtcDateTime;
        var recorded = new JobNode
        {
            JobId = job.Id,
            NodeId = ChatIntent.Node,
            Seq = 1,
            Kind = NodeKinds.Model,
            Name = ChatIntent.Node,
            Status = status,
            Attempts = 1,
            Input = JsonSerializer.Serialize(call.Input, WorkflowJson.Default.ModelInput),
            Output = output,
            ErrorCode = code,
            ErrorMessage = message,
            StartedAt = job.StartedAt,
            CompletedAt = now,
        };
        // Not awaited: the answer does not wait for the store (see the class remarks).
        _ = execution.RecordInlineAsync(job, outcome, [NodeWrites.Add(recorded)]);
    }

    static string IdOf(Job job) => "chatcmpl-" + job.Id;

    static long Created(Job job) => new DateTimeOffset(job.CreatedAt, TimeSpan.Zero).ToUnixTimeSeconds();

    static WireUsage UsageOf(TokenUsage usage) => new(usage.InputTokens, usage.OutputTokens, usage.InputTokens + usage.OutputTokens);

    internal static string FinishReasonOf(ChatFinishReason? reason, bool calledTools) =>
        reason is { } r && r != ChatFinishReason.Stop ? r.Value : calledTools ? "tool_calls" : "stop";

    internal static List<WireToolCall>? ToolCallsOf(IEnumerable<FunctionCallContent> calls, bool indexed, int first = 0)
    {
        var list = calls.Select((c, i) => new WireToolCall
        {
            Index = indexed ? first + i : null,
            Id = c.CallId,
            Type = "function",
            Function = new WireFunctionCall(c.Name, JsonSerializer.Serialize(c.Arguments ?? new Dictionary<string, object?>(), AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(IDictionary<string, object?>)))),
        }).ToList();
        return list.Count == 0 ? null : list;
    }

    /// <summary>Turns the model's updates into chunks: the role on the first, text and tool calls as they come, the finish last.</summary>
    sealed class ChunkWriter(string id, long created, string model)
    {
        bool _started;
        int _toolCalls;

        public string Id => id;
        public long Created => created;
        public string Model => model;

        public ChatCompletionChunk? Of(ChatResponseUpdate update)
        {
            var text = string.Concat(update.Contents.OfType<TextContent>().Select(t => t.Text));
            var calls = ToolCallsOf(update.Contents.OfType<FunctionCallContent>(), indexed: true, _toolCalls);
            if (text.Length == 0 && calls is null && _started)
                return null;
            _toolCalls += calls?.Count ?? 0;
            var role = _started ? null : "assistant";
            _started = true;
            return new ChatCompletionChunk(id, Chunk, created, model, [new ChunkChoice(0, new WireReply(role, text.Length == 0 && calls is not null ? null : text, calls), null)], null);
        }

        public ChatCompletionChunk Last(ChatFinishReason? reason) =>
            new(id, Chunk, created, model, [new ChunkChoice(0, new WireReply(null, null, null), FinishReasonOf(reason, _toolCalls > 0))], null);
    }
}

/// <summary>
/// One chat call on its way: the job that will record it, the model call, and its cancellation, by the caller going
/// away or by the deadline, whichever comes first.
/// </summary>
internal sealed class ChatCall : IDisposable
{
    readonly CancellationTokenSource _deadline;
    readonly CancellationTokenSource _abort = new();
    readonly CancellationTokenSource _linked;
    int _disposed;

    public ChatCall(Job job, ModelCall model, ModelInput input, bool stream, bool includeUsage, TimeSpan deadline, TimeProvider time, CancellationToken requestAborted)
    {
        Job = job;
        Model = model;
        Input = input;
        Stream = stream;
        IncludeUsage = includeUsage;
        _deadline = new CancellationTokenSource(deadline, time);
        _linked = CancellationTokenSource.CreateLinkedTokenSource(_deadline.Token, _abort.Token, requestAborted);
        RequestAborted = requestAborted;
    }

    public Job Job { get; }
    public ModelCall Model { get; }
    public ModelInput Input { get; }
    public bool Stream { get; }
    public bool IncludeUsage { get; }
    CancellationToken RequestAborted { get; }

    public CancellationToken Token => _linked.Token;

    public bool PastDeadline => _deadline.IsCancellationRequested;

    /// <summary>True once the caller went away (the request was aborted, or the stream's reader stopped).</summary>
    public bool Aborted => RequestAborted.IsCancellationRequested || _abort.IsCancellationRequested;

    int _recorded;

    /// <summary>True once the call's outcome was handed to the store.</summary>
    public bool Recorded => Volatile.Read(ref _recorded) != 0;

    /// <summary>Claims the one recording of the call; false when it was already recorded.</summary>
    public bool MarkRecorded() => Interlocked.Exchange(ref _recorded, 1) == 0;

    public void Abort()
    {
        if (Volatile.Read(ref _disposed) == 0)
            _abort.Cancel();
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        _linked.Dispose();
        _deadline.Dispose();
        _abort.Dispose();
    }
}
