using Orchestrator.Acting;
using Orchestrator.Effects;
using Orchestrator.Gateway;
using Orchestrator.Hosting;
using Orchestrator.Jobs;
using Orchestrator.Replay;
using Orchestrator.Storage;
using Orchestrator.Telemetry;
using Orchestrator.Tenancy;
using Orchestrator.Workflow;

if (args is [ReplayCommand.Verb, .. var replayArgs])
    return await ReplayCommand.RunAsync(replayArgs, Console.Out, Console.Error);

var builder = WebApplication.CreateBuilder(args);

builder.AddTelemetry();
builder.AddHosting();
builder.AddStore();
builder.AddTenancy();
builder.AddGateway();
builder.AddEffects();
builder.AddWorkflow();
builder.AddJobs();
builder.AddActing();
builder.AddReplay();

var app = builder.Build();

await app.PrepareStoreAsync();
app.LoadPolicies();
app.LoadModels();
await app.RecordSnapshotsAsync();

app.UseHosting();
app.UseRequestLogging();
app.UseAuthentication();
app.UseAuthorization();
app.UseMiddleware<BodyLimits>();

app.MapHealth();
app.MapActing().RequireAuthorization().WithBodyLimit(app.Configuration);
app.MapJobs().RequireAuthorization();
app.MapGraph().RequireAuthorization();
app.MapModels().RequireAuthorization();
app.MapReplay().RequireAuthorization();
app.MapDiag();

app.Run();
return 0;

/// <summary>The web host; public so tests can start it with <c>WebApplicationFactory&lt;Program&gt;</c>.</summary>
public partial class Program;
