namespace Orchestrator.Gateway;

public static class RoutingStrategies
{
    public const string LatencyFirst = "latency-first";
    public const string QualityFirst = "quality-first";
    public const string CostFirst = "cost-first";

    public static readonly IReadOnlyList<string> All = [LatencyFirst, QualityFirst, CostFirst];

    public static bool IsKnown(string? strategy) => strategy is not null && All.Contains(strategy);
}
