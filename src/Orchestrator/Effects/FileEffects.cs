using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Orchestrator.Hosting;

namespace Orchestrator.Effects;

/// <summary>The workspace and size limits file effects share, and a lock per file so appends to one file never interleave.</summary>
internal sealed class FileEffects(IOptions<EffectsOptions> options, IHostEnvironment environment)
{
    readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);

    public EffectsOptions Options => options.Value;

    public Workspace WorkspaceOf(EffectCall call) => Workspace.For(options.Value, environment.ContentRootPath, call.Tenant);

    public string Resolve(EffectCall call, string relative) => WorkspaceOf(call).Resolve(relative);

    /// <summary>The workspace-relative path of a call's <c>path</c> argument, checked (see <see cref="Workspace.Resolve"/>).</summary>
    public string Relative(EffectCall call, string relative) => WorkspaceOf(call).RelativeOf(WorkspaceOf(call).Resolve(relative));

    public string RelativeFile(EffectCall call, string relative) => WorkspaceOf(call).RelativeOf(WorkspaceOf(call).ResolveFile(relative));

    public ConfinedFiles Open(EffectCall call) => ConfinedFiles.Open(WorkspaceOf(call));

    /// <summary>
    /// Refuses a write that would take the tenant's workspace past <c>WorkspaceMaxBytes</c> or <c>WorkspaceMaxFiles</c>
    /// (<c>capability_denied</c>, rules <c>fs.quota-bytes</c> / <c>fs.quota-files</c>). Call it under <see cref="QuotaLockAsync"/>,
    /// so two writes of one tenant cannot both fit into the last room. Links are counted, never followed.
    /// </summary>
    public void CheckQuota(EffectCall call, string relative, long adding, bool replaces)
    {
        var root = WorkspaceOf(call).Root;
        long bytes = 0, files = 0, existing = -1;
        var target = Path.Combine(root, relative);
        foreach (var entry in new DirectoryInfo(root).EnumerateFileSystemInfos("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = true }))
        {
            files++;
            if (entry is FileInfo file)
            {
                bytes += file.Length;
                if (file.FullName == target)
                    existing = file.Length;
            }
        }
        var o = options.Value;
        var after = bytes + adding - (replaces && existing > 0 ? existing : 0);
        if (after > o.WorkspaceMaxBytes)
            throw new EffectRefusedException(Problems.CapabilityDenied,
                $"The workspace would hold {after} bytes, over its quota of {o.WorkspaceMaxBytes} (Orchestrator:Effects:WorkspaceMaxBytes).", "fs.quota-bytes");
        if (existing < 0 && files + 1 > o.WorkspaceMaxFiles)
            throw new EffectRefusedException(Problems.CapabilityDenied,
                $"The workspace holds {files} files and folders, its quota (Orchestrator:Effects:WorkspaceMaxFiles); {relative} would be one more.", "fs.quota-files");
    }

    public Task<IDisposable> QuotaLockAsync(EffectCall call, CancellationToken cancellationToken) => LockAsync("quota:" + call.Tenant, cancellationToken);

    /// <summary>A file to create or change: never the workspace itself or a directory.</summary>
    public string ResolveFile(EffectCall call, string relative) => WorkspaceOf(call).ResolveFile(relative);

    /// <summary>Runs file I/O; an I/O error comes back with workspace-relative paths, never the server's layout.</summary>
    public async Task<T> IoAsync<T>(EffectCall call, Func<Task<T>> io)
    {
        try
        {
            return await io();
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            throw new IOException(WorkspaceOf(call).Relative(error.Message), error);
        }
    }

    public async Task<IDisposable> LockAsync(string path, CancellationToken cancellationToken)
    {
        var gate = _locks.GetOrAdd(path, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        return new Release(gate);
    }

    public string CheckedContent(JsonElement arguments)
    {
        var content = EffectJson.Required(arguments, "content");
        if (Encoding.UTF8.GetByteCount(content) > options.Value.MaxFileBytes)
            throw new EffectRefusedException(Problems.EffectFailed, $"'content' is larger than {options.Value.MaxFileBytes} bytes.");
        return content;
    }

    sealed class Release(SemaphoreSlim gate) : IDisposable
    {
        int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
                gate.Release();
        }
    }
}

internal sealed class FsRead(FileEffects files) : IEffect
{
    public string Capability => Capabilities.FsRead;
    public string Description => "Read a UTF-8 text file from the workspace.";
    public JsonElement Schema { get; } = EffectJson.Schema("""{"type":"object","properties":{"path":{"type":"string","description":"File path relative to the workspace"}},"required":["path"]}""");
    public EffectRisk RiskOf(JsonElement arguments) => EffectRisk.ReadOnly;

    public Task<EffectPlan> PlanAsync(EffectCall call, CancellationToken cancellationToken)
    {
        files.Resolve(call, EffectJson.Required(call.Arguments, "path"));
        return Task.FromResult(EffectPlan.None);
    }

    public async Task<EffectResult> RunAsync(EffectCall call, EffectPlan plan, CancellationToken cancellationToken)
    {
        var relative = files.Relative(call, EffectJson.Required(call.Arguments, "path"));
        using var confined = files.Open(call);
        return await files.IoAsync(call, async () =>
        {
            await using var stream = confined.OpenRead(relative);
            if (stream is null)
                return EffectResult.Failure("No such file.");
            if (stream.Length > files.Options.MaxFileBytes)
                return EffectResult.Failure($"The file is {stream.Length} bytes; fs/read returns at most {files.Options.MaxFileBytes}.");
            using var reader = new StreamReader(stream, Encoding.UTF8);
            return EffectResult.Success(new { content = await reader.ReadToEndAsync(cancellationToken), bytes = stream.Length });
        });
    }
}

internal sealed class FsList(FileEffects files) : IEffect
{
    public string Capability => Capabilities.FsList;
    public string Description => "List the entries of a workspace folder.";
    public JsonElement Schema { get; } = EffectJson.Schema("""{"type":"object","properties":{"path":{"type":"string","description":"Folder path relative to the workspace; '.' for its root"}},"required":["path"]}""");
    public EffectRisk RiskOf(JsonElement arguments) => EffectRisk.ReadOnly;

    public Task<EffectPlan> PlanAsync(EffectCall call, CancellationToken cancellationToken)
    {
        files.Resolve(call, EffectJson.String(call.Arguments, "path") ?? ".");
        return Task.FromResult(EffectPlan.None);
    }

    public Task<EffectResult> RunAsync(EffectCall call, EffectPlan plan, CancellationToken cancellationToken)
    {
        var relative = files.Relative(call, EffectJson.String(call.Arguments, "path") ?? ".");
        using var confined = files.Open(call);
        return files.IoAsync(call, () =>
        {
            using var folder = confined.TryOpen(relative, Native.O_RDONLY | Native.O_DIRECTORY);
            if (folder is null)
                return Task.FromResult(EffectResult.Failure("No such folder."));
            // Listed through the open handle: the folder listed is the one opened beneath the workspace, even if a
            // link has since been swapped in at its name. Entries are read, never followed.
            var entries = new DirectoryInfo(Native.ProcPath(folder)).EnumerateFileSystemInfos()
                .OrderBy(e => e.Name, StringComparer.Ordinal)
                .Take(1000)
                .Select(e => new
                {
                    name = e.Name,
                    kind = e.LinkTarget is not null ? "link" : e is DirectoryInfo ? "folder" : "file",
                    bytes = e.LinkTarget is null ? (e as FileInfo)?.Length : null,
                })
                .ToList();
            return Task.FromResult(EffectResult.Success(new { entries }));
        });
    }
}

internal sealed class FsWrite(FileEffects files) : IEffect
{
    public string Capability => Capabilities.FsWrite;
    public string Description => "Create or replace a UTF-8 text file in the workspace.";
    public JsonElement Schema { get; } = EffectJson.Schema("""{"type":"object","properties":{"path":{"type":"string"},"content":{"type":"string"}},"required":["path","content"]}""");
    public EffectRisk RiskOf(JsonElement arguments) => EffectRisk.IdempotentWrite;

    public Task<EffectPlan> PlanAsync(EffectCall call, CancellationToken cancellationToken)
    {
        files.ResolveFile(call, EffectJson.Required(call.Arguments, "path"));
        files.CheckedContent(call.Arguments);
        return Task.FromResult(EffectPlan.None);
    }

    public async Task<EffectResult> RunAsync(EffectCall call, EffectPlan plan, CancellationToken cancellationToken)
    {
        var relative = files.RelativeFile(call, EffectJson.Required(call.Arguments, "path"));
        var content = Encoding.UTF8.GetBytes(files.CheckedContent(call.Arguments));
        using var confined = files.Open(call);
        return await files.IoAsync(call, async () =>
        {
            using (await files.QuotaLockAsync(call, cancellationToken))
            using (await files.LockAsync(call.Tenant + "/" + relative, cancellationToken))
            {
                files.CheckQuota(call, relative, content.Length, replaces: true);
                using var folder = confined.Folder(Path.GetDirectoryName(relative) ?? "");
                var name = Path.GetFileName(relative);
                // Written aside (in the same folder, so inside the workspace) and renamed in, so a crash never leaves
                // half a file; rename replaces whatever has the name (a link too) and follows nothing.
                var temp = "." + name + ".tmp-" + Guid.NewGuid().ToString("N");
                try
                {
                    var handle = Native.Openat2(folder, temp, Native.O_WRONLY | Native.O_CREAT | Native.O_EXCL | Native.O_NOFOLLOW, 0b110_100_100, out var errno);
                    if (errno != 0)
                    {
                        handle.Dispose();
                        throw Native.Denied(relative, errno);
                    }
                    await using (var stream = new FileStream(handle, FileAccess.Write))
                        await stream.WriteAsync(content, cancellationToken);
                    Native.RenameAt(folder, temp, name);
                }
                finally
                {
                    Native.UnlinkAt(folder, temp);
                }
            }
            return EffectResult.Success(new { written = content.Length });
        });
    }
}

/// <summary>
/// Appends text to a file. Not idempotent, but reconcilable: the file's length is taken (under the file's
/// lock) and committed with the intent, so after a crash the bytes at that offset tell whether the append
/// happened, and it is finished or redone, never done twice.
/// </summary>
internal sealed class FsAppend(FileEffects files) : IEffect
{
    const string LengthFact = "lengthBefore";

    public string Capability => Capabilities.FsAppend;
    public string Description => "Append UTF-8 text to a file in the workspace (creating it if needed).";
    public JsonElement Schema { get; } = EffectJson.Schema("""{"type":"object","properties":{"path":{"type":"string"},"content":{"type":"string"}},"required":["path","content"]}""");
    public EffectRisk RiskOf(JsonElement arguments) => EffectRisk.NonIdempotent;

    /// <summary>Takes the file's lock (held until the run ends) and its length, so the recorded offset is where the append lands.</summary>
    public async Task<EffectPlan> PlanAsync(EffectCall call, CancellationToken cancellationToken)
    {
        var relative = files.RelativeFile(call, EffectJson.Required(call.Arguments, "path"));
        files.CheckedContent(call.Arguments);
        var hold = await files.LockAsync(call.Tenant + "/" + relative, cancellationToken);
        try
        {
            var length = LengthOf(call, relative);
            return new EffectPlan(new() { [LengthFact] = JsonSerializer.SerializeToElement(length) }, hold);
        }
        catch
        {
            hold.Dispose();
            throw;
        }
    }

    long LengthOf(EffectCall call, string relative)
    {
        using var confined = files.Open(call);
        using var stream = confined.OpenRead(relative);
        return stream?.Length ?? 0;
    }

    public async Task<EffectResult> RunAsync(EffectCall call, EffectPlan plan, CancellationToken cancellationToken)
    {
        var relative = files.RelativeFile(call, EffectJson.Required(call.Arguments, "path"));
        var content = Encoding.UTF8.GetBytes(files.CheckedContent(call.Arguments));
        using var confined = files.Open(call);
        return await files.IoAsync(call, async () =>
        {
            using (await files.QuotaLockAsync(call, cancellationToken))
            {
                files.CheckQuota(call, relative, content.Length, replaces: false);
                using var folder = confined.Folder(Path.GetDirectoryName(relative) ?? "");
                var handle = Native.Openat2(folder, Path.GetFileName(relative), Native.O_WRONLY | Native.O_CREAT | Native.O_APPEND | Native.O_NOFOLLOW, 0b110_100_100, out var errno);
                if (errno != 0)
                {
                    handle.Dispose();
                    throw Native.Denied(relative, errno);
                }
                await using var stream = new FileStream(handle, FileAccess.Write);
                await stream.WriteAsync(content, cancellationToken);
                await stream.FlushAsync(cancellationToken);
            }
            return EffectResult.Success(new { appended = content.Length });
        });
    }

    public async Task<Reconciliation> ReconcileAsync(EffectCall call, EffectPlan plan, CancellationToken cancellationToken)
    {
        if (plan.Facts?.GetValueOrDefault(LengthFact) is not { ValueKind: JsonValueKind.Number } fact)
            return Reconciliation.Unknown;
        var before = fact.GetInt64();
        var relative = files.RelativeFile(call, EffectJson.Required(call.Arguments, "path"));
        var content = Encoding.UTF8.GetBytes(files.CheckedContent(call.Arguments));
        using (await files.LockAsync(call.Tenant + "/" + relative, cancellationToken))
        {
            using var confined = files.Open(call);
            await using var stream = confined.OpenRead(relative);
            var length = stream?.Length ?? 0;
            if (length < before)
                return Reconciliation.Unknown; // Someone truncated the file: nobody can tell.
            if (length == before)
                return Reconciliation.NotApplied;
            var found = new byte[Math.Min(content.Length, length - before)];
            stream!.Seek(before, SeekOrigin.Begin);
            await stream.ReadExactlyAsync(found, cancellationToken);
            // Our bytes at our offset: it happened. Other bytes there: an append after the crash took the
            // place, so ours did not happen (appends to one file are serialized by the lock).
            return found.Length == content.Length && found.AsSpan().SequenceEqual(content)
                ? Reconciliation.Applied
                : Reconciliation.NotApplied;
        }
    }
}
