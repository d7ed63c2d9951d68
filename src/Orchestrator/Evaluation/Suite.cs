using System.Text.Json;
using System.Text.Json.Serialization;

namespace Orchestrator.Evaluation;

/// <summary>A golden suite (<c>eval/suites/*.json</c>; doc/evaluation.md has the schema): cases, their assertions, and gates.</summary>
public sealed record EvalSuite
{
    public string? Name { get; init; }
    public string? Description { get; init; }

    /// <summary>Repeats of every case that names none (default 1).</summary>
    public int? Repeats { get; init; }

    public IReadOnlyList<SuiteCase>? Cases { get; init; }
    public EvalGates? Gates { get; init; }

    /// <summary>More repeats for cases whose runs disagree, under a call budget.</summary>
    public ExtraRepeats? Extra { get; init; }
}

/// <summary>One case: an act body (or a recorded run by trace id) and what its output must satisfy.</summary>
public sealed record SuiteCase
{
    public string? Name { get; init; }
    public IReadOnlyList<string>? Tags { get; init; }

    /// <summary>The act body, as <c>POST /v1/act</c> takes it (intent, input or messages, routing, tools, session).</summary>
    public JsonElement? Act { get; init; }

    /// <summary>A recorded run's trace id: the case's input is that run's request, its effects answered from the recording.</summary>
    public string? Replay { get; init; }

    public IReadOnlyList<SuiteAssertion>? Assertions { get; init; }
    public bool MustPass { get; init; }
    public double? Weight { get; init; }
    public int? Repeats { get; init; }
}

/// <summary>One assertion; which fields it reads depends on its <see cref="Type"/> (doc/evaluation.md).</summary>
public sealed record SuiteAssertion
{
    public string? Type { get; init; }

    /// <summary>Text (<c>contains</c>, <c>not-contains</c>, <c>regex</c>, <c>equals</c>) or a number (<c>max-latency-ms</c>, <c>max-cost-usd</c>).</summary>
    public JsonElement? Value { get; init; }

    public bool? IgnoreCase { get; init; }

    /// <summary><c>json-schema</c>: the schema the output (parsed as JSON) must satisfy.</summary>
    public JsonElement? Schema { get; init; }

    /// <summary><c>path</c>: node ids (or prefixes ending in <c>*</c>) the run must take / must not take.</summary>
    public IReadOnlyList<string>? Nodes { get; init; }
    public IReadOnlyList<string>? NotNodes { get; init; }

    /// <summary><c>path</c>: capabilities (e.g. <c>fs/write</c>) the run must call / must not call.</summary>
    public IReadOnlyList<string>? Tools { get; init; }
    public IReadOnlyList<string>? NotTools { get; init; }

    /// <summary><c>judge</c>: what the judge model scores the output on, 0..1.</summary>
    public string? Rubric { get; init; }
    public double? MinScore { get; init; }
}

/// <summary>Release gates; the request's gates override the suite's field by field.</summary>
public sealed record EvalGates
{
    /// <summary>Least weighted pass rate of the candidate (0..1).</summary>
    public double? MinPassRate { get; init; }

    /// <summary>Every must-pass case passes every run (default true).</summary>
    public bool? NoMustPassFailure { get; init; }

    /// <summary>Largest drop of the paired pass rate (candidate minus baseline) tolerated, at <see cref="Confidence"/>.</summary>
    public double? MaxPassRateDrop { get; init; }

    /// <summary>Largest drop of the paired mean judge score tolerated, at <see cref="Confidence"/> (paired bootstrap).</summary>
    public double? MaxScoreDrop { get; init; }

    /// <summary>Confidence of the paired comparisons (default 0.95).</summary>
    public double? Confidence { get; init; }

    public double? MaxP95LatencyRatio { get; init; }
    public double? MaxP95LatencyMs { get; init; }
    public double? MaxCostRatio { get; init; }

    /// <summary>Largest mean cost of one candidate case run, in USD.</summary>
    public double? MaxCostUsd { get; init; }

    public double? MinJudgeScore { get; init; }

    public EvalGates Over(EvalGates? under) => under is null ? this : new EvalGates
    {
        MinPassRate = MinPassRate ?? under.MinPassRate,
        NoMustPassFailure = NoMustPassFailure ?? under.NoMustPassFailure,
        MaxPassRateDrop = MaxPassRateDrop ?? under.MaxPassRateDrop,
        MaxScoreDrop = MaxScoreDrop ?? under.MaxScoreDrop,
        Confidence = Confidence ?? under.Confidence,
        MaxP95LatencyRatio = MaxP95LatencyRatio ?? under.MaxP95LatencyRatio,
        MaxP95LatencyMs = MaxP95LatencyMs ?? under.MaxP95LatencyMs,
        MaxCostRatio = MaxCostRatio ?? under.MaxCostRatio,
        MaxCostUsd = MaxCostUsd ?? under.MaxCostUsd,
        MinJudgeScore = MinJudgeScore ?? under.MinJudgeScore,
    };
}

/// <summary>Cases whose first runs disagree (some pass, some fail) get up to <see cref="Max"/> more, while the extra runs stay within <see cref="CallBudget"/>.</summary>
public sealed record ExtraRepeats
{
    public int? Max { get; init; }
    public int? CallBudget { get; init; }
}

/// <summary>A baseline or a candidate: an intent policy (as the shipped policy files), or versioned artifacts.</summary>
public sealed record EvalSide
{
    public JsonElement? Policy { get; init; }
    public JsonElement? Versions { get; init; }
}

/// <summary>The body of <c>POST /v1/admin/evaluations</c>.</summary>
public sealed record EvaluationRequest
{
    /// <summary>The suite itself (as a suite file holds it).</summary>
    public JsonElement? Suite { get; init; }
    public EvalSide? Baseline { get; init; }
    public EvalSide? Candidate { get; init; }

    /// <summary>Repeats of every case (overrides the suite's and the cases').</summary>
    public int? Repeats { get; init; }
    public EvalGates? Gates { get; init; }

    /// <summary>What every case run's seed derives from (default 0): the same seed, the same draws.</summary>
    public long? Seed { get; init; }
}

public static class AssertionTypes
{
    public const string Contains = "contains";
    public const string NotContains = "not-contains";
    public const string Regex = "regex";
    public const string EqualsText = "equals";
    public const string JsonSchema = "json-schema";
    public const string Path = "path";
    public const string MaxLatencyMs = "max-latency-ms";
    public const string MaxCostUsd = "max-cost-usd";
    public const string Judge = "judge";

    public static readonly string[] All = [Contains, NotContains, Regex, EqualsText, JsonSchema, Path, MaxLatencyMs, MaxCostUsd, Judge];
}

/// <summary>Evaluation's JSON (camelCase, as the API is written), source-generated; chained into the host's serializer.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, AllowTrailingCommas = true,
    ReadCommentHandling = JsonCommentHandling.Skip)]
[JsonSerializable(typeof(EvalSuite))]
[JsonSerializable(typeof(List<SuiteAssertion>))]
[JsonSerializable(typeof(List<AssertionOutcome>))]
[JsonSerializable(typeof(EvaluationRequest))]
[JsonSerializable(typeof(EvaluationView))]
[JsonSerializable(typeof(EvaluationAccepted))]
[JsonSerializable(typeof(EvaluationPlan))]
[JsonSerializable(typeof(Verdict))]
[JsonSerializable(typeof(SuiteFromTraces))]
[JsonSerializable(typeof(EvaluationList))]
internal sealed partial class EvaluationJson : JsonSerializerContext
{
}
