using Microsoft.Win32.SafeHandles;
using Orchestrator.Hosting;

namespace Orchestrator.Effects;

/// <summary>
/// Confines file effects to a tenant's workspace. A path must be relative; after <c>..</c> is folded and
/// every symbolic link on the way is followed, it must still be inside the workspace, or the call fails
/// <c>capability_denied</c>.
/// </summary>
/// <remarks>
/// This is the first, readable check (it names what is wrong with a path). The I/O itself then goes through
/// <see cref="ConfinedFiles"/>, which opens beneath the workspace with no link followed, so a link swapped in
/// after this check cannot lead the open outside.
/// </remarks>
internal sealed class Workspace(string root)
{
    /// <summary>The workspace folder that holds the tenant's SQLite database; file effects do not reach it.</summary>
    public const string DatabaseFolder = ".db";

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
            throw Denied(relative, "it contains a NUL character", "fs.invalid");
        if (Path.IsPathRooted(relative) || relative.StartsWith('~'))
            throw Denied(relative, "absolute paths are not allowed; paths are relative to the workspace", "fs.absolute");

        var full = Path.GetFullPath(Path.Combine(Root, relative));
        if (!IsInside(full, Root))
            throw Denied(relative, "it leads outside the workspace", "fs.outside");
        // The tenant's database (db/query, db/write) and its journal are reached through the database effects only.
        if (IsInside(full, Path.Combine(Root, DatabaseFolder)))
            throw Denied(relative, $"'{DatabaseFolder}' holds the tenant's database, which db/query and db/write reach", "fs.reserved");

        var real = RealPath(full);
        var realRoot = RealPath(Root);
        if (!IsInside(real, realRoot))
            throw Denied(relative, "a symbolic link leads outside the workspace", "fs.symlink");
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

    /// <summary>The workspace-relative form of a path <see cref="Resolve"/> returned (<c>.</c> for the workspace itself).</summary>
    public string RelativeOf(string full) => Path.GetRelativePath(Root, full);

    static EffectRefusedException Denied(string path, string why, string rule) =>
        new(Problems.CapabilityDenied, $"The path '{path}' is not allowed: {why}.", rule);

    static bool IsInside(string path, string root) =>
        path == root || path.StartsWith(root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    /// <summary>The path with every symbolic link along it followed (components that do not exist yet are kept as they are).</summary>
    internal static string RealPath(string path, int depth = 0)
    {
        if (depth > 40)
            throw Denied(path, "it has too many levels of symbolic links", "fs.symlink");
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

/// <summary>
/// File I/O confined to a workspace by the kernel: every open is <c>openat2</c> beneath the workspace's folder
/// with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, so neither <c>..</c>, an absolute path, nor a symbolic link (there
/// beforehand or swapped in during the call) can lead it out; the kernel checks each component as it walks.
/// </summary>
/// <remarks>
/// openat2 over a component-by-component <c>openat</c> walk with O_NOFOLLOW: one system call does the whole walk
/// atomically, with no code of ours to get wrong; it needs Linux 5.6 (2020), and fails closed without it. Links
/// are refused even when they would stay inside: a model has no need to make or follow them.
/// </remarks>
internal sealed class ConfinedFiles : IDisposable
{
    readonly SafeFileHandle _root;

    ConfinedFiles(SafeFileHandle root) => _root = root;

    public static ConfinedFiles Open(Workspace workspace) =>
        OperatingSystem.IsLinux()
            ? new(Native.OpenDirectory(workspace.Root))
            : throw new EffectRefusedException(Problems.SandboxViolation, "File effects are confined with Linux's openat2; this system has none.", "fs.unsupported");

    public void Dispose() => _root.Dispose();

    /// <summary>Opens a workspace-relative path; null when it does not exist.</summary>
    public SafeFileHandle? TryOpen(string relative, ulong flags, uint mode = 0)
    {
        var handle = Native.Openat2(_root, relative, flags, mode, out var errno);
        if (errno == 0)
            return handle;
        handle.Dispose();
        return errno is Native.ENOENT ? null : throw Native.Denied(relative, errno);
    }

    public FileStream? OpenRead(string relative) =>
        TryOpen(relative, Native.O_RDONLY | Native.O_NOCTTY) is { } handle ? new FileStream(handle, FileAccess.Read) : null;

    /// <summary>The folder, as an open handle (O_PATH), made with its parents if missing: each made beneath the one before.</summary>
    public SafeFileHandle Folder(string relative)
    {
        var current = ".";
        var handle = TryOpen(current, Native.O_PATH | Native.O_DIRECTORY)!;
        foreach (var part in relative.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != "."))
        {
            var next = current == "." ? part : current + "/" + part;
            if (TryOpen(next, Native.O_PATH | Native.O_DIRECTORY) is not { } opened)
            {
                if (Native.MkdirAt(handle, part, 0b111_101_101) is var errno and not 0 and not Native.EEXIST)
                    throw new IOException($"{next}: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)}");
                opened = TryOpen(next, Native.O_PATH | Native.O_DIRECTORY) ?? throw new IOException($"{next}: it vanished while it was made.");
            }
            handle.Dispose();
            (handle, current) = (opened, next);
        }
        return handle;
    }
}
