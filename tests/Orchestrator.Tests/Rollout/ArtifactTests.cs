using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Orchestrator.Tests.Harness;
using Orchestrator.Workflow;

namespace Orchestrator.Tests.Rollout;

public sealed class ArtifactTests
{
    [Fact]
    public async Task The_shipped_files_are_v1_of_every_kind_once_across_restarts()
    {
        var folder = Directory.CreateTempSubdirectory("orchestrator-rollout-").FullName;
        try
        {
            await ShippedOnce(folder);
        }
        finally
        {
            OrchestratorApp.TryDelete(folder);
        }
    }

    static async Task ShippedOnce(string folder)
    {
        using (var first = new OrchestratorApp(Rollouts.TwoModels(), folder: folder))
        using (var ops = first.ClientFor(OrchestratorApp.OperatorKey))
        {
            foreach (var kind in new[] { "prompts", "policies", "routing" })
            {
                var list = await Api.BodyOf(await ops.GetAsync($"/v1/admin/artifacts/{kind}"));
                list["versions"]!.AsArray().Select(v => v.Str("version")).Should().Equal(["v1"], kind);
                list["versions"]![0].Str("role").Should().Be("stable");
            }
            var policies = await Api.BodyOf(await ops.GetAsync("/v1/admin/artifacts/policies/v1"));
            policies["content"]!["policies"]!.AsArray().Select(p => p.Str("intent")).Should().Contain("text/respond");
            var prompts = await Api.BodyOf(await ops.GetAsync("/v1/admin/artifacts/prompts/v1"));
            prompts.Str("content.prompts.text/respond.respond").Should().StartWith("You are a helpful assistant");
            (await ops.GetAsync("/v1/admin/artifacts/policies/v7")).StatusCode.Should().Be(HttpStatusCode.NotFound);
            (await ops.GetAsync("/v1/admin/artifacts/recipes")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        }
        using var again = new OrchestratorApp(Rollouts.TwoModels(), folder: folder);
        using var ops2 = again.ClientFor(OrchestratorApp.OperatorKey);
        var after = await Api.BodyOf(await ops2.GetAsync("/v1/admin/artifacts/policies"));
        after["versions"]!.AsArray().Select(v => v.Str("version")).Should().Equal(["v1"], "a restart imports nothing new");
    }

    [Fact]
    public async Task Users_cannot_read_or_write_artifacts()
    {
        using var app = new OrchestratorApp(Rollouts.TwoModels());
        using var user = app.ClientFor();
        (await user.GetAsync("/v1/admin/artifacts/policies")).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await user.PutAsync("/v1/admin/rollouts/policies", System.Net.Http.Json.JsonContent.Create(new { stable = "v1" }))).StatusCode.Should().Be(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task New_content_is_the_next_version_and_the_same_content_answers_it()
    {
        using var app = new OrchestratorApp(Rollouts.TwoModels());
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        var created = await ops.PostArtifactAsync("routing", Rollouts.RoutingTo("alt"));
        created.Str("version").Should().Be("v2");
        created.Str("contentHash").Should().HaveLength(64);
        var again = await ops.PostArtifactAsync("routing", Rollouts.RoutingTo("alt"), HttpStatusCode.OK);
        again.Str("version").Should().Be("v2");
        again.Str("contentHash").Should().Be(created.Str("contentHash"));
        var list = await Api.BodyOf(await ops.GetAsync("/v1/admin/artifacts/routing"));
        list["versions"]!.AsArray().Select(v => v.Str("version")).Should().Equal(["v1", "v2"]);
    }

    [Fact]
    public async Task Content_naming_an_unknown_effect_model_intent_or_node_is_refused_with_field_errors()
    {
        using var app = new OrchestratorApp(Rollouts.TwoModels());
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        var policy = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "policies", "text-respond.json")))!.AsObject();
        policy["capabilities"] = new JsonArray("fs/teleport");
        var badEffect = await ops.PostArtifactAsync("policies", new { policies = new[] { policy } }, HttpStatusCode.BadRequest);
        badEffect.Str("code").Should().Be("validation_failed");
        badEffect["errors"]!.AsObject().Select(e => e.Key).Should().Contain("policies[0]");
        badEffect["errors"]!["policies[0]"]![0]!.GetValue<string>().Should().Contain("fs/teleport");

        var badModel = await ops.PostArtifactAsync("routing", Rollouts.RoutingTo("gpt-imaginary"), HttpStatusCode.BadRequest);
        badModel["errors"]!.AsObject().Select(e => e.Key).Should().Equal("routing.text/respond.models");

        var badIntent = await ops.PostArtifactAsync("prompts", new { prompts = new Dictionary<string, object> { ["text/nope"] = new { respond = "x" } } }, HttpStatusCode.BadRequest);
        badIntent["errors"]!.AsObject().Select(e => e.Key).Should().Equal("prompts.text/nope");

        var badNode = await ops.PostArtifactAsync("prompts", new { prompts = new Dictionary<string, object> { ["text/respond"] = new { nowhere = "x" } } }, HttpStatusCode.BadRequest);
        badNode["errors"]!.AsObject().Select(e => e.Key).Should().Equal("prompts.text/respond.nowhere");

        var notAnArtifact = await ops.PostArtifactAsync("policies", new { something = 1 }, HttpStatusCode.BadRequest);
        notAnArtifact.Str("code").Should().Be("validation_failed");
        (await Api.BodyOf(await ops.GetAsync("/v1/admin/artifacts/policies")))["versions"]!.AsArray().Should().HaveCount(1, "nothing refused was stored");
    }

    [Fact]
    public async Task A_job_records_its_versions_and_a_pin_runs_the_pinned_version()
    {
        using var app = new OrchestratorApp(Rollouts.TwoModels());
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        using var user = app.ClientFor();
        var v2 = await ops.PostArtifactAsync("routing", Rollouts.RoutingTo("alt"));

        var plain = await user.RespondAsync();
        plain.Str("versions.routing.version").Should().Be("v1");
        plain.Str("versions.routing.reason").Should().Be("stable");
        plain.Str("versions.policy.version").Should().Be("v1");
        plain.Str("versions.prompts.version").Should().Be("v1");
        Rollouts.ModelOf(plain).Should().Be("sim");

        var pinned = await user.RespondAsync(versions: new { routing = "v2" });
        pinned.Str("versions.routing.version").Should().Be("v2");
        pinned.Str("versions.routing.reason").Should().Be("pinned");
        pinned.Str("versions.routing.hash").Should().Be(v2.Str("contentHash"));
        Rollouts.ModelOf(pinned).Should().Be("alt", "routing v2 allows only alt");
        (await user.GetJobAsync(pinned.Str("jobId"))).Str("versions.routing.version").Should().Be("v2", "the stored job says so too");

        var (unknown, problem) = await user.ActAsync(new { intent = "text/respond", input = "x", versions = new { policy = "v9" } });
        unknown.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        problem.Str("code").Should().Be("validation_failed");
        problem["errors"]!.AsObject().Select(e => e.Key).Should().Equal("versions.policy");

        var replay = await Api.BodyOf(await user.GetAsync($"/v1/replays/{pinned.Str("traceId")}"));
        replay.Str("assigned.routing.version").Should().Be("v2", "the replay package names the versions too");
    }

    [Fact]
    public async Task A_prompts_version_changes_what_the_model_is_told()
    {
        using var app = new OrchestratorApp(Rollouts.TwoModels());
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        using var user = app.ClientFor();
        await ops.PostArtifactAsync("prompts", new { prompts = new Dictionary<string, object> { ["text/respond"] = new { respond = "Answer like a pirate." } } });
        var pinned = await user.RespondAsync("/context tell me", new { prompts = "v2" });
        pinned.Str("output.text").Should().Contain("Answer like a pirate.");
        var stable = await user.RespondAsync("/context tell me");
        stable.Str("output.text").Should().NotContain("pirate").And.Contain("helpful assistant");
        pinned.Str("versions.prompts.version").Should().Be("v2");
        pinned.Str("versions.prompts.reason").Should().Be("pinned");
        stable.Str("versions.prompts.version").Should().Be("v1");
    }

    [Fact]
    public async Task A_new_stable_is_in_force_without_a_restart()
    {
        using var app = new OrchestratorApp(Rollouts.TwoModels());
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        using var user = app.ClientFor();
        await ops.PostArtifactAsync("routing", Rollouts.RoutingTo("alt"));
        Rollouts.ModelOf(await user.RespondAsync()).Should().Be("sim");
        await ops.PutRolloutAsync("routing", new { stable = "v2" });
        var job = await user.RespondAsync();
        Rollouts.ModelOf(job).Should().Be("alt");
        job.Str("versions.routing.reason").Should().Be("stable");
        app.Services.GetRequiredService<IntentCatalog>().Find("text/respond")!.Routing.Models.Should().Equal("alt");
    }
}
