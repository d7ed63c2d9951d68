using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Frozen;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using OpenAI;
using Polly.Registry;

namespace Orchestrator.Gateway;

/// <summary>The models of <c>Orchestrator:Models</c>, each with its client pipeline, built once at start-up.</summary>
internal sealed class ModelCatalog : IDisposable
{
    public const string HttpClientName = "models";

    readonly FrozenDictionary<string, CatalogModel> _byId;

    public ModelCatalog(
        IOptions<ModelOptions> models, IOptions<GatewayOptions> gateway, IHttpClientFactory http, TimeProvider time,
        GatewayTelemetry telemetry, Telemetry.OrchestratorTelemetry meters)
    {
        All = models.Value.Catalog.Select(entry =>
        {
            var health = new ModelHealth(gateway.Value.HealthSamples, gateway.Value.HealthWindow, time, gateway.Value.ErrorHalfLife);
            // The pipeline every call of this model goes through, inside out: the provider, the classifier
            // (one failure vocabulary), and health recording (latency and failures per attempt).
            var client = new HealthRecordingChatClient(
                new ClassifyingChatClient(Create(entry, http, time), entry.Id, time), health, telemetry, entry.Id, time);
            return new CatalogModel(entry, client, health, time);
        }).ToList();
        _byId = All.ToFrozenDictionary(m => m.Id, StringComparer.Ordinal);
        meters.ObserveGauge("orchestrator.model.score", () => Observe((m, h) => m.Status(h) == "quarantined" ? 0 : h.Score),
            "1", "Composite health score per model (0..1; 0 while quarantined).");
        meters.ObserveGauge("orchestrator.model.error_rate", () => Observe((_, h) => h.ErrorRate),
            "1", "Share of recent calls that failed, per model.");
        meters.ObserveGauge("orchestrator.model.latency_p95", () => Observe((_, h) => h.P95Ms ?? 0),
            "ms", "p95 latency of recent successful calls, per model.");
    }

    IEnumerable<System.Diagnostics.Metrics.Measurement<double>> Observe(Func<CatalogModel, HealthSnapshot, double> figure) =>
        All.Select(m => new System.Diagnostics.Metrics.Measurement<double>(
            figure(m, m.Health.Snapshot()), new KeyValuePair<string, object?>("model", m.Id)));

    public IReadOnlyList<CatalogModel> All { get; }

    public CatalogModel? Find(string id) => _byId.GetValueOrDefault(id);

    /// <summary>Resolves each model's resilience pipeline; separate from construction because the pipelines are built from the catalog.</summary>
    public void BindPipelines(ResiliencePipelineProvider<string> pipelines)
    {
        foreach (var model in All)
            model.Pipeline = pipelines.GetPipeline<ChatResponse>(ModelResilience.KeyOf(model.Id));
    }

    static IChatClient Create(ModelEntry model, IHttpClientFactory http, TimeProvider time)
    {
        if (model.IsSimulated)
            return new SimulatedChatClient(model, time);

        var key = !string.IsNullOrWhiteSpace(model.ApiKeyEnv)
            ? Environment.GetEnvironmentVariable(model.ApiKeyEnv)
            : model.ApiKey;
        var client = new OpenAI.Chat.ChatClient(
            model.ModelName,
            // Local servers (Ollama, vLLM, llama.cpp) take any key; the SDK insists on one.
            new ApiKeyCredential(string.IsNullOrEmpty(key) ? "unused" : key),
            new OpenAIClientOptions
            {
                Endpoint = new Uri(model.Endpoint!),
                // Polly owns retries and timeouts (per model, observable); the SDK must not retry behind its back.
                RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
                NetworkTimeout = Timeout.InfiniteTimeSpan,
                Transport = new HttpClientPipelineTransport(http.CreateClient(HttpClientName)),
            });
        return client.AsIChatClient();
    }

    public void Dispose()
    {
        foreach (var model in All)
        {
            model.Client.Dispose();
            model.Slots.Dispose();
        }
    }
}
