using Orchestrator.Hosting;

namespace Orchestrator.Effects;

/// <summary>
/// Confines file effects to a tenant's workspace. A path must be relative; after <c>..</c> is folded and
/// every symbolic link on the way is followed, it must still be inside the workspace, or the call fails
/// <c>capability_denied</c>.
/// </summary>
/// <remarks>
/// This checks the path when the effect runs; a link swapped in between the check and the open is not
/// caught here. The process sandbox (bubblewrap) is the later, stronger boundary.
/// </remarks>
internal sealed class Workspace(string root)
{
    /// <summary>The tenant's workspace folder, created on first use.</summary>
    public string Root { get; } = Path.GetFullPath(root);

    public static Workspace For(EffectsOptions options, string contentRoot, string tenant)
    {
        if (!Tenancy.Identifiers.IsValid(tenant))
            throw new EffectRefusedException(Problems.CapabilityDenied, $"Tenant '{tenant}' cannot have a workspace.");
        var baseRoot = Path.IsPathRooted(options.WorkspaceRoot) ? options.WorkspaceRoot : Path.Combine(contentRoot, options.WorkspaceRoot);
        var workspace = new Workspace(Path.Combine(baseRoot, tenant));
        Directory.CreateDirectory(workspace.Root);
        return workspace;
    }

    /// <summary>The absolute path of <paramref name="relative"/> inside the workspace, or <see cref="EffectRefusedException"/>.</summary>
    public string Resolve(string relative)
    {
        if (string.IsNullOrWhiteSpace(relative))
            relative = ".";
        if (relative.Contains('\0'))
            throw Denied(relative, "it contains a NUL character");
        if (Path.IsPathRooted(relative) || relative.StartsWith('~'))
            throw Denied(relative, "absolute paths are not allowed; paths are relative to the workspace");

        var full = Path.GetFullPath(Path.Combine(Root, relative));
        if (!IsInside(full, Root))
            throw Denied(relative, "it leads outside the workspace");

        var real = RealPath(full);
        var realRoot = RealPath(Root);
        if (!IsInside(real, realRoot))
            throw Denied(relative, "a symbolic link leads outside the workspace");
        return full;
    }

    /// <summary>
    /// Like <see cref="Resolve"/>, for a file the effect will create or change: the workspace itself and an existing
    /// directory are refused (the model's arguments are wrong: <c>effect_failed</c>), so the file, and the temporary
    /// file written beside it, are always inside the workspace.
    /// </summary>
    public string ResolveFile(string relative)
    {
        var full = Resolve(relative);
        if (full == Root || Directory.Exists(full))
            throw new EffectRefusedException(Problems.EffectFailed, $"The path '{relative}' names a directory, not a file.");
        return full;
    }

    /// <summary>An exception's message with the workspace's absolute location replaced by the workspace-relative form.</summary>
    public string Relative(string message) =>
        message.Replace(Root + Path.DirectorySeparatorChar, "", StringComparison.Ordinal).Replace(Root, ".", StringComparison.Ordinal);

    static EffectRefusedException Denied(string path, string why) =>
        new(Problems.CapabilityDenied, $"The path '{path}' is not allowed: {why}.");

    static bool IsInside(string path, string root) =>
        path == root || path.StartsWith(root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    /// <summary>The path with every symbolic link along it followed (components that do not exist yet are kept as they are).</summary>
    internal static string RealPath(string path, int depth = 0)
    {
        if (depth > 40)
            throw Denied(path, "it has too many levels of symbolic links");
        var current = Path.GetPathRoot(path) ?? "/";
        foreach (var part in path.Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            var next = Path.Combine(current, part);
            FileSystemInfo info = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
            // Everything up to 'current' is already real, so a relative target is relative to it.
            if (info.Exists && info.LinkTarget is { } target)
                next = RealPath(Path.GetFullPath(Path.IsPathRooted(target) ? target : Path.Combine(current, target)), depth + 1);
            current = next;
        }
        return current;
    }
}
