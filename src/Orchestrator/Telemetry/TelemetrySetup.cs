using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Serilog;
using Serilog.Events;

namespace Orchestrator.Telemetry;

internal static class TelemetrySetup
{
    const string ConsoleTemplate =
        "[{Timestamp:HH:mm:ss.fff} {Level:u3}] {Message:lj} {Properties:j} trace={TraceId}{NewLine}{Exception}";

    public static WebApplicationBuilder AddTelemetry(this WebApplicationBuilder builder)
    {
        builder.Services.AddSerilog((services, logger) => logger
            .MinimumLevel.Information()
            .MinimumLevel.Override("Microsoft.AspNetCore", LogEventLevel.Warning)
            .MinimumLevel.Override("Microsoft.EntityFrameworkCore", LogEventLevel.Warning)
            .MinimumLevel.Override("System.Net.Http.HttpClient", LogEventLevel.Warning)
            // Polly reports every retry and hedge at Warning; the gateway's own metrics and decisions say it better.
            .MinimumLevel.Override("Polly", LogEventLevel.Error)
            .ReadFrom.Configuration(builder.Configuration)
            .ReadFrom.Services(services)
            .Enrich.FromLogContext()
            .WriteTo.Async(sink => sink.Console(outputTemplate: ConsoleTemplate, formatProvider: System.Globalization.CultureInfo.InvariantCulture)));

        builder.Services.AddSingleton<OrchestratorTelemetry>();
        var otel = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("orchestrator"))
            .WithMetrics(metrics => metrics
                .AddMeter(OrchestratorTelemetry.Name)
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation())
            .WithTracing(tracing => tracing
                .AddSource(OrchestratorTelemetry.Name)
                .AddAspNetCoreInstrumentation(o => o.Filter = http => !http.Request.Path.StartsWithSegments("/health"))
                .AddHttpClientInstrumentation());
        // OTLP export when an endpoint is configured (the standard OTEL_EXPORTER_OTLP_ENDPOINT variable, or the key below).
        var endpoint = builder.Configuration["Orchestrator:Telemetry:OtlpEndpoint"] ?? builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"];
        if (!string.IsNullOrWhiteSpace(endpoint))
            otel.UseOtlpExporter(OpenTelemetry.Exporter.OtlpExportProtocol.Grpc, new Uri(endpoint));
        return builder;
    }

    public static WebApplication UseRequestLogging(this WebApplication app)
    {
        app.UseSerilogRequestLogging(o =>
        {
            o.GetLevel = (http, _, error) =>
                http.RequestAborted.IsCancellationRequested ? LogEventLevel.Information
                : error is not null || http.Response.StatusCode >= 500 ? LogEventLevel.Error
                : http.Request.Path.StartsWithSegments("/health") ? LogEventLevel.Verbose
                : LogEventLevel.Information;
            o.EnrichDiagnosticContext = (diagnostics, http) =>
            {
                if (Tenancy.Caller.From(http.User) is { } caller)
                {
                    diagnostics.Set("Tenant", caller.Tenant);
                    diagnostics.Set("Principal", caller.Principal);
                }
            };
        });
        return app;
    }
}
