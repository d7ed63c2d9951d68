using System.Net;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Orchestrator.Evaluation;
using Orchestrator.Rollout;
using Orchestrator.Storage;
using Orchestrator.Tests.Harness;
using Orchestrator.Workflow;

namespace Orchestrator.Tests.Rollout;

public sealed class RolloutTests
{
    const int Principals = 10_000;

    /// <summary>The principals (of tenant acme) that the node's chooser gives routing's candidate, out of 10,000.</summary>
    static HashSet<int> InCandidate(OrchestratorApp app)
    {
        var chooser = app.Services.GetRequiredService<IVersionChooser>();
        var chosen = new HashSet<int>();
        for (var i = 0; i < Principals; i++)
        {
            var choice = chooser.Choose("text/respond", "acme", $"user-{i}", null, null, out _, out _)!;
            if (choice.Versions.Routing.Reason == "rollout")
                chosen.Add(i);
        }
        return chosen;
    }

    [Fact]
    public async Task A_10_percent_canary_takes_about_10_percent_of_principals_the_same_ones_every_call_and_after_a_restart()
    {
        var folder = Directory.CreateTempSubdirectory("orchestrator-rollout-").FullName;
        try
        {
            HashSet<int> first;
            using (var app = new OrchestratorApp(Rollouts.TwoModels(), folder: folder))
            using (var ops = app.ClientFor(OrchestratorApp.OperatorKey))
            {
                await ops.PostArtifactAsync("routing", Rollouts.RoutingTo("alt"));
                var state = await ops.PutRolloutAsync("routing", new { stable = "v1", candidate = "v2", mode = "canary", percent = 10 });
                state.Str("candidate.version").Should().Be("v2");
                first = InCandidate(app);
                // 10% of 10,000 is 1,000; a binomial's standard deviation here is 30: +-150 is five of them.
                first.Count.Should().BeInRange(850, 1150);
                InCandidate(app).Should().BeEquivalentTo(first, "the same principal gets the same version on every call");

                // Through the API too: a principal in the candidate is routed by v2, one outside by v1.
                using var user = app.ClientFor();
                var job = await user.RespondAsync();
                var alice = job.Str("versions.routing.reason");
                (await user.RespondAsync()).Str("versions.routing.reason").Should().Be(alice, "sticky across calls");
                Rollouts.ModelOf(job).Should().Be(alice == "rollout" ? "alt" : "sim");
            }
            using var again = new OrchestratorApp(Rollouts.TwoModels(), folder: folder);
            using (again.ClientFor(OrchestratorApp.OperatorKey))
                InCandidate(again).Should().BeEquivalentTo(first, "the assignment is a hash of what does not change: it survives a restart");
        }
        finally
        {
            OrchestratorApp.TryDelete(folder);
        }
    }

    [Fact]
    public async Task Raising_the_percent_5_10_50_only_adds_principals_to_the_candidate()
    {
        using var app = new OrchestratorApp(Rollouts.TwoModels());
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        await ops.PostArtifactAsync("routing", Rollouts.RoutingTo("alt"));
        HashSet<int>? before = null;
        foreach (var percent in new[] { 5, 10, 50 })
        {
            await ops.PutRolloutAsync("routing", new { stable = "v1", candidate = "v2", mode = "canary", percent });
            var now = InCandidate(app);
            now.Count.Should().BeInRange(percent * 100 - 250, percent * 100 + 250);
            if (before is not null)
                now.Should().Contain(before, $"raising to {percent}% keeps everyone already in");
            before = now;
        }
    }

    [Fact]
    public async Task A_rollback_goes_one_step_back_at_once_and_a_second_is_a_no_op_all_in_the_audit_trail()
    {
        using var app = new OrchestratorApp(Rollouts.TwoModels());
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        using var user = app.ClientFor();
        await ops.PostArtifactAsync("routing", Rollouts.RoutingTo("alt"));
        await ops.PutRolloutAsync("routing", new { stable = "v2", reason = "alt is cheaper" });
        Rollouts.ModelOf(await user.RespondAsync()).Should().Be("alt");

        var back = await ops.PostAsync("/v1/admin/rollouts/routing/rollback", new { reason = "alt answers badly" });
        back.Str("changed").Should().Be("True");
        back.Str("stable.version").Should().Be("v1");
        Rollouts.ModelOf(await user.RespondAsync()).Should().Be("sim", "the next job runs on the previous stable");

        var again = await ops.PostAsync("/v1/admin/rollouts/routing/rollback", new { reason = "clicked twice" });
        again.Str("changed").Should().Be("False");
        again.Str("stable.version").Should().Be("v1", "a second rollback does not go further back");

        var rollout = await Api.BodyOf(await ops.GetAsync("/v1/admin/rollouts/routing"));
        rollout["history"]!.AsArray().Select(h => h.Str("action")).Should().Equal(["rollback", "update", "start"], "newest first; the no-op changed nothing");
        rollout["history"]![0].Str("by").Should().Be("olga");
        rollout["history"]![0].Str("reason").Should().Be("alt answers badly");

        var audit = await Api.BodyOf(await ops.GetAsync("/v1/audit"));
        var actions = audit["items"]!.AsArray().Select(i => i!.AsObject()).Where(i => i.Str("action").StartsWith("rollout.") || i.Str("action").StartsWith("artifact.")).ToList();
        actions.Select(i => i.Str("action")).Should().Equal(["rollout.rollback", "rollout.rollback", "rollout.update", "artifact.create"]);
        actions[1].Str("reason").Should().Be("alt answers badly");
        actions[1].Str("principal").Should().Be("olga");
        actions[0].Str("details.changed").Should().Be("False");
    }

    [Fact]
    public async Task A_canary_rollback_takes_the_candidate_traffic_away_and_keeps_the_stable()
    {
        using var app = new OrchestratorApp(Rollouts.TwoModels());
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        await ops.PostArtifactAsync("routing", Rollouts.RoutingTo("alt"));
        await ops.PutRolloutAsync("routing", new { stable = "v1", candidate = "v2", mode = "canary", percent = 100 });
        InCandidate(app).Should().HaveCount(Principals);
        var back = await ops.PostAsync("/v1/admin/rollouts/routing/rollback", new { reason = "stop" });
        back.Str("stable.version").Should().Be("v1");
        back["candidate"].Should().BeNull();
        InCandidate(app).Should().BeEmpty();
        // An aborted candidate can be tried again: it is still a version, and a PUT starts it anew.
        await ops.PutRolloutAsync("routing", new { stable = "v1", candidate = "v2", mode = "canary", percent = 100 });
        InCandidate(app).Should().HaveCount(Principals);
    }

    [Fact]
    public async Task Promotion_needs_a_passing_evaluation_of_the_candidate_content_hash_unless_forced()
    {
        using var app = new OrchestratorApp(Rollouts.TwoModels());
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        var v2 = await ops.PostArtifactAsync("routing", Rollouts.RoutingTo("alt"));
        await ops.PutRolloutAsync("routing", new { stable = "v1", candidate = "v2", mode = "canary", percent = 10 });

        var refused = await ops.PostAsync("/v1/admin/rollouts/routing/promote", new { }, HttpStatusCode.Conflict);
        refused.Str("code").Should().Be("conflict");
        refused.Str("detail").Should().Contain(v2.Str("contentHash"));
        await Record(app, v2.Str("contentHash"), "fail");
        await ops.PostAsync("/v1/admin/rollouts/routing/promote", new { }, HttpStatusCode.Conflict);

        await Record(app, v2.Str("contentHash"), "pass");
        var promoted = await ops.PostAsync("/v1/admin/rollouts/routing/promote", new { });
        promoted.Str("stable.version").Should().Be("v2");
        promoted["candidate"].Should().BeNull();
        promoted.Str("previousStable").Should().Be("v1");

        // Forced: no evaluation needed, and the audit entry says so.
        await ops.PostArtifactAsync("routing", Rollouts.RoutingTo("sim"));
        await ops.PutRolloutAsync("routing", new { stable = "v2", candidate = "v3", mode = "ab" });
        (await ops.PostAsync("/v1/admin/rollouts/routing/promote", new { force = true, reason = "incident" })).Str("stable.version").Should().Be("v3");
        var audit = await Api.BodyOf(await ops.GetAsync("/v1/audit"));
        var promotes = audit["items"]!.AsArray().Where(i => i.Str("action") == "rollout.promote").ToList();
        promotes.Select(i => i.Str("decision")).Should().Equal(["allowed", "allowed", "denied", "denied"]);
        promotes[0].Str("details.extra.force").Should().Be("True");
        promotes[0].Str("reason").Should().Be("incident");
    }

    /// <summary>An evaluation with this verdict for a candidate content hash, as the evaluation feature records one.</summary>
    static async Task Record(OrchestratorApp app, string candidateHash, string verdict)
    {
        await using var db = await app.Services.GetRequiredService<IDbContextFactory<OrchestratorDb>>().CreateDbContextAsync();
        db.Add(new EvaluationRun
        {
            Id = $"eval-{Guid.NewGuid():N}"[..30], Tenant = "ops", Principal = "olga", Operator = true, Status = "completed", Suite = "s",
            SuiteHash = new string('a', 64), BaselineHash = new string('b', 64), CandidateHash = candidateHash, Plan = "{}",
            Verdict = verdict, CreatedAt = DateTime.UtcNow,
        });
        await db.SaveChangesAsync();
    }

    [Fact]
    public async Task Zero_traffic_is_inconclusive_and_never_rolls_back_or_promotes()
    {
        using var app = new OrchestratorApp(Rollouts.TwoModels(new Dictionary<string, string?> { ["Orchestrator:Rollout:MinSample"] = "5" }));
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        await ops.PostArtifactAsync("routing", Rollouts.RoutingTo("alt"));
        await ops.PutRolloutAsync("routing", new { stable = "v1", candidate = "v2", mode = "canary", percent = 10 });
        await app.Services.GetRequiredService<RolloutWatch>().CheckAsync(CancellationToken.None);
        var rollout = await Api.BodyOf(await ops.GetAsync("/v1/admin/rollouts/routing"));
        rollout.Str("analysis.verdict").Should().Be("inconclusive");
        rollout.Str("analysis.candidate.jobs").Should().Be("0");
        rollout.Str("stable.version").Should().Be("v1", "no data never promotes");
        rollout.Str("candidate.version").Should().Be("v2", "and never rolls back");
    }

    [Fact]
    public async Task A_candidate_failing_20_percent_of_its_jobs_is_rolled_back_on_its_own()
    {
        using var app = new OrchestratorApp(Rollouts.TwoModels(new Dictionary<string, string?>
        {
            ["Orchestrator:Models:2:Id"] = "flaky",
            ["Orchestrator:Models:2:Provider"] = "simulated",
            ["Orchestrator:Models:2:FailureRate"] = "0.2",
            ["Orchestrator:Gateway:MaxRetries"] = "0",
            ["Orchestrator:Jobs:Retry:MaxAttempts"] = "1",
            ["Orchestrator:Gateway:BreakerMinimumThroughput"] = "10000",
            ["Orchestrator:Rollout:MinSample"] = "40",
            // Sticky per session: every request below is its own subject, so both arms fill from one key.
            ["Orchestrator:Rollout:StickyBy"] = "session",
            // The test runs the check itself, once the jobs are done.
            ["Orchestrator:Rollout:AutoRollback"] = "false",
        }));
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        await ops.PostArtifactAsync("routing", Rollouts.RoutingTo("flaky"));
        await ops.PutRolloutAsync("routing", new { stable = "v1", candidate = "v2", mode = "ab", percent = 50 });
        var watch = app.Services.GetRequiredService<RolloutWatch>();

        using var user = app.ClientFor();
        var ids = new List<string>();
        for (var i = 0; i < 200; i++)
            ids.Add((await user.ActAsync(new { intent = "text/respond", input = $"q{i}", mode = "async", session = $"s-{i}" })).Body.Str("jobId"));
        var arms = new Dictionary<string, (int Jobs, int Failed)>();
        foreach (var id in ids)
        {
            var end = await user.WaitForEndAsync(id);
            var arm = end.Str("versions.routing.reason");
            var (jobs, failed) = arms.GetValueOrDefault(arm);
            arms[arm] = (jobs + 1, failed + (end.Str("status") == "failed" ? 1 : 0));
        }
        arms["stable"].Failed.Should().Be(0);
        arms["rollout"].Failed.Should().BeGreaterThan(0, "the candidate's model fails one call in five");

        var before = await Api.BodyOf(await ops.GetAsync("/v1/admin/rollouts/routing"));
        before.Str("analysis.verdict").Should().Be("failing", before.ToJsonString());
        before.Str("analysis.candidate.jobs").Should().Be(arms["rollout"].Jobs.ToString(System.Globalization.CultureInfo.InvariantCulture));

        await watch.CheckAsync(CancellationToken.None);
        var after = await Api.BodyOf(await ops.GetAsync("/v1/admin/rollouts/routing"));
        after["candidate"].Should().BeNull("the failing candidate lost its traffic");
        after.Str("stable.version").Should().Be("v1");
        after["history"]![0].Str("action").Should().Be("auto-rollback");
        after["history"]![0].Str("reason").Should().Contain("error rate");
        var audit = await Api.BodyOf(await ops.GetAsync("/v1/audit"));
        audit["items"]![0].Str("action").Should().Be("rollout.rollback");
        audit["items"]![0].Str("principal").Should().Be("rollout");
        (await user.RespondAsync(versions: null)).Str("versions.routing.reason").Should().Be("stable");
    }

    [Fact]
    public async Task A_healthy_candidate_is_not_rolled_back_and_an_unknown_mode_is_refused()
    {
        using var app = new OrchestratorApp(Rollouts.TwoModels(new Dictionary<string, string?>
        {
            ["Orchestrator:Rollout:MinSample"] = "10",
            ["Orchestrator:Rollout:StickyBy"] = "session",
            ["Orchestrator:Rollout:AutoRollback"] = "false",
        }));
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        await ops.PostArtifactAsync("routing", Rollouts.RoutingTo("alt"));
        var unknown = await ops.PutRolloutAsync("routing", new { stable = "v1", candidate = "v2", mode = "mirror", percent = 100 }, HttpStatusCode.BadRequest);
        unknown["errors"]!.AsObject().Select(e => e.Key).Should().Equal("mode");
        await ops.PutRolloutAsync("routing", new { stable = "v1", candidate = "v2", mode = "ab" });
        using var user = app.ClientFor();
        var ids = new List<string>();
        for (var i = 0; i < 80; i++)
            ids.Add((await user.ActAsync(new { intent = "text/respond", input = $"q{i}", mode = "async", session = $"s-{i}" })).Body.Str("jobId"));
        foreach (var id in ids)
            (await user.WaitForEndAsync(id)).Str("status").Should().Be("completed");
        await app.Services.GetRequiredService<RolloutWatch>().CheckAsync(CancellationToken.None);
        var rollout = await Api.BodyOf(await ops.GetAsync("/v1/admin/rollouts/routing"));
        rollout.Str("analysis.verdict").Should().Be("healthy", rollout.ToJsonString());
        rollout.Str("candidate.version").Should().Be("v2");
    }

    /// <summary>Found by a black-box review: a long reason was a 500 on PostgreSQL (and stored whole on SQLite).</summary>
    [Fact]
    public async Task Bad_reasons_limits_and_artifact_members_are_field_errors_and_a_candidate_without_a_mode_is_a_canary()
    {
        using var app = new OrchestratorApp(Rollouts.TwoModels());
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        var extra = await ops.PostArtifactAsync("routing", new { routing = new Dictionary<string, object>(), extra = 1 }, HttpStatusCode.BadRequest);
        extra["errors"]!.AsObject().Select(e => e.Key).Should().Equal("extra");
        await ops.PostArtifactAsync("routing", Rollouts.RoutingTo("alt"));

        var longReason = new string('r', 10_000);
        (await ops.PutRolloutAsync("routing", new { candidate = "v2", percent = 1, reason = longReason }, HttpStatusCode.BadRequest))["errors"]!
            .AsObject().Select(e => e.Key).Should().Equal("reason");
        (await ops.PostAsync("/v1/admin/rollouts/routing/promote", new { force = true, reason = longReason }, HttpStatusCode.BadRequest))["errors"]!
            .AsObject().Select(e => e.Key).Should().Equal("reason");
        (await ops.PostAsync("/v1/admin/rollouts/routing/rollback", new { reason = longReason }, HttpStatusCode.BadRequest))["errors"]!
            .AsObject().Select(e => e.Key).Should().Equal("reason");
        (await ops.GetAsync("/v1/admin/rollouts/routing?limit=-1")).StatusCode.Should().Be(HttpStatusCode.BadRequest);

        var canary = await ops.PutRolloutAsync("routing", new { candidate = "v2", percent = 10.55 });
        canary.Str("mode").Should().Be("canary");
        canary.Str("candidate.version").Should().Be("v2");
        var history = await Api.BodyOf(await ops.GetAsync("/v1/admin/rollouts/routing?limit=1"));
        history["history"]!.AsArray().Should().ContainSingle().Which!.Str("action").Should().Be("update");
    }
}
