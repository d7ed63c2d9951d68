using Orchestrator.Hosting;
namespace Orchestrator.Workflow;

internal static class WorkflowSetup
{
    public static WebApplicationBuilder AddWorkflow(this WebApplicationBuilder builder)
    {
        builder.Services.AddJson(WorkflowJson.Default);
        builder.Services.AddOptions<WorkflowOptions>().BindConfiguration(WorkflowOptions.Section);
        builder.Services.AddSingleton<IntentCatalog>();
        builder.Services.AddSingleton<JobGraphs>();
        builder.Services.AddSingleton<NodeTelemetry>();
        builder.Services.AddSingleton<ModelDeltas>();
        builder.Services.AddScoped<WorkflowRunner>();
        return builder;
    }

    /// <summary>Loads the intent policies now, so a broken policy file stops start-up instead of failing requests.</summary>
    public static WebApplication LoadPolicies(this WebApplication app)
    {
        app.Services.GetRequiredService<IntentCatalog>();
        return app;
    }
}
