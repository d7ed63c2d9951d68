using Orchestrator.Gateway;

namespace Orchestrator.Memory;

/// <summary>
/// An intent policy's <c>memory</c> block: what is recalled before the first model node of a request with a
/// <c>session</c>, within how many tokens, when a session is summarised, and what is kept.
/// </summary>
public sealed record MemoryPolicy
{
    public MemoryRecallPolicy Recall { get; set; } = new();

    /// <summary>Most tokens (about four characters each) the recalled context may add to the model's conversation.</summary>
    public int BudgetTokens { get; set; } = 1000;

    /// <summary>When earlier turns are folded into a summary; null: never.</summary>
    public MemorySummarizePolicy? Summarize { get; set; }

    public MemoryRetentionPolicy Retention { get; set; } = new();

    /// <summary><c>session</c>: only this session is searched; <c>principal</c>: every session of the caller's principal is.</summary>
    public string Scope { get; set; } = MemoryScopes.Session;
}

public sealed record MemoryRecallPolicy
{
    /// <summary>The newest turns recalled as they were said.</summary>
    public int Recent { get; set; } = 6;

    /// <summary>Most items found by text search on the user's new words.</summary>
    public int Relevant { get; set; } = 4;

    /// <summary>Whether the session's summary and the facts kept beside it are recalled.</summary>
    public bool Summary { get; set; } = true;
}

public sealed record MemorySummarizePolicy
{
    /// <summary>Summarise once the session holds more than this many turns.</summary>
    public int? AfterTurns { get; set; }

    /// <summary>Summarise once the session's turns hold more than this many tokens.</summary>
    public int? AfterTokens { get; set; }

    /// <summary>The summariser's instructions; a default when none.</summary>
    public string? Prompt { get; set; }

    /// <summary>What the summarising model must offer (tags, quality), as a model node's <c>requires</c>.</summary>
    public ModelRequirements? Requires { get; set; }
}

public sealed record MemoryRetentionPolicy
{
    /// <summary>Most items one session keeps; the oldest turns go first, the summary stays.</summary>
    public int? MaxItems { get; set; }

    /// <summary>Most bytes of text one session keeps.</summary>
    public long? MaxBytes { get; set; }

    /// <summary>Most items one principal keeps over all its sessions.</summary>
    public int? MaxPrincipalItems { get; set; }

    /// <summary>How long an item is remembered; null: until evicted or forgotten.</summary>
    public TimeSpan? Ttl { get; set; }
}

public static class MemoryScopes
{
    public const string Session = "session";
    public const string Principal = "principal";
}

/// <summary>What makes a memory block well-formed; the workflow's policy rules call it.</summary>
public static class MemoryPolicyRules
{
    public const int MaxBudgetTokens = 100_000;

    public static IEnumerable<string> Check(MemoryPolicy memory)
    {
        if (memory.Recall is null || memory.Retention is null)
        {
            yield return "'memory.recall' and 'memory.retention' must be objects when given.";
            yield break;
        }
        if (memory.Recall.Recent is < 0 or > 100)
            yield return "'memory.recall.recent' must be between 0 and 100.";
        if (memory.Recall.Relevant is < 0 or > 100)
            yield return "'memory.recall.relevant' must be between 0 and 100.";
        if (memory.BudgetTokens is < 1 or > MaxBudgetTokens)
            yield return $"'memory.budgetTokens' must be between 1 and {MaxBudgetTokens}.";
        if (memory.Scope is not (MemoryScopes.Session or MemoryScopes.Principal))
            yield return $"'memory.scope' is '{memory.Scope}'; it must be 'session' or 'principal'.";
        if (memory.Summarize is { } summarize)
        {
            if (summarize.AfterTurns is null && summarize.AfterTokens is null)
                yield return "'memory.summarize' needs 'afterTurns' or 'afterTokens'.";
            if (summarize.AfterTurns is { } turns && turns <= memory.Recall.Recent)
                yield return "'memory.summarize.afterTurns' must be more than 'memory.recall.recent' (the recent turns stay as they were said).";
            if (summarize.AfterTokens is < 1)
                yield return "'memory.summarize.afterTokens' must be positive.";
        }
        var retention = memory.Retention;
        if (retention.MaxItems is < 2)
            yield return "'memory.retention.maxItems' must be at least 2 (one turn).";
        if (retention.MaxBytes is < 1)
            yield return "'memory.retention.maxBytes' must be positive.";
        if (retention.MaxPrincipalItems is < 2)
            yield return "'memory.retention.maxPrincipalItems' must be at least 2.";
        if (retention.Ttl is { } ttl && ttl <= TimeSpan.Zero)
            yield return "'memory.retention.ttl' must be positive.";
    }
}
