using System.Text.Json;
using System.Text.Json.Serialization;

// The baseline of bench/run.sh: the minimal API a newcomer writes (WebApplication.CreateBuilder, the
// template's Warning level for ASP.NET Core logs) with one endpoint that reads the same JSON body as
// /v1/act and answers 202 with a small JSON body. No auth, no store, no queue.
var builder = WebApplication.CreateBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
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
