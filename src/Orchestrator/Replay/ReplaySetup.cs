using Orchestrator.Gateway;
using Orchestrator.Hosting;
namespace Orchestrator.Replay;

internal static class ReplaySetup
{
    public static WebApplicationBuilder AddReplay(this WebApplicationBuilder builder)
    {
        builder.Services.AddJson(ReplayJson.Default);
        builder.Services.AddOptions<ReplayOptions>().BindConfiguration(ReplayOptions.Section).ValidateOnStart()
            .Validate(o => o.Retention > TimeSpan.Zero, "Orchestrator:Replay:Retention must be positive.")
            .Validate(o => o.SweepInterval > TimeSpan.Zero, "Orchestrator:Replay:SweepInterval must be positive.");
        builder.Services.AddSingleton<RoutingSnapshot>();
        builder.Services.AddSingleton<Scrubber>();
        builder.Services.AddSingleton<ReplayStore>();
        builder.Services.AddSingleton<SnapshotPolicies>();
        builder.Services.AddSingleton<Workflow.IPolicySnapshots>(services => services.GetRequiredService<SnapshotPolicies>());
        builder.Services.AddHostedService<ReplayRetention>();
        return builder;
    }
}
