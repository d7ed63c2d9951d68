using Orchestrator.Hosting;
namespace Orchestrator.Jobs;

internal static class JobsSetup
{
    public static WebApplicationBuilder AddJobs(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddJson(JobsJson.Default);
        services.AddOptions<QueueOptions>().BindConfiguration(QueueOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<JobsOptions>().BindConfiguration(JobsOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<JobIds>();
        services.AddSingleton<JobQueue>();
        services.AddSingleton<JobCompletions>();
        services.AddSingleton<RunningJobs>();
        services.AddSingleton<JobRetry>();
        services.AddSingleton<JobWakeups>();
        services.AddSingleton<JobSlots>();
        services.AddHostedService(sp => sp.GetRequiredService<JobSlots>());
        services.AddSingleton<JobExecution>();
        services.AddSingleton<JobQueries>();
        services.AddSingleton<ParkedJobs>();
        services.AddSingleton<Approvals.IParkedJobs>(sp => sp.GetRequiredService<ParkedJobs>());
        services.AddSingleton<JobEvents>();
        services.AddSingleton<JobDispatcher>();
        services.AddSingleton<JobWorkers>();
        services.AddHostedService(sp => sp.GetRequiredService<JobWorkers>());
        services.AddHostedService<JobDeadlines>();
        services.AddHostedService<NodeBeat>();
        return builder;
    }
}
