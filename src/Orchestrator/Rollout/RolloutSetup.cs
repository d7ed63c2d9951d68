using System.Text.Json;
using System.Text.Json.Serialization;
using Orchestrator.Hosting;
using Orchestrator.Workflow;

namespace Orchestrator.Rollout;

internal static class RolloutSetup
{
    public static WebApplicationBuilder AddRollout(this WebApplicationBuilder builder)
    {
        builder.Services.AddJson(RolloutJson.Default);
        builder.Services.AddOptions<RolloutOptions>().BindConfiguration(RolloutOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<RolloutState>();
        builder.Services.AddSingleton<IVersionChooser>(services => services.GetRequiredService<RolloutState>());
        builder.Services.AddSingleton<RolloutService>();
        builder.Services.AddSingleton<RolloutAnalysis>();
        builder.Services.AddSingleton<RolloutWatch>();
        builder.Services.AddHostedService(services => services.GetRequiredService<RolloutWatch>());
        builder.Services.AddSingleton<ShadowReport>();
        builder.Services.AddSingleton<ShadowWorker>();
        builder.Services.AddHostedService(services => services.GetRequiredService<ShadowWorker>());
        return builder;
    }
}

/// <summary>Rollout's JSON (camelCase, as the API is written), source-generated; chained into the host's serializer.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web,
    ReadCommentHandling = JsonCommentHandling.Skip,
    AllowTrailingCommas = true,
    RespectNullableAnnotations = true,
    NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(ArtifactList))]
[JsonSerializable(typeof(ArtifactView))]
[JsonSerializable(typeof(RolloutView))]
[JsonSerializable(typeof(RolloutUpdate))]
[JsonSerializable(typeof(PromoteRequest))]
[JsonSerializable(typeof(RollbackRequest))]
[JsonSerializable(typeof(ShadowComparison))]
internal sealed partial class RolloutJson : JsonSerializerContext;
