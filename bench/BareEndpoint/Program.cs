using System.Text.Json;
using System.Text.Json.Serialization;

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, BareJson.Default));
var app = builder.Build();

var id = 0L;
app.MapPost("/v1/act", (ActBody body) =>
    TypedResults.Accepted($"/v1/jobs/{Interlocked.Increment(ref id)}", new Accepted(id.ToString(), body.Intent ?? "text/respond", "accepted")));

app.Run();

/// <summary>The same fields as Orchestrator's act request.</summary>
sealed record ActBody(string? Intent, string? Input, string? Mode, string? Priority, long? DeadlineMs, string? Session, string? IdempotencyKey);

sealed record Accepted(string JobId, string Intent, string Status);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(ActBody))]
[JsonSerializable(typeof(Accepted))]
sealed partial class BareJson : JsonSerializerContext;
