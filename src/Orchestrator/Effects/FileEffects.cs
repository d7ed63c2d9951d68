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

    Workspace WorkspaceOf(EffectCall call) => Workspace.For(options.Value, environment.ContentRootPath, call.Tenant);

    public string Resolve(EffectCall call, string relative) => WorkspaceOf(call).Resolve(relative);

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
        var path = files.Resolve(call, EffectJson.Required(call.Arguments, "path"));
        if (!File.Exists(path))
            return EffectResult.Failure("No such file.");
        var info = new FileInfo(path);
        if (info.Length > files.Options.MaxFileBytes)
            return EffectResult.Failure($"The file is {info.Length} bytes; fs/read returns at most {files.Options.MaxFileBytes}.");
        return EffectResult.Success(new { content = await File.ReadAllTextAsync(path, cancellationToken), bytes = info.Length });
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
        var path = files.Resolve(call, EffectJson.String(call.Arguments, "path") ?? ".");
        if (!Directory.Exists(path))
            return Task.FromResult(EffectResult.Failure("No such folder."));
        var entries = new DirectoryInfo(path).EnumerateFileSystemInfos()
            .OrderBy(e => e.Name, StringComparer.Ordinal)
            .Take(1000)
            .Select(e => new { name = e.Name, kind = e is DirectoryInfo ? "folder" : "file", bytes = (e as FileInfo)?.Length })
            .ToList();
        return Task.FromResult(EffectResult.Success(new { entries }));
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
        var path = files.ResolveFile(call, EffectJson.Required(call.Arguments, "path"));
        var content = files.CheckedContent(call.Arguments);
        return await files.IoAsync(call, async () =>
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            using (await files.LockAsync(path, cancellationToken))
            {
                // Written aside (in the same folder, so inside the workspace) and moved in, so a crash never leaves
                // half a file; a write that fails takes its temporary file with it.
                var temp = Path.Combine(Path.GetDirectoryName(path)!, "." + Path.GetFileName(path) + ".tmp-" + Guid.NewGuid().ToString("N"));
                try
                {
                    await File.WriteAllTextAsync(temp, content, cancellationToken);
                    File.Move(temp, path, overwrite: true);
                }
                finally
                {
                    File.Delete(temp);
                }
            }
            return EffectResult.Success(new { written = Encoding.UTF8.GetByteCount(content) });
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
        var path = files.ResolveFile(call, EffectJson.Required(call.Arguments, "path"));
        files.CheckedContent(call.Arguments);
        var hold = await files.LockAsync(path, cancellationToken);
        var length = File.Exists(path) ? new FileInfo(path).Length : 0;
        return new EffectPlan(new() { [LengthFact] = JsonSerializer.SerializeToElement(length) }, hold);
    }

    public async Task<EffectResult> RunAsync(EffectCall call, EffectPlan plan, CancellationToken cancellationToken)
    {
        var path = files.ResolveFile(call, EffectJson.Required(call.Arguments, "path"));
        var content = Encoding.UTF8.GetBytes(files.CheckedContent(call.Arguments));
        return await files.IoAsync(call, async () =>
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            await using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
            await stream.WriteAsync(content, cancellationToken);
            await stream.FlushAsync(cancellationToken);
            return EffectResult.Success(new { appended = content.Length });
        });
    }

    public async Task<Reconciliation> ReconcileAsync(EffectCall call, EffectPlan plan, CancellationToken cancellationToken)
    {
        if (plan.Facts?.GetValueOrDefault(LengthFact) is not { ValueKind: JsonValueKind.Number } fact)
            return Reconciliation.Unknown;
        var before = fact.GetInt64();
        var path = files.ResolveFile(call, EffectJson.Required(call.Arguments, "path"));
        var content = Encoding.UTF8.GetBytes(files.CheckedContent(call.Arguments));
        using (await files.LockAsync(path, cancellationToken))
        {
            var length = File.Exists(path) ? new FileInfo(path).Length : 0;
            if (length < before)
                return Reconciliation.Unknown; // Someone truncated the file: nobody can tell.
            if (length == before)
                return Reconciliation.NotApplied;
            var found = new byte[Math.Min(content.Length, length - before)];
            await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            stream.Seek(before, SeekOrigin.Begin);
            await stream.ReadExactlyAsync(found, cancellationToken);
            // Our bytes at our offset: it happened. Other bytes there: an append after the crash took the
            // place, so ours did not happen (appends to one file are serialized by the lock).
            return found.Length == content.Length && found.AsSpan().SequenceEqual(content)
                ? Reconciliation.Applied
                : Reconciliation.NotApplied;
        }
    }
}
