using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Approvals;

/// <summary>Approval rules a tenant's document carries (<c>approvals.rules</c>): validated on PUT, applied to that tenant only, after the configured rules.</summary>
public sealed class TenantApprovalRuleTests : IClassFixture<TenantApprovalRuleTests.App>
{
    public sealed class App : IDisposable
    {
        public OrchestratorApp Host { get; } = new(ApprovalHelpers.Settings(
            ("Orchestrator:Approvals:Rules:0:Name", "configured-writes"),
            ("Orchestrator:Approvals:Rules:0:Capability", "fs/write"),
            ("Orchestrator:Approvals:Rules:0:PathGlob", "configured/**"),
            ("Orchestrator:Approvals:Rules:0:Approvers:Roles:0", "approver")));

        public void Dispose() => Host.Dispose();
    }

    readonly OrchestratorApp _app;

    public TenantApprovalRuleTests(App app) => _app = app.Host;

    static string Write(string path) => $$"""fs_write {"path":"{{path}}","content":"x"}""";

    async Task<JsonObject> PutAcmeRules(params object[] rules)
    {
        using var ops = _app.ClientFor(OrchestratorApp.OperatorKey);
        var response = await ops.PutAsJsonAsync("/v1/admin/tenants/acme", new { approvals = new { rules } });
        var body = await Api.BodyOf(response);
        response.StatusCode.Should().Be(HttpStatusCode.OK, body.ToJsonString());
        return body;
    }

    [Fact]
    public async Task A_tenants_rule_gates_its_own_calls_and_no_other_tenants()
    {
        var stored = await PutAcmeRules(new
        {
            name = "acme-reports", capability = "fs/write", pathGlob = "reports/**",
            approvers = new { principals = new[] { "dave" } }, timeoutMs = 600_000,
        });
        stored["approvals"]!["rules"]![0]!.Str("pathGlob").Should().Be("reports/**", "the document answers the rules it stored");

        using var alice = _app.ClientFor();
        var path = $"reports/{Guid.NewGuid():N}.txt";
        var jobId = await alice.ActAsync(ApprovalHelpers.Script(Write(path)));
        await alice.AwaitingAsync(jobId);
        var approval = (await alice.ApprovalsOfAsync(jobId)).Single();
        approval.Str("rule").Should().Be("tenant/acme-reports", "a tenant's rule is named apart from configured ones");

        using var bob = _app.ClientFor(OrchestratorApp.GlobexKey);
        var other = await bob.ActAsync(ApprovalHelpers.Script(Write(path)));
        var ended = await bob.EndedAsync(other);
        ended.Str("status").Should().Be("completed", "acme's rules do not reach globex's calls: " + ended.ToJsonString());

        using var dave = _app.ClientFor(ApprovalHelpers.AcmeApprover);
        var (decided, body) = await dave.ApproveAsync(approval.Str("id"));
        decided.StatusCode.Should().Be(HttpStatusCode.OK, body.ToJsonString());
        (await alice.EndedAsync(jobId)).Str("status").Should().Be("completed");
        File.Exists(Path.Combine(_app.Folder, "workspaces", "acme", path)).Should().BeTrue();
    }

    [Fact]
    public async Task A_configured_rule_fires_before_a_tenants_rule_so_a_tenant_cannot_loosen_it()
    {
        await PutAcmeRules(new
        {
            name = "self-serve", capability = "fs/write", pathGlob = "**", allowSelfApproval = true,
            approvers = new { principals = new[] { "alice" } },
        });
        using var alice = _app.ClientFor();
        var jobId = await alice.ActAsync(ApprovalHelpers.Script(Write($"configured/{Guid.NewGuid():N}.txt")));
        await alice.AwaitingAsync(jobId);
        var approval = (await alice.ApprovalsOfAsync(jobId)).Single();
        approval.Str("rule").Should().Be("configured-writes");

        var (refused, body) = await alice.ApproveAsync(approval.Str("id"));
        refused.StatusCode.Should().Be(HttpStatusCode.Forbidden, "the configured rule names approvers, not the requester: " + body.ToJsonString());
    }

    [Fact]
    public async Task Changing_the_tenants_rule_after_an_approval_unbinds_it_and_the_effect_does_not_run()
    {
        var rule = new { name = "bound", capability = "fs/write", pathGlob = "bound/**", approvers = new { roles = new[] { "approver" } } };
        await PutAcmeRules(rule);
        using var alice = _app.ClientFor();
        var path = $"bound/{Guid.NewGuid():N}.txt";
        var jobId = await alice.ActAsync(ApprovalHelpers.Script(Write(path)));
        await alice.AwaitingAsync(jobId);
        var approval = (await alice.ApprovalsOfAsync(jobId)).Single();

        await PutAcmeRules(rule with { approvers = new { roles = new[] { "approver", "operator" } } });
        using var dave = _app.ClientFor(ApprovalHelpers.AcmeApprover);
        (await dave.ApproveAsync(approval.Str("id"))).Response.StatusCode.Should().Be(HttpStatusCode.OK);

        var job = await alice.EndedAsync(jobId);
        job.ToJsonString().Should().Contain("approval_invalid", "the approval was asked under another version of the rule");
        File.Exists(Path.Combine(_app.Folder, "workspaces", "acme", path)).Should().BeFalse();
    }

    [Fact]
    public async Task A_rule_that_could_not_be_evaluated_is_refused_with_field_errors()
    {
        using var ops = _app.ClientFor(OrchestratorApp.OperatorKey);
        var response = await ops.PutAsJsonAsync("/v1/admin/tenants/initech", new
        {
            approvals = new
            {
                rules = new object[]
                {
                    new { capability = "fs/teleport" },
                    new { capability = "http/fetch", pathGlob = "a/**", timeoutMs = 0 },
                    new { risk = "non-idempotent", approvers = new { roles = new[] { "janitor" } },
                          escalation = new[] { new { afterMs = 5_000, approvers = new { roles = new[] { "operator" } } } }, timeoutMs = 1_000 },
                },
            },
        });
        var problem = await Api.BodyOf(response);
        response.StatusCode.Should().Be(HttpStatusCode.BadRequest, problem.ToJsonString());
        problem.Str("code").Should().Be("validation_failed");
        var errors = problem["errors"]!.AsObject().Select(e => e.Key).ToList();
        errors.Should().Contain(["approvals.rules[0].capability", "approvals.rules[1].pathGlob", "approvals.rules[1].timeoutMs",
            "approvals.rules[2].approvers", "approvals.rules[2].escalation[0].afterMs"]);
        (await ops.GetAsync("/v1/admin/tenants/initech")).Should().Match<HttpResponseMessage>(r => r.StatusCode == HttpStatusCode.OK);
        var kept = await Api.BodyOf(await ops.GetAsync("/v1/admin/tenants/initech"));
        kept.Str("version").Should().Be("0", "a refused document is not stored");
    }
}
