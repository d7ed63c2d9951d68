using Microsoft.Extensions.Options;

namespace Orchestrator.Gateway;

/// <summary>One entry of <c>Orchestrator:Models</c>.</summary>
public sealed class ModelEntry
{
    public string Id { get; set; } = "";

    /// <summary><c>openai</c> (any OpenAI-compatible chat-completions endpoint) or <c>simulated</c>.</summary>
    public string Provider { get; set; } = "";

    /// <summary>Base URL as OpenAI SDKs take it, e.g. <c>http://127.0.0.1:11434/v1</c>.</summary>
    public string? Endpoint { get; set; }

    /// <summary>The provider's model name; defaults to <see cref="Id"/>.</summary>
    public string? Model { get; set; }

    public string? ApiKey { get; set; }

    /// <summary>Name of an environment variable holding the API key (kept out of configuration files).</summary>
    public string? ApiKeyEnv { get; set; }

    public decimal CostPer1kInputUsd { get; set; }
    public decimal CostPer1kOutputUsd { get; set; }

    /// <summary>
    /// Whether what a call costs is known: both prices configured (0 is a price), or a simulated model (free). A cost
    /// budget never lets a request reach a model whose price is not known: it could not be metered. Set from the
    /// configuration's keys (the binder cannot tell a price left out from a price of 0).
    /// </summary>
    public bool Priced { get; internal set; }

    /// <summary>Relative answer quality, 0..1, used by <c>quality-first</c>.</summary>
    public double Quality { get; set; } = 0.5;

    public List<string> Tags { get; set; } = [];

    /// <summary>Per-call timeout (one attempt).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Most calls in flight to this model at once; further calls wait for a slot.</summary>
    public int MaxConcurrency { get; set; } = 64;

    /// <summary>Simulated provider: latency of every call, in ms.</summary>
    public int LatencyMs { get; set; }

    /// <summary>Simulated provider: extra latency drawn uniformly from 0..this, in ms.</summary>
    public int LatencyJitterMs { get; set; }

    /// <summary>Simulated provider: share of calls (0..1) that fail as a server error.</summary>
    public double FailureRate { get; set; }

    /// <summary>Simulated provider: fixed reply text; by default it echoes the request deterministically.</summary>
    public string? Reply { get; set; }

    public string ModelName => string.IsNullOrWhiteSpace(Model) ? Id : Model;

    public bool IsSimulated => Provider == ModelProviders.Simulated;
}

public static class ModelProviders
{
    public const string OpenAi = "openai";
    public const string Simulated = "simulated";
}

/// <summary>Section <c>Orchestrator</c>, key <c>Models</c>.</summary>
public sealed class ModelOptions
{
    public List<ModelEntry> Models { get; set; } = [];

    /// <summary>The catalog in force: the configured models, or one simulated model when none is configured.</summary>
    public IReadOnlyList<ModelEntry> Catalog => Models.Count > 0 ? Models : [DefaultSimulated];

    public static ModelEntry DefaultSimulated => new()
    {
        Id = "simulated",
        Provider = ModelProviders.Simulated,
        Quality = 0.5,
        Tags = ["simulated"],
        Priced = true,
    };
}

internal sealed class ModelOptionsValidator : IValidateOptions<ModelOptions>
{
    public ValidateOptionsResult Validate(string? name, ModelOptions options)
    {
        var failures = new List<string>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < options.Models.Count; i++)
        {
            var m = options.Models[i];
            var at = $"Orchestrator:Models:{i}";
            if (string.IsNullOrWhiteSpace(m.Id))
                failures.Add($"{at}:Id is empty.");
            else if (!ids.Add(m.Id))
                failures.Add($"{at}:Id '{m.Id}' repeats an earlier model.");
            switch (m.Provider)
            {
                case ModelProviders.Simulated:
                    break;
                case ModelProviders.OpenAi:
                    if (!Uri.TryCreate(m.Endpoint, UriKind.Absolute, out var endpoint) || endpoint.Scheme is not ("http" or "https"))
                        failures.Add($"{at}:Endpoint must be an absolute http(s) URL such as http://127.0.0.1:11434/v1 (is '{m.Endpoint}').");
                    if (!string.IsNullOrWhiteSpace(m.ApiKeyEnv) && string.IsNullOrEmpty(Environment.GetEnvironmentVariable(m.ApiKeyEnv)))
                        failures.Add($"{at}:ApiKeyEnv names '{m.ApiKeyEnv}', which is not set in the environment.");
                    break;
                default:
                    failures.Add($"{at}:Provider is '{m.Provider}'; it must be 'openai' or 'simulated'.");
                    break;
            }
            if (m.CostPer1kInputUsd < 0)
                failures.Add($"{at}:CostPer1kInputUsd must not be negative.");
            if (m.CostPer1kOutputUsd < 0)
                failures.Add($"{at}:CostPer1kOutputUsd must not be negative.");
            if (m.Quality is < 0 or > 1 || double.IsNaN(m.Quality))
                failures.Add($"{at}:Quality must be between 0 and 1.");
            if (m.Timeout <= TimeSpan.Zero)
                failures.Add($"{at}:Timeout must be positive.");
            if (m.MaxConcurrency < 1)
                failures.Add($"{at}:MaxConcurrency must be at least 1.");
            if (m.LatencyMs < 0 || m.LatencyJitterMs < 0)
                failures.Add($"{at}:LatencyMs and LatencyJitterMs must not be negative.");
            if (m.FailureRate is < 0 or > 1 || double.IsNaN(m.FailureRate))
                failures.Add($"{at}:FailureRate must be between 0 and 1.");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
