using System.Text.Json;
using System.Text.Json.Serialization;
using Orchestrator.Acting;
using Orchestrator.Jobs;
using Orchestrator.Workflow;

namespace Orchestrator;

/// <summary>Source-generated JSON for the hot path and the store (camelCase, as API.md says).</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web,
    ReadCommentHandling = JsonCommentHandling.Skip,
    AllowTrailingCommas = true,
    RespectNullableAnnotations = true,
    NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(ActRequest))]
[JsonSerializable(typeof(JobView))]
[JsonSerializable(typeof(JobPage))]
[JsonSerializable(typeof(ServiceNodeList))]
[JsonSerializable(typeof(JobOutput))]
[JsonSerializable(typeof(IReadOnlyList<NodeRouting>))]
[JsonSerializable(typeof(IntentPolicy))]
[JsonSerializable(typeof(ModelCheckpoint))]
[JsonSerializable(typeof(ModelInput))]
[JsonSerializable(typeof(EffectInput))]
[JsonSerializable(typeof(EffectCheckpoint))]
[JsonSerializable(typeof(GraphView))]
[JsonSerializable(typeof(Replay.ReplayPackage))]
[JsonSerializable(typeof(Replay.RerunReport))]
[JsonSerializable(typeof(Replay.RerunRequest))]
[JsonSerializable(typeof(Replay.RunDiff))]
[JsonSerializable(typeof(Replay.ImportedReplay))]
[JsonSerializable(typeof(Replay.RoutingConfiguration))]
[JsonSerializable(typeof(Replay.ModelQuestion))]
[JsonSerializable(typeof(Dictionary<string, object?>))]
[JsonSerializable(typeof(Hosting.HealthView))]
[JsonSerializable(typeof(Telemetry.TelemetryView))]
[JsonSerializable(typeof(Gateway.ModelList))]
[JsonSerializable(typeof(Gateway.ModelView))]
[JsonSerializable(typeof(JsonElement))]
public sealed partial class OrchestratorJson : JsonSerializerContext
{
    /// <summary>The same contract, indented, for files and terminals.</summary>
    public static OrchestratorJson Indented { get; } = new(new JsonSerializerOptions(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        RespectNullableAnnotations = true,
    });
}
