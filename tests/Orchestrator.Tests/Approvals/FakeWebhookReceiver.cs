using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Orchestrator.Tests.Approvals;

/// <summary>A webhook receiver on 127.0.0.1 (real Kestrel): keeps every delivery's headers and exact body, and fails the first N on request.</summary>
public sealed class FakeWebhookReceiver : IAsyncDisposable
{
    readonly WebApplication _app;
    int _failFirst;

    FakeWebhookReceiver(WebApplication app) => _app = app;

    public sealed record Delivery(string Signature, string Event, string Body, bool Answered);

    public ConcurrentQueue<Delivery> Deliveries { get; } = new();

    public string Url { get; private set; } = "";

    public static async Task<FakeWebhookReceiver> StartAsync(int failFirst = 0)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var receiver = new FakeWebhookReceiver(app) { _failFirst = failFirst };
        app.MapPost("/hook", async (HttpContext context) =>
        {
            using var reader = new StreamReader(context.Request.Body);
            var body = await reader.ReadToEndAsync();
            var fail = Interlocked.Decrement(ref receiver._failFirst) >= 0;
            receiver.Deliveries.Enqueue(new Delivery(context.Request.Headers["X-Orchestrator-Signature"].ToString(),
                context.Request.Headers["X-Orchestrator-Event"].ToString(), body, !fail));
            return fail ? Results.StatusCode(503) : Results.Ok();
        });
        await app.StartAsync();
        receiver.Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First() + "/hook";
        return receiver;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
