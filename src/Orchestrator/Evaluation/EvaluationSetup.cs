using System.ComponentModel.DataAnnotations;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http.Features;
using Orchestrator.Hosting;

namespace Orchestrator.Evaluation;

/// <summary>Section <c>Orchestrator:Evaluation</c>.</summary>
public sealed class EvaluationOptions
{
    public const string Section = "Orchestrator:Evaluation";

    /// <summary>The model that scores <c>judge</c> assertions (a catalog id); none: suites with judge assertions are refused.</summary>
    public string? JudgeModel { get; set; }

    /// <summary>How long a node's claim on a running evaluation lasts without renewal; another node resumes it after.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often a node looks for evaluations to run (it is woken at once for ones submitted to it).</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Wait before a case run refused for load (queue full, rate limited) is admitted again.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMilliseconds(200);
}

internal static class EvaluationSetup
{
    public static WebApplicationBuilder AddEvaluation(this WebApplicationBuilder builder, string[] args)
    {
        builder.Services.AddJson(EvaluationJson.Default);
        builder.Services.AddOptions<EvaluationOptions>().BindConfiguration(EvaluationOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<EvaluationRunner>();
        builder.Services.AddSingleton<EvaluationSignal>();
        builder.Services.AddSingleton<EvaluationSubmissions>();
        builder.Services.AddHostedService<EvaluationWorker>();
        // The command line runs the service in-process to evaluate, with no HTTP listener (nothing to bind, no port to clash).
        if (args is [EvaluationCommand.Verb, ..])
            builder.Services.AddSingleton<IServer, NoListener>();
        return builder;
    }
}

/// <summary>A server that serves nothing: the host's workers run, no port is opened (the <c>eval</c> command).</summary>
internal sealed class NoListener : IServer
{
    public IFeatureCollection Features { get; } = new FeatureCollection();

    public Task StartAsync<TContext>(IHttpApplication<TContext> application, CancellationToken cancellationToken) where TContext : notnull => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
    }
}
