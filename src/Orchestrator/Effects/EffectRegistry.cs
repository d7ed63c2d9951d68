using System.Collections.Frozen;
using Microsoft.Extensions.AI;

namespace Orchestrator.Effects;

/// <summary>The effects by capability, and their function declarations as models see them.</summary>
internal sealed class EffectRegistry
{
    readonly FrozenDictionary<string, IEffect> _effects;
    readonly FrozenDictionary<string, AITool> _declarations;

    public EffectRegistry(IEnumerable<IEffect> effects)
    {
        _effects = effects.ToFrozenDictionary(e => e.Capability, StringComparer.Ordinal);
        _declarations = _effects.Values.ToFrozenDictionary(
            e => e.Capability,
            e => (AITool)AIFunctionFactory.CreateDeclaration(Capabilities.FunctionName(e.Capability), e.Description, e.Schema),
            StringComparer.Ordinal);
    }

    public IEffect? Find(string capability) => _effects.GetValueOrDefault(capability);

    /// <summary>The function declarations for these capabilities (<c>fs/write</c> is offered as <c>fs_write</c>).</summary>
    public IList<AITool> Declarations(IEnumerable<string> capabilities) =>
        capabilities.Select(c => _declarations[c]).ToList();
}

internal static class EffectsSetup
{
    public static WebApplicationBuilder AddEffects(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<EffectsOptions>().BindConfiguration(EffectsOptions.Section).ValidateOnStart()
            .Validate(o => !string.IsNullOrWhiteSpace(o.WorkspaceRoot), "Orchestrator:Effects:WorkspaceRoot must name a folder.")
            .Validate(o => o.MaxFileBytes > 0 && o.MaxHttpBytes > 0 && o.MaxProcessOutputBytes > 0, "Orchestrator:Effects size limits must be positive.");
        services.AddHttpClient(HttpFetch.HttpClientName)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AllowAutoRedirect = false });
        services.AddSingleton<FileEffects>();
        services.AddSingleton<IEffect, FsRead>();
        services.AddSingleton<IEffect, FsList>();
        services.AddSingleton<IEffect, FsWrite>();
        services.AddSingleton<IEffect, FsAppend>();
        services.AddSingleton<IEffect, HttpFetch>();
        services.AddSingleton<IEffect, ProcessRun>();
        services.AddSingleton<EffectRegistry>();
        return builder;
    }
}
