using System.Text.Json;
using System.Text.Json.Serialization;

namespace Orchestrator.Replay;

/// <summary>Replay's JSON (camelCase, as the API is written), source-generated; chained into the host's serializer by Replay's setup.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web,
    ReadCommentHandling = JsonCommentHandling.Skip,
    AllowTrailingCommas = true,
    RespectNullableAnnotations = true,
    NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(ReplayPackage))]
[JsonSerializable(typeof(RerunReport))]
[JsonSerializable(typeof(RerunRequest))]
[JsonSerializable(typeof(RunDiff))]
[JsonSerializable(typeof(ImportedReplay))]
internal sealed partial class ReplayJson : JsonSerializerContext
{
    /// <summary>The same contract, indented, for files and terminals.</summary>
    public static ReplayJson Indented { get; } = new(new JsonSerializerOptions(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        RespectNullableAnnotations = true,
    });
}
