using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Orchestrator.Hosting;

namespace Orchestrator.Effects;

/// <summary>
/// Runs a program from <c>Orchestrator:Effects:ProcessAllowList</c> with an argv (never a shell), in the
/// tenant's workspace, with a time limit and bounded output. Not idempotent and not reconcilable: one found
/// started after a crash stops its job for an operator. Full sandboxing (bubblewrap, rlimits) is later work.
/// </summary>
internal sealed class ProcessRun(FileEffects files, IOptions<EffectsOptions> options) : IEffect
{
    public string Capability => Capabilities.ProcessRun;
    public string Description => "Run an allowed program with arguments (no shell) in the workspace.";
    public JsonElement Schema { get; } = EffectJson.Schema("""{"type":"object","properties":{"argv":{"type":"array","items":{"type":"string"},"minItems":1},"stdin":{"type":"string"},"timeoutMs":{"type":"integer","minimum":1}},"required":["argv"]}""");
    public EffectRisk RiskOf(JsonElement arguments) => EffectRisk.NonIdempotent;

    public Task<EffectPlan> PlanAsync(EffectCall call, CancellationToken cancellationToken)
    {
        Check(call.Arguments);
        return Task.FromResult(EffectPlan.None);
    }

    (List<string> Argv, TimeSpan Timeout) Check(JsonElement arguments)
    {
        if (arguments.ValueKind != JsonValueKind.Object || !arguments.TryGetProperty("argv", out var argvJson) ||
            argvJson.ValueKind != JsonValueKind.Array || argvJson.GetArrayLength() == 0 ||
            argvJson.EnumerateArray().Any(a => a.ValueKind != JsonValueKind.String))
            throw new EffectRefusedException(Problems.EffectFailed, "'argv' must be a non-empty array of strings.");
        var argv = argvJson.EnumerateArray().Select(a => a.GetString()!).ToList();
        if (!options.Value.ProcessAllowList.Contains(argv[0], StringComparer.Ordinal))
            throw new EffectRefusedException(Problems.SandboxViolation, $"'{argv[0]}' is not on Orchestrator:Effects:ProcessAllowList.");
        var timeout = options.Value.ProcessTimeout;
        if (arguments.TryGetProperty("timeoutMs", out var ms) && ms.ValueKind == JsonValueKind.Number && ms.TryGetInt32(out var requested) && requested > 0)
            timeout = TimeSpan.FromMilliseconds(Math.Min(requested, options.Value.MaxProcessTimeout.TotalMilliseconds));
        return (argv, timeout);
    }

    public async Task<EffectResult> RunAsync(EffectCall call, EffectPlan plan, CancellationToken cancellationToken)
    {
        var (argv, timeout) = Check(call.Arguments);
        var start = new ProcessStartInfo(argv[0])
        {
            WorkingDirectory = files.Resolve(call, "."),
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in argv.Skip(1))
            start.ArgumentList.Add(arg);
        // A clean environment: the service's own secrets (API keys in variables) are not the tool's business.
        start.Environment.Clear();
        start.Environment["PATH"] = "/usr/local/bin:/usr/bin:/bin";
        start.Environment["HOME"] = start.WorkingDirectory;
        start.Environment["ORCHESTRATOR_IDEMPOTENCY_KEY"] = call.IdempotencyKey;

        using var process = new Process { StartInfo = start };
        try
        {
            process.Start();
        }
        catch (Exception error) when (error is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return EffectResult.Failure($"'{argv[0]}' could not be started: {error.Message}");
        }
        var max = options.Value.MaxProcessOutputBytes;
        var stdout = ReadBoundedAsync(process.StandardOutput, max);
        var stderr = ReadBoundedAsync(process.StandardError, max);
        if (EffectJson.String(call.Arguments, "stdin") is { } stdin)
            await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();

        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        var timedOut = false;
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            timedOut = !cancellationToken.IsCancellationRequested;
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
            if (!timedOut)
                throw;
        }
        return EffectResult.Success(new
        {
            exitCode = timedOut ? (int?)null : process.ExitCode,
            timedOut,
            stdout = await stdout,
            stderr = await stderr,
        });
    }

    static async Task<string> ReadBoundedAsync(StreamReader reader, int max)
    {
        var text = new StringBuilder();
        var buffer = new char[4096];
        while (await reader.ReadAsync(buffer) is var n and > 0)
            if (text.Length < max)
                text.Append(buffer, 0, Math.Min(n, max - text.Length));
        return text.ToString();
    }
}
