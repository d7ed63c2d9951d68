using System.Text.Json;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Orchestrator.Effects;

namespace Orchestrator.Tests.Effects;

/// <summary>After a crash between an append's intent and its result, the file tells whether it happened.</summary>
public sealed class FsAppendReconciliationTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("append-test-").FullName;
    readonly FsAppend _append;

    public FsAppendReconciliationTests()
    {
        var options = Options.Create(new EffectsOptions { WorkspaceRoot = _root });
        _append = new FsAppend(new FileEffects(options, new Environment(_root)));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    static EffectCall Call(string content) => new("fs/append",
        JsonSerializer.SerializeToElement(new { path = "log.txt", content }), "acme", "job_x/agent/effect-1-1");

    string File => Path.Combine(_root, "acme", "log.txt");

    async Task<EffectPlan> CommittedIntent(string content)
    {
        using var plan = await _append.PlanAsync(Call(content), CancellationToken.None);
        return new EffectPlan(plan.Facts);
    }

    [Fact]
    public async Task Not_applied_when_the_file_did_not_grow()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(File)!);
        await System.IO.File.WriteAllTextAsync(File, "before\n");
        var intent = await CommittedIntent("line\n");

        (await _append.ReconcileAsync(Call("line\n"), intent, CancellationToken.None)).Should().Be(Reconciliation.NotApplied);
    }

    [Fact]
    public async Task Applied_when_our_bytes_are_at_our_offset()
    {
        var intent = await CommittedIntent("line\n");
        using (var plan = await _append.PlanAsync(Call("line\n"), CancellationToken.None))
            await _append.RunAsync(Call("line\n"), plan, CancellationToken.None);

        (await _append.ReconcileAsync(Call("line\n"), intent, CancellationToken.None)).Should().Be(Reconciliation.Applied);
    }

    [Fact]
    public async Task Not_applied_when_someone_elses_bytes_took_our_offset()
    {
        var intent = await CommittedIntent("ours\n");
        using (var plan = await _append.PlanAsync(Call("theirs\n"), CancellationToken.None))
            await _append.RunAsync(Call("theirs\n"), plan, CancellationToken.None);

        (await _append.ReconcileAsync(Call("ours\n"), intent, CancellationToken.None)).Should().Be(Reconciliation.NotApplied);
    }

    [Fact]
    public async Task Unknown_when_the_file_shrank()
    {
        using (var plan = await _append.PlanAsync(Call("aaaa\n"), CancellationToken.None))
            await _append.RunAsync(Call("aaaa\n"), plan, CancellationToken.None);
        var intent = await CommittedIntent("line\n");
        await System.IO.File.WriteAllTextAsync(File, "");

        (await _append.ReconcileAsync(Call("line\n"), intent, CancellationToken.None)).Should().Be(Reconciliation.Unknown);
    }

    sealed class Environment(string root) : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = "Testing";
        public string ApplicationName { get; set; } = "tests";
        public string ContentRootPath { get; set; } = root;
        public IFileProvider ContentRootFileProvider { get; set; } = new NullFileProvider();
    }
}
