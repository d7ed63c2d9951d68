using System.ClientModel;
using System.Globalization;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.Extensions.AI;

namespace Orchestrator.Gateway;

/// <summary>
/// Turns whatever a provider throws into a <see cref="ModelCallException"/> with a failure class, and
/// rejects answers with nothing in them, so everything above it (resilience, health) speaks one language.
/// </summary>
internal sealed class ClassifyingChatClient(IChatClient inner, string modelId, TimeProvider time) : DelegatingChatClient(inner)
{
    public override async Task<ChatResponse> GetResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        ChatResponse response;
        try
        {
            response = await base.GetResponseAsync(messages, options, cancellationToken);
        }
        catch (Exception error) when (Classify(error, cancellationToken) is { } classified)
        {
            throw classified;
        }
        // A provider's content filter stopped this answer: about this request, not about the model's health.
        if (response.FinishReason == ChatFinishReason.ContentFilter)
            throw new ModelCallException(modelId, ModelFailureClass.Rejected, $"Model '{modelId}' withheld its answer: the provider's content filter stopped it.");
        // An empty text is an answer (models do say nothing); no message at all is not.
        if (response.Messages.Count == 0)
            throw new ModelCallException(modelId, ModelFailureClass.Malformed, $"Model '{modelId}' answered with no message.");
        return response;
    }

    /// <summary>A stream speaks the same failure vocabulary: whatever the provider throws while it is read is classified.</summary>
    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        IAsyncEnumerator<ChatResponseUpdate> stream;
        try
        {
            stream = base.GetStreamingResponseAsync(messages, options, cancellationToken).GetAsyncEnumerator(cancellationToken);
        }
        catch (Exception error) when (Classify(error, cancellationToken) is { } classified)
        {
            throw classified;
        }
        await using (stream)
        {
            while (true)
            {
                ChatResponseUpdate update;
                try
                {
                    if (!await stream.MoveNextAsync())
                        break;
                    update = stream.Current;
                }
                catch (Exception error) when (Classify(error, cancellationToken) is { } classified)
                {
                    throw classified;
                }
                if (update.FinishReason == ChatFinishReason.ContentFilter)
                    throw new ModelCallException(modelId, ModelFailureClass.Rejected, $"Model '{modelId}' withheld its answer: the provider's content filter stopped it.");
                yield return update;
            }
        }
    }

    ModelCallException? Classify(Exception error, CancellationToken cancellationToken) => error switch
    {
        ModelCallException => null,
        OperationCanceledException when cancellationToken.IsCancellationRequested => null,
        ClientResultException { Status: 429 } http => new(modelId, ModelFailureClass.RateLimited,
            $"Model '{modelId}' is rate limited (429).", RetryAfterOf(http), http),
        ClientResultException { Status: 408 } http => new(modelId, ModelFailureClass.Timeout,
            $"Model '{modelId}' timed out (408).", inner: http),
        ClientResultException { Status: >= 500 } http => new(modelId, ModelFailureClass.ServerError,
            $"Model '{modelId}' failed with {http.Status}.", RetryAfterOf(http), http),
        ClientResultException { Status: 401 or 403 or 404 } http => new(modelId, ModelFailureClass.Misconfigured,
            $"Model '{modelId}' is refused by its provider ({http.Status}): check its key, endpoint and model name. {Shorten(http.Message)}", inner: http),
        ClientResultException { Status: 0 } http => new(modelId, ModelFailureClass.Transport,
            $"Model '{modelId}' could not be reached: {http.Message}", inner: http),
        ClientResultException http => new(modelId, ModelFailureClass.Rejected,
            $"Model '{modelId}' refused the request ({http.Status}): {Shorten(http.Message)}", inner: http),
        HttpRequestException or SocketException or IOException => new(modelId, ModelFailureClass.Transport,
            $"Model '{modelId}' could not be reached: {error.Message}", inner: error),
        OperationCanceledException or TimeoutException => new(modelId, ModelFailureClass.Timeout,
            $"Model '{modelId}' did not answer in time.", inner: error),
        // The client library's own words here name its internals (an index, a parameter); the log keeps them.
        JsonException or FormatException or InvalidOperationException or ArgumentException or KeyNotFoundException =>
            new(modelId, ModelFailureClass.Malformed, $"Model '{modelId}' answered with something that is not a readable chat completion.", inner: error),
        _ => null,
    };

    TimeSpan? RetryAfterOf(ClientResultException error)
    {
        var headers = error.GetRawResponse()?.Headers;
        if (headers is null || !headers.TryGetValue("Retry-After", out var value) || value is null)
            return null;
        if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds >= 0)
            return TimeSpan.FromSeconds(seconds);
        // The HTTP-date form: how long until then.
        return DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at)
            ? TimeSpan.FromTicks(Math.Max(0, (at - time.GetUtcNow()).Ticks))
            : null;
    }

    static string Shorten(string text) => text.Length <= 300 ? text : text[..300] + "…";
}
