using System.Text.Json;
using Microsoft.Extensions.AI;

namespace Orchestrator.Workflow;

/// <summary>
/// A conversation exactly as an OpenAI-compatible caller sent it (<c>/v1/chat/completions</c>): every message with its
/// tool calls and tool results, the caller's own functions, and its sampling settings. Frozen in the job's request, so a
/// replay asks the recorded model node the very question the live call asked.
/// </summary>
public sealed record ChatTranscript
{
    public required IReadOnlyList<MessageRecord> Messages { get; init; }

    /// <summary>Functions the caller declared; the model may call them, and the caller, not this service, runs them.</summary>
    public IReadOnlyList<ChatFunction>? Functions { get; init; }

    public ChatSettings? Settings { get; init; }

    /// <summary>The conversation as the model is given it.</summary>
    public List<ChatMessage> ToMessages() => Messages.Select(m => m.ToMessage()).ToList();

    /// <summary>The caller's functions as declarations (their JSON schemas as given); null when there are none.</summary>
    public IList<AITool>? Tools() => Functions is { Count: > 0 } functions
        ? functions.Select(f => (AITool)AIFunctionFactory.CreateDeclaration(f.Name, f.Description, f.Parameters ?? EmptySchema)).ToList()
        : null;

    static readonly JsonElement EmptySchema = JsonDocument.Parse("""{"type":"object","properties":{}}""").RootElement.Clone();
}

/// <summary>A function an OpenAI-compatible caller declared: its name, description and JSON schema of its arguments.</summary>
public sealed record ChatFunction(string Name, string? Description, JsonElement? Parameters);

/// <summary>The sampling settings an OpenAI-compatible caller set, passed on to the model as given.</summary>
public sealed record ChatSettings
{
    public float? Temperature { get; init; }
    public float? TopP { get; init; }
    public int? MaxTokens { get; init; }
    public IReadOnlyList<string>? Stop { get; init; }
    public float? PresencePenalty { get; init; }
    public float? FrequencyPenalty { get; init; }
    public long? Seed { get; init; }

    /// <summary><c>text</c>, <c>json_object</c> or <c>json_schema</c> (then <see cref="JsonSchema"/> holds OpenAI's <c>json_schema</c> object).</summary>
    public string? ResponseFormat { get; init; }

    public JsonElement? JsonSchema { get; init; }

    /// <summary><c>auto</c>, <c>none</c>, <c>required</c>, or a function's name the model must call.</summary>
    public string? ToolChoice { get; init; }

    /// <summary>The caller's end user (OpenAI's <c>user</c>), passed on for the provider's abuse monitoring.</summary>
    public string? User { get; init; }

    /// <summary>The model's options for these settings (tools and seed are the gateway's to add).</summary>
    public ChatOptions ToOptions()
    {
        var options = new ChatOptions
        {
            Temperature = Temperature,
            TopP = TopP,
            MaxOutputTokens = MaxTokens,
            StopSequences = Stop?.ToList(),
            PresencePenalty = PresencePenalty,
            FrequencyPenalty = FrequencyPenalty,
            Seed = Seed,
            ResponseFormat = ResponseFormat switch
            {
                "json_object" => ChatResponseFormat.Json,
                "json_schema" when JsonSchema is { } schema => ChatResponseFormat.ForJsonSchema(
                    schema.TryGetProperty("schema", out var inner) ? inner : schema,
                    schema.TryGetProperty("name", out var name) ? name.GetString() : null,
                    schema.TryGetProperty("description", out var description) ? description.GetString() : null),
                "text" => ChatResponseFormat.Text,
                _ => null,
            },
            ToolMode = ToolChoice switch
            {
                null => null,
                "auto" => ChatToolMode.Auto,
                "none" => ChatToolMode.None,
                "required" => ChatToolMode.RequireAny,
                var function => ChatToolMode.RequireSpecific(function),
            },
        };
        if (User is not null)
        {
            // OpenAI's wire field; M.E.AI has no option of its own for it, so the OpenAI client is given it raw.
            options.RawRepresentationFactory = _ => new OpenAI.Chat.ChatCompletionOptions { EndUserId = User };
            (options.AdditionalProperties ??= [])["user"] = User;
        }
        return options;
    }
}
