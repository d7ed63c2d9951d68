using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Approvals;

/// <summary>Several calls of one model turn decided one by one, parked jobs holding no worker, and the signed webhook.</summary>
public sealed class ApprovalTurnTests
{
    const string Secret = "a-webhook-secret-of-some-length";

    static (string, string?)[] WriteRule =>
    [
        ("Orchestrator:Approvals:Rules:0:Capability", "fs/write"),
        ("Orchestrator:Approvals:Rules:0:PathGlob", "gated/**"),
        ("Orchestrator:Approvals:Rules:0:Approvers:Roles:0", "approver"),
    ];

    [Fact]
    public async Task Of_three_calls_in_one_turn_only_the_approved_one_runs_and_the_model_is_told_the_others_were_refused()
    {
        await using var model = await FakeModelServer.StartAsync();
        model.Then(FakeModelServer.Behavior.CallTools("I will write three files.",
            ("fs_write", new { path = "gated/one.txt", content = "1" }),
            ("fs_write", new { path = "gated/two.txt", content = "2" }),
            ("fs_write", new { path = "gated/three.txt", content = "3" })));
        model.Default = FakeModelServer.Behavior.Reply("Wrote what I was allowed to.");
        using var app = new OrchestratorApp(ApprovalHelpers.Settings([
            .. WriteRule,
            ("Orchestrator:Gateway:MaxRetries", "0"),
            ("Orchestrator:Models:0:Id", "fake"),
            ("Orchestrator:Models:0:Provider", "openai"),
            ("Orchestrator:Models:0:Endpoint", model.BaseUrl),
            ("Orchestrator:Models:0:Model", "fake-model"),
        ]));
        using var alice = app.ClientFor();
        using var dave = app.ClientFor(ApprovalHelpers.AcmeApprover);
        var workspace = Path.Combine(app.Folder, "workspaces", "acme");

        var jobId = await alice.ActAsync("write three files");
        await alice.AwaitingAsync(jobId);
        var approvals = await alice.ApprovalsOfAsync(jobId);
        approvals.Should().HaveCount(3, "every gated call of the turn asks before any runs");
        approvals.Should().OnlyContain(a => a.Str("reason") == "I will write three files.", "the model's words beside the calls are its reason");

        (await dave.ApproveAsync(approvals[1].Str("id"))).Response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await alice.GetJobAsync(jobId)).Str("status").Should().Be("awaiting_approval", "two calls are still undecided");
        (await dave.RejectAsync(approvals[0].Str("id"), "not one")).Response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await dave.RejectAsync(approvals[2].Str("id"), "not three")).Response.StatusCode.Should().Be(HttpStatusCode.OK);

        var job = await alice.EndedAsync(jobId);
        job.Str("status").Should().Be("completed", job.ToJsonString());
        Directory.GetFiles(Path.Combine(workspace, "gated")).Select(Path.GetFileName).Should().Equal(["two.txt"], "only the approved call ran");
        var second = model.Requests.Last();
        var tools = second["messages"]!.AsArray().Where(m => m!.Str("role") == "tool").Select(m => m!.Str("content")).ToList();
        tools.Should().HaveCount(3);
        tools.Count(t => t.Contains("approval_rejected")).Should().Be(2, "the rejected calls reach the model as refused");
        tools.Should().ContainSingle(t => t.Contains("not one"));
    }

    [Fact]
    public async Task Jobs_waiting_for_approval_hold_no_worker()
    {
        const int Waiting = 100;
        using var app = new OrchestratorApp(ApprovalHelpers.Settings([
            .. WriteRule,
            ("Orchestrator:Queue:Workers", "2"),
            ("Orchestrator:Approvals:SweepInterval", "00:00:01"),
        ]));
        using var alice = app.ClientFor();
        using var olga = app.ClientFor(OrchestratorApp.OperatorKey);

        var waiting = new List<string>();
        for (var i = 0; i < Waiting; i++)
            waiting.Add(await alice.ActAsync(ApprovalHelpers.Script($$"""fs_write {"path":"gated/w{{i}}.txt","content":"x"}""")));
        foreach (var jobId in waiting)
            await alice.AwaitingAsync(jobId);

        // Two workers, a hundred jobs waiting: other work still runs.
        for (var i = 0; i < 3; i++)
        {
            var (response, done) = await alice.ActAsync(new { intent = "agent/run", input = ApprovalHelpers.Script($$"""fs_write {"path":"free/f{{i}}.txt","content":"x"}""") });
            response.StatusCode.Should().Be(HttpStatusCode.OK, done.ToJsonString());
        }
        var nodes = await Api.BodyOf(await olga.GetAsync("/v1/diag/nodes"));
        nodes["items"]!.AsArray().Sum(n => n!["running"]!.GetValue<int>()).Should().BeLessThanOrEqualTo(2);

        var pending = await Api.BodyOf(await olga.GetAsync("/v1/approvals?status=pending&tenant=acme&capability=fs/write&limit=200"));
        pending["items"]!.AsArray().Should().HaveCount(Waiting);
        foreach (var approval in pending["items"]!.AsArray())
            (await olga.ApproveAsync(approval!.Str("id"))).Response.StatusCode.Should().Be(HttpStatusCode.OK);
        foreach (var jobId in waiting)
            (await alice.EndedAsync(jobId, seconds: 120)).Str("status").Should().Be("completed");
        Directory.GetFiles(Path.Combine(app.Folder, "workspaces", "acme", "gated")).Should().HaveCount(Waiting);
    }

    [Fact]
    public async Task The_webhook_is_signed_retried_and_each_delivery_verifies()
    {
        await using var receiver = await FakeWebhookReceiver.StartAsync(failFirst: 1);
        using var app = new OrchestratorApp(ApprovalHelpers.Settings([
            .. WriteRule,
            ("Orchestrator:Approvals:Webhook:Url", receiver.Url),
            ("Orchestrator:Approvals:Webhook:Secret", Secret),
            ("Orchestrator:Approvals:Webhook:BaseDelay", "00:00:00.100"),
        ]));
        using var alice = app.ClientFor();
        using var dave = app.ClientFor(ApprovalHelpers.AcmeApprover);
        var jobId = await alice.ActAsync(ApprovalHelpers.Script("""fs_write {"path":"gated/hooked.txt","content":"x"}"""));
        await alice.AwaitingAsync(jobId);
        var id = (await alice.ApprovalsOfAsync(jobId)).Single().Str("id");
        (await dave.ApproveAsync(id)).Response.StatusCode.Should().Be(HttpStatusCode.OK);
        await alice.EndedAsync(jobId);

        var until = DateTime.UtcNow.AddSeconds(30);
        while (receiver.Deliveries.Count(d => d.Answered) < 2 && DateTime.UtcNow < until)
            await Task.Delay(50);

        var deliveries = receiver.Deliveries.ToList();
        deliveries.Where(d => d.Answered).Select(d => d.Event).Should().BeEquivalentTo(["approval.requested", "approval.decided"]);
        deliveries.Should().Contain(d => !d.Answered, "the first try failed and was tried again");
        foreach (var delivery in deliveries)
        {
            var parts = delivery.Signature.Split(',').Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
            var expected = Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(Secret),
                Encoding.UTF8.GetBytes($"{parts["t"]}.{parts["id"]}.{delivery.Body}")));
            parts["v1"].Should().Be(expected, "a receiver verifies the signature with the shared secret");
            JsonNode.Parse(delivery.Body)!.Str("id").Should().Be(parts["id"], "the single-use id is in the body and the signature");
            JsonNode.Parse(delivery.Body)!.Str("approval.id").Should().Be(id);
        }
        var retried = deliveries.Where(d => d.Event == deliveries[0].Event).Select(d => d.Signature.Split(',')[1]).Distinct();
        retried.Should().ContainSingle("a retry keeps its delivery id, so a receiver drops repeats");
        var view = await Api.BodyOf(await alice.GetAsync($"/v1/approvals/{id}"));
        view.Str("webhook.delivered").Should().Be("2");
        view["webhook"]!["lastError"].Should().BeNull("the retry succeeded");
    }
}
