using Microsoft.Extensions.AI;

namespace Orchestrator.Gateway;

/// <summary>
/// Records every call attempt of one model into its <see cref="ModelHealth"/> and the gateway's metrics:
/// latency on success, the failure class otherwise. A canceled call (a hedge that lost, a job that ended)
/// says nothing about the model and is not recorded; attempt timeouts are recorded by the timeout strategy.
/// </summary>
internal sealed class HealthRecordingChatClient(IChatClient inner, ModelHealth health, GatewayTelemetry telemetry, string modelId, TimeProvider time)
    : DelegatingChatClient(inner)
{
    public override async Task<ChatResponse> GetResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var started = time.GetTimestamp();
        try
        {
            var response = await base.GetResponseAsync(messages, options, cancellationToken);
            var ms = time.GetElapsedTime(started).TotalMilliseconds;
            health.Succeeded(ms);
            telemetry.Call(modelId, null, ms);
            return response;
        }
        catch (ModelCallException error)
        {
            var ms = time.GetElapsedTime(started).TotalMilliseconds;
            health.Failed(error.Failure, ms);
            telemetry.Call(modelId, error.Failure, ms);
            throw;
        }
    }

    /// <summary>
    /// A stream counts once it ends: its latency is the whole answer's (what a non-streamed call would have measured, so
    /// both kinds of call rank a model alike); a failure, before or after the first token, counts against the model.
    /// A stream the caller stopped reading says nothing about the model and is not recorded.
    /// </summary>
    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var started = time.GetTimestamp();
        await using var stream = base.GetStreamingResponseAsync(messages, options, cancellationToken).GetAsyncEnumerator(cancellationToken);
        while (true)
        {
            try
            {
                if (!await stream.MoveNextAsync())
                    break;
            }
            catch (ModelCallException error)
            {
                var failedMs = time.GetElapsedTime(started).TotalMilliseconds;
                health.Failed(error.Failure, failedMs);
                telemetry.Call(modelId, error.Failure, failedMs);
                throw;
            }
            yield return stream.Current;
        }
        var ms = time.GetElapsedTime(started).TotalMilliseconds;
        health.Succeeded(ms);
        telemetry.Call(modelId, null, ms);
    }
}
