using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Orchestrator.Hosting;

namespace Orchestrator.Effects;

/// <summary>
/// Names to addresses for <c>http/fetch</c>: <c>Orchestrator:Effects:HostAddresses</c> (a name pinned to addresses,
/// as <c>curl --resolve</c> does: split-horizon names, tests), else the system resolver.
/// </summary>
internal sealed class HostResolver(IOptions<EffectsOptions> options)
{
    public async Task<IReadOnlyList<IPAddress>> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(host, out var literal))
            return [literal];
        if (options.Value.HostAddresses.FirstOrDefault(p => string.Equals(p.Key, host, StringComparison.OrdinalIgnoreCase)).Value is { } pinned)
            return pinned.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(IPAddress.Parse).ToList();
        try
        {
            return await Dns.GetHostAddressesAsync(host, cancellationToken);
        }
        catch (SocketException error)
        {
            throw new EffectRefusedException(Problems.EffectFailed, $"The host '{host}' could not be resolved: {error.Message}");
        }
    }
}

/// <summary>
/// HTTP requests to hosts a rule allows (<see cref="HostRules"/>). Each hop (the URL, then every redirect, at most
/// <see cref="MaxRedirects"/>) is checked: host rule, then the name is resolved once and the address judged, and
/// that very address is the one connected to (a name that resolves differently a moment later cannot rebind the
/// call to an internal address). No proxy and no pooled connection outlive the call. GET is read-only; anything
/// else is not idempotent.
/// </summary>
internal sealed class HttpFetch(HostResolver resolver, SecretStore secrets, IOptions<EffectsOptions> options) : IEffect
{
    const int MaxRedirects = 5;
    static readonly string[] Methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
    static readonly HttpRequestOptionsKey<IPAddress> PinnedAddress = new("orchestrator.pinned-address");

    public string Capability => Capabilities.HttpFetch;
    public string Description => "Fetch a URL over HTTP(S) from an allowed host.";
    public JsonElement Schema { get; } = EffectJson.Schema("""{"type":"object","properties":{"url":{"type":"string"},"method":{"type":"string","enum":["GET","HEAD","POST","PUT","PATCH","DELETE"]},"body":{"type":"string"},"secrets":{"type":"array","items":{"type":"string"},"description":"Names of granted secrets to send as headers"}},"required":["url"]}""");

    public EffectRisk RiskOf(JsonElement arguments) =>
        MethodOf(arguments) is "GET" or "HEAD" ? EffectRisk.ReadOnly : EffectRisk.NonIdempotent;

    static string MethodOf(JsonElement arguments) => (EffectJson.String(arguments, "method") ?? "GET").ToUpperInvariant();

    HostRules Rules => new(options.Value);

    public Task<EffectPlan> PlanAsync(EffectCall call, CancellationToken cancellationToken)
    {
        var uri = Check(call.Arguments);
        Rules.Allow(uri, MethodOf(call.Arguments), call.Tenant);
        secrets.Grant(call, SecretStore.Requested(call.Arguments), SecretTarget.Header, uri.IdnHost);
        return Task.FromResult(EffectPlan.None);
    }

    static Uri Check(JsonElement arguments)
    {
        var url = EffectJson.Required(arguments, "url");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || !IsHttp(uri))
            throw new EffectRefusedException(Problems.EffectFailed, $"'{url}' is not an absolute http(s) URL.");
        if (!Methods.Contains(MethodOf(arguments)))
            throw new EffectRefusedException(Problems.EffectFailed, $"Method '{MethodOf(arguments)}' is not supported.");
        if (!string.IsNullOrEmpty(uri.UserInfo))
            throw new EffectRefusedException(Problems.EffectFailed, "URLs with user information are not fetched.");
        return uri;
    }

    static bool IsHttp(Uri uri) => uri.Scheme is "http" or "https";

    public async Task<EffectResult> RunAsync(EffectCall call, EffectPlan plan, CancellationToken cancellationToken)
    {
        var uri = Check(call.Arguments);
        var method = MethodOf(call.Arguments);
        var body = EffectJson.String(call.Arguments, "body");
        var requested = SecretStore.Requested(call.Arguments);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.Value.HttpTimeout);
        using var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseProxy = false,
            UseCookies = false,
            ConnectCallback = ConnectPinnedAsync,
            PooledConnectionLifetime = options.Value.HttpTimeout,
        };
        using var client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        try
        {
            for (var hop = 0; ; hop++)
            {
                var rule = Rules.Allow(uri, method, call.Tenant);
                var host = uri.IdnHost.Trim('[', ']');
                var address = HostRules.Pick(rule, host, await resolver.ResolveAsync(host, timeout.Token));
                using var request = new HttpRequestMessage(new HttpMethod(method), uri);
                request.Options.Set(PinnedAddress, address);
                request.Headers.Add("Idempotency-Key", call.IdempotencyKey);
                // A header secret is granted per host: checked again on every hop, so a redirect elsewhere never carries it.
                foreach (var secret in secrets.Grant(call, requested, SecretTarget.Header, host))
                    request.Headers.TryAddWithoutValidation(secret.Target, secret.Value);
                if (body is not null)
                    request.Content = new StringContent(body, Encoding.UTF8, "application/json");
                using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
                if (IsRedirect(response.StatusCode) && response.Headers.Location is { } location)
                {
                    if (hop == MaxRedirects)
                        return EffectResult.Failure($"More than {MaxRedirects} redirects.");
                    var next = location.IsAbsoluteUri ? location : new Uri(uri, location);
                    if (!IsHttp(next))
                        throw new EffectRefusedException(Problems.CapabilityDenied, $"A redirect to '{next.Scheme}:' is not followed.", "http.redirect");
                    // 303, and 301/302 after a POST as browsers do, continue as a GET without the body.
                    if (response.StatusCode == HttpStatusCode.SeeOther || (method == "POST" && (int)response.StatusCode is 301 or 302))
                        (method, body) = ("GET", null);
                    uri = next;
                    continue;
                }
                return await ReadAsync(response, timeout.Token);
            }
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

    static bool IsRedirect(HttpStatusCode status) => (int)status is 301 or 302 or 303 or 307 or 308;

    async Task<EffectResult> ReadAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var max = options.Value.MaxHttpBytes;
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        var buffer = new byte[max + 1];
        var read = 0;
        while (read < buffer.Length && await stream.ReadAsync(buffer.AsMemory(read), cancellationToken) is var n and > 0)
            read += n;
        return EffectResult.Success(new
        {
            status = (int)response.StatusCode,
            contentType = response.Content.Headers.ContentType?.ToString(),
            body = Encoding.UTF8.GetString(buffer, 0, Math.Min(read, max)),
            truncated = read > max,
        });
    }

    /// <summary>Connects to the address the checks chose for this request, never to a fresh lookup of the name.</summary>
    static async ValueTask<Stream> ConnectPinnedAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        if (!context.InitialRequestMessage.Options.TryGetValue(PinnedAddress, out var address))
            throw new HttpRequestException("http/fetch connects only to an address it checked.");
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(new IPEndPoint(address, context.DnsEndPoint.Port), cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
