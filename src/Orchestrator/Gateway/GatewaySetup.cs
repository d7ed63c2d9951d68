using Orchestrator.Hosting;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Hedging;

namespace Orchestrator.Gateway;

internal static class GatewaySetup
{
    public static WebApplicationBuilder AddGateway(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddJson(GatewayJson.Default);
        services.AddOptions<ModelOptions>().Bind(builder.Configuration.GetSection("Orchestrator")).ValidateOnStart()
            .PostConfigure(options =>
            {
                for (var i = 0; i < options.Models.Count; i++)
                {
                    var entry = builder.Configuration.GetSection($"Orchestrator:Models:{i}");
                    options.Models[i].Priced = options.Models[i].IsSimulated ||
                        (entry.GetSection(nameof(ModelEntry.CostPer1kInputUsd)).Value is not null && entry.GetSection(nameof(ModelEntry.CostPer1kOutputUsd)).Value is not null);
                }
            });
        services.AddSingleton<IValidateOptions<ModelOptions>, ModelOptionsValidator>();
        services.AddOptions<GatewayOptions>().BindConfiguration(GatewayOptions.Section).ValidateDataAnnotations().ValidateOnStart()
            .Validate(o => RoutingStrategies.IsKnown(o.DefaultStrategy),
                $"Orchestrator:Gateway:DefaultStrategy must be one of {string.Join(", ", RoutingStrategies.All)}.")
            .Validate(o => o.ErrorHalfLife > TimeSpan.Zero, "Orchestrator:Gateway:ErrorHalfLife must be positive.");
        services.AddHttpClient(ModelCatalog.HttpClientName, client => client.Timeout = Timeout.InfiniteTimeSpan);
        services.AddSingleton<GatewayTelemetry>();
        services.AddSingleton<ModelCatalog>();
        services.AddSingleton<ModelGateway>();
        services.AddSingleton<ModelControls>();
        services.AddHostedService(sp => sp.GetRequiredService<ModelControls>());

        // One pipeline per model, built from the catalog when first asked for.
        services.AddResiliencePipelines<string>(registry =>
        {
            var catalog = registry.ServiceProvider.GetRequiredService<ModelCatalog>();
            var options = registry.ServiceProvider.GetRequiredService<IOptions<GatewayOptions>>().Value;
            var telemetry = registry.ServiceProvider.GetRequiredService<GatewayTelemetry>();
            var time = registry.ServiceProvider.GetRequiredService<TimeProvider>();
            foreach (var model in catalog.All)
                registry.AddResiliencePipeline<Microsoft.Extensions.AI.ChatResponse>(ModelResilience.KeyOf(model.Id),
                    (pipeline, _) => ModelResilience.Configure(pipeline, model, options, telemetry, time));
        });

        // Hedging across models: after a delay (the primary's p95), the same call goes to the next candidate;
        // the first good answer wins and the other is canceled. A primary that fails early is hedged at once.
        services.AddResiliencePipeline<string, Attempt>(ModelGateway.HedgingPipeline, (pipeline, context) =>
        {
            pipeline.TimeProvider = context.ServiceProvider.GetRequiredService<TimeProvider>();
            pipeline.AddHedging(new HedgingStrategyOptions<Attempt>
            {
                MaxHedgedAttempts = 1,
                ShouldHandle = args => ValueTask.FromResult(
                    args.Outcome.Result is { Response: null } ||
                    args.Outcome.Exception is not null and not OperationCanceledException),
                DelayGenerator = args => ValueTask.FromResult(
                    args.Context.Properties.GetValue(ModelGateway.HedgeDelayKey, TimeSpan.FromSeconds(1))),
                ActionGenerator = args =>
                {
                    var hedge = args.PrimaryContext.Properties.GetValue(ModelGateway.HedgeKey, null!);
                    return () => hedge(args.ActionContext);
                },
            });
        });
        return builder;
    }

    /// <summary>Builds the catalog and its pipelines now, so bad model configuration stops start-up.</summary>
    public static WebApplication LoadModels(this WebApplication app)
    {
        app.Services.GetRequiredService<ModelCatalog>().BindPipelines(app.Services.GetRequiredService<Polly.Registry.ResiliencePipelineProvider<string>>());
        return app;
    }
}
