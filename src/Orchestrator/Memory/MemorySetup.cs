using System.ComponentModel.DataAnnotations;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;
using Orchestrator.Hosting;

namespace Orchestrator.Memory;

/// <summary>Section <c>Orchestrator:Memory</c>.</summary>
public sealed class MemoryOptions
{
    public const string Section = "Orchestrator:Memory";

    /// <summary>How often expired items are removed from the store; reads hide them from the moment they expire.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "7.00:00:00")]
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromMinutes(10);
}

/// <summary>Memory's JSON (camelCase, as the API is written), source-generated; chained into the host's serializer.</summary>
[JsonSourceGenerationOptions(System.Text.Json.JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(SessionMemoryView))]
[JsonSerializable(typeof(MemorySearchView))]
internal sealed partial class MemoryJson : JsonSerializerContext
{
}

internal static class MemorySetup
{
    public static WebApplicationBuilder AddMemory(this WebApplicationBuilder builder)
    {
        builder.Services.AddJson(MemoryJson.Default);
        builder.Services.AddOptions<MemoryOptions>().BindConfiguration(MemoryOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<MemoryTelemetry>();
        builder.Services.AddSingleton<MemoryStore>();
        builder.Services.AddHostedService<MemorySweeper>();
        return builder;
    }
}

/// <summary>Removes expired items now and then, to free their space; no read depends on it having run.</summary>
internal sealed class MemorySweeper(MemoryStore store, IOptions<MemoryOptions> options, TimeProvider time, ILogger<MemorySweeper> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.SweepInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    if (await store.SweepAsync() is var removed and > 0)
                        log.LogInformation("Memory sweep removed {Removed} expired items", removed);
                }
                catch (Exception error) when (error is not OperationCanceledException)
                {
                    log.LogWarning(error, "Memory sweep failed; the next one retries");
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
