using System.Text.Json;

namespace Orchestrator.Effects;

/// <summary>How dangerous it is to run an effect again when its first run's outcome is unknown.</summary>
public enum EffectRisk
{
    /// <summary>Changes nothing: run it again freely.</summary>
    ReadOnly,

    /// <summary>Changes something, but running it twice leaves the same state as once.</summary>
    IdempotentWrite,

    /// <summary>Running it twice differs from once: re-run only if the effect can tell it did not happen.</summary>
    NonIdempotent,
}

/// <summary>
/// A tool a model may call. Effects run inside the durable graph: the call's intent is committed before
/// it runs and its result after, and it carries an idempotency key made from job and node.
/// </summary>
internal interface IEffect
{
    string Capability { get; }

    string Description { get; }

    /// <summary>JSON schema of the arguments, as the model sees it.</summary>
    JsonElement Schema { get; }

    /// <summary>The risk of running this call again (it may depend on the arguments, e.g. GET vs POST).</summary>
    EffectRisk RiskOf(JsonElement arguments);

    /// <summary>Checks the arguments and takes whatever the run needs to know beforehand (e.g. a file's length), before the intent is committed.</summary>
    Task<EffectPlan> PlanAsync(EffectCall call, CancellationToken cancellationToken);

    Task<EffectResult> RunAsync(EffectCall call, EffectPlan plan, CancellationToken cancellationToken);

    /// <summary>
    /// After a crash left this call started but unfinished: did it happen? Applied, NotApplied, or Unknown
    /// (then a non-idempotent effect stops the job for an operator).
    /// </summary>
    Task<Reconciliation> ReconcileAsync(EffectCall call, EffectPlan plan, CancellationToken cancellationToken) =>
        Task.FromResult(Reconciliation.Unknown);

    /// <summary>
    /// Like <see cref="ReconcileAsync"/>, with the answer an applied call gave when the effect recorded it (db/write keeps it
    /// in the same transaction as the write), so the resumed run reads what the first run would have.
    /// </summary>
    async Task<Settlement> SettleAsync(EffectCall call, EffectPlan plan, CancellationToken cancellationToken) =>
        new(await ReconcileAsync(call, plan, cancellationToken), null);
}

/// <summary>Whether a call found started after a crash happened, and its recorded answer when the effect kept one.</summary>
internal sealed record Settlement(Reconciliation Verdict, EffectResult? Result);

/// <summary>One call of an effect: its arguments, the tenant and principal it runs for, and its idempotency key.</summary>
internal sealed record EffectCall(string Capability, JsonElement Arguments, string Tenant, string IdempotencyKey, string Principal = "");

/// <summary>
/// What an effect learned before it ran (<see cref="Facts"/>, committed with the intent and used to reconcile
/// after a crash), and anything it holds from planning to the end of its run (<see cref="Hold"/>, e.g. a lock
/// that keeps the facts true until the effect happened). The runner disposes it after the run.
/// </summary>
internal sealed record EffectPlan(Dictionary<string, JsonElement>? Facts = null, IDisposable? Hold = null) : IDisposable
{
    public static readonly EffectPlan None = new();

    public void Dispose() => Hold?.Dispose();
}

public enum Reconciliation { Applied, NotApplied, Unknown }

/// <summary>An effect's answer, as the model will read it.</summary>
internal sealed record EffectResult(bool Ok, string Content)
{
    public static EffectResult Success(object value) => new(true, JsonSerializer.Serialize(value, EffectJson.Options));

    public static EffectResult Failure(string message) => new(false, JsonSerializer.Serialize(new { error = message }, EffectJson.Options));
}

/// <summary>
/// An effect refused (capability, sandbox) or given arguments it cannot use: the job fails with the code.
/// A block (<c>sandbox_violation</c>, <c>capability_denied</c>) names the <paramref name="rule"/> that fired, e.g.
/// <c>sandbox.cpu</c>, <c>fs.outside</c>, <c>http.address.loopback</c>, <c>secret.DEPLOY_TOKEN</c>.
/// </summary>
internal sealed class EffectRefusedException(string code, string message, string? rule = null) : Exception(message)
{
    public string Code { get; } = code;

    public string? Rule { get; } = rule;
}

internal static class EffectJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);

    public static JsonElement Schema(string json) => JsonDocument.Parse(json).RootElement.Clone();

    public static string? String(JsonElement arguments, string name) =>
        arguments.ValueKind == JsonValueKind.Object && arguments.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;

    public static string Required(JsonElement arguments, string name) =>
        String(arguments, name) ?? throw new EffectRefusedException(Hosting.Problems.EffectFailed, $"The argument '{name}' is required and must be a string.");
}
