using System.Text.Json;
using System.Text.Json.Serialization;

namespace Orchestrator.Workflow;

/// <summary>Workflow's JSON (camelCase, as the API is written), source-generated; chained into the host's serializer by Workflow's setup.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web,
    ReadCommentHandling = JsonCommentHandling.Skip,
    AllowTrailingCommas = true,
    RespectNullableAnnotations = true,
    NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(ActRequest))]
[JsonSerializable(typeof(IntentPolicy))]
[JsonSerializable(typeof(JobVersions))]
[JsonSerializable(typeof(ModelCheckpoint))]
[JsonSerializable(typeof(ModelInput))]
[JsonSerializable(typeof(EffectInput))]
[JsonSerializable(typeof(EffectCheckpoint))]
[JsonSerializable(typeof(ModelQuestion))]
[JsonSerializable(typeof(MemoryInput))]
[JsonSerializable(typeof(ApprovalInput))]
[JsonSerializable(typeof(ApprovalCheckpoint))]
[JsonSerializable(typeof(MemoryCheckpoint))]
[JsonSerializable(typeof(IReadOnlyList<NodeRouting>))]
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(Dictionary<string, object?>))]
internal sealed partial class WorkflowJson : JsonSerializerContext
{
}
