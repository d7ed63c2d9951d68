using Microsoft.Extensions.Options;

namespace Orchestrator.Gateway;

internal static class GatewaySetup
{
    public static WebApplicationBuilder AddGateway(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<ModelOptions>().Bind(builder.Configuration.GetSection("Orchestrator")).ValidateOnStart();
        services.AddSingleton<IValidateOptions<ModelOptions>, ModelOptionsValidator>();
        services.AddHttpClient(ModelClients.HttpClientName, client => client.Timeout = Timeout.InfiniteTimeSpan);
        services.AddSingleton<ModelClients>();
        services.AddSingleton<ModelGateway>();
        return builder;
    }
}
