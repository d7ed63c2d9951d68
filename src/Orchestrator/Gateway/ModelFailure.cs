namespace Orchestrator.Gateway;

/// <summary>
/// Why a model call failed. Transport-level classes (<see cref="Timeout"/>, <see cref="RateLimited"/>,
/// <see cref="ServerError"/>, <see cref="Transport"/>) say the provider is unwell; <see cref="Malformed"/>
/// says the model answered but the answer is unusable; <see cref="Rejected"/> says the request itself was refused.
/// </summary>
public enum ModelFailureClass
{
    Timeout,
    RateLimited,
    ServerError,
    Transport,
    Malformed,
    Rejected,

    /// <summary>The provider refuses this model for every request (401, 403, 404): a wrong key, endpoint or model name.</summary>
    Misconfigured,
}

public static class ModelFailureClasses
{
    public static string Of(ModelFailureClass failure) => failure switch
    {
        ModelFailureClass.Timeout => "timeout",
        ModelFailureClass.RateLimited => "rate_limited",
        ModelFailureClass.ServerError => "server_error",
        ModelFailureClass.Transport => "transport",
        ModelFailureClass.Malformed => "malformed",
        ModelFailureClass.Rejected => "rejected",
        ModelFailureClass.Misconfigured => "misconfigured",
        _ => "unknown",
    };

    /// <summary>Failures worth another attempt on the same model.</summary>
    public static bool IsRetryable(ModelFailureClass failure) =>
        failure is ModelFailureClass.Timeout or ModelFailureClass.RateLimited or ModelFailureClass.ServerError or ModelFailureClass.Transport;

}

/// <summary>A model call that failed, classified.</summary>
public sealed class ModelCallException(string modelId, ModelFailureClass failure, string message, TimeSpan? retryAfter = null, Exception? inner = null)
    : Exception(message, inner)
{
    public string ModelId { get; } = modelId;
    public ModelFailureClass Failure { get; } = failure;

    /// <summary>How long the provider asked us to wait (429 <c>Retry-After</c>).</summary>
    public TimeSpan? RetryAfter { get; } = retryAfter;
}
