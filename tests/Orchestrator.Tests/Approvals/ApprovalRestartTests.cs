using System.Net;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Approvals;

/// <summary>A wait survives the process: killed while a job waits, then approved on the next process (or another node), the effect runs once.</summary>
public sealed class ApprovalRestartTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("orchestrator-approval-restart-").FullName;

    public void Dispose() => OrchestratorApp.TryDelete(_folder);

    static Dictionary<string, string> Settings() => new()
    {
        ["Orchestrator:Models:0:Id"] = "sim",
        ["Orchestrator:Models:0:Provider"] = "simulated",
        ["Orchestrator:Models:0:LatencyMs"] = "20",
        ["Orchestrator:ApiKeys:2:Key"] = ApprovalHelpers.AcmeApprover,
        ["Orchestrator:ApiKeys:2:Tenant"] = "acme",
        ["Orchestrator:ApiKeys:2:Principal"] = "dave",
        ["Orchestrator:ApiKeys:2:Roles:0"] = "approver",
        ["Orchestrator:Approvals:SweepInterval"] = "00:00:00.200",
        ["Orchestrator:Approvals:Rules:0:Capability"] = "fs/append",
        ["Orchestrator:Approvals:Rules:0:Approvers:Roles:0"] = "approver",
    };

    const string Append = """/call fs_append {"path":"once.txt","content":"once\n"}""";

    [Fact]
    public async Task Killed_while_a_job_waits_then_approved_after_the_restart_the_effect_runs_exactly_once()
    {
        string jobId;
        await using (var first = new ServiceProcess(_folder, Settings()))
        {
            await first.StartAsync();
            using var alice = first.Client();
            jobId = await alice.ActAsync("Work.\n" + Append);
            await alice.AwaitingAsync(jobId);
            first.Kill();
        }
        await using var second = new ServiceProcess(_folder, Settings());
        await second.StartAsync();
        using var client = second.Client();
        using var dave = second.Client(ApprovalHelpers.AcmeApprover);

        (await client.GetJobAsync(jobId)).Str("status").Should().Be("awaiting_approval", "the wait is a row, not a process");
        var approval = (await client.ApprovalsOfAsync(jobId)).Single();
        (await dave.ApproveAsync(approval.Str("id"))).Response.StatusCode.Should().Be(HttpStatusCode.OK);

        var job = await client.EndedAsync(jobId, seconds: 60);
        job.Str("status").Should().Be("completed", second.ReadLog());
        File.ReadAllText(Path.Combine(_folder, "workspaces", "acme", "once.txt")).Should().Be("once\n");
    }

    [SkippableFact]
    public async Task A_node_killed_while_its_job_waits_leaves_it_to_another_node_which_runs_it_once_approved()
    {
        await using var cluster = await MultiNode.CreateAsync();
        var a = cluster.Add("node-a", Settings());
        var b = cluster.Add("node-b", Settings());
        await a.StartAsync();
        await b.StartAsync();
        using var viaA = a.Client();
        var jobId = await viaA.ActAsync("Work.\n" + Append);
        await viaA.AwaitingAsync(jobId);
        a.Kill();

        using var viaB = b.Client();
        using var dave = b.Client(ApprovalHelpers.AcmeApprover);
        var approval = (await viaB.ApprovalsOfAsync(jobId)).Single();
        (await dave.ApproveAsync(approval.Str("id"))).Response.StatusCode.Should().Be(HttpStatusCode.OK);

        var job = await viaB.EndedAsync(jobId, seconds: 60);
        job.Str("status").Should().Be("completed", cluster.Logs());
        job.Str("node").Should().Be("node-b");
        File.ReadAllText(Path.Combine(cluster.Folder, "workspaces", "acme", "once.txt")).Should().Be("once\n");
    }
}
