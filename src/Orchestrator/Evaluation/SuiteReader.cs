using System.Text.Json;
using Json.Schema;
using Orchestrator.Workflow;

namespace Orchestrator.Evaluation;

/// <summary>What an evaluation runs, checked and frozen at submission: stored with it, so a resumed run runs exactly this.</summary>
public sealed record EvaluationPlan(
    string Suite,
    string SuiteHash,
    long Seed,
    PlanSide Baseline,
    PlanSide Candidate,
    EvalGates Gates,
    int ExtraMax,
    int ExtraBudget,
    string? JudgeModel,
    IReadOnlyList<PlanCase> Cases);

/// <summary>One side's policy: its intent, version, content hash and text (cases of other intents run under the catalog's policy).</summary>
public sealed record PlanSide(string Intent, string Version, string PolicyHash, string PolicySource)
{
    /// <summary>
    /// The hash the evaluation is recorded under when it is not the policy's: a side that pins one artifact version
    /// (<c>{ "versions": { "prompts": "v2" } }</c>) records that version's content hash, which promotion looks for.
    /// </summary>
    public string? RecordedHash { get; init; }

    [System.Text.Json.Serialization.JsonIgnore]
    public string Recorded => RecordedHash ?? PolicyHash;
}

/// <summary>A side's <c>versions</c> resolved: the side, or the field (under <c>versions</c>) and message that refuse it.</summary>
internal delegate PlanSide? ResolveVersions(ActVersions pins, out string? field, out string? error);

/// <summary>A case as it runs: its stable id (a hash of its input and assertions), the act, and how often.</summary>
public sealed record PlanCase(
    string Id, string Name, IReadOnlyList<string> Tags, ActRequest? Act, string? Replay, IReadOnlyList<SuiteAssertion> Assertions,
    bool MustPass, double Weight, int Repeats);

/// <summary>Reads a suite and an evaluation request into a plan, or into field errors (a 400 names every one).</summary>
internal static class SuiteReader
{
    const int MaxCases = 1000;
    const int MaxRepeats = 100;

    public static EvalSuite? Parse(JsonElement suite, Dictionary<string, string[]> errors, string field = "suite")
    {
        try
        {
            return suite.ValueKind == JsonValueKind.Object ? suite.Deserialize(EvaluationJson.Default.EvalSuite) : Fail(errors, field, "The suite must be a JSON object.");
        }
        catch (JsonException error)
        {
            return Fail(errors, field + (error.Path is { Length: > 1 } path ? path.TrimStart('$') : ""), "This is not a suite: a field is of the wrong type. " + error.Message.Split(". ")[0]);
        }
    }

    static EvalSuite? Fail(Dictionary<string, string[]> errors, string field, string message)
    {
        errors[field] = [message];
        return null;
    }

    /// <summary>The side's policy: given whole, or as artifact versions (<paramref name="resolve"/>; none: refused).</summary>
    public static PlanSide? Side(EvalSide? side, string field, Dictionary<string, string[]> errors, ResolveVersions? resolve = null)
    {
        if (side is null)
        {
            errors[field] = [$"{field} is required: {{ \"policy\": <an intent policy> }} or {{ \"versions\": {{ \"prompts\"?, \"policy\"?, \"routing\"? }} }}."];
            return null;
        }
        if (side.Versions is { ValueKind: not JsonValueKind.Null } versions)
        {
            if (side.Policy is { ValueKind: not JsonValueKind.Null })
            {
                errors[field] = ["Give either policy or versions, not both."];
                return null;
            }
            ActVersions? pins = null;
            try
            {
                pins = versions.ValueKind == JsonValueKind.Object ? versions.Deserialize(WorkflowJson.Default.ActVersions) : null;
            }
            catch (JsonException)
            {
            }
            if (pins is null || (pins.Prompts is null && pins.Policy is null && pins.Routing is null))
            {
                errors[field + ".versions"] = ["versions is an object naming at least one of prompts, policy, routing (e.g. { \"prompts\": \"v2\" }); unnamed kinds are stable."];
                return null;
            }
            if (resolve is null)
            {
                errors[field + ".versions"] = ["Versioned artifacts are not available here; give the policy itself: { \"policy\": <an intent policy> }."];
                return null;
            }
            var resolved = resolve(pins, out var at, out var message);
            if (resolved is null)
                errors[field + "." + (at ?? "versions")] = [message ?? "These versions cannot be used."];
            return resolved;
        }
        if (side.Policy is not { ValueKind: JsonValueKind.Object } policy)
        {
            errors[field + ".policy"] = ["policy is required: an intent policy, as the shipped policy files hold it."];
            return null;
        }
        return FromText(policy.GetRawText(), field + ".policy", errors);
    }

    public static PlanSide? FromText(string text, string field, Dictionary<string, string[]> errors)
    {
        try
        {
            var parsed = IntentCatalog.Parse(text);
            return new PlanSide(parsed.Intent, parsed.Version, parsed.ContentHash, parsed.Source);
        }
        catch (InvalidDataException error)
        {
            errors[field] = ["The policy " + error.Message];
            return null;
        }
    }

    /// <summary>The plan, or null with <paramref name="errors"/> filled; <paramref name="actCheck"/> checks each case's act as <c>/v1/act</c> would (field, message).</summary>
    public static EvaluationPlan? Plan(
        EvalSuite? suite, PlanSide? baseline, PlanSide? candidate, int? repeats, EvalGates? gates, long? seed, string? judgeModel,
        Func<ActRequest, PlanSide?, IEnumerable<(string Field, string Message)>> actCheck, Dictionary<string, string[]> errors)
    {
        void Error(string field, string message) => errors.TryAdd(field, [message]);
        if (suite is null)
            return null;
        if (string.IsNullOrWhiteSpace(suite.Name))
            Error("suite.name", "A suite needs a name.");
        if (suite.Cases is not { Count: > 0 } cases)
        {
            Error("suite.cases", "A suite needs at least one case.");
            return null;
        }
        if (cases.Count > MaxCases)
            Error("suite.cases", $"A suite has at most {MaxCases} cases.");
        if (repeats is < 1 or > MaxRepeats)
            Error("repeats", $"repeats must be 1-{MaxRepeats}.");
        if (suite.Repeats is < 1 or > MaxRepeats)
            Error("suite.repeats", $"repeats must be 1-{MaxRepeats}.");
        var merged = (gates ?? new EvalGates()).Over(suite.Gates);
        CheckGates(merged, gates is null ? "suite.gates" : "gates", Error);
        if (suite.Extra is { } extra && (extra.Max is < 0 or > MaxRepeats || extra.CallBudget is < 0))
            Error("suite.extra", $"extra.max must be 0-{MaxRepeats} and extra.callBudget not negative.");

        var planned = new List<PlanCase>();
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < cases.Count; i++)
        {
            var at = $"suite.cases[{i}]";
            if (cases[i] is not { } c)
            {
                Error(at, "A case must be an object.");
                continue;
            }
            ActRequest? act = null;
            string input;
            if (c.Replay is not null && c.Act is not null)
                Error(at, "A case has either act or replay, not both.");
            if (c.Replay is { } trace)
            {
                if (trace.Length != 32 || !trace.All(char.IsAsciiHexDigitLower))
                    Error(at + ".replay", "replay is a recorded run's trace id (32 lower-case hex digits).");
                input = "replay:" + trace;
            }
            else if (c.Act is { ValueKind: JsonValueKind.Object } body)
            {
                try
                {
                    act = body.Deserialize(WorkflowJson.Default.ActRequest);
                }
                catch (JsonException error)
                {
                    Error(at + ".act", "This is not an act body: " + error.Message.Split(". ")[0]);
                }
                input = "act:" + body.GetRawText();
                if (act is not null)
                {
                    if (act.IdempotencyKey is not null)
                        Error(at + ".act.idempotencyKey", "An evaluation keys its case runs itself; leave idempotencyKey out.");
                    if (act.Mode is "async")
                        Error(at + ".act.mode", "Case runs are awaited; leave mode out.");
                    if (act.Seed is not null)
                        Error(at + ".act.seed", "Seeds come from the evaluation's seed; leave seed out.");
                    var intent = act.Intent;
                    var side = candidate is not null && (intent ?? candidate.Intent) == candidate.Intent ? candidate : null;
                    foreach (var (field, message) in actCheck(act with { Mode = null, IdempotencyKey = null, Seed = null }, side))
                        Error($"{at}.act.{field}", message);
                    if (judgeModel is not null && act.Routing?.Models?.Contains(judgeModel) == true && c.Assertions?.Any(a => a?.Type == AssertionTypes.Judge) == true)
                        Error(at + ".act.routing.models", $"The judge model '{judgeModel}' may not be a model the case runs on: a model does not judge its own answers.");
                }
            }
            else
            {
                Error(at + ".act", "A case needs an act (an act body) or a replay (a trace id).");
                input = "";
            }
            if (c.Assertions is not { Count: > 0 } assertions)
            {
                Error(at + ".assertions", "A case needs at least one assertion.");
                assertions = [];
            }
            for (var j = 0; j < assertions.Count; j++)
                CheckAssertion(assertions[j], $"{at}.assertions[{j}]", judgeModel, Error);
            if (c.Weight is <= 0 or > 1000 || c.Weight is double.NaN)
                Error(at + ".weight", "weight must be above 0 and at most 1000.");
            if (c.Repeats is < 1 or > MaxRepeats)
                Error(at + ".repeats", $"repeats must be 1-{MaxRepeats}.");
            var id = CaseId(input, assertions);
            if (ids.TryGetValue(id, out var first))
                Error(at, $"This case has the same input and assertions as case {first}: it would be the same case.");
            ids.TryAdd(id, i);
            planned.Add(new PlanCase(id, string.IsNullOrWhiteSpace(c.Name) ? id : c.Name!, c.Tags ?? [], act, c.Replay, assertions, c.MustPass, c.Weight ?? 1,
                repeats ?? c.Repeats ?? suite.Repeats ?? 1));
        }
        if (baseline is not null && candidate is not null && baseline.Intent != candidate.Intent)
            Error("candidate.policy", $"The baseline is a policy for '{baseline.Intent}' and the candidate for '{candidate.Intent}': compare two versions of one intent.");
        if (errors.Count > 0 || baseline is null || candidate is null)
            return null;
        var suiteHash = Hashes.Of(JsonSerializer.Serialize(suite, EvaluationJson.Default.EvalSuite));
        return new EvaluationPlan(suite.Name!, suiteHash, seed ?? 0, baseline, candidate, merged,
            suite.Extra?.Max ?? 0, suite.Extra?.CallBudget ?? 0, judgeModel, planned);
    }

    /// <summary>A case's stable id: its input and assertions hashed, not its name, so renaming a case keeps its history.</summary>
    public static string CaseId(string input, IReadOnlyList<SuiteAssertion> assertions) =>
        Hashes.Of(input + "\n" + JsonSerializer.Serialize(assertions.ToList(), EvaluationJson.Default.ListSuiteAssertion))[..16];

    static void CheckGates(EvalGates gates, string at, Action<string, string> error)
    {
        static bool Rate(double? v) => v is null or (>= 0 and <= 1);
        if (!Rate(gates.MinPassRate))
            error(at + ".minPassRate", "minPassRate is a rate, 0..1.");
        if (!Rate(gates.MaxPassRateDrop))
            error(at + ".maxPassRateDrop", "maxPassRateDrop is a rate, 0..1.");
        if (!Rate(gates.MaxScoreDrop))
            error(at + ".maxScoreDrop", "maxScoreDrop is a score difference, 0..1.");
        if (!Rate(gates.MinJudgeScore))
            error(at + ".minJudgeScore", "minJudgeScore is a score, 0..1.");
        if (gates.Confidence is { } c && c is not (> 0.5 and < 1))
            error(at + ".confidence", "confidence is above 0.5 and below 1, e.g. 0.95.");
        foreach (var (name, value) in new[] { ("maxP95LatencyRatio", gates.MaxP95LatencyRatio), ("maxP95LatencyMs", gates.MaxP95LatencyMs),
                     ("maxCostRatio", gates.MaxCostRatio), ("maxCostUsd", gates.MaxCostUsd) })
            if (value is < 0 or double.NaN)
                error($"{at}.{name}", $"{name} must not be negative.");
    }

    static void CheckAssertion(SuiteAssertion? a, string at, string? judgeModel, Action<string, string> error)
    {
        if (a is null)
        {
            error(at, "An assertion must be an object with a type.");
            return;
        }
        switch (a.Type)
        {
            case AssertionTypes.Contains or AssertionTypes.NotContains or AssertionTypes.EqualsText:
                if (a.Value is not { ValueKind: JsonValueKind.String })
                    error(at + ".value", $"A {a.Type} assertion needs a text value.");
                break;
            case AssertionTypes.Regex:
                if (a.Value is not { ValueKind: JsonValueKind.String } pattern)
                    error(at + ".value", "A regex assertion needs a pattern as its value.");
                else
                    try
                    {
                        _ = new System.Text.RegularExpressions.Regex(pattern.GetString()!, System.Text.RegularExpressions.RegexOptions.None, TimeSpan.FromSeconds(1));
                    }
                    catch (ArgumentException problem)
                    {
                        error(at + ".value", "The pattern is not a valid .NET regular expression: " + problem.Message);
                    }
                break;
            case AssertionTypes.JsonSchema:
                if (a.Schema is not { ValueKind: JsonValueKind.Object or JsonValueKind.True or JsonValueKind.False } schema)
                    error(at + ".schema", "A json-schema assertion needs a schema (a JSON Schema object).");
                else
                    try
                    {
                        _ = JsonSchema.FromText(schema.GetRawText());
                    }
                    catch (Exception problem) when (problem is JsonException or ArgumentException or InvalidOperationException or NotSupportedException)
                    {
                        error(at + ".schema", "The schema is not a JSON Schema: " + problem.Message);
                    }
                break;
            case AssertionTypes.Path:
                if ((a.Nodes?.Count ?? 0) + (a.NotNodes?.Count ?? 0) + (a.Tools?.Count ?? 0) + (a.NotTools?.Count ?? 0) == 0)
                    error(at, "A path assertion names nodes, notNodes, tools or notTools.");
                break;
            case AssertionTypes.MaxLatencyMs or AssertionTypes.MaxCostUsd:
                if (a.Value is not { ValueKind: JsonValueKind.Number } number || number.GetDouble() < 0)
                    error(at + ".value", $"A {a.Type} assertion needs a number, not negative.");
                break;
            case AssertionTypes.Judge:
                if (string.IsNullOrWhiteSpace(a.Rubric))
                    error(at + ".rubric", "A judge assertion needs a rubric.");
                if (a.MinScore is < 0 or > 1)
                    error(at + ".minScore", "minScore is a score, 0..1.");
                if (judgeModel is null)
                    error(at, "No judge model is configured (Orchestrator:Evaluation:JudgeModel): a judge assertion cannot be scored.");
                break;
            default:
                error(at + ".type", $"type must be one of {string.Join(", ", AssertionTypes.All)}.");
                break;
        }
    }
}
