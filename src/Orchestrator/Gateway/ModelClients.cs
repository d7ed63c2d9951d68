using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Frozen;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using OpenAI;

namespace Orchestrator.Gateway;

/// <summary>One <see cref="IChatClient"/> per catalog model, built once at start-up.</summary>
internal sealed class ModelClients : IDisposable
{
    public const string HttpClientName = "models";

    readonly FrozenDictionary<string, IChatClient> _clients;

    public ModelClients(IOptions<ModelOptions> options, IHttpClientFactory http, TimeProvider time)
    {
        _clients = options.Value.Catalog.ToFrozenDictionary(
            m => m.Id,
            m => (IChatClient)new ClassifyingChatClient(Create(m, http, time), m.Id, time),
            StringComparer.Ordinal);
    }

    public IChatClient this[string modelId] => _clients[modelId];

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
                NetworkTimeout = System.Threading.Timeout.InfiniteTimeSpan,
                Transport = new HttpClientPipelineTransport(http.CreateClient(HttpClientName)),
            });
        return client.AsIChatClient();
    }

    public void Dispose()
    {
        foreach (var client in _clients.Values)
            client.Dispose();
    }
}
