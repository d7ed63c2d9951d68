namespace Orchestrator.Workflow;

/// <summary>The body of <c>POST /v1/act</c> (API.md, Acting). After admission it is stored, normalized, as the job's frozen request.</summary>
public sealed record ActRequest
{
    /// <summary>Intent to run, e.g. <c>text/respond</c>; defaults to the configured default intent.</summary>
    public string? Intent { get; init; }

    /// <summary>Plain-text input; or use <see cref="Messages"/>.</summary>
    public string? Input { get; init; }

    public IReadOnlyList<ActMessage>? Messages { get; init; }

    /// <summary>Optional session id (memory).</summary>
    public string? Session { get; init; }

    /// <summary><c>sync</c> (default) or <c>async</c>.</summary>
    public string? Mode { get; init; }

    /// <summary><c>high</c>, <c>normal</c> (default) or <c>low</c>.</summary>
    public string? Priority { get; init; }

    /// <summary>Milliseconds from admission until the job must be done; defaults to the intent policy's.</summary>
    public long? DeadlineMs { get; init; }

    public ActRouting? Routing { get; init; }

    /// <summary>Optional subset of the intent's capabilities, e.g. <c>fs/write</c>.</summary>
    public IReadOnlyList<string>? Tools { get; init; }

    public ActVersions? Versions { get; init; }

    /// <summary>Optional; the <c>Idempotency-Key</c> header works too.</summary>
    public string? IdempotencyKey { get; init; }

    /// <summary>
    /// The conversation of a <c>/v1/chat/completions</c> call, as its caller sent it; set by that endpoint only
    /// (<c>/v1/act</c> refuses it). When present, a model node is asked exactly this conversation with these functions.
    /// </summary>
    public ChatTranscript? Chat { get; init; }

    /// <summary>
    /// What the run's randomness is seeded from instead of its trace id; set by evaluations only (<c>/v1/act</c> refuses
    /// it), so a baseline and a candidate draw the same seeds case by case and an evaluation run twice draws them again.
    /// </summary>
    public string? Seed { get; init; }
}

public sealed record ActMessage
{
    /// <summary><c>system</c>, <c>user</c> or <c>assistant</c>.</summary>
    public string? Role { get; init; }

    public string? Content { get; init; }
}

public sealed record ActRouting
{
    /// <summary><c>latency-first</c>, <c>quality-first</c> or <c>cost-first</c>.</summary>
    public string? Strategy { get; init; }

    /// <summary>Optional allow-list of model ids.</summary>
    public IReadOnlyList<string>? Models { get; init; }

    /// <summary>Send a second call to the next candidate when the first is slow.</summary>
    public bool? Hedge { get; init; }
}

public sealed record ActVersions
{
    public string? Prompts { get; init; }
    public string? Policy { get; init; }
    public string? Routing { get; init; }
}
