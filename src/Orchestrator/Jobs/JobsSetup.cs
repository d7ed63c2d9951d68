using Polly;

namespace Orchestrator.Jobs;

internal static class JobsSetup
{
    public static WebApplicationBuilder AddJobs(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<QueueOptions>().BindConfiguration(QueueOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<JobsOptions>().BindConfiguration(JobsOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<JobIds>();
        services.AddSingleton<JobQueue>();
        services.AddSingleton<JobCompletions>();
        services.AddSingleton<RunningJobs>();
        services.AddSingleton<JobExecution>();
        services.AddSingleton<JobQueries>();
        services.AddResiliencePipeline<string, JobOutcome>(JobRetry.PipelineKey,
            (pipeline, context) => JobRetry.Configure(pipeline, context.ServiceProvider));
        services.AddSingleton<JobWorkers>();
        services.AddHostedService(sp => sp.GetRequiredService<JobWorkers>());
        services.AddHostedService<JobDeadlines>();
        return builder;
    }
}
