using System.Net;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Orchestrator.Rollout;
using Orchestrator.Storage;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Rollout;

/// <summary>Shadow mode: the candidate runs on a copy of each mirrored request, its effects never applied, its answer compared and never returned.</summary>
public sealed class ShadowTests
{
    /// <summary>Priced models (so runs cost something) and a fast shadow poll.</summary>
    static Dictionary<string, string?> Settings(IDictionary<string, string?>? more = null)
    {
        var settings = Rollouts.TwoModels(new Dictionary<string, string?>
        {
            ["Orchestrator:Models:0:CostPer1kInputUsd"] = "1",
            ["Orchestrator:Models:0:CostPer1kOutputUsd"] = "1",
            ["Orchestrator:Models:1:CostPer1kInputUsd"] = "1",
            ["Orchestrator:Models:1:CostPer1kOutputUsd"] = "1",
            ["Orchestrator:Rollout:Shadow:PollInterval"] = "00:00:00.100",
        });
        foreach (var (k, v) in more ?? new Dictionary<string, string?>())
            settings[k] = v;
        return settings;
    }

    static string AppendScript(string file) => "Do the work.\n/call fs_append " + $$"""{"path":"{{file}}","content":"x\n"}""";

    static async Task<JsonObject> ActAsync(HttpClient client, string intent, string input)
    {
        var (response, job) = await client.ActAsync(new { intent, input });
        response.StatusCode.Should().Be(HttpStatusCode.OK, job.ToJsonString());
        return job;
    }

    /// <summary>The prompts rollout, polled until <paramref name="done"/> holds of its shadow view (20 s at most).</summary>
    static async Task<JsonObject> ShadowWhenAsync(HttpClient ops, Func<JsonObject, bool> done)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            var view = await Api.BodyOf(await ops.GetAsync("/v1/admin/rollouts/prompts"));
            if (view["shadow"] is JsonObject shadow && done(shadow))
                return view;
            if (DateTime.UtcNow > until)
                throw new TimeoutException($"The shadow runs did not get there: {view.ToJsonString()}");
            await Task.Delay(50);
        }
    }

    static int Int(JsonNode? node, string path) => int.Parse(node.Str(path), System.Globalization.CultureInfo.InvariantCulture);

    static decimal Usd(JsonNode? node, string path) => decimal.Parse(node.Str(path), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task Shadow_at_100_percent_applies_each_effect_once_answers_as_without_a_rollout_and_compares_the_candidate()
    {
        var file = "counter.txt";

        // The answer without any rollout, on a node of its own.
        string expected;
        using (var plain = new OrchestratorApp(Settings()))
        using (var user = plain.ClientFor())
            expected = (await ActAsync(user, "agent/run", AppendScript(file))).Str("output.text");

        using var app = new OrchestratorApp(Settings());
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        using var client = app.ClientFor();
        await ops.PostArtifactAsync("prompts", new { prompts = new Dictionary<string, object> { ["agent/run"] = new { agent = "You are the candidate agent. Be brief." } } });
        var put = await ops.PutRolloutAsync("prompts", new { stable = "v1", candidate = "v2", mode = "shadow", percent = 100 });
        put.Str("mode").Should().Be("shadow");

        var job = await ActAsync(client, "agent/run", AppendScript(file));
        job.Str("output.text").Should().Be(expected, "the caller gets the stable's answer, as without a rollout");
        job.Str("versions.prompts.version").Should().Be("v1");
        job.Str("versions.prompts.reason").Should().Be("stable");
        var other = await ActAsync(client, "agent/run", AppendScript("other.txt"));

        var view = await ShadowWhenAsync(ops, s => Int(s, "compared") >= 2);
        var shadow = view["shadow"]!;
        Int(shadow, "runs").Should().Be(2);
        Int(shadow, "failed").Should().Be(0);
        Int(shadow, "skipped").Should().Be(0);
        var workspace = Path.Combine(app.Folder, "workspaces", "acme");
        File.ReadAllText(Path.Combine(workspace, file)).Should().Be("x\n", "the counter is bumped once per request: the shadow answered fs/append from the stable's recording");
        File.ReadAllText(Path.Combine(workspace, "other.txt")).Should().Be("x\n");

        var run = shadow["recent"]!.AsArray().Single(r => r.Str("primaryJobId") == job.Str("jobId"))!;
        run.Str("status").Should().Be("completed");
        run.Str("output").Should().Be(expected, "the candidate got the same recorded effect result, so the simulated model answers alike");
        run["identical"]!.GetValue<bool>().Should().BeTrue();
        run["comparison"]!["sources"]!.AsArray().Should().ContainSingle(s => s.Str("kind") == "effect" && s.Str("source") == "recorded");
        run["comparison"]!["path"]!["same"]!.GetValue<bool>().Should().BeTrue();
        Usd(run, "costUsd").Should().BePositive("the candidate's model calls ran live");

        // The caller's job is untouched, and the tenant pays for its two jobs only.
        (await client.GetJobAsync(job.Str("jobId"))).Str("output.text").Should().Be(expected);
        var usage = await Api.BodyOf(await ops.GetAsync("/v1/tenants/acme/usage"));
        var jobsCost = Usd(job, "output.usage.costUsd") + Usd(other, "output.usage.costUsd");
        Usd(usage, "costUsd").Should().Be(jobsCost, "shadow cost goes to the shadow budget, never to the tenant");
        Usd(shadow, "costUsd").Should().BePositive();
    }

    [Fact]
    public async Task A_job_that_pins_the_kind_is_not_mirrored()
    {
        using var app = new OrchestratorApp(Settings());
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        using var client = app.ClientFor();
        await ops.PostArtifactAsync("prompts", new { prompts = new Dictionary<string, object> { ["text/respond"] = new { respond = "Candidate prompt." } } });
        await ops.PutRolloutAsync("prompts", new { stable = "v1", candidate = "v2", mode = "shadow", percent = 100 });
        var pinned = await client.RespondAsync("pinned", versions: new { prompts = "v1" });
        pinned.Str("versions.prompts.reason").Should().Be("pinned");
        // Mirrored in the order jobs completed: once the later job is compared, the pinned one was looked at and left.
        var mirrored = await client.RespondAsync("not pinned");
        var view = await ShadowWhenAsync(ops, s => Int(s, "compared") >= 1);
        view["shadow"]!["recent"]!.AsArray().Select(r => r.Str("primaryJobId")).Should().Equal(mirrored.Str("jobId"));
        Int(view["shadow"], "runs").Should().Be(1);
    }

    [Fact]
    public async Task Over_the_shadow_budget_runs_are_skipped_and_counted()
    {
        using var app = new OrchestratorApp(Settings(new Dictionary<string, string?> { ["Orchestrator:Rollout:Shadow:BudgetUsdPerDay"] = "0.000001" }));
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        using var client = app.ClientFor();
        await ops.PostArtifactAsync("prompts", new { prompts = new Dictionary<string, object> { ["text/respond"] = new { respond = "Candidate prompt." } } });
        await ops.PutRolloutAsync("prompts", new { stable = "v1", candidate = "v2", mode = "shadow", percent = 100 });

        await ActAsync(client, "text/respond", "first");
        var first = await ShadowWhenAsync(ops, s => Int(s, "compared") == 1);
        Usd(first["shadow"], "spentTodayUsd").Should().BeGreaterThan(0.000001m, "one run already spends more than the budget: " + first.ToJsonString());

        var second = await ActAsync(client, "text/respond", "second");
        second.Str("status").Should().Be("completed", "the caller is never refused for the shadow's budget");
        var view = await ShadowWhenAsync(ops, s => Int(s, "skipped") == 1);
        var shadow = view["shadow"]!;
        Int(shadow, "compared").Should().Be(1);
        Int(shadow, "skippedBy.shadow_budget_exhausted").Should().Be(1);
        shadow["recent"]!.AsArray().Single(r => r.Str("primaryJobId") == second.Str("jobId"))!.Str("reason").Should().Be("shadow_budget_exhausted");
    }

    [Fact]
    public async Task A_shadow_run_left_running_by_a_node_that_died_is_done_by_the_node_started_after_it()
    {
        var folder = Directory.CreateTempSubdirectory("orchestrator-shadow-").FullName;
        try
        {
            string jobId;
            // A node that mirrors jobs but does not run shadow runs (Run = false): the run waits in the store.
            using (var first = new OrchestratorApp(Settings(new Dictionary<string, string?> { ["Orchestrator:Rollout:Shadow:Run"] = "false" }), folder: folder))
            using (var ops = first.ClientFor(OrchestratorApp.OperatorKey))
            using (var client = first.ClientFor())
            {
                await ops.PostArtifactAsync("prompts", new { prompts = new Dictionary<string, object> { ["text/respond"] = new { respond = "Candidate prompt." } } });
                await ops.PutRolloutAsync("prompts", new { stable = "v1", candidate = "v2", mode = "shadow", percent = 100 });
                jobId = (await ActAsync(client, "text/respond", "hello")).Str("jobId");
                await ShadowWhenAsync(ops, s => Int(s, "pending") == 1);

                // As if a node had taken it and died mid-run: running, under a lease that has run out.
                await using var db = await first.Services.GetRequiredService<IDbContextFactory<OrchestratorDb>>().CreateDbContextAsync();
                (await db.Set<ShadowRun>().Where(s => s.PrimaryJobId == jobId).ExecuteUpdateAsync(s => s
                    .SetProperty(r => r.Status, ShadowStatus.Running)
                    .SetProperty(r => r.Owner, "node-that-died")
                    .SetProperty(r => r.Attempts, 1)
                    .SetProperty(r => r.LeaseUntil, DateTime.UtcNow.AddSeconds(-1)))).Should().Be(1);
            }

            using var second = new OrchestratorApp(Settings(), folder: folder);
            using var ops2 = second.ClientFor(OrchestratorApp.OperatorKey);
            var view = await ShadowWhenAsync(ops2, s => Int(s, "compared") == 1);
            var run = view["shadow"]!["recent"]![0]!;
            run.Str("primaryJobId").Should().Be(jobId);
            run.Str("status").Should().Be("completed");
            run.Str("attempts").Should().Be("2", "the expired lease was claimed again");
            run.Str("node").Should().NotBe("node-that-died");
            Int(view["shadow"], "runs").Should().Be(1, "one run per job, however many nodes mirrored it");
        }
        finally
        {
            OrchestratorApp.TryDelete(folder);
        }
    }

    [Theory]
    [InlineData("BudgetUsdPerDay", "-1")]
    [InlineData("LeaseDuration", "00:00:00")]
    public void Shadow_options_are_validated_at_start(string key, string value)
    {
        using var app = new OrchestratorApp(Settings(new Dictionary<string, string?> { [$"Orchestrator:Rollout:Shadow:{key}"] = value }));

        var start = () => app.CreateClient();

        start.Should().Throw<Microsoft.Extensions.Options.OptionsValidationException>().WithMessage($"*Orchestrator:Rollout:Shadow*{key}*");
    }
}
