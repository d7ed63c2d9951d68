using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;

namespace Orchestrator.Gateway;

/// <summary>
/// The built-in <c>simulated</c> provider: deterministic replies, configurable latency and failure rate,
/// token counts, and scripted tool calls, so demos, tests and benchmarks need no model server.
/// </summary>
/// <remarks>
/// Replies echo the last user message (or <see cref="ModelEntry.Reply"/>). When tools are offered, each line
/// of the first user message of the form <c>/call &lt;function&gt; &lt;json arguments&gt;</c> becomes one tool
/// call, one per turn, in order; once all have been answered the model replies with a summary of the results.
/// Randomness (jitter, failures) is drawn from <see cref="ChatOptions.Seed"/>, so a recorded run repeats exactly.
/// A last user message containing <c>/context</c> is answered with every message the model was given, one
/// <c>role: text</c> per message, so a test (or a demo) can see exactly what memory put in front of the model.
/// </remarks>
internal sealed class SimulatedChatClient(ModelEntry model, TimeProvider time) : IChatClient
{
    public const string CallDirective = "/call ";
    public const string ContextDirective = "/context";

    public async Task<ChatResponse> GetResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var history = messages as IList<ChatMessage> ?? messages.ToList();
        // Seeded per call, so a replay draws the same jitter and failures; drawn only when configured.
        var random = model.LatencyJitterMs > 0 || model.FailureRate > 0 ? RandomFor(options?.Seed) : null;

        var latency = LatencyOf(model, random);
        if (latency > 0)
            await Task.Delay(TimeSpan.FromMilliseconds(latency), time, cancellationToken);
        cancellationToken.ThrowIfCancellationRequested();

        if (model.FailureRate > 0 && random!.NextDouble() < model.FailureRate)
            throw new ModelCallException(model.Id, ModelFailureClass.ServerError, $"Simulated failure of model '{model.Id}'.");

        var reply = options?.Tools is { Count: > 0 }
            ? NextToolTurn(history)
            : null;
        reply ??= new ChatMessage(ChatRole.Assistant, model.Reply ?? Echo(history));

        var inputTokens = history.Sum(m => Tokens(m));
        return new ChatResponse(reply)
        {
            ModelId = model.ModelName,
            FinishReason = reply.Contents.OfType<FunctionCallContent>().Any() ? ChatFinishReason.ToolCalls : ChatFinishReason.Stop,
            Usage = new UsageDetails
            {
                InputTokenCount = inputTokens,
                OutputTokenCount = Tokens(reply),
                TotalTokenCount = inputTokens + Tokens(reply),
            },
        };
    }

    static Random RandomFor(long? seed) => seed is { } s ? new Random(unchecked((int)(s ^ (s >> 32)))) : Random.Shared;

    static int LatencyOf(ModelEntry model, Random? random) =>
        model.LatencyMs + (model.LatencyJitterMs > 0 ? random!.Next(model.LatencyJitterMs + 1) : 0);

    /// <summary>
    /// The latency a call with this seed is given (the model's LatencyMs plus its seeded jitter): what an evaluation counts
    /// for a simulated call, so its figures repeat exactly where wall-clock time on a loaded machine would not.
    /// </summary>
    public static int LatencyOf(ModelEntry model, long seed) => LatencyOf(model, model.LatencyJitterMs > 0 ? RandomFor(seed) : null);

    static ChatMessage? NextToolTurn(IList<ChatMessage> history)
    {
        var firstUser = history.FirstOrDefault(m => m.Role == ChatRole.User)?.Text ?? "";
        var script = firstUser.Split('\n')
            .Select(line => line.Trim())
            .Where(line => line.StartsWith(CallDirective, StringComparison.Ordinal))
            .ToList();
        var done = history.Count(m => m.Role == ChatRole.Assistant && m.Contents.OfType<FunctionCallContent>().Any());
        if (done < script.Count)
        {
            var line = script[done][CallDirective.Length..].Trim();
            var space = line.IndexOf(' ');
            var name = space < 0 ? line : line[..space];
            var json = space < 0 ? "{}" : line[(space + 1)..];
            // Names not offered are still called: the orchestrator, not the model, enforces capabilities.
            return new ChatMessage(ChatRole.Assistant, [new FunctionCallContent($"call_{done + 1}", name, ParseArguments(json) ?? [])]);
        }

        var results = history.SelectMany(m => m.Contents.OfType<FunctionResultContent>()).ToList();
        if (results.Count == 0)
            return null;
        var summary = new StringBuilder($"Done after {results.Count} tool call(s).");
        if (results[^1].Result is { } last)
            summary.Append(" Last result: ").Append(Truncate(last.ToString() ?? "", 300));
        return new ChatMessage(ChatRole.Assistant, summary.ToString());
    }

    static Dictionary<string, object?>? ParseArguments(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            return document.RootElement.ValueKind == JsonValueKind.Object
                ? document.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone())
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    string Echo(IList<ChatMessage> history)
    {
        var last = history.LastOrDefault(m => m.Role == ChatRole.User)?.Text ?? "";
        if (last.Contains(ContextDirective, StringComparison.Ordinal))
            return $"[{model.Id}] context:\n" + Truncate(string.Join("\n", history.Select(m => $"{m.Role.Value}: {m.Text}")), 20_000);
        return $"[{model.Id}] {Truncate(last, 2000)}";
    }

    static string Truncate(string text, int max) => text.Length <= max ? text : text[..max] + "…";

    /// <summary>About four characters a token, as English text averages with common tokenizers.</summary>
    static long Tokens(ChatMessage message)
    {
        long chars = message.Text?.Length ?? 0;
        foreach (var content in message.Contents)
        {
            if (content is FunctionCallContent call)
                chars += call.Name.Length + (call.Arguments?.Sum(a => a.Key.Length + (a.Value?.ToString()?.Length ?? 0)) ?? 0);
            else if (content is FunctionResultContent result)
                chars += result.Result?.ToString()?.Length ?? 0;
        }
        return Math.Max(1, (chars + 3) / 4);
    }

    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        StreamAsync(messages, options, cancellationToken);

    async IAsyncEnumerable<ChatResponseUpdate> StreamAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // The whole reply is made as a call would make it (latency, failures, tool turns), then sent in a few deltas, as
        // a provider streams: text in about four pieces, each tool call whole, usage and the finish last.
        var response = await GetResponseAsync(messages, options, cancellationToken);
        var message = response.Messages[^1];
        var id = "sim-" + Guid.NewGuid().ToString("N");
        foreach (var piece in Pieces(message.Text, 4))
            yield return new ChatResponseUpdate(ChatRole.Assistant, piece) { MessageId = id, ModelId = response.ModelId };
        foreach (var call in message.Contents.OfType<FunctionCallContent>())
            yield return new ChatResponseUpdate(ChatRole.Assistant, [call]) { MessageId = id, ModelId = response.ModelId };
        yield return new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(response.Usage!)])
        {
            MessageId = id, ModelId = response.ModelId, FinishReason = response.FinishReason,
        };
    }

    /// <summary>Cuts text into at most <paramref name="count"/> pieces at spaces; joined, they are the text again.</summary>
    internal static IEnumerable<string> Pieces(string text, int count)
    {
        var start = 0;
        for (var i = 1; i < count && start < text.Length; i++)
        {
            var cut = text.IndexOf(' ', Math.Max(start + 1, text.Length * i / count));
            if (cut < 0)
                break;
            yield return text[start..(cut + 1)];
            start = cut + 1;
        }
        if (start < text.Length)
            yield return text[start..];
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;

    public void Dispose()
    {
    }
}
