using System.Text.Json;
using Microsoft.Extensions.Options;
using Orchestrator.Hosting;

namespace Orchestrator.Effects;

/// <summary>
/// Runs a program from <c>Orchestrator:Effects:ProcessAllowList</c> with an argv (never a shell) in the tenant's
/// workspace, inside the <see cref="Sandbox"/> with its limits per call. A limit that fires stops the job
/// <c>sandbox_violation</c> with the limit's rule. Not idempotent and not reconcilable: one found started after a
/// crash stops its job for an operator.
/// </summary>
internal sealed class ProcessRun(FileEffects files, Sandbox sandbox, SecretStore secrets, IOptions<EffectsOptions> options, ILogger<ProcessRun> log) : IEffect
{
    public string Capability => Capabilities.ProcessRun;
    public string Description => "Run an allowed program with arguments (no shell) in the workspace, in a sandbox.";
    public JsonElement Schema { get; } = EffectJson.Schema("""{"type":"object","properties":{"argv":{"type":"array","items":{"type":"string"},"minItems":1},"stdin":{"type":"string"},"timeoutMs":{"type":"integer","minimum":1},"secrets":{"type":"array","items":{"type":"string"},"description":"Names of granted secrets to receive as environment variables"}},"required":["argv"]}""");
    public EffectRisk RiskOf(JsonElement arguments) => EffectRisk.NonIdempotent;

    public Task<EffectPlan> PlanAsync(EffectCall call, CancellationToken cancellationToken)
    {
        Check(call);
        return Task.FromResult(EffectPlan.None);
    }

    (List<string> Argv, TimeSpan Timeout, IReadOnlyList<GrantedSecret> Secrets) Check(EffectCall call)
    {
        var arguments = call.Arguments;
        if (arguments.ValueKind != JsonValueKind.Object || !arguments.TryGetProperty("argv", out var argvJson) ||
            argvJson.ValueKind != JsonValueKind.Array || argvJson.GetArrayLength() == 0 ||
            argvJson.EnumerateArray().Any(a => a.ValueKind != JsonValueKind.String))
            throw new EffectRefusedException(Problems.EffectFailed, "'argv' must be a non-empty array of strings.");
        var argv = argvJson.EnumerateArray().Select(a => a.GetString()!).ToList();
        if (argv.Any(a => a.Contains('\0')))
            throw new EffectRefusedException(Problems.EffectFailed, "'argv' must not contain NUL characters.");
        if (!options.Value.ProcessAllowList.Contains(argv[0], StringComparer.Ordinal))
            throw new EffectRefusedException(Problems.SandboxViolation, $"'{argv[0]}' is not on Orchestrator:Effects:ProcessAllowList.", "process.allow-list");
        var wall = TimeSpan.FromMilliseconds(sandbox.Options.WallMs);
        var timeout = wall;
        if (arguments.TryGetProperty("timeoutMs", out var ms) && ms.ValueKind == JsonValueKind.Number && ms.TryGetInt32(out var requested) && requested > 0)
            timeout = TimeSpan.FromMilliseconds(Math.Min(requested, wall.TotalMilliseconds));
        var granted = secrets.Grant(call, SecretStore.Requested(arguments), SecretTarget.Environment, host: null);
        return (argv, timeout, granted);
    }

    public async Task<EffectResult> RunAsync(EffectCall call, EffectPlan plan, CancellationToken cancellationToken)
    {
        var (argv, timeout, granted) = Check(call);
        var environment = new Dictionary<string, string>(StringComparer.Ordinal) { ["ORCHESTRATOR_IDEMPOTENCY_KEY"] = call.IdempotencyKey };
        foreach (var secret in granted)
            environment[secret.Target] = secret.Value;
        var command = new SandboxCommand(argv, files.Resolve(call, "."), EffectJson.String(call.Arguments, "stdin"), timeout, environment);
        var run = await sandbox.RunAsync(command, cancellationToken);
        if (run.Limit is { } rule)
        {
            log.LogWarning("process/run {Program} for tenant {Tenant} hit {Rule}", argv[0], call.Tenant, rule);
            throw new EffectRefusedException(Problems.SandboxViolation,
                $"'{argv[0]}' was stopped by the sandbox: {Explain(rule)}.", rule);
        }
        return EffectResult.Success(new { exitCode = run.ExitCode, stdout = run.Stdout, stderr = run.Stderr, sandboxed = run.Sandboxed });
    }

    string Explain(string rule)
    {
        var o = sandbox.Options;
        return rule switch
        {
            "sandbox.cpu" => $"it used its {o.CpuSeconds} s of CPU time (Orchestrator:Effects:Sandbox:CpuSeconds)",
            "sandbox.memory" => $"it ran out of its {o.MemoryMb} MB of memory (MemoryMb)",
            "sandbox.processes" => $"it tried to run more than {o.Processes} processes (Processes)",
            "sandbox.file-size" => $"it wrote a file larger than {o.FileSizeMb} MB (FileSizeMb)",
            "sandbox.open-files" => $"it opened more than {o.OpenFiles} files (OpenFiles)",
            "sandbox.wall" => "it ran past its time limit (timeoutMs, at most WallMs) and was killed with everything it started",
            "sandbox.output" => $"it wrote more than {o.OutputBytes} bytes of output (OutputBytes) and was killed with everything it started",
            _ => rule,
        };
    }
}
