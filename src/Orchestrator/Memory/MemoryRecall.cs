namespace Orchestrator.Memory;

/// <summary>Whose memory: the caller's tenant and principal, never a value from the request, and the session.</summary>
public sealed record MemoryKey(string Tenant, string Principal, string Session);

/// <summary>One recalled item as the model is given it: <see cref="Line"/> is the exact text injected, <see cref="Tokens"/> its cost.</summary>
public sealed record RecalledItem(string Id, string Kind, string Role, string Reason, string Line, int Tokens, double? Score);

public sealed record RecallCounts(int Summary, int Facts, int Recent, int Relevant);

/// <summary>
/// What a memory node recalled before a model node: the items (in the order they are injected), how many of each
/// reason, the tokens they cost against the budget, and how many candidates did not fit. Recorded as the node's
/// output, so a rerun reads the same recall whatever the store holds by then.
/// </summary>
public sealed record MemoryRecall(
    string Session, string Scope, IReadOnlyList<RecalledItem> Items, RecallCounts Counts, int Tokens, int BudgetTokens, int Dropped)
{
    /// <summary>
    /// The recall as conversation messages: one system message with the summary, facts and found items, each line
    /// saying who said it, then the recent turns with the roles they were said in.
    /// </summary>
    public IReadOnlyList<(string Role, string Text)> Messages()
    {
        var messages = new List<(string, string)>();
        var block = Items.Where(i => i.Reason != RecallReasons.Recent || i.Role == MemoryRoles.Tool).Select(i => i.Line).ToList();
        if (block.Count > 0)
            messages.Add((MemoryRoles.System, RecallText.Header + "\n" + string.Join("\n", block)));
        foreach (var item in Items.Where(i => i.Reason == RecallReasons.Recent && i.Role != MemoryRoles.Tool))
            messages.Add((item.Role, item.Line));
        return messages;
    }
}

public static class RecallReasons
{
    public const string Summary = "summary";
    public const string Fact = "fact";
    public const string Recent = "recent";
    public const string Relevant = "relevant";
}

/// <summary>How recalled items read to the model, and what they cost: the budget is counted on exactly this text.</summary>
internal static class RecallText
{
    public const string Header = "Memory of earlier conversation with this user (recalled; each line says who said it):";

    public static int HeaderTokens => Tokens(Header) + 1;

    public static string Line(MemoryItem item, string reason)
    {
        if (reason == RecallReasons.Recent && item.Role is MemoryRoles.User or MemoryRoles.Assistant)
            return item.Text;
        return item.Kind == MemoryKinds.Summary
            ? "Summary of earlier turns: " + item.Text
            : item.Role switch
            {
                MemoryRoles.User => "The user said: " + item.Text,
                MemoryRoles.Assistant => "You (the assistant) said: " + item.Text,
                MemoryRoles.Tool => "A tool was called, with this result: " + item.Text,
                _ => "Noted: " + item.Text,
            };
    }

    /// <summary>About four characters a token, as the gateway's simulated provider counts them.</summary>
    public static int Tokens(string text) => Math.Max(1, (text.Length + 3) / 4);
}

/// <summary>
/// Picks what is recalled within the budget, in priority order: the summary, the facts kept beside it (newest
/// first), the recent turns (newest first, each turn whole), then items found by text search (best first). A
/// candidate that does not fit is dropped and counted; the total never exceeds the budget.
/// </summary>
internal static class RecallBudget
{
    public static MemoryRecall Fit(
        MemoryKey key, MemoryPolicy policy, MemoryItem? summary, IReadOnlyList<MemoryItem> facts,
        IReadOnlyList<IReadOnlyList<MemoryItem>> recentTurns, IReadOnlyList<(MemoryItem Item, double Score)> relevant)
    {
        var budget = policy.BudgetTokens;
        var used = 0;
        var dropped = 0;
        var blockOpened = false;
        var chosen = new List<RecalledItem>();
        var seen = new HashSet<long>();

        bool Take(IReadOnlyList<(MemoryItem Item, string Reason, double? Score)> group)
        {
            var items = group.Select(g => (g.Item, g.Reason, g.Score, Line: RecallText.Line(g.Item, g.Reason))).ToList();
            var cost = items.Sum(i => RecallText.Tokens(i.Line));
            var opens = !blockOpened && items.Any(i => i.Reason != RecallReasons.Recent || i.Item.Role == MemoryRoles.Tool);
            if (opens)
                cost += RecallText.HeaderTokens;
            if (used + cost > budget)
            {
                dropped += items.Count;
                return false;
            }
            used += cost;
            blockOpened |= opens;
            foreach (var i in items)
            {
                seen.Add(i.Item.Seq);
                chosen.Add(new RecalledItem(i.Item.Seq.ToString(System.Globalization.CultureInfo.InvariantCulture), i.Item.Kind, i.Item.Role, i.Reason,
                    i.Line, RecallText.Tokens(i.Line), i.Score));
            }
            return true;
        }

        var counts = new int[4];
        if (summary is not null && Take([(summary, RecallReasons.Summary, null)]))
            counts[0]++;
        foreach (var fact in facts)
            if (Take([(fact, RecallReasons.Fact, null)]))
                counts[1]++;
        // Newest turn first, so what was said last survives a tight budget; injected oldest first below.
        var recent = new List<RecalledItem>();
        foreach (var turn in recentTurns)
        {
            var before = chosen.Count;
            if (!Take(turn.Select(i => (i, RecallReasons.Recent, (double?)null)).ToList()))
            {
                // A turn is whole or absent; older turns would leave a gap in the conversation, so they go too.
                dropped += recentTurns.SkipWhile(t => t != turn).Skip(1).Sum(t => t.Count);
                break;
            }
            recent.InsertRange(0, chosen.GetRange(before, chosen.Count - before));
            chosen.RemoveRange(before, chosen.Count - before);
            counts[2]++;
        }
        foreach (var (item, score) in relevant)
        {
            if (seen.Contains(item.Seq))
                continue;
            if (Take([(item, RecallReasons.Relevant, score)]))
                counts[3]++;
        }
        chosen.AddRange(recent);
        return new MemoryRecall(key.Session, policy.Scope, chosen, new RecallCounts(counts[0], counts[1], counts[2], counts[3]), used, budget, dropped);
    }
}
