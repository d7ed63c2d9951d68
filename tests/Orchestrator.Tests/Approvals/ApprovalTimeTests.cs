using System.Net;
using Microsoft.Extensions.Time.Testing;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Approvals;

/// <summary>Timeouts and escalation on a fake clock: nothing here waits for real minutes.</summary>
public sealed class ApprovalTimeTests
{
    static readonly DateTimeOffset Start = new(2026, 12, 1, 9, 0, 0, TimeSpan.Zero);

    static OrchestratorApp Build(FakeTimeProvider time) => new(ApprovalHelpers.Settings(
        ("Orchestrator:Models:0:Id", "sim"),
        ("Orchestrator:Models:0:Provider", "simulated"),
        ("Orchestrator:Models:0:LatencyMs", "0"),
        ("Orchestrator:Approvals:SweepInterval", "00:00:01"),
        ("Orchestrator:Approvals:Rules:0:Capability", "fs/write"),
        ("Orchestrator:Approvals:Rules:0:Approvers:Roles:0", "approver"),
        ("Orchestrator:Approvals:Rules:0:Timeout", "00:10:00"),
        ("Orchestrator:Approvals:Rules:0:Escalation:0:After", "00:05:00"),
        ("Orchestrator:Approvals:Rules:0:Escalation:0:Approvers:Principals:0", "sam")), time);

    static string Write(string path) => ApprovalHelpers.Script($$"""fs_write {"path":"{{path}}","content":"x"}""");

    /// <summary>Moves the fake clock in steps of the sweep interval, so every timer on the way fires.</summary>
    static void Advance(FakeTimeProvider time, TimeSpan by)
    {
        for (var step = TimeSpan.Zero; step < by; step += TimeSpan.FromSeconds(1))
            time.Advance(TimeSpan.FromSeconds(1));
    }

    static async Task<string> StatusOf(HttpClient client, string approvalId) =>
        (await Api.BodyOf(await client.GetAsync($"/v1/approvals/{approvalId}"))).Str("status");

    [Fact]
    public async Task At_the_final_timeout_the_approval_is_timed_out_never_rejected_and_the_job_fails_approval_timeout()
    {
        var time = new FakeTimeProvider(Start);
        using var app = Build(time);
        using var alice = app.ClientFor();
        var jobId = await alice.ActAsync(Write("late.txt"), deadlineMs: 3_600_000);
        await alice.AwaitingAsync(jobId);
        var approval = (await alice.ApprovalsOfAsync(jobId)).Single();

        Advance(time, TimeSpan.FromMinutes(9));
        await Task.Delay(300);
        (await StatusOf(alice, approval.Str("id"))).Should().Be("pending", "the timeout is ten minutes");
        Advance(time, TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(2));

        var job = await alice.EndedAsync(jobId);
        job.Str("status").Should().Be("failed");
        job.Str("error.code").Should().Be("approval_timeout");
        job.Str("error.message").Should().Contain("timed out").And.NotContain("rejected");
        (await StatusOf(alice, approval.Str("id"))).Should().Be("timed_out");
        File.Exists(Path.Combine(app.Folder, "workspaces", "acme", "late.txt")).Should().BeFalse();
        using var olga = app.ClientFor(OrchestratorApp.OperatorKey);
        (await olga.AuditAsync("approval.timeout")).Should().Contain(e => e!.Str("resource") == $"approvals/{approval.Str("id")}");
        (await olga.AuditAsync("approval.reject")).Should().BeEmpty("a timeout is not a rejection");
    }

    [Fact]
    public async Task After_an_escalation_step_its_approvers_may_decide()
    {
        var time = new FakeTimeProvider(Start);
        using var app = Build(time);
        using var alice = app.ClientFor();
        using var sam = app.ClientFor(ApprovalHelpers.AcmeSupervisor);
        var jobId = await alice.ActAsync(Write("escalated.txt"), deadlineMs: 3_600_000);
        await alice.AwaitingAsync(jobId);
        var id = (await alice.ApprovalsOfAsync(jobId)).Single().Str("id");

        var (early, problem) = await sam.ApproveAsync(id);
        early.StatusCode.Should().Be(HttpStatusCode.Forbidden, "sam is only named by the escalation step: " + problem.ToJsonString());

        Advance(time, TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(2));
        var until = DateTime.UtcNow.AddSeconds(20);
        while ((await Api.BodyOf(await alice.GetAsync($"/v1/approvals/{id}")))["escalations"]!.AsArray().Count == 0 && DateTime.UtcNow < until)
            await Task.Delay(25);
        var view = await Api.BodyOf(await alice.GetAsync($"/v1/approvals/{id}"));
        view["escalations"]!.AsArray().Should().ContainSingle();
        view["approvers"]!["principals"]!.AsArray().Select(p => p!.GetValue<string>()).Should().Contain("sam");

        var (decided, body) = await sam.ApproveAsync(id);
        decided.StatusCode.Should().Be(HttpStatusCode.OK, body.ToJsonString());
        (await alice.EndedAsync(jobId)).Str("status").Should().Be("completed");
        File.Exists(Path.Combine(app.Folder, "workspaces", "acme", "escalated.txt")).Should().BeTrue();
        using var olga = app.ClientFor(OrchestratorApp.OperatorKey);
        (await olga.AuditAsync("approval.escalate")).Should().Contain(e => e!.Str("resource") == $"approvals/{id}");
    }

    [Fact]
    public async Task The_jobs_own_deadline_still_applies_while_it_waits()
    {
        var time = new FakeTimeProvider(Start);
        using var app = Build(time);
        using var alice = app.ClientFor();
        var jobId = await alice.ActAsync(Write("deadline.txt"), deadlineMs: 120_000);
        await alice.AwaitingAsync(jobId);
        var approval = (await alice.ApprovalsOfAsync(jobId)).Single();
        var id = approval.Str("id");
        var job0 = await alice.GetJobAsync(jobId);
        DateTime.Parse(approval.Str("deadlineAt"), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.RoundtripKind)
            .Should().Be(DateTime.Parse(job0.Str("deadlineAt"), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.RoundtripKind),
                "the job's deadline comes before the rule's timeout, and nobody may decide after it");

        Advance(time, TimeSpan.FromMinutes(2) + TimeSpan.FromSeconds(2));

        var job = await alice.EndedAsync(jobId);
        job.Str("error.code").Should().Be("deadline_exceeded");
        job.Str("error.message").Should().Contain("approval");
        (await StatusOf(alice, id)).Should().Be("canceled");
    }
}
