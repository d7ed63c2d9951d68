using System.Text.Json;
using Microsoft.Extensions.AI;
using Orchestrator.Memory;

namespace Orchestrator.Workflow;

/// <summary>Ids of the memory nodes of a turn; a policy node id has no '/', so none of them can clash with one.</summary>
internal static class MemoryIds
{
    public const string Recall = "memory/recall";
    public const string Write = "memory/write";
    public const string Summarize = "memory/summarize";
    public const string Summary = "memory/summary";

    public static bool IsMemory(string nodeId) => nodeId is Recall or Write or Summarize or Summary;
}

/// <summary>
/// One turn's memory, as the walk runs it for a request with a <c>session</c> on an intent with a <c>memory</c> block:
/// recall before the first model node; after the answer, write the user's words, the tool calls with their results and
/// the reply, each with its own role; then, when the write says a summary is due, a model node (routed and recorded
/// like any other) summarises the oldest turns and a memory node stores the summary with the facts found in them.
/// A summary that fails or comes back empty replaces nothing.
/// </summary>
internal sealed class MemoryTurn(MemoryPolicy memory, ActRequest request, string session)
{
    public const string DefaultSummaryPrompt =
        "You summarise a conversation for your own later use. Keep what the user wants, decided and asked for, and what was done. " +
        "Keep every number, name, path and id exactly as written. Answer with the summary only.";

    /// <summary>Longest tool result kept with its call; the rest is cut (the call and the start of its result stay together).</summary>
    const int MaxToolResultChars = 2000;

    readonly List<NewMemoryItem> _tools = [];

    public static MemoryTurn? For(IntentPolicy policy, ActRequest request) =>
        policy.Memory is { } memory && !string.IsNullOrWhiteSpace(request.Session) ? new MemoryTurn(memory, request, request.Session) : null;

    /// <summary>The user's new words: the input, or the last user message. Only these are ever remembered as the user's.</summary>
    string UserWords => request.Input is { Length: > 0 } input
        ? input
        : request.Messages?.LastOrDefault(m => m.Role == "user")?.Content ?? "";

    public async Task<MemoryRecall> RecallAsync(IStepExecutor steps, List<string> path, CancellationToken cancellationToken)
    {
        var recalled = await steps.RunAsync(NodeKindHandlers.Memory,
            new MemoryStep(MemoryIds.Recall, MemoryOperations.Recall, session, memory, [], Query: UserWords), cancellationToken);
        path.Add(MemoryIds.Recall);
        return recalled.Recall!;
    }

    /// <summary>A tool call and its result, kept as one item so the pair is summarised or evicted together.</summary>
    public void ToolCalled(ToolCallRecord call, string result) =>
        _tools.Add(new NewMemoryItem(MemoryKinds.Turn, MemoryRoles.Tool,
            $"{call.Name} {JsonSerializer.Serialize(call.Arguments, WorkflowJson.Default.JsonElement)} -> {(result.Length <= MaxToolResultChars ? result : result[..MaxToolResultChars] + "…")}"));

    public async Task RememberAsync(string answer, IStepExecutor steps, List<string> path, CancellationToken cancellationToken)
    {
        var items = new List<NewMemoryItem>();
        if (UserWords is { Length: > 0 } words)
            items.Add(new NewMemoryItem(MemoryKinds.Turn, MemoryRoles.User, words));
        items.AddRange(_tools);
        if (answer.Length > 0)
            items.Add(new NewMemoryItem(MemoryKinds.Turn, MemoryRoles.Assistant, answer));
        var parents = WorkflowWalk.Last(path);
        var written = await steps.RunAsync(NodeKindHandlers.Memory,
            new MemoryStep(MemoryIds.Write, MemoryOperations.Write, session, memory, parents, Items: items), cancellationToken);
        path.Add(MemoryIds.Write);
        if (written.Written?.SummaryDue is { } due)
            await SummarizeAsync(due, steps, path, cancellationToken);
    }

    async Task SummarizeAsync(SummaryDue due, IStepExecutor steps, List<string> path, CancellationToken cancellationToken)
    {
        var summarize = memory.Summarize!;
        var node = new PolicyNode
        {
            Id = "memory-summarize", Kind = NodeKinds.Model, Role = "summarizer",
            Prompt = summarize.Prompt ?? DefaultSummaryPrompt, Requires = summarize.Requires,
        };
        var transcript = string.Join("\n", due.Turns.Select(t => $"{t.Role}: {t.Text}"));
        var messages = new List<ChatMessage>
        {
            new(ChatRole.System, node.Prompt),
            new(ChatRole.User, $"Summary so far:\n{due.Previous?.Text ?? "(none)"}\n\nTurns to fold into it, oldest first:\n{transcript}"),
        };
        string text;
        try
        {
            text = (await WorkflowWalk.ModelAsync(steps, new ModelStep(MemoryIds.Summarize, node, messages, null, [MemoryIds.Write]), path, cancellationToken)).Text ?? "";
        }
        catch (StepFailed failed) when (!failed.Failure.Canceled)
        {
            // The answer is given; a summary that could not be made leaves the turns as they are, to try again next turn.
            return;
        }
        // The facts are found in the turns themselves, not taken from the summary: summaries drop exact numbers and paths.
        var facts = due.Turns.SelectMany(t => FactsLedger.Extract(t.Text, whole: t.Role == MemoryRoles.Tool).Select(f => new NewMemoryItem(MemoryKinds.Fact, t.Role, f))).ToList();
        var replaces = due.Turns.Select(t => t.Id).Concat(due.Previous is { } previous ? [previous.Id] : []).ToList();
        await steps.RunAsync(NodeKindHandlers.Memory,
            new MemoryStep(MemoryIds.Summary, MemoryOperations.Summary, session, memory, [MemoryIds.Summarize], Items: facts, Summary: text, Replaces: replaces),
            cancellationToken);
        path.Add(MemoryIds.Summary);
    }
}
