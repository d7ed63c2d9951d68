using System.Text.Json;
using System.Text.Json.Serialization;


namespace Orchestrator.Jobs;

/// <summary>Jobs's JSON (camelCase, as the API is written), source-generated; chained into the host's serializer by Jobs's setup.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web,
    ReadCommentHandling = JsonCommentHandling.Skip,
    AllowTrailingCommas = true,
    RespectNullableAnnotations = true,
    NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(JobView))]
[JsonSerializable(typeof(JobPage))]
[JsonSerializable(typeof(JobOutput))]
[JsonSerializable(typeof(ServiceNodeList))]
[JsonSerializable(typeof(TelemetryView))]
[JsonSerializable(typeof(GraphView))]
[JsonSerializable(typeof(TenantUsage))]
[JsonSerializable(typeof(JobStatusEvent))]
[JsonSerializable(typeof(NodeEvent))]
[JsonSerializable(typeof(DeltaEvent))]
[JsonSerializable(typeof(ApprovalEvent))]
internal sealed partial class JobsJson : JsonSerializerContext
{
}
