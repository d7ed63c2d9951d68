using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Orchestrator.Hosting;

namespace Orchestrator.Effects;

/// <summary>The few Linux calls .NET does not offer: owning a path without following it, and opening beneath a folder.</summary>
internal static partial class Native
{
    const long SysOpenat2 = 437; // the same number on every Linux architecture (new system calls share one table)

    public const int ENOENT = 2, EEXIST = 17, ENOTDIR = 20, EISDIR = 21, EXDEV = 18, ELOOP = 40, ENOSYS = 38, EAGAIN = 11;

    static readonly bool Arm = RuntimeInformation.ProcessArchitecture is Architecture.Arm or Architecture.Arm64;

    public const ulong O_RDONLY = 0, O_WRONLY = 1, O_CREAT = 0x40, O_EXCL = 0x80, O_NOCTTY = 0x100, O_APPEND = 0x400, O_CLOEXEC = 0x80000, O_PATH = 0x200000;

    public static ulong O_DIRECTORY => Arm ? 0x4000UL : 0x10000UL;

    public static ulong O_NOFOLLOW => Arm ? 0x8000UL : 0x20000UL;

    /// <summary>RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS: never above the folder, no link of any kind on the way.</summary>
    public const ulong ResolveConfined = 0x08 | 0x04 | 0x02;

    [StructLayout(LayoutKind.Sequential)]
    struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial long SyscallOpenat2(long number, int dirfd, string path, ref OpenHow how, nuint size);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "mkdirat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Mkdirat(int dirfd, string path, uint mode);

    [LibraryImport("libc", EntryPoint = "renameat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Renameat(int olddirfd, string oldpath, int newdirfd, string newpath);

    [LibraryImport("libc", EntryPoint = "unlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Unlinkat(int dirfd, string path, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int lchown(string path, uint owner, uint group);

    public static SafeFileHandle OpenDirectory(string path)
    {
        var fd = Open(path, (int)(O_PATH | O_DIRECTORY | O_CLOEXEC));
        return fd >= 0 ? new SafeFileHandle(fd, ownsHandle: true) : throw Failure(path);
    }

    /// <summary>openat2 beneath <paramref name="dir"/>; on failure the errno (the caller decides what each means).</summary>
    public static SafeFileHandle Openat2(SafeFileHandle dir, string path, ulong flags, uint mode, out int errno)
    {
        var how = new OpenHow { Flags = flags | O_CLOEXEC, Mode = mode, Resolve = ResolveConfined };
        var fd = SyscallOpenat2(SysOpenat2, (int)dir.DangerousGetHandle(), path, ref how, (nuint)Marshal.SizeOf<OpenHow>());
        errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        return new SafeFileHandle(fd < 0 ? -1 : (nint)fd, ownsHandle: true);
    }

    public static int MkdirAt(SafeFileHandle dir, string name, uint mode) =>
        Mkdirat((int)dir.DangerousGetHandle(), name, mode) == 0 ? 0 : Marshal.GetLastPInvokeError();

    public static void RenameAt(SafeFileHandle dir, string from, string to)
    {
        if (Renameat((int)dir.DangerousGetHandle(), from, (int)dir.DangerousGetHandle(), to) != 0)
            throw Failure(to);
    }

    public static void UnlinkAt(SafeFileHandle dir, string name) => _ = Unlinkat((int)dir.DangerousGetHandle(), name, 0);

    static IOException Failure(string path) =>
        new($"{path}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");

    /// <summary>An open handle's path as the kernel resolves it (the inode itself, wherever it is now).</summary>
    public static string ProcPath(SafeFileHandle handle) => $"/proc/self/fd/{handle.DangerousGetHandle()}";

    public static EffectRefusedException Denied(string path, int errno) => errno switch
    {
        ELOOP => new(Problems.CapabilityDenied, $"The path '{path}' is not allowed: it goes through a symbolic link.", "fs.symlink"),
        EXDEV => new(Problems.CapabilityDenied, $"The path '{path}' is not allowed: it leads outside the workspace.", "fs.outside"),
        ENOSYS => new(Problems.SandboxViolation, "File effects need openat2 (Linux 5.6 or later) to stay inside the workspace.", "fs.unsupported"),
        _ => throw new IOException($"{path}: {Marshal.GetPInvokeErrorMessage(errno)}"),
    };
}
