using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Json.Schema;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.AI.Evaluation;
using EvaluationContext = Microsoft.Extensions.AI.Evaluation.EvaluationContext;

namespace Orchestrator.Evaluation;

/// <summary>
/// What one case run produced, as the assertions see it: the answer, the job's status, the path through its graph
/// (node ids and the capabilities its effects called), its latency and cost. Passed to the evaluators as their
/// additional context (Microsoft.Extensions.AI.Evaluation's <see cref="EvaluationContext"/>).
/// </summary>
internal sealed class RunFacts(string? text, string status, string? errorCode, IReadOnlyList<string> nodes, IReadOnlyList<string> tools,
    double? latencyMs, double costUsd, string? model)
    : EvaluationContext("orchestrator.run", $"status {status}; path {string.Join(" > ", nodes)}")
{
    public string? Text => text;
    public string Status => status;
    public string? ErrorCode => errorCode;
    public IReadOnlyList<string> Nodes => nodes;
    public IReadOnlyList<string> Tools => tools;

    /// <summary>Null when not measured (a run answered from a recording): such a run never counts for latency.</summary>
    public double? LatencyMs => latencyMs;

    public double CostUsd => costUsd;
    public string? Model => model;
}

/// <summary>One assertion's outcome on one run: passed, why, and (a judge) the score.</summary>
public sealed record AssertionOutcome(string Type, bool Passed, string Reason, double? Score = null);

/// <summary>
/// Each assertion type is an <see cref="IEvaluator"/> (Microsoft.Extensions.AI.Evaluation): it reads the model's answer as
/// the <see cref="ChatResponse"/> and the run's facts as context, and answers one metric (boolean, or a judge's numeric
/// score) with its interpretation (failed or not) and reason. The package's own quality evaluators are LLM-judged with
/// fixed prompts and 1-5 scales; a suite's rubric and 0..1 scores are ours, so the judge evaluator is written here too,
/// on the same abstraction, with the judge reached through the gateway as the <see cref="ChatConfiguration"/>'s client.
/// </summary>
internal sealed class AssertionEvaluator(SuiteAssertion assertion, string metric) : IEvaluator
{
    public IReadOnlyCollection<string> EvaluationMetricNames => [metric];

    public async ValueTask<EvaluationResult> EvaluateAsync(
        IEnumerable<ChatMessage> messages, ChatResponse modelResponse, ChatConfiguration? chatConfiguration = null,
        IEnumerable<EvaluationContext>? additionalContext = null, CancellationToken cancellationToken = default)
    {
        var facts = additionalContext?.OfType<RunFacts>().FirstOrDefault() ?? throw new InvalidOperationException("The run's facts are missing.");
        var text = modelResponse.Text;
        var completed = facts.Status == "completed";
        EvaluationMetric result = assertion.Type switch
        {
            AssertionTypes.Judge => await JudgeAsync(text, facts, chatConfiguration, cancellationToken),
            _ when !completed && assertion.Type is not (AssertionTypes.Path or AssertionTypes.MaxLatencyMs or AssertionTypes.MaxCostUsd) =>
                Check(false, $"The run did not complete: {facts.Status} {facts.ErrorCode}".TrimEnd()),
            AssertionTypes.Contains => Check(text.Contains(Value, Comparison), $"The output {(text.Contains(Value, Comparison) ? "contains" : "does not contain")} \"{Value}\"."),
            AssertionTypes.NotContains => Check(!text.Contains(Value, Comparison), $"The output {(text.Contains(Value, Comparison) ? "contains" : "does not contain")} \"{Value}\"."),
            AssertionTypes.EqualsText => Check(string.Equals(text.Trim(), Value.Trim(), Comparison), $"The output {(string.Equals(text.Trim(), Value.Trim(), Comparison) ? "equals" : "differs from")} the expected text."),
            AssertionTypes.Regex => Regex(text),
            AssertionTypes.JsonSchema => Schema(text),
            AssertionTypes.Path => Path(facts),
            AssertionTypes.MaxLatencyMs => facts.LatencyMs is not { } latency
                ? Check(true, "Latency not measured (answered from a recording); not counted.")
                : Check(latency <= Number, $"Latency {latency:0} ms against at most {Number:0} ms."),
            AssertionTypes.MaxCostUsd => Check(facts.CostUsd <= Number, $"Cost {facts.CostUsd:0.######} USD against at most {Number:0.######} USD."),
            _ => throw new InvalidOperationException($"Unknown assertion type '{assertion.Type}' passed validation."),
        };
        return new EvaluationResult(result);
    }

    string Value => assertion.Value?.GetString() ?? "";
    double Number => assertion.Value?.GetDouble() ?? 0;
    StringComparison Comparison => assertion.IgnoreCase == true ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;

    BooleanMetric Check(bool passed, string reason) => new(metric, passed, reason)
    {
        Interpretation = new EvaluationMetricInterpretation(passed ? EvaluationRating.Good : EvaluationRating.Unacceptable, failed: !passed),
    };

    BooleanMetric Regex(string text)
    {
        var options = assertion.IgnoreCase == true ? RegexOptions.IgnoreCase : RegexOptions.None;
        try
        {
            var found = System.Text.RegularExpressions.Regex.IsMatch(text, Value, options, TimeSpan.FromSeconds(1));
            return Check(found, $"The output {(found ? "matches" : "does not match")} /{Value}/.");
        }
        catch (RegexMatchTimeoutException)
        {
            return Check(false, $"/{Value}/ took over a second on the output.");
        }
    }

    BooleanMetric Schema(string text)
    {
        JsonNode? document;
        try
        {
            document = JsonNode.Parse(Unfenced(text));
        }
        catch (JsonException)
        {
            return Check(false, "The output is not JSON.");
        }
        var schema = JsonSchema.FromText(assertion.Schema!.Value.GetRawText());
        var result = schema.Evaluate(JsonSerializer.SerializeToElement(document), new Json.Schema.EvaluationOptions { OutputFormat = OutputFormat.List });
        if (result.IsValid)
            return Check(true, "The output satisfies the schema.");
        var first = result.Details?.FirstOrDefault(d => d.Errors is { Count: > 0 });
        var why = first is null ? "" : $" At {first.InstanceLocation}: {first.Errors!.First().Value}";
        return Check(false, "The output does not satisfy the schema." + why);
    }

    /// <summary>A model often wraps JSON in a Markdown fence; the schema judges what is inside.</summary>
    static string Unfenced(string text)
    {
        var trimmed = text.Trim();
        if (!trimmed.StartsWith("```", StringComparison.Ordinal))
            return trimmed;
        var start = trimmed.IndexOf('\n');
        var end = trimmed.LastIndexOf("```", StringComparison.Ordinal);
        return start > 0 && end > start ? trimmed[(start + 1)..end] : trimmed;
    }

    BooleanMetric Path(RunFacts facts)
    {
        static bool Matches(string pattern, string id) =>
            pattern.EndsWith('*') ? id.StartsWith(pattern[..^1], StringComparison.Ordinal) : id == pattern;
        var missing = (assertion.Nodes ?? []).Where(n => !facts.Nodes.Any(id => Matches(n, id))).ToList();
        var taken = (assertion.NotNodes ?? []).Where(n => facts.Nodes.Any(id => Matches(n, id))).ToList();
        var uncalled = (assertion.Tools ?? []).Where(t => !facts.Tools.Contains(t)).ToList();
        var called = (assertion.NotTools ?? []).Where(t => facts.Tools.Contains(t)).ToList();
        var problems = new List<string>();
        if (missing.Count > 0)
            problems.Add($"did not take {string.Join(", ", missing)}");
        if (taken.Count > 0)
            problems.Add($"took {string.Join(", ", taken)}");
        if (uncalled.Count > 0)
            problems.Add($"did not call {string.Join(", ", uncalled)}");
        if (called.Count > 0)
            problems.Add($"called {string.Join(", ", called)}");
        return Check(problems.Count == 0, problems.Count == 0
            ? $"The path ({string.Join(" > ", facts.Nodes)}) is as required."
            : $"The run {string.Join("; ", problems)} (path {string.Join(" > ", facts.Nodes)}).");
    }

    async Task<EvaluationMetric> JudgeAsync(string text, RunFacts facts, ChatConfiguration? chat, CancellationToken cancellationToken)
    {
        if (chat is null)
            return Check(false, "No judge model is configured.");
        if (facts.Status != "completed")
            return Check(false, $"The run did not complete: {facts.Status} {facts.ErrorCode}".TrimEnd());
        if (chat.ChatClient.GetService<JudgeClient>() is { } judge && judge.ModelId == facts.Model)
            return Check(false, $"Refused: the judge '{judge.ModelId}' is the model that answered; a model does not judge its own answer.");
        var prompt = new List<ChatMessage>
        {
            new(ChatRole.System,
                "You grade an answer against a rubric. Reply with JSON only: {\"score\": <a number from 0 to 1>, \"reason\": \"<one sentence>\"}."),
            new(ChatRole.User, $"Rubric:\n{assertion.Rubric}\n\nAnswer:\n{text}"),
        };
        var reply = await chat.ChatClient.GetResponseAsync(prompt, new ChatOptions { Temperature = 0 }, cancellationToken);
        var minimum = assertion.MinScore ?? 0.5;
        if (JudgeScore.Read(reply.Text) is not { } scored)
            return Check(false, "The judge's reply holds no score: " + Cut(reply.Text));
        var passed = scored.Score >= minimum;
        return new NumericMetric(metric, scored.Score, $"Judge score {scored.Score:0.00} against at least {minimum:0.00}: {scored.Reason}")
        {
            Interpretation = new EvaluationMetricInterpretation(passed ? EvaluationRating.Good : EvaluationRating.Poor, failed: !passed),
        };
    }

    static string Cut(string text) => text.Length <= 200 ? text : text[..200] + "…";
}

/// <summary>Reads a judge's reply: JSON with a <c>score</c>, or else the first number in it (0..1, or 0..10 scaled).</summary>
internal static class JudgeScore
{
    public static (double Score, string Reason)? Read(string reply)
    {
        var text = reply.Trim();
        var start = text.IndexOf('{');
        var end = text.LastIndexOf('}');
        if (start >= 0 && end > start)
        {
            try
            {
                var node = JsonNode.Parse(text[start..(end + 1)]);
                if (node?["score"]?.GetValueKind() == JsonValueKind.Number)
                    return Clamp(node["score"]!.GetValue<double>(), node["reason"]?.GetValueKind() == JsonValueKind.String ? node["reason"]!.GetValue<string>() : "");
            }
            catch (Exception error) when (error is JsonException or InvalidOperationException or FormatException)
            {
            }
        }
        var number = System.Text.RegularExpressions.Regex.Match(text, @"\d+(\.\d+)?", RegexOptions.None, TimeSpan.FromSeconds(1));
        return number.Success ? Clamp(double.Parse(number.Value, System.Globalization.CultureInfo.InvariantCulture), "") : null;
    }

    static (double, string) Clamp(double score, string reason) => (score > 1 && score <= 10 ? score / 10 : Math.Clamp(score, 0, 1), reason);
}

/// <summary>The judge as an <see cref="IChatClient"/>: every call goes through the gateway to the configured judge model only, its usage kept apart.</summary>
internal sealed class JudgeClient(Gateway.ModelGateway gateway, string modelId, string traceId, long seed) : IChatClient
{
    public string ModelId => modelId;

    /// <summary>What the judge's calls cost, metered apart from the case's own cost.</summary>
    public decimal CostUsd { get; private set; }

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var reply = await gateway.CompleteAsync(new Gateway.ModelCall(traceId, "judge", messages.ToList(), null,
            new Gateway.RoutingRequest(Gateway.RoutingStrategies.QualityFirst, [modelId]), seed, options), cancellationToken);
        CostUsd += reply.Usage.CostUsd;
        return new ChatResponse(reply.Message) { ModelId = reply.ModelId };
    }

    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("The judge is asked whole answers.");

    public object? GetService(Type serviceType, object? serviceKey = null) => serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;

    public void Dispose()
    {
    }
}
