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
}
