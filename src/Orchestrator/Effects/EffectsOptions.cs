namespace Orchestrator.Effects;

/// <summary>Section <c>Orchestrator:Effects</c>.</summary>
public sealed class EffectsOptions
{
    public const string Section = "Orchestrator:Effects";

    /// <summary>Root of the per-tenant workspaces: file effects of tenant T are confined to <c>{root}/T</c>.</summary>
    public string WorkspaceRoot { get; set; } = "workspaces";

    /// <summary>Largest file <c>fs/read</c> returns, and largest content <c>fs/write</c>/<c>fs/append</c> accept.</summary>
    public int MaxFileBytes { get; set; } = 256 * 1024;

    /// <summary>Hosts <c>http/fetch</c> may reach (exact host names, optionally with <c>:port</c>). Empty: none.</summary>
    public List<string> HttpAllowList { get; set; } = [];

    public TimeSpan HttpTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Largest response body <c>http/fetch</c> hands back to the model.</summary>
    public int MaxHttpBytes { get; set; } = 256 * 1024;

    /// <summary>Programs <c>process/run</c> may start (the first argv element, a name on PATH or an absolute path). Empty: none.</summary>
    public List<string> ProcessAllowList { get; set; } = [];

    /// <summary>Default and ceiling of a <c>process/run</c> call's <c>timeoutMs</c>.</summary>
    public TimeSpan ProcessTimeout { get; set; } = TimeSpan.FromSeconds(10);

    public TimeSpan MaxProcessTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Largest stdout/stderr a <c>process/run</c> call hands back (each).</summary>
    public int MaxProcessOutputBytes { get; set; } = 64 * 1024;
}
