using System.Text.Json;
using Orchestrator.Workflow;

namespace Orchestrator.Acting;

/// <summary>
/// Reads an OpenAI chat-completions body into the transcript a job freezes, checking it once at the edge: every field
/// error is collected (as <c>validation_failed</c> names them, e.g. <c>messages[2].tool_call_id</c>), none thrown.
/// </summary>
internal static class ChatRequestReader
{
    const int MaxStops = 4;

    public static ChatTranscript? Read(ChatCompletionRequest request, Dictionary<string, string[]> errors)
    {
        void Error(string field, string message) => errors.TryAdd(field, [message]);

        var messages = new List<MessageRecord>();
        if (request.Messages is not { Count: > 0 } wire)
            Error("messages", "messages must hold at least one message.");
        else
        {
            for (var i = 0; i < wire.Count; i++)
            {
                if (Message(wire[i], $"messages[{i}]", Error) is { } message)
                    messages.Add(message);
            }
        }

        var functions = new List<ChatFunction>();
        for (var i = 0; i < (request.Tools?.Count ?? 0); i++)
        {
            var tool = request.Tools![i];
            if (tool?.Type is not "function" || tool.Function is null)
                Error($"tools[{i}]", "Each tool must be { \"type\": \"function\", \"function\": { \"name\", \"parameters\"? } }.");
            else if (tool.Function.Name is not { Length: > 0 and <= 64 } name || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
                Error($"tools[{i}].function.name", "A function name is 1-64 letters, digits, '_' or '-'.");
            else if (tool.Function.Parameters is { ValueKind: not JsonValueKind.Object })
                Error($"tools[{i}].function.parameters", "parameters must be a JSON schema object.");
            else
                functions.Add(new ChatFunction(name, tool.Function.Description, tool.Function.Parameters?.Clone()));
        }

        if (request.N is { } n && n != 1)
            Error("n", "n must be 1: one choice per call.");
        if (request.Temperature is < 0 or > 2)
            Error("temperature", "temperature must be between 0 and 2.");
        if (request.TopP is < 0 or > 1)
            Error("top_p", "top_p must be between 0 and 1.");
        var maxTokens = request.MaxCompletionTokens ?? request.MaxTokens;
        if (maxTokens is < 1)
            Error(request.MaxCompletionTokens is null ? "max_tokens" : "max_completion_tokens", "The token limit must be at least 1.");

        List<string>? stop = null;
        switch (request.Stop)
        {
            case null or { ValueKind: JsonValueKind.Null }:
                break;
            case { ValueKind: JsonValueKind.String } one:
                stop = [one.GetString()!];
                break;
            case { ValueKind: JsonValueKind.Array } many when many.GetArrayLength() <= MaxStops && many.EnumerateArray().All(s => s.ValueKind == JsonValueKind.String):
                stop = many.EnumerateArray().Select(s => s.GetString()!).ToList();
                break;
            default:
                Error("stop", $"stop must be a string or an array of at most {MaxStops} strings.");
                break;
        }
        if (stop?.Any(s => s.Contains('\0')) == true)
            Error("stop", "stop must not contain a NUL character (\\u0000).");
        if (request.User?.Contains('\0') == true)
            Error("user", "user must not contain a NUL character (\\u0000).");

        string? toolChoice = null;
        switch (request.ToolChoice)
        {
            case null or { ValueKind: JsonValueKind.Null }:
                break;
            case { ValueKind: JsonValueKind.String } mode when mode.GetString() is "auto" or "none" or "required":
                toolChoice = mode.GetString();
                break;
            case { ValueKind: JsonValueKind.Object } named when named.TryGetProperty("function", out var function) &&
                                                              function.ValueKind == JsonValueKind.Object &&
                                                              function.TryGetProperty("name", out var fn) && fn.ValueKind == JsonValueKind.String &&
                                                              functions.Any(f => f.Name == fn.GetString()):
                toolChoice = fn.GetString();
                break;
            default:
                Error("tool_choice", "tool_choice must be auto, none, required, or { \"type\": \"function\", \"function\": { \"name\" } } naming one of the tools.");
                break;
        }

        var format = request.ResponseFormat?.Type;
        if (format is not (null or "text" or "json_object" or "json_schema"))
            Error("response_format.type", "response_format.type must be text, json_object or json_schema.");
        else if (format == "json_schema" && request.ResponseFormat!.JsonSchema is not { ValueKind: JsonValueKind.Object })
            Error("response_format.json_schema", "A json_schema response format needs its json_schema object.");

        if (errors.Count > 0)
            return null;
        var settings = new ChatSettings
        {
            Temperature = request.Temperature,
            TopP = request.TopP,
            MaxTokens = maxTokens,
            Stop = stop,
            PresencePenalty = request.PresencePenalty,
            FrequencyPenalty = request.FrequencyPenalty,
            Seed = request.Seed,
            ResponseFormat = format,
            JsonSchema = request.ResponseFormat?.JsonSchema?.Clone(),
            ToolChoice = toolChoice,
            User = request.User,
        };
        return new ChatTranscript
        {
            Messages = messages,
            Functions = functions.Count > 0 ? functions : null,
            Settings = settings == Unset ? null : settings,
        };
    }

    static readonly ChatSettings Unset = new();

    static MessageRecord? Message(WireMessage? message, string at, Action<string, string> error)
    {
        if (message is null)
        {
            error(at, "A message must be an object with role and content.");
            return null;
        }
        // OpenAI's newer name for the system role; every provider this service speaks to knows "system".
        var role = message.Role == "developer" ? "system" : message.Role;
        if (role is not ("system" or "user" or "assistant" or "tool"))
        {
            error($"{at}.role", "role must be one of system, developer, user, assistant, tool.");
            return null;
        }
        if (!TryText(message.Content, out var text))
        {
            error($"{at}.content", "content must be a string or an array of text parts; other parts (images, audio) are not supported.");
            return null;
        }
        // The same rule as /v1/act: the store keeps no NUL character in text (PostgreSQL refuses it), and the call is
        // recorded after it is answered, so a NUL refused then would lose the record of an answered call.
        if (text?.Contains('\0') == true || message.ToolCallId?.Contains('\0') == true
            || message.ToolCalls?.Any(c => c?.Function?.Arguments?.Contains('\0') == true) == true)
        {
            error($"{at}.content", "A message must not contain a NUL character (\\u0000).");
            return null;
        }
        if (role == "tool")
        {
            if (message.ToolCallId is not { Length: > 0 } callId)
            {
                error($"{at}.tool_call_id", "A tool message must name the tool_call_id it answers.");
                return null;
            }
            return new MessageRecord(role, text ?? "", null, callId);
        }

        List<ToolCallRecord>? calls = null;
        if (message.ToolCalls is { Count: > 0 } wire)
        {
            if (role != "assistant")
            {
                error($"{at}.tool_calls", "Only an assistant message may carry tool_calls.");
                return null;
            }
            calls = [];
            for (var i = 0; i < wire.Count; i++)
            {
                var call = wire[i];
                if (call?.Function?.Name is not { Length: > 0 } name || call.Id is not { Length: > 0 } id)
                {
                    error($"{at}.tool_calls[{i}]", "A tool call needs its id and function.name.");
                    return null;
                }
                if (!TryArguments(call.Function.Arguments, out var arguments))
                {
                    error($"{at}.tool_calls[{i}].function.arguments", "arguments must be a JSON object, as a string.");
                    return null;
                }
                calls.Add(new ToolCallRecord(id, name, arguments));
            }
        }
        if (text is null && calls is null)
        {
            error($"{at}.content", "content is required (it may be null only on an assistant message with tool_calls).");
            return null;
        }
        return new MessageRecord(role, string.IsNullOrEmpty(text) ? null : text, calls);
    }

    static bool TryText(JsonElement? content, out string? text)
    {
        text = null;
        switch (content)
        {
            case null or { ValueKind: JsonValueKind.Null or JsonValueKind.Undefined }:
                return true;
            case { ValueKind: JsonValueKind.String } value:
                text = value.GetString();
                return true;
            case { ValueKind: JsonValueKind.Array } parts:
                var joined = new System.Text.StringBuilder();
                foreach (var part in parts.EnumerateArray())
                {
                    if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var type) || type.GetString() != "text" ||
                        !part.TryGetProperty("text", out var partText) || partText.ValueKind != JsonValueKind.String)
                        return false;
                    joined.Append(partText.GetString());
                }
                text = joined.ToString();
                return true;
            default:
                return false;
        }
    }

    static bool TryArguments(string? json, out JsonElement arguments)
    {
        arguments = default;
        if (string.IsNullOrWhiteSpace(json))
        {
            arguments = JsonDocument.Parse("{}").RootElement.Clone();
            return true;
        }
        try
        {
            using var document = JsonDocument.Parse(json);
            arguments = document.RootElement.Clone();
            return arguments.ValueKind == JsonValueKind.Object;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
