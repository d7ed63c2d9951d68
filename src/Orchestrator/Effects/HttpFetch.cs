using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Orchestrator.Hosting;

namespace Orchestrator.Effects;

/// <summary>HTTP requests to hosts on <c>Orchestrator:Effects:HttpAllowList</c>. GET is read-only; anything else is not idempotent.</summary>
internal sealed class HttpFetch(IHttpClientFactory http, IOptions<EffectsOptions> options) : IEffect
{
    public const string HttpClientName = "effects";
    static readonly string[] Methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

    public string Capability => Capabilities.HttpFetch;
    public string Description => "Fetch a URL over HTTP(S) from an allowed host.";
    public JsonElement Schema { get; } = EffectJson.Schema("""{"type":"object","properties":{"url":{"type":"string"},"method":{"type":"string","enum":["GET","HEAD","POST","PUT","PATCH","DELETE"]},"body":{"type":"string"}},"required":["url"]}""");

    public EffectRisk RiskOf(JsonElement arguments) =>
        MethodOf(arguments) is "GET" or "HEAD" ? EffectRisk.ReadOnly : EffectRisk.NonIdempotent;

    static string MethodOf(JsonElement arguments) => (EffectJson.String(arguments, "method") ?? "GET").ToUpperInvariant();

    public Task<EffectPlan> PlanAsync(EffectCall call, CancellationToken cancellationToken)
    {
        Check(call.Arguments);
        return Task.FromResult(EffectPlan.None);
    }

    Uri Check(JsonElement arguments)
    {
        var url = EffectJson.Required(arguments, "url");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new EffectRefusedException(Problems.EffectFailed, $"'{url}' is not an absolute http(s) URL.");
        if (!Methods.Contains(MethodOf(arguments)))
            throw new EffectRefusedException(Problems.EffectFailed, $"Method '{MethodOf(arguments)}' is not supported.");
        var allowed = options.Value.HttpAllowList;
        if (!allowed.Contains(uri.Host, StringComparer.OrdinalIgnoreCase) && !allowed.Contains(uri.Authority, StringComparer.OrdinalIgnoreCase))
            throw new EffectRefusedException(Problems.CapabilityDenied, $"Host '{uri.Authority}' is not on Orchestrator:Effects:HttpAllowList.");
        return uri;
    }

    public async Task<EffectResult> RunAsync(EffectCall call, EffectPlan plan, CancellationToken cancellationToken)
    {
        var uri = Check(call.Arguments);
        using var request = new HttpRequestMessage(new HttpMethod(MethodOf(call.Arguments)), uri);
        request.Headers.Add("Idempotency-Key", call.IdempotencyKey);
        if (EffectJson.String(call.Arguments, "body") is { } body)
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.Value.HttpTimeout);
        try
        {
            // Redirects are not followed: a redirect to a host off the allow-list must not be fetched.
            using var response = await http.CreateClient(HttpClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            var max = options.Value.MaxHttpBytes;
            await using var stream = await response.Content.ReadAsStreamAsync(timeout.Token);
            var buffer = new byte[max + 1];
            var read = 0;
            while (read < buffer.Length && await stream.ReadAsync(buffer.AsMemory(read), timeout.Token) is var n and > 0)
                read += n;
            return EffectResult.Success(new
            {
                status = (int)response.StatusCode,
                contentType = response.Content.Headers.ContentType?.ToString(),
                body = Encoding.UTF8.GetString(buffer, 0, Math.Min(read, max)),
                truncated = read > max,
            });
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return EffectResult.Failure($"No answer within {options.Value.HttpTimeout.TotalSeconds:0.#} s.");
        }
        catch (HttpRequestException error)
        {
            return EffectResult.Failure("The request failed: " + error.Message);
        }
    }
}
