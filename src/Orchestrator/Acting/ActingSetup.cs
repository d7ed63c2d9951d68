using Microsoft.AspNetCore.Mvc;
using Orchestrator.Hosting;

namespace Orchestrator.Acting;

internal static class ActingSetup
{
    public static WebApplicationBuilder AddActing(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<ActingOptions>().BindConfiguration(ActingOptions.Section).ValidateOnStart()
            .Validate(o => o.MaxBodyBytes > 0, "Orchestrator:Acting:MaxBodyBytes must be positive.")
            .Validate(o => o.MaxDeadline > TimeSpan.Zero, "Orchestrator:Acting:MaxDeadline must be positive.");
        builder.Services.AddJson(ChatJson.Default);
        // Ahead of the default writer, so OpenAI-compatible endpoints answer every error in OpenAI's shape.
        builder.Services.Insert(0, ServiceDescriptor.Singleton<IProblemDetailsWriter, OpenAiErrorWriter>());
        builder.Services.AddSingleton<ChatCompletions>();
        builder.Services.AddSingleton<ActValidator>();
        builder.Services.AddSingleton<Admission>();
        // Admission checks after validation, run in their Order (idempotency is Admission's own, at 100).
        builder.Services.AddSingleton<AdmissionCheck, GovernanceCheck>();
        builder.Services.AddSingleton<AdmissionCheck, CapacityCheck>();
        builder.Services.AddSingleton<Tenancy.ITenantDocumentCheck, TenantRoutingCheck>();
        return builder;
    }

    /// <summary>The act endpoint's body limit, from <c>Orchestrator:Acting:MaxBodyBytes</c>.</summary>
    public static RouteGroupBuilder WithBodyLimit(this RouteGroupBuilder group, IConfiguration configuration)
    {
        var limit = configuration.GetValue<long?>($"{ActingOptions.Section}:{nameof(ActingOptions.MaxBodyBytes)}") ?? new ActingOptions().MaxBodyBytes;
        return group.WithMetadata(new RequestSizeLimitAttribute(limit));
    }
}
