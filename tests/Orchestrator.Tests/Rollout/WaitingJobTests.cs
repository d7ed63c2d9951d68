using Orchestrator.Tests.Approvals;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Rollout;

public sealed class WaitingJobTests
{
    [Fact]
    public async Task A_job_waiting_for_approval_resumes_on_the_versions_it_started_with()
    {
        using var app = new OrchestratorApp(Rollouts.TwoModels(ApprovalHelpers.Settings(
            ("Orchestrator:Approvals:Rules:0:Name", "gated-writes"),
            ("Orchestrator:Approvals:Rules:0:Capability", "fs/write"),
            ("Orchestrator:Approvals:Rules:0:PathGlob", "gated/**"),
            ("Orchestrator:Approvals:Rules:0:Approvers:Roles:0", "approver"))));
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        using var alice = app.ClientFor();
        using var dave = app.ClientFor(ApprovalHelpers.AcmeApprover);

        // agent/run names no models: pin it to sim first, so which model answers says which routing ran.
        await ops.PostArtifactAsync("routing", new { routing = new Dictionary<string, object> { ["agent/run"] = new { models = new[] { "sim" } } } });
        await ops.PutRolloutAsync("routing", new { stable = "v2" });
        var jobId = await alice.ActAsync(ApprovalHelpers.Script("""fs_write {"path":"gated/a.txt","content":"x"}"""));
        var waiting = await alice.AwaitingAsync(jobId);
        waiting.Str("versions.routing.version").Should().Be("v2");

        // While it waits, agent/run's routing changes to the other model, as the new stable.
        await ops.PostArtifactAsync("routing", new { routing = new Dictionary<string, object> { ["agent/run"] = new { models = new[] { "alt" } } } });
        await ops.PutRolloutAsync("routing", new { stable = "v3" });
        var (fresh, freshJob) = await alice.ActAsync(new { intent = "agent/run", input = "hello" });
        fresh.EnsureSuccessStatusCode();
        Rollouts.ModelOf(freshJob).Should().Be("alt", "a new job runs the new stable");

        var approval = (await alice.ApprovalsOfAsync(jobId)).Single();
        (await dave.ApproveAsync(approval.Str("id"))).Response.EnsureSuccessStatusCode();
        var done = await alice.EndedAsync(jobId);
        done.Str("status").Should().Be("completed", done.ToJsonString());
        done.Str("versions.routing.version").Should().Be("v2", "the job keeps the versions it was admitted with");
        done["routing"]!.AsArray().Select(r => r.Str("decision.chosen")).Should().OnlyContain(m => m == "sim", "its later model turns too");
        done["routing"]!.AsArray().Should().HaveCountGreaterThan(1);
    }
}
