namespace Orchestrator.Gateway;

/// <summary>What a model must offer to serve a node.</summary>
public sealed record ModelRequirements
{
    public double MinQuality { get; set; }
    public IReadOnlyList<string> Tags { get; set; } = [];
}
