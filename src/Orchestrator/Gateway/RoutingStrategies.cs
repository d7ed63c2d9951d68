namespace Orchestrator.Gateway;

/// <summary>
/// How candidates are ranked. Every strategy ranks by its own figure and breaks ties by expected latency;
/// expected latency is the EWMA divided by the success rate (a model that fails half its calls costs twice
/// the time), and a model with no history yet is tried first so that it gets some.
/// </summary>
public static class RoutingStrategies
{
    public const string LatencyFirst = "latency-first";
    public const string QualityFirst = "quality-first";
    public const string CostFirst = "cost-first";

    public static readonly IReadOnlyList<string> All = [LatencyFirst, QualityFirst, CostFirst];

    public static bool IsKnown(string? strategy) => strategy is not null && All.Contains(strategy);

    /// <summary>
    /// Expected latency of a call, in ms: 0 for a model never called (so it gets tried), infinite for one that
    /// has been called but never answered (it must not stay first choice by having no latency to compare).
    /// </summary>
    public static double ExpectedLatency(HealthSnapshot health) => health.EwmaMs switch
    {
        { } ewma => ewma / Math.Max(health.SuccessRate, 0.05),
        null when health.TotalCalls > 0 => double.PositiveInfinity,
        _ => 0,
    };

    /// <summary>The candidate's score under the strategy: 0..1, higher is better.</summary>
    public static double Score(string strategy, ModelEntry model, HealthSnapshot health) => Math.Round(strategy switch
    {
        QualityFirst => model.Quality * health.SuccessRate,
        CostFirst => health.SuccessRate / (1 + 1000 * (double)(model.CostPer1kInputUsd + model.CostPer1kOutputUsd)),
        _ => double.IsPositiveInfinity(ExpectedLatency(health)) ? 0 : health.SuccessRate * 1000 / (1000 + ExpectedLatency(health)),
    }, 4);

    /// <summary>Orders candidates best first.</summary>
    internal static IEnumerable<(CatalogModel Model, HealthSnapshot Health)> Rank(
        string strategy, IEnumerable<(CatalogModel Model, HealthSnapshot Health)> candidates) => strategy switch
    {
        QualityFirst => candidates.OrderByDescending(c => c.Model.Entry.Quality).ThenBy(c => ExpectedLatency(c.Health)),
        CostFirst => candidates.OrderBy(c => c.Model.Entry.CostPer1kInputUsd + c.Model.Entry.CostPer1kOutputUsd).ThenBy(c => ExpectedLatency(c.Health)),
        _ => candidates.OrderBy(c => ExpectedLatency(c.Health)).ThenByDescending(c => c.Model.Entry.Quality),
    };

    internal static string Why(string strategy, ModelEntry model, HealthSnapshot health) => strategy switch
    {
        QualityFirst => $"quality {model.Quality:0.##}",
        CostFirst => $"cost ${model.CostPer1kInputUsd + model.CostPer1kOutputUsd:0.######} per 1k tokens in+out",
        _ => health.EwmaMs is not null ? $"expected latency {ExpectedLatency(health):0.#} ms"
            : health.TotalCalls > 0 ? "never answered yet (ranked last)"
            : "no latency history yet (tried to learn it)",
    };
}
