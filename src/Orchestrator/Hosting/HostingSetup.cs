using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.OpenApi;
using Orchestrator.Tenancy;

namespace Orchestrator.Hosting;

/// <summary>The web host's cross-cutting plumbing: JSON, problems, errors, body limits, OpenAPI and Swagger UI, health.</summary>
internal static class HostingSetup
{
    /// <summary>Chains a feature's source-generated JSON into the host's serializer: each feature owns its context.</summary>
    public static IServiceCollection AddJson(this IServiceCollection services, System.Text.Json.Serialization.JsonSerializerContext context) =>
        services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, context));

    public static WebApplicationBuilder AddHosting(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.TryAddSingleton(TimeProvider.System);
        services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.TypeInfoResolverChain.Insert(0, HostingJson.Default);
            o.SerializerOptions.RespectNullableAnnotations = true;
            // The web defaults read "100" as 100; a number sent as a string is a wrong type here (400), like any other.
            o.SerializerOptions.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.Strict;
        });
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.AddProblemDetails(o => o.CustomizeProblemDetails = Problems.Complete);
        services.AddExceptionHandler<ErrorHandling>();
        services.AddOpenApi(o =>
        {
            o.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "Orchestrator",
                    Version = "v1",
                    Description = "Production runtime for AI agents: POST /v1/act, poll /v1/jobs. Authorize with an API key (X-Api-Key).",
                };
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes[ApiKeyAuthentication.SchemeName] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.ApiKey,
                    In = ParameterLocation.Header,
                    Name = ApiKeyAuthentication.Header,
                    Description = "An API key from Orchestrator:ApiKeys.",
                };
                document.Components.SecuritySchemes[BearerScheme] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    Description = "The same API key as a bearer token (Authorization: Bearer <key>).",
                };
                // Either one authorizes a call: two requirements, not two schemes in one.
                document.Security ??= [];
                document.Security.Add(new OpenApiSecurityRequirement
                {
                    [new OpenApiSecuritySchemeReference(ApiKeyAuthentication.SchemeName, document)] = [],
                });
                document.Security.Add(new OpenApiSecurityRequirement
                {
                    [new OpenApiSecuritySchemeReference(BearerScheme, document)] = [],
                });
                return Task.CompletedTask;
            });
        });
        services.AddHealthChecks()
            .AddCheck<Storage.StoreHealth>("store", tags: ["ready"])
            .AddCheck<Jobs.WorkersHealth>("workers", tags: ["ready"]);
        return builder;
    }

    const string BearerScheme = "Bearer";

    public static WebApplication UseHosting(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.MapOpenApi("/openapi/{documentName}.json").AllowAnonymous();
        app.UseSwaggerUI(o =>
        {
            o.SwaggerEndpoint("/openapi/v1.json", "Orchestrator v1");
            o.RoutePrefix = "swagger";
            o.DocumentTitle = "Orchestrator";
            o.EnablePersistAuthorization();
        });
        return app;
    }

    public static WebApplication MapHealth(this WebApplication app)
    {
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false, ResponseWriter = WriteHealth })
            .AllowAnonymous().ExcludeFromDescription();
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = c => c.Tags.Contains("ready"), ResponseWriter = WriteHealth })
            .AllowAnonymous().ExcludeFromDescription();
        return app;
    }

    static Task WriteHealth(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        var view = new HealthView(report.Status.ToString(), report.Entries.ToDictionary(
            e => e.Key,
            e => new HealthCheckView(e.Value.Status.ToString(), e.Value.Description, Math.Round(e.Value.Duration.TotalMilliseconds, 1))));
        return JsonSerializer.SerializeAsync(context.Response.Body, view, HostingJson.Default.HealthView, context.RequestAborted);
    }
}

public sealed record HealthView(string Status, Dictionary<string, HealthCheckView> Checks);

public sealed record HealthCheckView(string Status, string? Description, double DurationMs);
