using System.Text.Json;
using System.Text.Json.Serialization;

namespace Orchestrator.Tenancy;

/// <summary>Tenancy's JSON (camelCase, as the API is written), source-generated; chained into the host's serializer by Tenancy's setup.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web,
    ReadCommentHandling = JsonCommentHandling.Skip,
    AllowTrailingCommas = true,
    RespectNullableAnnotations = true,
    NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(AuditPage))]
[JsonSerializable(typeof(AuditVerification))]
[JsonSerializable(typeof(TenantDocument))]
[JsonSerializable(typeof(TenantPage))]
[JsonSerializable(typeof(KeyRequest))]
[JsonSerializable(typeof(CreatedKey))]
[JsonSerializable(typeof(KeyPage))]
internal sealed partial class TenancyJson : JsonSerializerContext
{
}
