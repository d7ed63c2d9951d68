using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Orchestrator.Tests.Effects;

/// <summary>A real HTTP server on 127.0.0.1 for <c>http/fetch</c>: <c>/echo</c> answers the request's headers, <c>/redirect?to=URL</c> a 302.</summary>
public sealed class FakeHttpServer : IAsyncDisposable
{
    readonly WebApplication _app;

    FakeHttpServer(WebApplication app) => _app = app;

    public static async Task<FakeHttpServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var server = new FakeHttpServer(app);
        app.Use(async (context, next) =>
        {
            server.Paths.Enqueue(context.Request.Path + context.Request.QueryString);
            server.Requests.Enqueue(string.Join("\n", context.Request.Headers.Select(h => $"{h.Key}: {h.Value}")));
            await next();
        });
        app.MapGet("/echo", (HttpRequest request) => string.Join("\n", request.Headers.Select(h => $"{h.Key}: {h.Value}")));
        app.MapGet("/redirect", (string to) => Results.Redirect(to));
        app.MapGet("/", () => "root");
        await app.StartAsync();
        server.BaseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return server;
    }

    public string BaseUrl { get; private set; } = "";

    /// <summary>Every request's path and query, oldest first.</summary>
    public ConcurrentQueue<string> Paths { get; } = new();

    /// <summary>Every request's headers, one "Name: value" a line.</summary>
    public ConcurrentQueue<string> Requests { get; } = new();

    public int Hits => Paths.Count;

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
