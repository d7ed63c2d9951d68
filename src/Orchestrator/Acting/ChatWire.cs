using System.Text.Json;
using System.Text.Json.Serialization;

namespace Orchestrator.Acting;

// OpenAI's chat-completions wire format, as its SDKs send and read it (snake_case, named here field by field so the
// names do not depend on a naming policy). Only what the endpoint reads or writes is declared; unknown fields are ignored.

/// <summary>The body of <c>POST /v1/chat/completions</c>.</summary>
public sealed record ChatCompletionRequest
{
    public string? Model { get; init; }
    public IReadOnlyList<WireMessage>? Messages { get; init; }
    public IReadOnlyList<WireTool>? Tools { get; init; }

    /// <summary><c>"auto" | "none" | "required"</c> or <c>{ "type": "function", "function": { "name" } }</c>.</summary>
    [JsonPropertyName("tool_choice")] public JsonElement? ToolChoice { get; init; }

    public float? Temperature { get; init; }
    [JsonPropertyName("top_p")] public float? TopP { get; init; }
    [JsonPropertyName("max_tokens")] public int? MaxTokens { get; init; }
    [JsonPropertyName("max_completion_tokens")] public int? MaxCompletionTokens { get; init; }
    [JsonPropertyName("presence_penalty")] public float? PresencePenalty { get; init; }
    [JsonPropertyName("frequency_penalty")] public float? FrequencyPenalty { get; init; }
    public long? Seed { get; init; }

    /// <summary>A string or an array of up to four strings.</summary>
    public JsonElement? Stop { get; init; }

    [JsonPropertyName("response_format")] public WireResponseFormat? ResponseFormat { get; init; }
    public string? User { get; init; }
    public int? N { get; init; }
    public bool? Stream { get; init; }
    [JsonPropertyName("stream_options")] public WireStreamOptions? StreamOptions { get; init; }
}

public sealed record WireMessage
{
    public string? Role { get; init; }

    /// <summary>A string, an array of content parts (<c>{ "type": "text", "text" }</c>), or null (an assistant's tool calls).</summary>
    public JsonElement? Content { get; init; }

    public string? Name { get; init; }
    [JsonPropertyName("tool_calls")] public IReadOnlyList<WireToolCall>? ToolCalls { get; init; }
    [JsonPropertyName("tool_call_id")] public string? ToolCallId { get; init; }
}

public sealed record WireToolCall
{
    /// <summary>Position among the message's tool calls; streamed chunks carry it.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? Index { get; init; }
    public string? Id { get; init; }
    public string? Type { get; init; }
    public WireFunctionCall? Function { get; init; }
}

/// <summary>A function call as OpenAI writes it: the arguments are a JSON document in a string.</summary>
public sealed record WireFunctionCall(string? Name, string? Arguments);

public sealed record WireTool
{
    public string? Type { get; init; }
    public WireFunction? Function { get; init; }
}

public sealed record WireFunction
{
    public string? Name { get; init; }
    public string? Description { get; init; }
    public JsonElement? Parameters { get; init; }
}

public sealed record WireResponseFormat
{
    public string? Type { get; init; }
    [JsonPropertyName("json_schema")] public JsonElement? JsonSchema { get; init; }
}

public sealed record WireStreamOptions
{
    [JsonPropertyName("include_usage")] public bool? IncludeUsage { get; init; }
}

/// <summary>A whole answer (<c>chat.completion</c>). <c>job_id</c> names the job that records it (also the <c>X-Job-Id</c> header).</summary>
public sealed record ChatCompletion(
    string Id,
    string Object,
    long Created,
    string Model,
    IReadOnlyList<ChatChoice> Choices,
    WireUsage Usage,
    [property: JsonPropertyName("job_id")] string JobId);

public sealed record ChatChoice(
    int Index,
    WireReply Message,
    [property: JsonPropertyName("finish_reason")] string FinishReason);

/// <summary>An answer's message, and a streamed delta of one.</summary>
public sealed record WireReply(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Role,
    string? Content,
    [property: JsonPropertyName("tool_calls"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<WireToolCall>? ToolCalls);

public sealed record WireUsage(
    [property: JsonPropertyName("prompt_tokens")] long PromptTokens,
    [property: JsonPropertyName("completion_tokens")] long CompletionTokens,
    [property: JsonPropertyName("total_tokens")] long TotalTokens);

/// <summary>One server-sent event of a streamed answer (<c>chat.completion.chunk</c>).</summary>
public sealed record ChatCompletionChunk(
    string Id,
    string Object,
    long Created,
    string Model,
    IReadOnlyList<ChunkChoice> Choices,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] WireUsage? Usage);

public sealed record ChunkChoice(
    int Index,
    WireReply Delta,
    [property: JsonPropertyName("finish_reason")] string? FinishReason);

/// <summary>OpenAI's error body: <c>{ "error": { "message", "type", "code", "param" } }</c>.</summary>
public sealed record WireErrorBody(WireError Error);

/// <summary><paramref name="Code"/> is this API's problem code (API.md, Errors); <c>trace_id</c> and <c>job_id</c> say where to look.</summary>
public sealed record WireError(
    string Message,
    string Type,
    string Code,
    string? Param,
    [property: JsonPropertyName("trace_id"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? TraceId,
    [property: JsonPropertyName("job_id"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? JobId);

/// <summary>The OpenAI wire format's JSON, source-generated; chained into the host's serializer by Acting's setup.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web,
    ReadCommentHandling = JsonCommentHandling.Skip,
    AllowTrailingCommas = true,
    NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(ChatCompletionRequest))]
[JsonSerializable(typeof(ChatCompletion))]
[JsonSerializable(typeof(ChatCompletionChunk))]
[JsonSerializable(typeof(WireErrorBody))]
internal sealed partial class ChatJson : JsonSerializerContext
{
}
