using Microsoft.Extensions.AI;

namespace Orchestrator.Gateway;

/// <summary>
/// One model call a workflow node asks the gateway for. <paramref name="Options"/> carries what the caller set itself
/// (temperature, max tokens, stop, response format, end user: <c>/v1/chat/completions</c> passes them on); the gateway
/// adds the tools and the seed.
/// </summary>
public sealed record ModelCall(
    string TraceId,
    string NodeId,
    IList<ChatMessage> Messages,
    IList<AITool>? Tools,
    RoutingRequest Routing,
    long Seed,
    ChatOptions? Options = null);

/// <summary>What the caller cares about when a model is picked.</summary>
public sealed record RoutingRequest(
    string Strategy,
    IReadOnlyList<string>? Models = null,
    bool Hedge = false,
    ModelRequirements? Requires = null);

/// <summary>A model's answer and how it was chosen.</summary>
public sealed record ModelReply(ChatMessage Message, string ModelId, TokenUsage Usage, RoutingDecision Decision, ChatFinishReason? FinishReason = null);

/// <summary>The routing decision recorded on the job: every candidate, its score, and why it was picked or skipped.</summary>
public sealed record RoutingDecision(
    string Strategy,
    string? Chosen,
    IReadOnlyList<RoutingCandidate> Candidates,
    IReadOnlyList<RoutingAttempt> Attempts,
    bool Hedged = false);

public sealed record RoutingCandidate(string ModelId, double Score, string Status, int Rank, string Reason);

/// <summary>One call made while serving the decision, in order (fallbacks and hedges included).</summary>
public sealed record RoutingAttempt(string ModelId, string Outcome, long LatencyMs, string? Failure = null, bool Hedge = false, string? Error = null);

/// <summary>No candidate could serve the call (none healthy, or all failed).</summary>
public sealed class ModelUnavailableException(string message, TimeSpan retryAfter, RoutingDecision decision) : Exception(message)
{
    public TimeSpan RetryAfter { get; } = retryAfter;
    public RoutingDecision Decision { get; } = decision;

    /// <summary>
    /// Whether trying again later can help. Not when every model tried was refused by its provider as misconfigured
    /// (401, 403, 404: a wrong key, endpoint or model name): that waits for an operator, not for time.
    /// </summary>
    public bool Transient => !(Decision.Attempts is { Count: > 0 } tried &&
                               tried.All(a => a.Failure == ModelFailureClasses.Of(ModelFailureClass.Misconfigured)));
}

/// <summary>Tokens and what they cost: of one model call, or summed over a job.</summary>
public sealed record TokenUsage(long InputTokens, long OutputTokens, decimal CostUsd)
{
    public static readonly TokenUsage None = new(0, 0, 0);

    public TokenUsage Add(TokenUsage other) =>
        new(InputTokens + other.InputTokens, OutputTokens + other.OutputTokens, CostUsd + other.CostUsd);
}
