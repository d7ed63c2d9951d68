using System.Text.Json;
using System.Text.Json.Serialization;

namespace Orchestrator.Hosting;

/// <summary>Hosting's JSON (camelCase, as the API is written), source-generated; chained into the host's serializer by Hosting's setup.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web,
    ReadCommentHandling = JsonCommentHandling.Skip,
    AllowTrailingCommas = true,
    RespectNullableAnnotations = true,
    NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(HealthView))]
internal sealed partial class HostingJson : JsonSerializerContext
{
}
