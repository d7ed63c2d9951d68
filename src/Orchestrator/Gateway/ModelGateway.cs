using System.Collections.Concurrent;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using Polly;
using Polly.CircuitBreaker;
using Polly.Registry;
using Polly.Timeout;

namespace Orchestrator.Gateway;

/// <summary>
/// Routes a model call: filters the catalog by the request and node requirements, skips quarantined
/// models, ranks the rest by the strategy, then calls them in order (each through its own resilience
/// pipeline) until one answers, optionally hedging the first with the second. Records the whole decision.
/// </summary>
internal sealed class ModelGateway(
    ModelCatalog catalog,
    IOptions<GatewayOptions> options,
    ResiliencePipelineProvider<string> pipelines,
    GatewayTelemetry telemetry,
    ModelControls controls,
    TimeProvider time)
{
    public const string HedgingPipeline = "gateway-hedging";
    internal static readonly ResiliencePropertyKey<TimeSpan> HedgeDelayKey = new("orchestrator.hedge.delay");
    internal static readonly ResiliencePropertyKey<Func<ResilienceContext, ValueTask<Outcome<Attempt>>>> HedgeKey = new("orchestrator.hedge.action");

    public IReadOnlyList<CatalogModel> Models => catalog.All;

    public async Task<ModelReply> CompleteAsync(ModelCall call, CancellationToken cancellationToken)
    {
        var strategy = call.Routing.Strategy;
        var (ranked, candidates) = Candidates(call);
        var attempts = new ConcurrentQueue<Attempt>();
        if (ranked.Count == 0)
            throw Unavailable(call, strategy, candidates, attempts, "No model can serve this call: every candidate is quarantined or filtered out.");

        for (var i = 0; i < ranked.Count;)
        {
            var hedge = call.Routing.Hedge && i + 1 < ranked.Count;
            var result = hedge
                ? await HedgedAsync(ranked[i], ranked[i + 1], call, attempts, cancellationToken)
                : await CallAsync(ranked[i], call, hedged: false, attempts, cancellationToken);
            if (result.Response is { } response)
            {
                var usage = attempts.Aggregate(TokenUsage.None, (sum, a) => sum.Add(a.Usage));
                return new ModelReply(response.Messages[^1], result.ModelId, usage,
                    Decision(strategy, result.ModelId, candidates, attempts, hedge), response.FinishReason);
            }
            telemetry.Fallback(ranked[i].Id);
            i += hedge ? 2 : 1;
        }

        // Every model refused the request itself: another try would be refused too.
        var tried = attempts.Where(a => !a.Canceled).ToList();
        if (tried.Count > 0 && tried.All(a => a.Failure == ModelFailureClass.Rejected))
            throw tried[^1].Error!;
        throw Unavailable(call, strategy, candidates, attempts, "Every candidate model failed; see the routing decision.");
    }

    /// <summary>The catalog sorted into ranked candidates and the decision's view of every model.</summary>
    (List<CatalogModel> Ranked, List<RoutingCandidate> Candidates) Candidates(ModelCall call)
    {
        var strategy = call.Routing.Strategy;
        var requires = call.Routing.Requires;
        var skipped = new List<RoutingCandidate>();
        var eligible = new List<(CatalogModel Model, HealthSnapshot Health)>();
        foreach (var model in catalog.All)
        {
            var health = model.Health.Snapshot();
            var status = model.Status(health);
            string? reason = null;
            if (call.Routing.Models is { Count: > 0 } allowed && !allowed.Contains(model.Id))
                reason = "not in routing.models";
            else if (requires is not null && model.Entry.Quality < requires.MinQuality)
                reason = $"quality {model.Entry.Quality:0.##} is below the required {requires.MinQuality:0.##}";
            else if (requires?.Tags.FirstOrDefault(t => !model.Entry.Tags.Contains(t)) is { } missing)
                reason = $"lacks tag '{missing}'";
            else if (model.QuarantinedByOperator)
                reason = "quarantined by an operator";
            else if (model.CircuitName == "open")
                reason = $"circuit open (quarantined) until {model.OpenUntil:O}";
            else if (model.WaitUntil is { } wait && wait > time.GetUtcNow())
                reason = $"its provider asked to wait until {wait:O} (Retry-After)";
            if (reason is null)
                eligible.Add((model, health));
            else
                skipped.Add(new RoutingCandidate(model.Id, RoutingStrategies.Score(strategy, model.Entry, health), status, 0, "skipped: " + reason));
        }
        var ranked = RoutingStrategies.Rank(strategy, eligible).ToList();
        // A half-open model is probed by live traffic whatever its rank. Ranked by its figures it would come last (the
        // failures that opened its circuit), never be called, never be probed, and stay degraded for good. Only one
        // probe goes through at a time (the breaker lets one call in); other calls find the circuit still broken and
        // fall back at once, so a failed probe costs a caller nothing but that one attempt.
        var probes = ranked.Where(c => c.Model.CircuitName == "half-open").ToList();
        if (probes.Count > 0 && probes.Count < ranked.Count)
            ranked = [.. probes, .. ranked.Where(c => c.Model.CircuitName != "half-open")];
        var candidates = ranked.Select((c, i) => new RoutingCandidate(
                c.Model.Id, RoutingStrategies.Score(strategy, c.Model.Entry, c.Health), c.Model.Status(c.Health), i + 1,
                (i < probes.Count && probes.Count < ranked.Count ? "probe: its circuit is half-open, so this call tests whether it recovered; "
                    : i == 0 ? "first choice: " : "fallback: ") + RoutingStrategies.Why(strategy, c.Model.Entry, c.Health)))
            .Concat(skipped)
            .ToList();
        return (ranked.Select(c => c.Model).ToList(), candidates);
    }

    async Task<Attempt> HedgedAsync(
        CatalogModel primary, CatalogModel second, ModelCall call, ConcurrentQueue<Attempt> attempts, CancellationToken cancellationToken)
    {
        var gateway = options.Value;
        var p95 = primary.Health.Snapshot().P95Ms;
        var delay = p95 is { } ms ? TimeSpan.FromMilliseconds(ms) : gateway.HedgeDefaultDelay;
        if (delay < gateway.HedgeMinDelay)
            delay = gateway.HedgeMinDelay;

        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(HedgeDelayKey, delay);
        context.Properties.Set(HedgeKey, async hedgeContext =>
        {
            telemetry.Hedge(second.Id);
            return Outcome.FromResult(await CallAsync(second, call, hedged: true, attempts, hedgeContext.CancellationToken));
        });
        try
        {
            var outcome = await pipelines.GetPipeline<Attempt>(HedgingPipeline).ExecuteOutcomeAsync(
                static async (ctx, state) => Outcome.FromResult(
                    await state.Self.CallAsync(state.Primary, state.Call, hedged: false, state.Attempts, ctx.CancellationToken)),
                context, (Self: this, Primary: primary, Call: call, Attempts: attempts));
            cancellationToken.ThrowIfCancellationRequested();
            return outcome.Result ?? Attempt.Failed(primary.Id, null, 0);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    /// <summary>One model through its pipeline. Never throws for a model failure: the attempt says what happened.</summary>
    async Task<Attempt> CallAsync(CatalogModel model, ModelCall call, bool hedged, ConcurrentQueue<Attempt> attempts, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        Attempt attempt;
        try
        {
            await model.Slots.WaitAsync(cancellationToken);
            try
            {
                var response = await model.Pipeline.ExecuteAsync(
                    static (state, ct) => new ValueTask<ChatResponse>(state.Client.GetResponseAsync(state.Messages, state.Options, ct)),
                    (model.Client, call.Messages, Options: ChatOptionsFor(call)), cancellationToken);
                attempt = Attempt.Succeeded(model.Id, response, Elapsed(started), UsageOf(model.Entry, response.Usage), hedged);
            }
            finally
            {
                model.Slots.Release();
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // A hedge that lost, or a job that ended. A provider may still bill the prompt: it is counted as sent.
            model.Health.Canceled();
            attempt = Attempt.CanceledAfter(model.Id, Elapsed(started), EstimatedPrompt(model.Entry, call), hedged);
            attempts.Enqueue(attempt);
            throw;
        }
        catch (Exception error) when (error is ModelCallException or TimeoutRejectedException or BrokenCircuitException)
        {
            attempt = FailedAttempt(model, error, started, hedged);
        }
        attempts.Enqueue(attempt);
        return attempt;
    }

    /// <summary>What a failed attempt records; a provider's <c>Retry-After</c> is kept and shared with every node.</summary>
    Attempt FailedAttempt(CatalogModel model, Exception error, long started, bool hedged)
    {
        switch (error)
        {
            case ModelCallException failed:
                if (failed.RetryAfter is { } after && after > TimeSpan.Zero)
                {
                    model.WaitFor(after);
                    controls.ShareWait(model);
                }
                return Attempt.Failed(model.Id, failed, Elapsed(started), hedged);
            case TimeoutRejectedException:
                return Attempt.Failed(model.Id, new ModelCallException(model.Id, ModelFailureClass.Timeout,
                    $"Model '{model.Id}' did not answer within {model.Entry.Timeout}.", inner: error), Elapsed(started), hedged);
            default:
                return Attempt.CircuitOpen(model.Id, Elapsed(started), hedged);
        }
    }

    /// <summary>
    /// A streamed call: routed, retried and fallen back exactly like <see cref="CompleteAsync"/>, but only until the
    /// model's first content arrives; from then on the caller reads the stream, and a failure ends it (the caller says so,
    /// it cannot be taken back). Not hedged: two streams racing would mean two sets of tokens to choose between mid-way.
    /// </summary>
    public async Task<ModelStream> StreamAsync(ModelCall call, CancellationToken cancellationToken)
    {
        var strategy = call.Routing.Strategy;
        var (ranked, candidates) = Candidates(call);
        var attempts = new ConcurrentQueue<Attempt>();
        if (ranked.Count == 0)
            throw Unavailable(call, strategy, candidates, attempts, "No model can serve this call: every candidate is quarantined or filtered out.");

        foreach (var model in ranked)
        {
            if (await OpenStreamAsync(model, call, attempts, cancellationToken) is { } head)
            {
                var before = attempts.Aggregate(TokenUsage.None, (sum, a) => sum.Add(a.Usage));
                return new ModelStream(model, head, before, Decision(strategy, model.Id, candidates, attempts, hedgeAllowed: false));
            }
            telemetry.Fallback(model.Id);
        }
        var tried = attempts.Where(a => !a.Canceled).ToList();
        if (tried.Count > 0 && tried.All(a => a.Failure == ModelFailureClass.Rejected))
            throw tried[^1].Error!;
        throw Unavailable(call, strategy, candidates, attempts, "Every candidate model failed; see the routing decision.");
    }

    /// <summary>
    /// Opens one model's stream through its pipeline and reads up to its first content; null when it failed (the attempt
    /// says why). The pipeline's own token (its timeout) bounds only that wait: the stream lives on under a token of its
    /// own, since Polly recycles its token once the callback returns.
    /// </summary>
    async Task<StreamHead?> OpenStreamAsync(CatalogModel model, ModelCall call, ConcurrentQueue<Attempt> attempts, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        try
        {
            await model.Slots.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            attempts.Enqueue(Attempt.CanceledAfter(model.Id, Elapsed(started), TokenUsage.None, false));
            throw;
        }
        try
        {
            var response = await model.Pipeline.ExecuteAsync(
                static async (state, attemptToken) => new ChatResponse { RawRepresentation = await StreamHead.OpenAsync(state.Client, state.Id, state.Messages, state.Options, state.Outer, attemptToken) },
                (model.Client, model.Id, call.Messages, Options: ChatOptionsFor(call), Outer: cancellationToken), cancellationToken);
            var head = (StreamHead)response.RawRepresentation!;
            head.Slot = model.Slots;
            attempts.Enqueue(Attempt.Succeeded(model.Id, response, Elapsed(started), TokenUsage.None, false));
            return head;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            model.Slots.Release();
            model.Health.Canceled();
            attempts.Enqueue(Attempt.CanceledAfter(model.Id, Elapsed(started), EstimatedPrompt(model.Entry, call), false));
            throw;
        }
        catch (Exception error) when (error is ModelCallException or TimeoutRejectedException or BrokenCircuitException)
        {
            model.Slots.Release();
            attempts.Enqueue(FailedAttempt(model, error, started, false));
            return null;
        }
        catch
        {
            model.Slots.Release();
            throw;
        }
    }

    ModelUnavailableException Unavailable(
        ModelCall call, string strategy, List<RoutingCandidate> candidates, IEnumerable<Attempt> attempts, string message) =>
        new(message, RetryAfter(), Decision(strategy, null, candidates, attempts, call.Routing.Hedge));

    /// <summary>
    /// When it is worth trying again: the first moment a quarantined model may be probed or a model's provider said it
    /// may be called again (its <c>Retry-After</c>), and at least a second.
    /// </summary>
    public TimeSpan RetryAfter()
    {
        var now = time.GetUtcNow();
        var reopen = catalog.All
            .Select(m => new[] { m.OpenUntil, m.WaitUntil }.Max())
            .Where(t => t is not null).Select(t => t!.Value - now)
            .Where(t => t > TimeSpan.Zero).DefaultIfEmpty(TimeSpan.FromSeconds(1)).Min();
        return reopen < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(Math.Ceiling(reopen.TotalSeconds));
    }

    /// <summary>The decision as recorded; <c>hedged</c> says a hedge was actually sent, not merely allowed.</summary>
    static RoutingDecision Decision(string strategy, string? chosen, List<RoutingCandidate> candidates, IEnumerable<Attempt> attempts, bool hedgeAllowed)
    {
        var records = attempts.Select(a => a.ToRecord()).ToList();
        return new RoutingDecision(strategy, chosen, candidates, records, hedgeAllowed && records.Any(a => a.Hedge));
    }

    static ChatOptions ChatOptionsFor(ModelCall call)
    {
        // The caller's own settings first (a copy: the options of one call are shared by its fallbacks and retries).
        var options = call.Options?.Clone() ?? new ChatOptions();
        options.Tools = call.Tools;
        options.Seed ??= call.Seed;
        options.AllowMultipleToolCalls ??= true;
        return options;
    }

    long Elapsed(long started) => (long)time.GetElapsedTime(started).TotalMilliseconds;

    internal static TokenUsage UsageOf(ModelEntry model, UsageDetails? usage)
    {
        var input = usage?.InputTokenCount ?? 0;
        var output = usage?.OutputTokenCount ?? 0;
        return new TokenUsage(input, output, Cost(model, input, output));
    }

    static TokenUsage EstimatedPrompt(ModelEntry model, ModelCall call)
    {
        long chars = call.Messages.Sum(m => (long)(m.Text?.Length ?? 0));
        var input = Math.Max(1, (chars + 3) / 4);
        return new TokenUsage(input, 0, Cost(model, input, 0));
    }

    static decimal Cost(ModelEntry model, long input, long output) =>
        Math.Round((input * model.CostPer1kInputUsd + output * model.CostPer1kOutputUsd) / 1000m, 8);
}

/// <summary>What one call of one model did, for the decision and the cost.</summary>
internal sealed record Attempt(
    string ModelId, ChatResponse? Response, ModelFailureClass? Failure, ModelCallException? Error,
    bool Canceled, bool Broken, long LatencyMs, TokenUsage Usage, bool Hedge)
{
    public static Attempt Succeeded(string model, ChatResponse response, long ms, TokenUsage usage, bool hedge) =>
        new(model, response, null, null, false, false, ms, usage, hedge);

    public static Attempt Failed(string model, ModelCallException? error, long ms, bool hedge = false) =>
        new(model, null, error?.Failure, error, false, false, ms, TokenUsage.None, hedge);

    public static Attempt CanceledAfter(string model, long ms, TokenUsage estimated, bool hedge) =>
        new(model, null, null, null, true, false, ms, estimated, hedge);

    public static Attempt CircuitOpen(string model, long ms, bool hedge) =>
        new(model, null, null, null, false, true, ms, TokenUsage.None, hedge);

    public RoutingAttempt ToRecord() => new(
        ModelId,
        Response is not null ? "succeeded" : Canceled ? "canceled" : Broken ? "circuit_open" : "failed",
        LatencyMs,
        Failure is { } f ? ModelFailureClasses.Of(f) : null,
        Hedge,
        Error?.Message);
}
