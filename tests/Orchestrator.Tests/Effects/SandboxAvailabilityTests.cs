using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Effects;

/// <summary>Where no sandbox can be made, process/run is refused and /health/ready says so; quotas per workspace.</summary>
public sealed class SandboxAvailabilityTests
{
    static string Script(params string[] calls) => "Do the work.\n" + string.Join("\n", calls.Select(c => "/call " + c));

    [SkippableFact]
    public async Task Without_bubblewrap_process_run_is_refused_and_ready_says_sandbox_unavailable()
    {
        using var app = new OrchestratorApp(new Dictionary<string, string?>
        {
            ["Orchestrator:Effects:ProcessAllowList:0"] = "echo",
            ["Orchestrator:Effects:Sandbox:Bubblewrap"] = "/nonexistent/bwrap",
        });
        using var client = app.ClientFor();

        var (_, problem) = await client.ActAsync(new { intent = "agent/run", input = Script("""process_run {"argv":["echo","hi"]}""") });
        var health = await Api.BodyOf(await app.ClientFor(null).GetAsync("/health/ready"));

        problem.Str("code").Should().Be("sandbox_violation", problem.ToJsonString());
        problem.Str("detail").Should().Contain("(rule sandbox.unavailable)");
        health.Str("checks.sandbox.status").Should().Be("Degraded", health.ToJsonString());
        health.Str("checks.sandbox.description").Should().StartWith("unavailable").And.Contain("/nonexistent/bwrap");
        health.Str("status").Should().Be("Degraded", "the node still serves everything but process/run");
    }

    [SkippableFact]
    public async Task A_program_killed_at_its_wall_time_takes_everything_it_started_with_it()
    {
        Sandboxes.Require();
        using var app = new OrchestratorApp(new Dictionary<string, string?> { ["Orchestrator:Effects:ProcessAllowList:0"] = "sh" });
        using var client = app.ClientFor();
        var marker = $"{Random.Shared.Next(100_000, 999_999)}.{Random.Shared.Next(1000, 9999)}"; // a sleep length no other process has

        var (_, problem) = await client.ActAsync(new
        {
            intent = "agent/run",
            input = Script($$"""process_run {"argv":["sh","-c","(sleep {{marker}} &) ; sleep {{marker}} & sleep {{marker}}"],"timeoutMs":1000}"""),
        });

        problem.Str("detail").Should().Contain("(rule sandbox.wall)", problem.ToJsonString());
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Survivors(marker).Count > 0 && DateTime.UtcNow < deadline)
            await Task.Delay(100);
        Survivors(marker).Should().BeEmpty("the sandbox's whole process tree, detached children too, dies at the limit");
    }

    static List<string> Survivors(string marker) =>
        Directory.EnumerateDirectories("/proc").Select(d => Path.Combine(d, "cmdline"))
            .Select(f => { try { return File.ReadAllText(f).Replace('\0', ' '); } catch (IOException) { return ""; } catch (UnauthorizedAccessException) { return ""; } })
            .Where(c => c.StartsWith("sleep " + marker, StringComparison.Ordinal))
            .ToList();

    [SkippableFact]
    public async Task Writes_past_a_workspace_quota_are_denied()
    {
        using var app = new OrchestratorApp(new Dictionary<string, string?>
        {
            ["Orchestrator:Effects:WorkspaceMaxFiles"] = "2",
            ["Orchestrator:Effects:WorkspaceMaxBytes"] = "100",
        });
        using var client = app.ClientFor();

        var (_, first) = await client.ActAsync(new { intent = "agent/run", input = Script("""fs_write {"path":"a.txt","content":"0123456789"}""", """fs_write {"path":"a.txt","content":"0123456789"}""") });
        var (_, files) = await client.ActAsync(new { intent = "agent/run", input = Script("""fs_write {"path":"b.txt","content":"x"}""", """fs_write {"path":"c.txt","content":"x"}""") });
        var (_, bytes) = await client.ActAsync(new { intent = "agent/run", input = Script($$"""fs_append {"path":"a.txt","content":"{{new string('x', 95)}}"}""") });

        first.Str("status").Should().Be("completed", "replacing a file counts its new size, not both");
        files.Str("code").Should().Be("capability_denied");
        files.Str("detail").Should().Contain("(rule fs.quota-files)");
        bytes.Str("detail").Should().Contain("(rule fs.quota-bytes)");
        File.Exists(Path.Combine(app.Folder, "workspaces", "acme", "c.txt")).Should().BeFalse();
        new FileInfo(Path.Combine(app.Folder, "workspaces", "acme", "a.txt")).Length.Should().Be(10);
    }
}
