namespace Orchestrator.Effects;

/// <summary>Section <c>Orchestrator:Effects</c>.</summary>
public sealed class EffectsOptions
{
    public const string Section = "Orchestrator:Effects";

    /// <summary>Root of the per-tenant workspaces: file effects of tenant T are confined to <c>{root}/T</c>.</summary>
    public string WorkspaceRoot { get; set; } = "workspaces";

    /// <summary>Largest file <c>fs/read</c> returns, and largest content <c>fs/write</c>/<c>fs/append</c> accept.</summary>
    public int MaxFileBytes { get; set; } = 256 * 1024;

    /// <summary>Hosts <c>http/fetch</c> may reach (exact host names, optionally with <c>:port</c>), at public addresses only. Empty: none.</summary>
    public List<string> HttpAllowList { get; set; } = [];

    /// <summary>Finer host rules: methods, tenants, and the non-public addresses a host may resolve to.</summary>
    public List<HttpRule> HttpRules { get; set; } = [];

    /// <summary>Names pinned to addresses (comma-separated) for <c>http/fetch</c>, instead of asking DNS.</summary>
    public Dictionary<string, string> HostAddresses { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    public TimeSpan HttpTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Largest response body <c>http/fetch</c> hands back to the model.</summary>
    public int MaxHttpBytes { get; set; } = 256 * 1024;

    /// <summary>Programs <c>process/run</c> may start (the first argv element, a name on PATH or an absolute path). Empty: none.</summary>
    public List<string> ProcessAllowList { get; set; } = [];

    /// <summary>Bytes all files of one tenant's workspace may hold, checked by <c>fs/write</c> and <c>fs/append</c>.</summary>
    public long WorkspaceMaxBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>Files and folders one tenant's workspace may hold.</summary>
    public int WorkspaceMaxFiles { get; set; } = 10_000;
}
