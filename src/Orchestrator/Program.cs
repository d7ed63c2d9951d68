using Orchestrator.Acting;
using Orchestrator.Approvals;
using Orchestrator.Console;
using Orchestrator.Effects;
using Orchestrator.Evaluation;
using Orchestrator.Gateway;
using Orchestrator.Hosting;
using Orchestrator.Jobs;
using Orchestrator.Memory;
using Orchestrator.Replay;
using Orchestrator.Rollout;
using Orchestrator.Storage;
using Orchestrator.Telemetry;
using Orchestrator.Tenancy;
using Orchestrator.Workflow;

if (args is [ReplayCommand.Verb, .. var replayArgs])
    return await ReplayCommand.RunAsync(replayArgs, Console.Out, Console.Error);

// The host reads appsettings*.json from its content root, the working directory. Started from elsewhere
// (`dotnet path/to/Orchestrator.dll`), that folder has none of them: then read them from beside the binary.
var here = Directory.GetCurrentDirectory();
var builder = !File.Exists(Path.Combine(here, "appsettings.json")) && File.Exists(Path.Combine(AppContext.BaseDirectory, "appsettings.json"))
    ? WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory })
    : WebApplication.CreateBuilder(args);

builder.AddTelemetry();
builder.AddHosting();
builder.AddStore();
builder.AddTenancy();
builder.AddGateway();
builder.AddEffects();
builder.AddMemory();
builder.AddApprovals();
builder.AddWorkflow();
builder.AddJobs();
builder.AddActing();
builder.AddReplay();
builder.AddEvaluation(args);
builder.AddRollout();
builder.AddConsole();

var app = builder.Build();
app.WarnWithoutKeys();

if (!await app.PrepareStoreAsync())
    return 1;
await app.PrepareConsoleKeysAsync();
app.LoadPolicies();
app.LoadModels();
await app.RecordSnapshotsAsync();
if (args is [EvaluationCommand.Verb, .. var evalArgs])
    return await EvaluationCommand.RunAsync(app, evalArgs);

// Outside the exception handler, so a request log shows the status the client got (a 400 for an unreadable
// body, not the 500 of the exception on its way to the handler).
app.UseRequestLogging();
app.UseHosting();
app.UseAuthentication();
app.UseAuthorization();
app.UseMiddleware<BodyLimits>();

app.MapHealth();
app.MapActing().RequireAuthorization(TenancySetup.UserPolicy).WithBodyLimit(app.Configuration);
app.MapChatCompletions().RequireAuthorization(TenancySetup.UserPolicy).WithBodyLimit(app.Configuration);
app.MapJobs().RequireAuthorization(TenancySetup.UserPolicy);
app.MapAudit().RequireAuthorization();
app.MapAdmin();
app.MapUsage().RequireAuthorization();
app.MapGraph().RequireAuthorization(TenancySetup.UserPolicy);
app.MapModels().RequireAuthorization();
app.MapReplay().RequireAuthorization(TenancySetup.UserPolicy);
app.MapMemory().RequireAuthorization(TenancySetup.UserPolicy);
app.MapEvaluation().RequireAuthorization(TenancySetup.OperatorPolicy);
app.MapRollout().RequireAuthorization(TenancySetup.OperatorPolicy);
app.MapApprovals().RequireAuthorization();
app.MapDiag();
app.MapConsole();

app.Run();
return 0;

/// <summary>The web host; public so tests can start it with <c>WebApplicationFactory&lt;Program&gt;</c>.</summary>
public partial class Program;
