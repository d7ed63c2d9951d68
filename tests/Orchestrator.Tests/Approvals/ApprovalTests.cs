using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Approvals;

/// <summary>Approval gates on one service: approve, reject, edits, who may decide, decisions twice, authority checked again as the effect runs.</summary>
public sealed class ApprovalTests : IClassFixture<ApprovalTests.App>
{
    public sealed class App : IDisposable
    {
        public OrchestratorApp Host { get; } = new(ApprovalHelpers.Settings(
            ("Orchestrator:Approvals:Rules:0:Name", "gated-writes"),
            ("Orchestrator:Approvals:Rules:0:Capability", "fs/write"),
            ("Orchestrator:Approvals:Rules:0:PathGlob", "gated/**"),
            ("Orchestrator:Approvals:Rules:0:Approvers:Roles:0", "approver"),
            ("Orchestrator:Approvals:Rules:1:Name", "self-named"),
            ("Orchestrator:Approvals:Rules:1:Capability", "fs/write"),
            ("Orchestrator:Approvals:Rules:1:PathGlob", "self/*.txt"),
            ("Orchestrator:Approvals:Rules:1:Approvers:Principals:0", "alice"),
            ("Orchestrator:Approvals:Rules:2:Name", "two-people"),
            ("Orchestrator:Approvals:Rules:2:Capability", "fs/write"),
            ("Orchestrator:Approvals:Rules:2:PathGlob", "two/**"),
            ("Orchestrator:Approvals:Rules:2:Required", "2"),
            ("Orchestrator:Approvals:Rules:2:Approvers:Roles:0", "approver")));

        public void Dispose() => Host.Dispose();
    }

    readonly OrchestratorApp _app;

    public ApprovalTests(App app) => _app = app.Host;

    string FileOf(string path) => Path.Combine(_app.Folder, "workspaces", "acme", path);

    static string Write(string path, string content) => $$"""fs_write {"path":"{{path}}","content":"{{content}}"}""";

    async Task<(string JobId, JsonObject Approval)> WaitingWriteAsync(string path, string content = "hello")
    {
        using var alice = _app.ClientFor();
        var jobId = await alice.ActAsync(ApprovalHelpers.Script(Write(path, content)));
        await alice.AwaitingAsync(jobId);
        var approvals = await alice.ApprovalsOfAsync(jobId);
        approvals.Should().ContainSingle("one gated call asks one approval");
        return (jobId, approvals[0]);
    }

    [Fact]
    public async Task A_gated_write_waits_for_an_approver_and_then_runs_once()
    {
        var path = $"gated/{Guid.NewGuid():N}.txt";
        var (jobId, approval) = await WaitingWriteAsync(path);
        using var alice = _app.ClientFor();
        using var dave = _app.ClientFor(ApprovalHelpers.AcmeApprover);

        File.Exists(FileOf(path)).Should().BeFalse("nothing runs before a person approves");
        approval.Str("status").Should().Be("pending");
        approval.Str("capability").Should().Be("fs/write");
        approval.Str("requestedBy").Should().Be("alice");
        approval.Str("tenant").Should().Be("acme");
        approval.Str("rule").Should().Be("gated-writes");
        approval["arguments"]!.ToJsonString().Should().Be($$"""{"content":"hello","path":"{{path}}"}""", "arguments are canonical: keys sorted");
        approval.Str("deadlineAt").Should().NotBeNullOrEmpty();
        var graph = await Api.BodyOf(await alice.GetAsync($"/v1/jobs/{jobId}/graph"));
        var gate = graph["nodes"]!.AsArray().Single(n => n.Str("kind") == "approval");
        gate.Str("status").Should().Be("running", "the approval node waits");
        gate.Str("name").Should().Be("fs/write");

        var (decided, body) = await dave.ApproveAsync(approval.Str("id"));
        decided.StatusCode.Should().Be(HttpStatusCode.OK, body.ToJsonString());
        body.Str("status").Should().Be("approved");

        var job = await alice.EndedAsync(jobId);
        job.Str("status").Should().Be("completed", job.ToJsonString());
        job.Str("attempts").Should().Be("1", "going on after a decision is not another attempt");
        File.ReadAllText(FileOf(path)).Should().Be("hello");
        graph = await Api.BodyOf(await alice.GetAsync($"/v1/jobs/{jobId}/graph"));
        var nodes = graph["nodes"]!.AsArray();
        nodes.Single(n => n.Str("kind") == "approval").Str("status").Should().Be("succeeded");
        var effect = nodes.Single(n => n.Str("kind") == "effect");
        effect.Str("attempts").Should().Be("1", "the effect ran exactly once");
        graph["edges"]!.AsArray().Select(e => (e.Str("from"), e.Str("to"))).Should().Contain((gate.Str("id"), effect.Str("id")), "the approval comes before its effect");

        using var olga = _app.ClientFor(OrchestratorApp.OperatorKey);
        var requests = await olga.AuditAsync("approval.request");
        requests.Should().Contain(e => e!.Str("resource") == $"approvals/{approval.Str("id")}");
        var approves = await olga.AuditAsync("approval.approve");
        approves.Should().Contain(e => e!.Str("resource") == $"approvals/{approval.Str("id")}" && e!.Str("principal") == "dave");
    }

    [Fact]
    public async Task A_sync_act_that_reaches_an_approval_answers_202_with_the_job()
    {
        using var alice = _app.ClientFor();
        var (response, job) = await alice.ActAsync(new { intent = "agent/run", input = ApprovalHelpers.Script(Write($"gated/{Guid.NewGuid():N}.txt", "x")) });

        response.StatusCode.Should().Be(HttpStatusCode.Accepted, job.ToJsonString());
        job.Str("status").Should().Be("awaiting_approval");
        (await alice.GetAsync($"/v1/jobs/{job.Str("jobId")}/result?waitMs=100")).StatusCode.Should().Be(HttpStatusCode.Accepted);
    }

    [Fact]
    public async Task A_rejection_fails_the_job_approval_rejected_saying_who_decided()
    {
        var path = $"gated/{Guid.NewGuid():N}.txt";
        var (jobId, approval) = await WaitingWriteAsync(path);
        using var alice = _app.ClientFor();
        using var dave = _app.ClientFor(ApprovalHelpers.AcmeApprover);

        var (decided, body) = await dave.RejectAsync(approval.Str("id"), "wrong folder");
        decided.StatusCode.Should().Be(HttpStatusCode.OK, body.ToJsonString());

        var job = await alice.EndedAsync(jobId);
        job.Str("status").Should().Be("failed");
        job.Str("error.code").Should().Be("approval_rejected");
        job.Str("error.message").Should().Contain("rejected by dave").And.Contain("wrong folder").And.Contain("fs/write");
        File.Exists(FileOf(path)).Should().BeFalse();
        (await alice.GetAsync($"/v1/approvals/{approval.Str("id")}")).Should().Match<HttpResponseMessage>(r => r.StatusCode == HttpStatusCode.OK);
        var view = await Api.BodyOf(await alice.GetAsync($"/v1/approvals/{approval.Str("id")}"));
        view.Str("status").Should().Be("rejected");
        view["decisions"]!.AsArray().Should().ContainSingle(d => d!.Str("principal") == "dave" && d!.Str("reason") == "wrong folder");
    }

    [Fact]
    public async Task The_jobs_events_say_it_waits_for_approval()
    {
        var (jobId, _) = await WaitingWriteAsync($"gated/{Guid.NewGuid():N}.txt");
        using var alice = _app.ClientFor();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/jobs/{jobId}/events");
        using var response = await alice.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(timeout.Token));

        var events = new List<string>();
        while (await reader.ReadLineAsync(timeout.Token) is { } line && !events.Contains("approval.requested"))
            if (line.StartsWith("event: ", StringComparison.Ordinal))
                events.Add(line["event: ".Length..]);

        events.Should().Contain(["job.status", "approval.requested"]);
    }

    [Fact]
    public async Task The_jobs_events_read_after_the_decision_still_tell_the_wait()
    {
        var (jobId, approval) = await WaitingWriteAsync($"gated/{Guid.NewGuid():N}.txt");
        using var dave = _app.ClientFor(ApprovalHelpers.AcmeApprover);
        using var alice = _app.ClientFor();
        (await dave.RejectAsync(approval.Str("id"), "not now")).Response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await alice.EndedAsync(jobId)).Str("status").Should().Be("failed");

        // The job has ended, so the stream is its whole history and then closes.
        var text = await alice.GetStringAsync($"/v1/jobs/{jobId}/events");
        var types = text.Split('\n').Where(l => l.StartsWith("event: ", StringComparison.Ordinal)).Select(l => l["event: ".Length..]).ToList();
        types.Should().Contain("approval.requested", "a client that reconnects after the decision still learns a person was asked");
        text.Should().Contain("\"awaiting_approval\"");
        types.IndexOf("approval.requested").Should().BeLessThan(types.LastIndexOf("job.status"), "the wait comes before the end");
    }

    [Fact]
    public async Task A_rejection_needs_a_reason()
    {
        var (_, approval) = await WaitingWriteAsync($"gated/{Guid.NewGuid():N}.txt");
        using var dave = _app.ClientFor(ApprovalHelpers.AcmeApprover);

        var (response, problem) = await dave.RejectAsync(approval.Str("id"), "");

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        problem.Str("code").Should().Be("validation_failed");
    }

    [Fact]
    public async Task Approved_with_edits_the_edited_arguments_run_and_the_audit_has_both()
    {
        var path = $"gated/{Guid.NewGuid():N}.txt";
        var edited = $"gated/{Guid.NewGuid():N}-edited.txt";
        var (jobId, approval) = await WaitingWriteAsync(path, "asked");
        using var alice = _app.ClientFor();
        using var dave = _app.ClientFor(ApprovalHelpers.AcmeApprover);

        var (decided, body) = await dave.ApproveAsync(approval.Str("id"), new { reason = "safer name", arguments = new { path = edited, content = "as approved" } });
        decided.StatusCode.Should().Be(HttpStatusCode.OK, body.ToJsonString());

        var job = await alice.EndedAsync(jobId);
        job.Str("status").Should().Be("completed", job.ToJsonString());
        File.ReadAllText(FileOf(edited)).Should().Be("as approved", "the edited arguments are what ran");
        File.Exists(FileOf(path)).Should().BeFalse("the arguments as asked did not run");
        using var olga = _app.ClientFor(OrchestratorApp.OperatorKey);
        var edit = (await olga.AuditAsync("approval.edit")).Single(e => e!.Str("resource") == $"approvals/{approval.Str("id")}")!;
        var details = edit["details"]!;
        details.Str("asked").Should().Contain(path).And.Contain("asked");
        details.Str("approved").Should().Contain(edited).And.Contain("as approved");
    }

    [Fact]
    public async Task An_approver_of_another_tenant_finds_nothing()
    {
        var (_, approval) = await WaitingWriteAsync($"gated/{Guid.NewGuid():N}.txt");
        using var gina = _app.ClientFor(ApprovalHelpers.GlobexApprover);

        (await gina.GetAsync($"/v1/approvals/{approval.Str("id")}")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        var (response, problem) = await gina.ApproveAsync(approval.Str("id"));
        response.StatusCode.Should().Be(HttpStatusCode.NotFound, problem.ToJsonString());
        var list = await Api.BodyOf(await gina.GetAsync("/v1/approvals"));
        list["items"]!.AsArray().Should().NotContain(i => i!.Str("id") == approval.Str("id"));
    }

    [Fact]
    public async Task The_requester_may_not_approve_its_own_call_nor_may_a_user_the_rule_does_not_name()
    {
        var path = $"self/{Guid.NewGuid():N}.txt";
        var (_, approval) = await WaitingWriteAsync(path);
        using var alice = _app.ClientFor();
        using var carol = _app.ClientFor(OrchestratorApp.AcmeOtherKey);

        var (self, problem) = await alice.ApproveAsync(approval.Str("id"));
        self.StatusCode.Should().Be(HttpStatusCode.Forbidden, "the rule names alice, but alice asked: " + problem.ToJsonString());
        problem.Str("detail").Should().Contain("self-approval");
        var (other, _) = await carol.ApproveAsync(approval.Str("id"));
        other.StatusCode.Should().Be(HttpStatusCode.Forbidden, "carol is neither an operator nor named by the rule");
        (await Api.BodyOf(await alice.GetAsync($"/v1/approvals/{approval.Str("id")}"))).Str("status").Should().Be("pending");
        File.Exists(FileOf(path)).Should().BeFalse();

        // Both refusals are on record, with who tried (found by a black-box review: they were not).
        using var olga = _app.ClientFor(OrchestratorApp.OperatorKey);
        var audit = await Api.BodyOf(await olga.GetAsync("/v1/audit?tenant=acme&action=access.denied&limit=200"));
        var denied = audit["items"]!.AsArray().Where(i => i!.Str("resource").Contains(approval.Str("id"))).ToList();
        denied.Select(i => i!.Str("principal")).Should().BeEquivalentTo(["alice", "carol"]);
        denied.Should().OnlyContain(i => i!.Str("decision") == "denied", audit.ToJsonString());
    }

    [Fact]
    public async Task A_decision_arriving_twice_is_a_conflict()
    {
        var (jobId, approval) = await WaitingWriteAsync($"gated/{Guid.NewGuid():N}.txt");
        using var dave = _app.ClientFor(ApprovalHelpers.AcmeApprover);
        using var olga = _app.ClientFor(OrchestratorApp.OperatorKey);

        (await dave.ApproveAsync(approval.Str("id"))).Response.StatusCode.Should().Be(HttpStatusCode.OK);
        var (again, problem) = await dave.ApproveAsync(approval.Str("id"));
        var (late, _) = await olga.RejectAsync(approval.Str("id"), "too late");

        again.StatusCode.Should().Be(HttpStatusCode.Conflict, problem.ToJsonString());
        problem.Str("code").Should().Be("conflict");
        late.StatusCode.Should().Be(HttpStatusCode.Conflict);
        (await _app.ClientFor().EndedAsync(jobId)).Str("status").Should().Be("completed");
    }

    [Fact]
    public async Task An_approver_whose_key_is_revoked_after_approving_blocks_the_effect()
    {
        using var olga = _app.ClientFor(OrchestratorApp.OperatorKey);
        var made = await olga.PostAsync("/v1/admin/keys", JsonContent.Create(new { tenant = "acme", principal = "rita", roles = new[] { "approver" } }));
        var key = await Api.BodyOf(made);
        made.StatusCode.Should().Be(HttpStatusCode.Created, key.ToJsonString());
        using var rita = _app.ClientFor(key.Str("key"));
        using var dave = _app.ClientFor(ApprovalHelpers.AcmeApprover);
        using var alice = _app.ClientFor();
        var path = $"two/{Guid.NewGuid():N}.txt";
        var (jobId, approval) = await WaitingWriteAsync(path);

        (await rita.ApproveAsync(approval.Str("id"))).Response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await Api.BodyOf(await alice.GetAsync($"/v1/approvals/{approval.Str("id")}"))).Str("status").Should().Be("pending", "the rule needs two");
        (await olga.DeleteAsync($"/v1/admin/keys/{key.Str("id")}")).IsSuccessStatusCode.Should().BeTrue();
        (await dave.ApproveAsync(approval.Str("id"))).Body.Str("status").Should().Be("approved");

        var job = await alice.EndedAsync(jobId);
        job.Str("status").Should().Be("failed", job.ToJsonString());
        job.Str("error.code").Should().Be("approval_revoked");
        job.Str("error.message").Should().Contain("rita");
        File.Exists(FileOf(path)).Should().BeFalse("authority is checked again when the effect runs");
        (await olga.AuditAsync("effect.denied")).Should().Contain(e => e!["details"]!.ToJsonString().Contains("approval_revoked"));
    }

    [Fact]
    public async Task A_canceled_job_cancels_its_approval()
    {
        var (jobId, approval) = await WaitingWriteAsync($"gated/{Guid.NewGuid():N}.txt");
        using var alice = _app.ClientFor();

        (await alice.PostAsync($"/v1/jobs/{jobId}/cancel", null)).StatusCode.Should().Be(HttpStatusCode.Accepted);

        (await alice.EndedAsync(jobId)).Str("status").Should().Be("canceled");
        var until = DateTime.UtcNow.AddSeconds(20);
        while ((await Api.BodyOf(await alice.GetAsync($"/v1/approvals/{approval.Str("id")}"))).Str("status") == "pending" && DateTime.UtcNow < until)
            await Task.Delay(50);
        (await Api.BodyOf(await alice.GetAsync($"/v1/approvals/{approval.Str("id")}"))).Str("status").Should().Be("canceled");
        var graph = await Api.BodyOf(await alice.GetAsync($"/v1/jobs/{jobId}/graph"));
        graph["nodes"]!.AsArray().Single(n => n.Str("kind") == "approval").Str("status").Should().Be("failed");
    }

    [Fact]
    public async Task Ungated_calls_do_not_wait()
    {
        using var alice = _app.ClientFor();
        var path = $"open/{Guid.NewGuid():N}.txt";

        var (response, job) = await alice.ActAsync(new { intent = "agent/run", input = ApprovalHelpers.Script(Write(path, "free")) });

        response.StatusCode.Should().Be(HttpStatusCode.OK, job.ToJsonString());
        File.ReadAllText(FileOf(path)).Should().Be("free");
        var graph = await Api.BodyOf(await alice.GetAsync($"/v1/jobs/{job.Str("jobId")}/graph"));
        graph["nodes"]!.AsArray().Should().NotContain(n => n!.Str("kind") == "approval");
    }
    [Fact]
    public async Task A_rerun_uses_the_recorded_decision_and_never_asks_again()
    {
        var edited = $"gated/{Guid.NewGuid():N}-replayed.txt";
        var (jobId, approval) = await WaitingWriteAsync($"gated/{Guid.NewGuid():N}.txt", "asked");
        using var alice = _app.ClientFor();
        using var dave = _app.ClientFor(ApprovalHelpers.AcmeApprover);
        (await dave.ApproveAsync(approval.Str("id"), new { arguments = new { path = edited, content = "once" } })).Response.StatusCode.Should().Be(HttpStatusCode.OK);
        var job = await alice.EndedAsync(jobId);
        job.Str("status").Should().Be("completed");

        var package = await Api.BodyOf(await alice.GetAsync($"/v1/replays/{job.Str("traceId")}"));
        package.ToJsonString().Should().Contain("\"kind\":\"approval\"").And.Contain("\"verdict\":\"approved\"", "the package holds the decision");
        var response = await alice.PostAsync($"/v1/replays/{job.Str("traceId")}/rerun", null);
        var report = await Api.BodyOf(response);

        response.StatusCode.Should().Be(HttpStatusCode.OK, report.ToJsonString());
        report["identical"]!.GetValue<bool>().Should().BeTrue(report.ToJsonString());
        report["nodes"]!.AsArray().Should().Contain(n => n!.Str("kind") == "approval" && n!.Str("source") == "recorded");
        (await alice.ApprovalsOfAsync(jobId)).Should().ContainSingle("a rerun asks nobody");
        File.ReadAllText(FileOf(edited)).Should().Be("once", "a rerun applies no effect");
    }

    [Fact]
    public async Task A_rule_that_cannot_be_evaluated_on_a_call_fails_closed_to_operators()
    {
        using var alice = _app.ClientFor();
        using var dave = _app.ClientFor(ApprovalHelpers.AcmeApprover);
        using var olga = _app.ClientFor(OrchestratorApp.OperatorKey);
        var jobId = await alice.ActAsync(ApprovalHelpers.Script("""fs_write {"content":"where?"}"""));
        await alice.AwaitingAsync(jobId);
        var approval = (await alice.ApprovalsOfAsync(jobId)).Single();

        approval.Str("approvers.failClosed").Should().Contain("PathGlob");
        approval["approvers"]!["roles"]!.AsArray().Should().BeEmpty("only operators decide a call the rule could not read");
        (await dave.ApproveAsync(approval.Str("id"))).Response.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await olga.RejectAsync(approval.Str("id"), "no path")).Response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await alice.EndedAsync(jobId)).Str("error.code").Should().Be("approval_rejected");
    }

    [Theory]
    [InlineData("Capability", "fs/delete", "Rules:0:Capability")]
    [InlineData("Risk", "dangerous", "Rules:0:Risk")]
    [InlineData("Timeout", "00:00:00", "Rules:0:Timeout")]
    [InlineData("Approvers:Roles:0", "boss", "Rules:0:Approvers")]
    public void A_bad_rule_stops_start_up_naming_its_key(string key, string value, string named)
    {
        using var app = new OrchestratorApp(new Dictionary<string, string?>
        {
            ["Orchestrator:Approvals:Rules:0:Capability"] = "fs/write",
            [$"Orchestrator:Approvals:Rules:0:{key}"] = value,
        });

        var start = () => app.CreateClient();

        start.Should().Throw<Microsoft.Extensions.Options.OptionsValidationException>().WithMessage($"*Orchestrator:Approvals:{named}*");
    }
}
