using System.Collections.Frozen;
using System.Diagnostics.Metrics;
using System.Net;
using System.Text.Json;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using Orchestrator.Effects.Database;
using Orchestrator.Telemetry;

namespace Orchestrator.Effects;

/// <summary>The effects by capability, and their function declarations as models see them.</summary>
internal sealed class EffectRegistry
{
    readonly FrozenDictionary<string, IEffect> _effects;
    readonly FrozenDictionary<string, AITool> _declarations;

    public EffectRegistry(IEnumerable<IEffect> effects, SecretStore secrets, EffectDenials denials)
    {
        _effects = effects.ToFrozenDictionary(e => e.Capability, e => (IEffect)new Scrubbed(e, secrets), StringComparer.Ordinal);
        _declarations = _effects.Values.ToFrozenDictionary(
            e => e.Capability,
            e => (AITool)AIFunctionFactory.CreateDeclaration(Capabilities.FunctionName(e.Capability), e.Description, e.Schema),
            StringComparer.Ordinal);
        Denials = denials;
    }

    /// <summary>Where every block (sandbox or capability) is counted by tenant, tool and rule.</summary>
    public EffectDenials Denials { get; }

    public IEffect? Find(string capability) => _effects.GetValueOrDefault(capability);

    /// <summary>The function declarations for these capabilities (<c>fs/write</c> is offered as <c>fs_write</c>).</summary>
    public IList<AITool> Declarations(IEnumerable<string> capabilities) =>
        capabilities.Select(c => _declarations[c]).ToList();

    /// <summary>
    /// Every effect as the workflow sees it: its results and errors with secret values replaced by <c>[secret:NAME]</c>,
    /// so what the model reads, what the job records and what a replay package carries never holds one.
    /// </summary>
    sealed class Scrubbed(IEffect inner, SecretStore secrets) : IEffect
    {
        public string Capability => inner.Capability;
        public string Description => inner.Description;
        public JsonElement Schema => inner.Schema;
        public EffectRisk RiskOf(JsonElement arguments) => inner.RiskOf(arguments);

        public Task<EffectPlan> PlanAsync(EffectCall call, CancellationToken cancellationToken) => Guard(() => inner.PlanAsync(call, cancellationToken));

        public Task<Reconciliation> ReconcileAsync(EffectCall call, EffectPlan plan, CancellationToken cancellationToken) =>
            Guard(() => inner.ReconcileAsync(call, plan, cancellationToken));

        public async Task<Settlement> SettleAsync(EffectCall call, EffectPlan plan, CancellationToken cancellationToken)
        {
            var settled = await Guard(() => inner.SettleAsync(call, plan, cancellationToken));
            return settled.Result is { } result && secrets.Any ? settled with { Result = result with { Content = secrets.Scrub(result.Content) } } : settled;
        }

        public async Task<EffectResult> RunAsync(EffectCall call, EffectPlan plan, CancellationToken cancellationToken)
        {
            var result = await Guard(() => inner.RunAsync(call, plan, cancellationToken));
            return secrets.Any ? result with { Content = secrets.Scrub(result.Content) } : result;
        }

        async Task<T> Guard<T>(Func<Task<T>> run)
        {
            try
            {
                return await run();
            }
            catch (EffectRefusedException refused) when (secrets.Any)
            {
                throw new EffectRefusedException(refused.Code, secrets.Scrub(refused.Message), refused.Rule);
            }
            catch (IOException error) when (secrets.Any)
            {
                throw new IOException(secrets.Scrub(error.Message), error);
            }
        }
    }
}

/// <summary>Counts blocked effect calls: the metric <c>orchestrator.effects.denied</c> (tags tenant, tool, code, rule) and the diag ledger.</summary>
internal sealed class EffectDenials
{
    readonly OrchestratorTelemetry _telemetry;
    readonly Counter<long> _denied;

    public EffectDenials(OrchestratorTelemetry telemetry)
    {
        _telemetry = telemetry;
        _denied = telemetry.Counter("orchestrator.effects.denied", "{call}", "Effect calls blocked by the sandbox or a capability rule, by tenant, tool and rule.");
    }

    public void Record(string tenant, string principal, string tool, string code, string? rule)
    {
        _denied.Add(1, new("tenant", tenant), new("tool", tool), new("code", code), new("rule", rule ?? code));
        _telemetry.Count(tenant, principal, $"effects.denied.{tool}.{rule ?? code}");
    }
}

internal static class EffectsSetup
{
    public static WebApplicationBuilder AddEffects(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<EffectsOptions>().BindConfiguration(EffectsOptions.Section).ValidateOnStart()
            .Validate(o => !string.IsNullOrWhiteSpace(o.WorkspaceRoot), "Orchestrator:Effects:WorkspaceRoot must name a folder.")
            .Validate(o => o.MaxFileBytes > 0 && o.MaxHttpBytes > 0, "Orchestrator:Effects size limits must be positive.")
            .Validate(o => o.WorkspaceMaxBytes > 0 && o.WorkspaceMaxFiles > 0, "Orchestrator:Effects:WorkspaceMaxBytes and WorkspaceMaxFiles must be positive.")
            .Validate(o => o.HttpRules.All(r => !string.IsNullOrWhiteSpace(r.Host)), "Orchestrator:Effects:HttpRules:N:Host must name a host.")
            .Validate(o => o.HttpRules.SelectMany(r => r.AllowAddresses).All(c => IPNetwork.TryParse(c, out _)),
                "Orchestrator:Effects:HttpRules:N:AllowAddresses must be CIDRs (e.g. 10.0.0.0/8, 127.0.0.1/32).")
            .Validate(o => o.HostAddresses.Values.All(v => v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) is { Length: > 0 } a && a.All(x => IPAddress.TryParse(x, out _))),
                "Orchestrator:Effects:HostAddresses values must be IP addresses, comma-separated.");
        services.AddOptions<SandboxOptions>().BindConfiguration(SandboxOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<List<SecretOptions>>().BindConfiguration("Orchestrator:Secrets").ValidateOnStart();
        services.AddSingleton<IValidateOptions<List<SecretOptions>>, SecretsValidation>();
        services.AddSingleton<SecretStore>();
        services.AddSingleton<EffectDenials>();
        services.AddSingleton<HostResolver>();
        services.AddSingleton<Sandbox>();
        services.AddHostedService<SandboxProbe>();
        services.AddHealthChecks().AddCheck<SandboxHealth>("sandbox", tags: ["ready"]);
        services.AddSingleton<FileEffects>();
        services.AddSingleton<IEffect, FsRead>();
        services.AddSingleton<IEffect, FsList>();
        services.AddSingleton<IEffect, FsWrite>();
        services.AddSingleton<IEffect, FsAppend>();
        services.AddSingleton<IEffect, HttpFetch>();
        services.AddSingleton<IEffect, ProcessRun>();
        builder.AddDatabaseEffects();
        services.AddSingleton<EffectRegistry>();
        return builder;
    }
}
