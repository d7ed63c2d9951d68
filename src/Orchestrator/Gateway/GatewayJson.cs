using System.Text.Json;
using System.Text.Json.Serialization;

namespace Orchestrator.Gateway;

/// <summary>Gateway's JSON (camelCase, as the API is written), source-generated; chained into the host's serializer by Gateway's setup.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web,
    ReadCommentHandling = JsonCommentHandling.Skip,
    AllowTrailingCommas = true,
    RespectNullableAnnotations = true,
    NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(ModelView))]
[JsonSerializable(typeof(RoutingConfiguration))]
internal sealed partial class GatewayJson : JsonSerializerContext
{
}
