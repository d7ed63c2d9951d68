using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace Orchestrator.Gateway;

/// <summary>
/// A model's stream as it was opened: the updates read up to its first content (routing, retries and fallback are over
/// by then) and the enumerator of the rest, under a token of its own that the caller's token cancels.
/// </summary>
internal sealed class StreamHead(IAsyncEnumerator<ChatResponseUpdate> rest, List<ChatResponseUpdate> first, CancellationTokenSource cancel)
{
    public IAsyncEnumerator<ChatResponseUpdate> Rest => rest;

    public List<ChatResponseUpdate> First => first;

    public CancellationTokenSource Cancel => cancel;

    /// <summary>The model's call slot, held until the stream is disposed.</summary>
    public SemaphoreSlim? Slot { get; set; }

    /// <summary>
    /// Opens the stream and reads until an update carries something (text, a tool call, usage, a finish): a provider that
    /// fails before it says anything can still be retried or fallen back from. <paramref name="attempt"/> (the
    /// pipeline's timeout) bounds this wait only.
    /// </summary>
    public static async Task<StreamHead> OpenAsync(
        IChatClient client, string modelId, IList<ChatMessage> messages, ChatOptions options, CancellationToken outer, CancellationToken attempt)
    {
        var cancel = CancellationTokenSource.CreateLinkedTokenSource(outer);
        var stream = client.GetStreamingResponseAsync(messages, options, cancel.Token).GetAsyncEnumerator(cancel.Token);
        var first = new List<ChatResponseUpdate>();
        try
        {
            using (attempt.Register(static state => ((CancellationTokenSource)state!).Cancel(), cancel))
            {
                while (true)
                {
                    if (!await stream.MoveNextAsync())
                    {
                        if (first.Count == 0)
                            throw new ModelCallException(modelId, ModelFailureClass.Malformed,
                                $"Model '{modelId}' ended its stream before it said anything.");
                        break;
                    }
                    first.Add(stream.Current);
                    if (stream.Current.Contents.Count > 0 || stream.Current.FinishReason is not null)
                        break;
                }
            }
            // A timeout that fired just as the first content arrived must not cut the stream that follows.
            if (cancel.IsCancellationRequested && !outer.IsCancellationRequested)
                attempt.ThrowIfCancellationRequested();
            return new StreamHead(stream, first, cancel);
        }
        catch
        {
            await stream.DisposeAsync();
            cancel.Dispose();
            throw;
        }
    }
}

/// <summary>
/// A streamed model answer after routing: who answers, how it was chosen, and the updates, read once. After the last
/// update <see cref="Reply"/> is the whole answer, as <see cref="ModelGateway.CompleteAsync"/> would have returned it.
/// </summary>
internal sealed class ModelStream(CatalogModel model, StreamHead head, TokenUsage before, RoutingDecision decision) : IAsyncDisposable
{
    readonly List<ChatResponseUpdate> _updates = [];
    int _disposed;

    public string ModelId => model.Id;

    public RoutingDecision Decision => decision;

    /// <summary>True once the model's stream ended normally.</summary>
    public bool Completed { get; private set; }

    public async IAsyncEnumerable<ChatResponseUpdate> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var stop = cancellationToken.Register(static state => ((CancellationTokenSource)state!).Cancel(), head.Cancel);
        foreach (var update in head.First)
        {
            _updates.Add(update);
            yield return update;
        }
        while (await head.Rest.MoveNextAsync())
        {
            _updates.Add(head.Rest.Current);
            yield return head.Rest.Current;
        }
        Completed = true;
    }

    /// <summary>The answer so far (all of it once <see cref="Completed"/>), with usage and cost over every attempt.</summary>
    public ModelReply Reply()
    {
        var response = _updates.ToChatResponse();
        var message = response.Messages.Count > 0 ? response.Messages[^1] : new ChatMessage(ChatRole.Assistant, "");
        return new ModelReply(message, model.Id, before.Add(ModelGateway.UsageOf(model.Entry, response.Usage)), decision, response.FinishReason);
    }

    /// <summary>Why the answer ended, as the provider said it.</summary>
    public ChatFinishReason? FinishReason => _updates.LastOrDefault(u => u.FinishReason is not null)?.FinishReason;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        try
        {
            await head.Rest.DisposeAsync();
        }
        finally
        {
            head.Cancel.Dispose();
            head.Slot?.Release();
        }
    }
}
