using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;

namespace Orchestrator.Gateway;

/// <summary>The routing configuration in force (the catalog without secrets, and the gateway's options) and its hash.</summary>
internal sealed class RoutingSnapshot
{
    public RoutingSnapshot(IOptions<ModelOptions> models, IOptions<GatewayOptions> gateway)
    {
        var content = new RoutingConfiguration(
            models.Value.Catalog.Select(m => new ModelConfiguration(
                m.Id, m.Provider, m.Endpoint, m.ModelName, m.CostPer1kInputUsd, m.CostPer1kOutputUsd, m.Quality, m.Tags,
                m.Timeout, m.MaxConcurrency, !string.IsNullOrEmpty(m.ApiKey) || !string.IsNullOrEmpty(m.ApiKeyEnv))).ToList(),
            gateway.Value.DefaultStrategy, gateway.Value.MaxRetries, gateway.Value.BreakerFailureRatio,
            gateway.Value.BreakerMinimumThroughput, gateway.Value.BreakDuration);
        Content = JsonSerializer.Serialize(content, GatewayJson.Default.RoutingConfiguration);
        Hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Content)));
    }

    public string Content { get; }
    public string Hash { get; }
}

/// <summary>The routing configuration a run used. API keys are never part of it: only whether one was set.</summary>
public sealed record RoutingConfiguration(
    IReadOnlyList<ModelConfiguration> Models, string DefaultStrategy, int MaxRetries, double BreakerFailureRatio,
    int BreakerMinimumThroughput, TimeSpan BreakDuration);

public sealed record ModelConfiguration(
    string Id, string Provider, string? Endpoint, string Model, decimal CostPer1kInputUsd, decimal CostPer1kOutputUsd,
    double Quality, IReadOnlyList<string> Tags, TimeSpan Timeout, int MaxConcurrency, bool HasApiKey);
