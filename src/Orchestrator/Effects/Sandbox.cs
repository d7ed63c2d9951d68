using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Orchestrator.Hosting;

namespace Orchestrator.Effects;

/// <summary>One program to run in a tenant's workspace.</summary>
internal sealed record SandboxCommand(IReadOnlyList<string> Argv, string Workspace, string? Stdin, TimeSpan Wall, IReadOnlyDictionary<string, string> Environment);

/// <summary>How a sandboxed program ended: its exit code (null when killed by the host), output, and the limit that fired (a rule such as <c>sandbox.cpu</c>), if any.</summary>
internal sealed record SandboxRun(int? ExitCode, string Stdout, string Stderr, string? Limit, bool Sandboxed);

/// <summary>Whether a sandbox can be made here, found by a trial run at start-up.</summary>
internal sealed record SandboxState(bool Available, string Description);

/// <summary>
/// Runs <c>process/run</c> programs in bubblewrap: new user, pid, ipc, uts, cgroup, mount and (unless granted)
/// network namespaces; read-only system folders; the tenant's workspace the only writable place, at
/// <c>/workspace</c>; a private <c>/tmp</c>, minimal <c>/proc</c> and <c>/dev</c>; no capabilities, no new
/// privileges, no nested user namespaces; its own session, and it dies with us.
/// </summary>
/// <remarks>
/// Limits: the rlimits are set by util-linux <c>prlimit</c> run inside the sandbox, which then execs the program,
/// so the limits are the program's own and no code of ours (no shim to build and ship) runs in there. Wall time and
/// output are the host's: past either it kills the whole tree (bubblewrap's pid namespace dies with its init).
/// The kernel signals only two rlimits (SIGXCPU/SIGKILL for CPU, SIGXFSZ for file size); memory, processes and open
/// files make a call fail (ENOMEM, EAGAIN, EMFILE), which the program reports, so those are read from its stderr.
/// When the service runs as root, bubblewrap is started as <see cref="SandboxOptions.Uid"/> through <c>setpriv</c>:
/// root is exempt from RLIMIT_NPROC (a fork bomb would not be stopped), and a sandbox should never hold root's uid.
/// </remarks>
internal sealed class Sandbox(IOptions<SandboxOptions> options, IOptions<EffectsOptions> effects, IHostEnvironment environment)
{
    const string Inside = "/workspace";
    static readonly string[] SystemLinks = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

    /// <summary>
    /// What programs need from /etc to start (the linker's cache, alternatives' links, users' names, time zone); never
    /// shadow, sudoers, keys or the service's own files. Each bind is a mount that costs every call (18 of them were
    /// 9 ms a call on the reference machine), so the list is short.
    /// </summary>
    static readonly string[] SafeEtc = ["/etc/ld.so.cache", "/etc/alternatives", "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf"];

    /// <summary>What resolving names and checking certificates needs, bound only when the sandbox has the network.</summary>
    static readonly string[] NetworkEtc = ["/etc/hosts", "/etc/resolv.conf", "/etc/gai.conf", "/etc/ssl", "/etc/ca-certificates"];

    Task<SandboxState>? _state;

    public SandboxOptions Options => options.Value;

    static bool IsRoot => Environment.IsPrivilegedProcess;

    /// <summary>The trial sandbox's verdict, made once (at start-up by <see cref="SandboxProbe"/>).</summary>
    public Task<SandboxState> StateAsync() => LazyInitializer.EnsureInitialized(ref _state, ProbeAsync);

    async Task<SandboxState> ProbeAsync()
    {
        if (!options.Value.Enabled)
            return new(false, "disabled (Orchestrator:Effects:Sandbox:Enabled is false): process/run runs unconfined");
        if (!OperatingSystem.IsLinux())
            return new(false, "unavailable: bubblewrap needs Linux");
        foreach (var tool in IsRoot ? [options.Value.Bubblewrap, options.Value.Prlimit, options.Value.Setpriv] : new[] { options.Value.Bubblewrap, options.Value.Prlimit })
            if (!File.Exists(tool))
                return new(false, $"unavailable: {tool} is not installed (Debian: apt-get install bubblewrap util-linux)");
        // Beside the tenants' workspaces, under a name no tenant can have ('+' is not allowed in one).
        var trial = Path.Combine(WorkspaceRoot(), "+sandbox-probe");
        try
        {
            Directory.CreateDirectory(trial);
            Own(trial);
            using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var run = await RunSandboxedAsync(new SandboxCommand(["true"], trial, null, TimeSpan.FromSeconds(10), new Dictionary<string, string>()), cancel.Token);
            return run is { ExitCode: 0, Limit: null }
                ? new(true, $"bubblewrap ({options.Value.Bubblewrap}){(IsRoot ? $", as uid {options.Value.Uid}" : "")}")
                : new(false, $"unavailable: a trial sandbox failed (exit {run.ExitCode?.ToString() ?? "none"}{(run.Limit is null ? "" : ", " + run.Limit)}): {run.Stderr.Trim()}" +
                    (IsRoot && run.Stderr.Contains("Permission denied", StringComparison.Ordinal)
                        ? $" (bubblewrap runs as uid {options.Value.Uid}: every folder above the workspace root must be searchable by it, e.g. mode 0755)"
                        : ""));
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException or System.ComponentModel.Win32Exception or OperationCanceledException or InvalidOperationException)
        {
            return new(false, "unavailable: a trial sandbox could not start: " + error.Message);
        }
        finally
        {
            try { Directory.Delete(trial, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    string WorkspaceRoot()
    {
        var root = effects.Value.WorkspaceRoot;
        return Path.GetFullPath(Path.IsPathRooted(root) ? root : Path.Combine(environment.ContentRootPath, root));
    }

    /// <summary>Runs the command in the sandbox, or refuses <c>sandbox_violation</c> (rule <c>sandbox.unavailable</c>) when none can be made.</summary>
    public async Task<SandboxRun> RunAsync(SandboxCommand command, CancellationToken cancellationToken)
    {
        if (!options.Value.Enabled)
            return await RunProcessAsync(command, command.Workspace, sandboxed: false, cancellationToken);
        var state = await StateAsync();
        if (!state.Available)
            throw new EffectRefusedException(Problems.SandboxViolation, $"no sandbox can be made here ({state.Description}).", "sandbox.unavailable");
        OwnTree(command.Workspace);
        return await RunSandboxedAsync(command, cancellationToken);
    }

    Task<SandboxRun> RunSandboxedAsync(SandboxCommand command, CancellationToken cancellationToken)
    {
        var o = options.Value;
        var argv = new List<string>();
        if (IsRoot)
            argv.AddRange([o.Setpriv, $"--reuid={o.Uid}", $"--regid={o.Gid}", "--clear-groups", "--no-new-privs"]);
        argv.AddRange([o.Bubblewrap, "--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL",
            "--die-with-parent", "--new-session", "--hostname", "sandbox"]);
        if (o.Network)
            argv.Add("--share-net");
        argv.AddRange(["--ro-bind", "/usr", "/usr"]);
        foreach (var path in SystemLinks)
        {
            var info = new FileInfo(path);
            if (info.LinkTarget is { } target)
                argv.AddRange(["--symlink", target, path]);
            else if (Directory.Exists(path))
                argv.AddRange(["--ro-bind", path, path]);
        }
        foreach (var path in o.Network ? [.. SafeEtc, .. NetworkEtc] : SafeEtc)
            argv.AddRange(["--ro-bind-try", path, path]);
        // The root bwrap builds and its /dev are tmpfs too (host memory): both are made read-only once everything is
        // mounted, so the sized /tmp and the workspace are the only places a program can write.
        argv.AddRange(["--proc", "/proc", "--dev", "/dev", "--size", ((long)o.TmpMb << 20).ToString(System.Globalization.CultureInfo.InvariantCulture), "--tmpfs", "/tmp",
            "--bind", command.Workspace, Inside, "--remount-ro", "/", "--remount-ro", "/dev", "--chdir", Inside, "--",
            o.Prlimit, $"--cpu={o.CpuSeconds}:{o.CpuSeconds + 1}", $"--as={(long)o.MemoryMb << 20}", $"--nproc={o.Processes}",
            $"--fsize={(long)o.FileSizeMb << 20}", $"--nofile={o.OpenFiles}", "--core=0", "--"]);
        argv.AddRange(command.Argv);
        return RunProcessAsync(command with { Argv = argv }, Inside, sandboxed: true, cancellationToken);
    }

    async Task<SandboxRun> RunProcessAsync(SandboxCommand command, string home, bool sandboxed, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(command.Argv[0])
        {
            WorkingDirectory = command.Workspace,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in command.Argv.Skip(1))
            start.ArgumentList.Add(arg);
        // A clean environment: the service's own settings and keys are not the tool's business. Secrets granted to
        // the call come in here, never on the command line (which other users of the host can read).
        start.Environment.Clear();
        start.Environment["PATH"] = "/usr/local/bin:/usr/bin:/bin";
        start.Environment["HOME"] = home;
        start.Environment["TMPDIR"] = "/tmp";
        start.Environment["LANG"] = "C.UTF-8";
        foreach (var (name, value) in command.Environment)
            start.Environment[name] = value;

        using var process = new Process { StartInfo = start };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception error)
        {
            return new SandboxRun(127, "", $"'{command.Argv[0]}' could not be started: {error.Message}", null, sandboxed);
        }

        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(command.Wall);
        var output = new OutputBudget(options.Value.OutputBytes, limit);
        var stdout = output.ReadAsync(process.StandardOutput.BaseStream);
        var stderr = output.ReadAsync(process.StandardError.BaseStream);
        try
        {
            if (command.Stdin is { } stdin)
                await process.StandardInput.WriteAsync(stdin.AsMemory(), limit.Token);
            process.StandardInput.Close();
        }
        catch (Exception error) when (error is IOException or OperationCanceledException)
        {
            // The program ended (or was cut off) before it read all its input.
        }

        string? fired = null;
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            fired = output.Exceeded ? "sandbox.output" : cancellationToken.IsCancellationRequested ? null : "sandbox.wall";
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
            if (fired is null)
                throw;
        }
        var (outText, errText) = (await stdout, await stderr);
        if (fired is null && output.Exceeded)
            fired = "sandbox.output";
        var exit = fired is null ? process.ExitCode : (int?)null;
        // An rlimit the program ran into is the cause when it also hit the host's limits (a fork bomb's complaints
        // fill the output; a program that cannot fork may hang until its wall time). Killed by us, its exit code
        // is our SIGKILL, so only what it said counts then.
        if (sandboxed && LimitOf(exit ?? 0, errText) is { } ranInto)
            fired = ranInto;
        return new SandboxRun(exit, outText, errText, fired, sandboxed);
    }

    /// <summary>Which rlimit an ended program ran into: by the signal the kernel sent (CPU, file size), else by what the program said.</summary>
    static string? LimitOf(int exitCode, string stderr) => exitCode switch
    {
        128 + 24 or 128 + 9 => "sandbox.cpu", // SIGXCPU at the soft limit; SIGKILL at the hard one (we sent none)
        128 + 25 => "sandbox.file-size", // SIGXFSZ
        _ when Says(stderr, "File size limit exceeded") => "sandbox.file-size",
        _ when Says(stderr, "Cannot fork", "fork: retry", "fork failed", "Resource temporarily unavailable", "can't fork") => "sandbox.processes",
        _ when Says(stderr, "MemoryError", "Cannot allocate memory", "out of memory", "bad_alloc", "memory exhausted") => "sandbox.memory",
        _ when Says(stderr, "Too many open files") => "sandbox.open-files",
        _ => null,
    };

    static bool Says(string text, params string[] phrases) => phrases.Any(p => text.Contains(p, StringComparison.OrdinalIgnoreCase));

    /// <summary>When we run as root, the sandbox's user must own what it may write: the workspace, and what the service wrote in it.</summary>
    void OwnTree(string workspace)
    {
        if (!IsRoot)
            return;
        Own(workspace);
        foreach (var entry in new DirectoryInfo(workspace).EnumerateFileSystemInfos("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = true }))
            Own(entry.FullName);
    }

    void Own(string path)
    {
        if (IsRoot && OperatingSystem.IsLinux())
            _ = Native.lchown(path, (uint)options.Value.Uid, (uint)options.Value.Gid);
    }

    /// <summary>Stdout and stderr share one byte budget; past it the run's token is canceled and the host kills the sandbox.</summary>
    sealed class OutputBudget(int max, CancellationTokenSource limit)
    {
        long _total;

        public bool Exceeded => Interlocked.Read(ref _total) > max;

        public async Task<string> ReadAsync(Stream stream)
        {
            var kept = new MemoryStream();
            var buffer = new byte[16 * 1024];
            try
            {
                while (await stream.ReadAsync(buffer) is var n and > 0)
                {
                    var before = Interlocked.Add(ref _total, n) - n;
                    if (before < max)
                        kept.Write(buffer, 0, (int)Math.Min(n, max - before));
                    if (before + n > max)
                    {
                        await limit.CancelAsync();
                        break;
                    }
                }
            }
            catch (IOException)
            {
                // The pipe closed under us when the sandbox was killed.
            }
            return Encoding.UTF8.GetString(kept.GetBuffer(), 0, (int)kept.Length);
        }
    }
}

/// <summary>Runs the trial sandbox at start-up, so <c>/health/ready</c> and the first call know at once.</summary>
internal sealed class SandboxProbe(Sandbox sandbox, ILogger<SandboxProbe> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var state = await sandbox.StateAsync();
        if (state.Available)
            log.LogInformation("process/run sandbox: {Sandbox}", state.Description);
        else
            log.LogWarning("process/run sandbox: {Sandbox}. process/run is refused until bubblewrap works here (see doc/operations.md).", state.Description);
    }
}

/// <summary><c>/health/ready</c>'s <c>sandbox</c> entry: degraded (still ready: other effects work) with <c>unavailable</c> when no sandbox can be made.</summary>
internal sealed class SandboxHealth(Sandbox sandbox) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var state = await sandbox.StateAsync();
        return state.Available ? HealthCheckResult.Healthy(state.Description) : HealthCheckResult.Degraded(state.Description);
    }
}
