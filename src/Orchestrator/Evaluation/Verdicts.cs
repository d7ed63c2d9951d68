namespace Orchestrator.Evaluation;

/// <summary>The one verdict object behind every output (the API's view, both reports, the CLI's exit code).</summary>
public sealed record Verdict(
    string Result,
    IReadOnlyList<GateResult> Gates,
    IReadOnlyList<CaseResult> Cases,
    ArmSummary Baseline,
    ArmSummary Candidate,
    Pins Pins);

/// <summary>A gate: passed or not, the measured value against its threshold, and the cases that failed it.</summary>
public sealed record GateResult(string Name, bool Passed, double? Value, double? Threshold, IReadOnlyList<string> Cases, string Detail);

/// <summary>What made the evaluation hermetic: the exact inputs, by content hash, and the seed.</summary>
public sealed record Pins(string SuiteHash, string BaselinePolicyHash, string CandidatePolicyHash, long Seed, string LatencySource);

public sealed record CaseResult(
    string Id, string Name, IReadOnlyList<string> Tags, bool MustPass, double Weight,
    ArmCase Baseline, ArmCase Candidate, PairedResult Paired);

/// <summary>One side of one case over its k runs: pass rate, its Wilson interval, and the per-case verdict.</summary>
public sealed record ArmCase(
    int Runs, int Passed, double PassRate, double WilsonLow, double WilsonHigh, string Verdict,
    double? MeanScore, double? MedianLatencyMs, double MeanCostUsd, IReadOnlyList<string> Failures);

/// <summary>The case's runs paired by repeat: runs only the candidate failed (<c>worse</c>), only the baseline failed (<c>better</c>).</summary>
public sealed record PairedResult(int Pairs, int Worse, int Better);

public sealed record ArmSummary(
    string PolicyHash, int Runs, double PassRate, double? P50LatencyMs, double? P95LatencyMs, double MeanCostUsd, double? MeanJudgeScore,
    double JudgeCostUsd, IReadOnlyList<double> LatenciesMs, IReadOnlyList<double> CostsUsd);

public static class CaseVerdicts
{
    public const string StablePass = "stable_pass";
    public const string Flaky = "flaky";
    public const string StableFail = "stable_fail";
}

/// <summary>Turns the case runs of an evaluation into its verdict: per-case statistics, the paired comparison, the gates.</summary>
internal static class Verdicts
{
    public const string Baseline = "baseline";
    public const string Candidate = "candidate";

    public static Verdict Of(EvaluationPlan plan, IReadOnlyList<EvaluationCaseRun> runs)
    {
        var gates = plan.Gates;
        var confidence = gates.Confidence ?? 0.95;
        var byCase = runs.ToLookup(r => r.CaseId);
        var cases = plan.Cases.Select(c =>
        {
            var mine = byCase[c.Id].ToList();
            var b = mine.Where(r => r.Arm == Baseline).ToDictionary(r => r.Repeat);
            var k = mine.Where(r => r.Arm == Candidate).ToDictionary(r => r.Repeat);
            var pairs = b.Keys.Intersect(k.Keys).ToList();
            return new CaseResult(c.Id, c.Name, c.Tags, c.MustPass, c.Weight, Arm(b.Values, confidence), Arm(k.Values, confidence),
                new PairedResult(pairs.Count, pairs.Count(r => b[r].Passed && !k[r].Passed), pairs.Count(r => !b[r].Passed && k[r].Passed)));
        }).ToList();
        var baseline = Summary(plan.Baseline.PolicyHash, runs.Where(r => r.Arm == Baseline).ToList());
        var candidate = Summary(plan.Candidate.PolicyHash, runs.Where(r => r.Arm == Candidate).ToList());

        var results = new List<GateResult>();
        if (gates.MinPassRate is { } minRate)
        {
            var weight = cases.Sum(c => c.Weight);
            var rate = weight == 0 ? 0 : cases.Sum(c => c.Weight * c.Candidate.PassRate) / weight;
            results.Add(new GateResult("minPassRate", rate >= minRate, Round(rate), minRate,
                cases.Where(c => c.Candidate.Verdict != CaseVerdicts.StablePass).Select(c => c.Name).ToList(),
                $"Candidate's weighted pass rate {rate:P1} against at least {minRate:P1}."));
        }
        if (gates.NoMustPassFailure ?? cases.Any(c => c.MustPass))
        {
            var failed = cases.Where(c => c.MustPass && c.Candidate.Passed < c.Candidate.Runs).Select(c => c.Name).ToList();
            results.Add(new GateResult("noMustPassFailure", failed.Count == 0, failed.Count, 0, failed,
                failed.Count == 0 ? "Every must-pass case passed every run." : $"{failed.Count} must-pass case(s) failed at least one run."));
        }
        if (gates.MaxPassRateDrop is { } margin)
        {
            var pairsCount = cases.Sum(c => c.Paired.Pairs);
            var worse = cases.Sum(c => c.Paired.Worse);
            var better = cases.Sum(c => c.Paired.Better);
            var drop = pairsCount == 0 ? 0 : (double)(worse - better) / pairsCount;
            var p = Statistics.McNemarWorse(worse, better);
            var significant = p < 1 - confidence;
            var passed = !(significant && drop > margin);
            results.Add(new GateResult("pairedPassRate", passed, Round(-drop), -margin,
                cases.Where(c => c.Paired.Worse > c.Paired.Better).Select(c => c.Name).ToList(),
                $"Paired pass-rate difference (candidate minus baseline) {-drop:+0.0%;-0.0%;0.0%} over {pairsCount} pairs " +
                $"({worse} only the candidate failed, {better} only the baseline failed); exact McNemar one-sided p = {p:0.####} " +
                $"(two-sided {Statistics.McNemarTwoSided(worse, better):0.####}); fails when p < {1 - confidence:0.###} and the drop exceeds {margin:P1}."));
        }
        if (gates.MaxScoreDrop is { } scoreMargin)
        {
            var differences = new List<double>();
            foreach (var c in plan.Cases)
            {
                var mine = byCase[c.Id].Where(r => r.Score is not null).ToList();
                var b = mine.Where(r => r.Arm == Baseline).ToDictionary(r => r.Repeat);
                foreach (var k in mine.Where(r => r.Arm == Candidate))
                    if (b.TryGetValue(k.Repeat, out var pair))
                        differences.Add(k.Score!.Value - pair.Score!.Value);
            }
            var (mean, low, high) = Statistics.PairedBootstrap(differences, confidence, plan.Seed);
            var passed = !(high < 0 && -mean > scoreMargin);
            results.Add(new GateResult("pairedScore", passed, Round(mean), -scoreMargin,
                cases.Where(c => c.Candidate.MeanScore < c.Baseline.MeanScore).Select(c => c.Name).ToList(),
                $"Paired judge-score difference {mean:+0.000;-0.000;0.000} over {differences.Count} pairs, {confidence:P0} bootstrap interval " +
                $"[{low:0.000}, {high:0.000}] (2000 resamples, seed {plan.Seed}); fails when the interval lies below 0 and the drop exceeds {scoreMargin:0.###}."));
        }
        if (gates.MaxP95LatencyRatio is { } latencyRatio)
        {
            var ratio = Ratio(candidate.P95LatencyMs, baseline.P95LatencyMs);
            results.Add(new GateResult("maxP95LatencyRatio", RatioPasses(ratio, candidate.P95LatencyMs, baseline.P95LatencyMs, latencyRatio), Round(ratio), latencyRatio,
                SlowerCases(cases, c => c.Baseline.MedianLatencyMs * latencyRatio),
                $"Candidate p95 latency {candidate.P95LatencyMs:0} ms against baseline {baseline.P95LatencyMs:0} ms (ratio at most {latencyRatio})."));
        }
        if (gates.MaxP95LatencyMs is { } latencyMs)
            results.Add(new GateResult("maxP95LatencyMs", candidate.P95LatencyMs is null || candidate.P95LatencyMs <= latencyMs, candidate.P95LatencyMs, latencyMs,
                SlowerCases(cases, _ => latencyMs), $"Candidate p95 latency {candidate.P95LatencyMs:0} ms against at most {latencyMs:0} ms."));
        if (gates.MaxCostRatio is { } costRatio)
        {
            var ratio = Ratio(candidate.MeanCostUsd, baseline.MeanCostUsd);
            results.Add(new GateResult("maxCostRatio", RatioPasses(ratio, candidate.MeanCostUsd, baseline.MeanCostUsd, costRatio), Round(ratio), costRatio,
                cases.Where(c => c.Candidate.MeanCostUsd > c.Baseline.MeanCostUsd * costRatio).Select(c => c.Name).ToList(),
                $"Candidate mean cost per run {candidate.MeanCostUsd:0.######} USD against baseline {baseline.MeanCostUsd:0.######} USD (ratio at most {costRatio})."));
        }
        if (gates.MaxCostUsd is { } costUsd)
            results.Add(new GateResult("maxCostUsd", candidate.MeanCostUsd <= costUsd, candidate.MeanCostUsd, costUsd,
                cases.Where(c => c.Candidate.MeanCostUsd > costUsd).Select(c => c.Name).ToList(),
                $"Candidate mean cost per run {candidate.MeanCostUsd:0.######} USD against at most {costUsd:0.######} USD."));
        if (gates.MinJudgeScore is { } minScore)
            results.Add(new GateResult("minJudgeScore", candidate.MeanJudgeScore is null || candidate.MeanJudgeScore >= minScore, Round(candidate.MeanJudgeScore), minScore,
                cases.Where(c => c.Candidate.MeanScore < minScore).Select(c => c.Name).ToList(),
                candidate.MeanJudgeScore is null ? "No run was judged." : $"Candidate mean judge score {candidate.MeanJudgeScore:0.000} against at least {minScore:0.###}."));

        var latencySource = runs.Any(r => r.LatencyMs is not null)
            ? "Per run: each model call's simulated latency (the model's LatencyMs plus its seeded jitter) for simulated models, the measured call time for real ones, summed over the run's model nodes; runs answered from a recording are not counted."
            : "No run measured latency.";
        // A gate names the cases that failed it; a gate that passed names none (the case table shows every case's figures).
        results = results.Select(g => g.Passed ? g with { Cases = [] } : g).ToList();
        return new Verdict(results.All(g => g.Passed) ? "pass" : "fail", results, cases, baseline, candidate,
            new Pins(plan.SuiteHash, plan.Baseline.PolicyHash, plan.Candidate.PolicyHash, plan.Seed, latencySource));
    }

    static List<string> SlowerCases(List<CaseResult> cases, Func<CaseResult, double?> limit) =>
        cases.Where(c => c.Candidate.MedianLatencyMs is { } l && limit(c) is { } max && l > max).Select(c => c.Name).ToList();

    static ArmCase Arm(IEnumerable<EvaluationCaseRun> runs, double confidence)
    {
        var list = runs.OrderBy(r => r.Repeat).ToList();
        var passed = list.Count(r => r.Passed);
        var (low, high) = Statistics.Wilson(passed, list.Count, confidence);
        var verdict = list.Count == 0 ? CaseVerdicts.StableFail : passed == list.Count ? CaseVerdicts.StablePass : passed == 0 ? CaseVerdicts.StableFail : CaseVerdicts.Flaky;
        var scores = list.Where(r => r.Score is not null).Select(r => r.Score!.Value).ToList();
        var failures = list.Where(r => !r.Passed)
            .SelectMany(r => Outcomes(r).Where(o => !o.Passed).Select(o => $"#{r.Repeat} {o.Type}: {o.Reason}"))
            .Distinct().Take(5).ToList();
        return new ArmCase(list.Count, passed, list.Count == 0 ? 0 : Round((double)passed / list.Count)!.Value, Round(low)!.Value, Round(high)!.Value, verdict,
            scores.Count == 0 ? null : Round(scores.Average()), Statistics.Percentile(list.Where(r => r.LatencyMs is not null).Select(r => r.LatencyMs!.Value), 50),
            list.Count == 0 ? 0 : list.Average(r => r.CostUsd), failures);
    }

    static ArmSummary Summary(string hash, List<EvaluationCaseRun> runs)
    {
        var latencies = runs.Where(r => r.LatencyMs is not null).Select(r => r.LatencyMs!.Value).Order().ToList();
        var scores = runs.Where(r => r.Score is not null).Select(r => r.Score!.Value).ToList();
        return new ArmSummary(hash, runs.Count, runs.Count == 0 ? 0 : Round((double)runs.Count(r => r.Passed) / runs.Count)!.Value,
            Statistics.Percentile(latencies, 50), Statistics.Percentile(latencies, 95), runs.Count == 0 ? 0 : runs.Average(r => r.CostUsd),
            scores.Count == 0 ? null : Round(scores.Average()), runs.Sum(r => r.JudgeCostUsd), latencies, runs.Select(r => r.CostUsd).Order().ToList());
    }

    internal static IReadOnlyList<AssertionOutcome> Outcomes(EvaluationCaseRun run) =>
        System.Text.Json.JsonSerializer.Deserialize(run.Assertions, EvaluationJson.Default.ListAssertionOutcome) ?? [];

    /// <summary>a / b; 1 when both are 0 (two free runs cost alike); null when either is missing or only b is 0.</summary>
    static double? Ratio(double? a, double? b) => a is null || b is null ? null : b == 0 ? (a == 0 ? 1 : null) : a / b;

    /// <summary>Within the ratio; with no ratio, passes unless the baseline was 0 and the candidate is not (an unbounded rise).</summary>
    static bool RatioPasses(double? ratio, double? candidate, double? baseline, double max) =>
        ratio is { } r ? r <= max : !(candidate > 0 && baseline == 0);

    static double? Round(double? value) => value is null ? null : Math.Round(value.Value, 6);
}
