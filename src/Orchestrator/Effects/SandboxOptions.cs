using System.ComponentModel.DataAnnotations;

namespace Orchestrator.Effects;

/// <summary>Section <c>Orchestrator:Effects:Sandbox</c>: how <c>process/run</c> is confined, and its limits per call.</summary>
public sealed class SandboxOptions
{
    public const string Section = "Orchestrator:Effects:Sandbox";

    /// <summary>
    /// Run programs in bubblewrap (default). False runs them unconfined, with only the argv allow-list, the clean
    /// environment and the host-side wall and output limits: for development machines without user namespaces.
    /// </summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The bubblewrap executable.</summary>
    [Required]
    public string Bubblewrap { get; set; } = "/usr/bin/bwrap";

    /// <summary>util-linux <c>prlimit</c>, run inside the sandbox to set the rlimits, then exec the program.</summary>
    [Required]
    public string Prlimit { get; set; } = "/usr/bin/prlimit";

    /// <summary>util-linux <c>setpriv</c>, used only when the service runs as root, to start bubblewrap as <see cref="Uid"/>.</summary>
    [Required]
    public string Setpriv { get; set; } = "/usr/bin/setpriv";

    /// <summary>
    /// The user and group a sandbox runs as when the service runs as root (default <c>nobody</c>). Root's processes are
    /// exempt from the process-count rlimit, so a sandbox never runs as root, not even mapped inside its namespace.
    /// </summary>
    [Range(1, int.MaxValue)]
    public int Uid { get; set; } = 65534;

    [Range(1, int.MaxValue)]
    public int Gid { get; set; } = 65534;

    /// <summary>Share the host's network with sandboxed programs. Off: a program sees only its own loopback.</summary>
    public bool Network { get; set; }

    /// <summary>CPU time per process (RLIMIT_CPU): SIGXCPU at the limit, SIGKILL a second later.</summary>
    [Range(1, 86_400)]
    public int CpuSeconds { get; set; } = 10;

    /// <summary>Address space per process (RLIMIT_AS).</summary>
    [Range(16, 1_048_576)]
    public int MemoryMb { get; set; } = 1024;

    /// <summary>Processes and threads in the sandbox (RLIMIT_NPROC, counted in the sandbox's own user namespace).</summary>
    [Range(1, 65_536)]
    public int Processes { get; set; } = 64;

    /// <summary>Largest file a program may write (RLIMIT_FSIZE).</summary>
    [Range(1, 1_048_576)]
    public int FileSizeMb { get; set; } = 64;

    /// <summary>
    /// Size of the sandbox's private <c>/tmp</c> (a tmpfs, so host memory): without a bound a program could hold as much
    /// of the host's memory as it writes files there, whatever its address-space limit.
    /// </summary>
    [Range(1, 1_048_576)]
    public int TmpMb { get; set; } = 64;

    /// <summary>Open file descriptors per process (RLIMIT_NOFILE).</summary>
    [Range(8, 1_048_576)]
    public int OpenFiles { get; set; } = 256;

    /// <summary>Wall time of a call (its <c>timeoutMs</c> may ask for less), enforced by the host, which kills the whole sandbox.</summary>
    [Range(1, 3_600_000)]
    public int WallMs { get; set; } = 30_000;

    /// <summary>Stdout and stderr together, enforced by the host: past it the sandbox is killed.</summary>
    [Range(1, 64 * 1024 * 1024)]
    public int OutputBytes { get; set; } = 256 * 1024;
}
