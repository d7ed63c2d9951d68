using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Tenancy;

/// <summary>Tenants' limits, budgets, overrides, managed keys and usage, through HTTP, on the store the run is set to.</summary>
public sealed class GovernanceTests
{
    static async Task<HttpResponseMessage> PutTenant(HttpClient ops, string tenant, object body, string? ifMatch = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, $"/v1/admin/tenants/{tenant}") { Content = JsonContent.Create(body) };
        if (ifMatch is not null)
            request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        return await ops.SendAsync(request);
    }

    static async Task<JsonObject> Problem(HttpResponseMessage response, HttpStatusCode status)
    {
        var body = await Api.BodyOf(response);
        response.StatusCode.Should().Be(status, body.ToJsonString());
        return body;
    }

    static async Task<JsonObject> Until(Func<Task<HttpResponseMessage>> get, Func<JsonObject, bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var body = await Api.BodyOf(await get());
            if (condition(body) || DateTime.UtcNow > deadline)
                return body;
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task A_tenant_is_versioned_with_etag_and_a_stale_if_match_is_412()
    {
        using var app = new OrchestratorApp();
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);

        var fresh = await ops.GetAsync("/v1/admin/tenants/acme");
        fresh.StatusCode.Should().Be(HttpStatusCode.OK);
        fresh.Headers.ETag!.Tag.Should().Be("\"0\"", "a tenant without a row has the defaults, version 0");

        var put = await PutTenant(ops, "acme", new { limits = new { requestsPerMinute = 600, maxPriority = "normal" } }, "\"0\"");
        var saved = await Problem(put, HttpStatusCode.OK);
        saved.Str("version").Should().Be("1");
        saved.Str("limits.requestsPerMinute").Should().Be("600");
        put.Headers.ETag!.Tag.Should().Be("\"1\"");

        var second = await PutTenant(ops, "acme", new { limits = new { requestsPerMinute = 60 } }, "\"1\"");
        (await Problem(second, HttpStatusCode.OK)).Str("version").Should().Be("2");
        var stale = await Problem(await PutTenant(ops, "acme", new { limits = new { requestsPerMinute = 1 } }, "\"1\""), HttpStatusCode.PreconditionFailed);
        stale.Str("code").Should().Be("precondition_failed");

        var got = await Api.BodyOf(await ops.GetAsync("/v1/admin/tenants/acme"));
        got.Str("limits.requestsPerMinute").Should().Be("60", "the stale PUT changed nothing");
        var list = await Api.BodyOf(await ops.GetAsync("/v1/admin/tenants"));
        list["items"]!.AsArray().Select(i => i.Str("tenant")).Should().Equal("acme");

        var audit = await Api.BodyOf(await ops.GetAsync("/v1/audit?action=tenant.update"));
        audit["items"]!.AsArray().Select(i => i.Str("decision")).Should().Equal("denied", "allowed", "allowed");
    }

    [Fact]
    public async Task Bad_limits_are_field_errors_and_users_may_not_touch_tenants()
    {
        using var app = new OrchestratorApp();
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        var bad = await Problem(await PutTenant(ops, "acme", new
        {
            limits = new { requestsPerMinute = -1, maxConcurrentJobs = 0, maxPriority = "urgent" },
            overrides = new { routing = new { strategy = "fastest", models = new[] { "nope" } }, deadlineMs = new { min = 5000, max = 10 } },
        }), HttpStatusCode.BadRequest);
        bad.Str("code").Should().Be("validation_failed");
        bad["errors"]!.AsObject().Select(e => e.Key).Should().BeEquivalentTo(
            "limits.requestsPerMinute", "limits.maxConcurrentJobs", "limits.maxPriority", "overrides.routing.strategy",
            "overrides.routing.models", "overrides.deadlineMs");
        (await Problem(await PutTenant(ops, "acme", new { tenant = "globex" }), HttpStatusCode.BadRequest))["errors"]!["tenant"].Should().NotBeNull();
        (await Problem(await PutTenant(ops, "acme", new { }, "yesterday"), HttpStatusCode.BadRequest))["errors"]!["If-Match"].Should().NotBeNull();

        using var user = app.ClientFor();
        (await user.GetAsync("/v1/admin/tenants/acme")).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await PutTenant(user, "acme", new { })).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await user.PostAsJsonAsync("/v1/admin/keys", new { tenant = "acme", principal = "x" })).StatusCode.Should().Be(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task A_rate_limit_admits_its_count_per_minute_and_names_the_scope_that_bound()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 2, 10, 0, 5, TimeSpan.Zero));
        using var app = new OrchestratorApp(time: time);
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        (await PutTenant(ops, "acme", new { limits = new { requestsPerMinute = 5 }, principals = new Dictionary<string, object> { ["alice"] = new { requestsPerMinute = 2 } } }))
            .EnsureSuccessStatusCode();
        using var alice = app.ClientFor();
        using var carol = app.ClientFor(OrchestratorApp.AcmeOtherKey);
        var act = new { input = "hi", mode = "async" };

        for (var i = 0; i < 2; i++)
            (await alice.ActAsync(act)).Response.StatusCode.Should().Be(HttpStatusCode.Accepted);
        var (refused, problem) = await alice.ActAsync(act);
        refused.StatusCode.Should().Be(HttpStatusCode.TooManyRequests, problem.ToJsonString());
        problem.Str("code").Should().Be("rate_limited");
        problem.Str("scope").Should().Be("principal");
        problem.Str("limit").Should().Be("requestsPerMinute");
        DateTime.Parse(problem.Str("resetAt")).ToUniversalTime().Should().Be(new DateTime(2026, 12, 2, 10, 1, 0, DateTimeKind.Utc));
        refused.Headers.RetryAfter!.Delta.Should().Be(TimeSpan.FromSeconds(55));

        for (var i = 0; i < 3; i++)
            (await carol.ActAsync(act)).Response.StatusCode.Should().Be(HttpStatusCode.Accepted);
        var (tenantRefused, tenantProblem) = await carol.ActAsync(act);
        tenantRefused.StatusCode.Should().Be(HttpStatusCode.TooManyRequests);
        tenantProblem.Str("scope").Should().Be("tenant", "carol has no limit of her own; the tenant's 5 are used");

        using var globex = app.ClientFor(OrchestratorApp.GlobexKey);
        (await globex.ActAsync(act)).Response.StatusCode.Should().Be(HttpStatusCode.Accepted, "another tenant has its own counters");

        time.Advance(TimeSpan.FromMinutes(1));
        (await alice.ActAsync(act)).Response.StatusCode.Should().Be(HttpStatusCode.Accepted, "a new minute is a new window");

        var jobs = await Api.BodyOf(await ops.GetAsync("/v1/jobs?tenant=acme&limit=100"));
        jobs["items"]!.AsArray().Should().HaveCount(6, "a refusal never creates a job");
        var audit = await Api.BodyOf(await ops.GetAsync("/v1/audit?action=act.refused"));
        audit["items"]!.AsArray().Select(i => i.Str("details.scope")).Should().Equal("tenant", "principal");
    }

    static Dictionary<string, string?> SlowModel(int latencyMs) => new()
    {
        ["Orchestrator:Models:0:Id"] = "sim",
        ["Orchestrator:Models:0:Provider"] = "simulated",
        ["Orchestrator:Models:0:LatencyMs"] = latencyMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Orchestrator:Models:0:CostPer1kInputUsd"] = "0.01",
        ["Orchestrator:Models:0:CostPer1kOutputUsd"] = "0.02",
    };

    /// <summary>What one act of <paramref name="input"/> reserves: read from a probe in another tenant, whose budget is far away.</summary>
    static async Task<(long Tokens, decimal Cost)> HoldOf(OrchestratorApp app, HttpClient ops, string input)
    {
        (await PutTenant(ops, "globex", new { limits = new { dailyTokenBudget = 1_000_000_000 } })).EnsureSuccessStatusCode();
        using var globex = app.ClientFor(OrchestratorApp.GlobexKey);
        var (response, probe) = await globex.ActAsync(new { input, mode = "async" });
        response.StatusCode.Should().Be(HttpStatusCode.Accepted, probe.ToJsonString());
        return (long.Parse(probe.Str("budget.reservedTokens")), decimal.Parse(probe.Str("budget.reservedCostUsd"), System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Fifty_concurrent_acts_against_a_budget_for_ten_admit_exactly_ten_and_spend_stays_under_it()
    {
        // A job that ends settles its hold and frees what it did not spend, which rightly admits more: the model is slow
        // enough that no job of the burst ends before the burst is answered, so exactly ten fit.
        using var app = new OrchestratorApp(SlowModel(3_000));
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        const string input = "What is the capital of France?";
        var (hold, _) = await HoldOf(app, ops, input);
        var budget = hold * 10 + hold / 2;
        (await PutTenant(ops, "acme", new { limits = new { dailyTokenBudget = budget } })).EnsureSuccessStatusCode();

        using var alice = app.ClientFor();
        var burst = System.Diagnostics.Stopwatch.StartNew();
        var answers = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => alice.ActAsync(new { input, mode = "async" })));
        burst.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(3), "the burst must be answered before its first job can end");
        answers.Count(a => a.Response.StatusCode == HttpStatusCode.Accepted).Should().Be(10);
        var refused = answers.Where(a => a.Response.StatusCode != HttpStatusCode.Accepted).ToList();
        refused.Should().HaveCount(40).And.OnlyContain(a => a.Response.StatusCode == HttpStatusCode.TooManyRequests);
        refused.Select(a => a.Body.Str("code")).Should().OnlyContain(c => c == "quota_exceeded");
        refused[0].Body.Str("limit").Should().Be("dailyTokenBudget");
        refused[0].Response.Headers.RetryAfter.Should().NotBeNull();

        foreach (var (_, job) in answers.Where(a => a.Response.StatusCode == HttpStatusCode.Accepted))
            (await alice.WaitForEndAsync(job.Str("jobId"))).Str("status").Should().Be("completed");
        var usage = await Api.BodyOf(await alice.GetAsync("/v1/tenants/acme/usage"));
        var spent = long.Parse(usage.Str("tokens.input")) + long.Parse(usage.Str("tokens.output"));
        spent.Should().BeGreaterThan(0).And.BeLessThanOrEqualTo(budget);
        usage.Str("completed").Should().Be("10");
        usage.Str("rejected.quota_exceeded").Should().Be("40");
        usage.Str("requests").Should().Be("50");
        usage.Str("reservedCostUsd").Should().Be("0", "every job settled");

        // Spend equal to the budget refuses the next request, however small.
        (await PutTenant(ops, "acme", new { limits = new { dailyTokenBudget = spent } })).EnsureSuccessStatusCode();
        var (atCap, capProblem) = await alice.ActAsync(new { input = "x", mode = "async" });
        atCap.StatusCode.Should().Be(HttpStatusCode.TooManyRequests, capProblem.ToJsonString());
    }

    [Fact]
    public async Task A_canceled_job_releases_its_hold_and_a_cost_budget_is_held_in_dollars()
    {
        using var app = new OrchestratorApp(SlowModel(60_000));
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        const string input = "Summarise the plan.";
        var (_, cost) = await HoldOf(app, ops, input);
        cost.Should().BeGreaterThan(0);
        (await PutTenant(ops, "acme", new { limits = new { dailyCostBudgetUsd = cost * 1.5m } })).EnsureSuccessStatusCode();

        using var alice = app.ClientFor();
        var (first, job) = await alice.ActAsync(new { input, mode = "async" });
        first.StatusCode.Should().Be(HttpStatusCode.Accepted, job.ToJsonString());
        var (second, problem) = await alice.ActAsync(new { input, mode = "async" });
        second.StatusCode.Should().Be(HttpStatusCode.TooManyRequests);
        problem.Str("code").Should().Be("budget_exceeded");
        problem.Str("scope").Should().Be("tenant");
        problem.Str("limit").Should().Be("dailyCostBudgetUsd");
        var usage = await Api.BodyOf(await alice.GetAsync("/v1/tenants/acme/usage"));
        // About the probe's: under a cost budget the request names the priced models it may reach, a few bytes more.
        decimal.Parse(usage.Str("reservedCostUsd"), System.Globalization.CultureInfo.InvariantCulture).Should().BeApproximately(cost, cost / 10);

        (await alice.PostAsync($"/v1/jobs/{job.Str("jobId")}/cancel", null)).IsSuccessStatusCode.Should().BeTrue();
        (await alice.WaitForEndAsync(job.Str("jobId"))).Str("status").Should().Be("canceled");
        var (third, after) = await alice.ActAsync(new { input, mode = "async" });
        third.StatusCode.Should().Be(HttpStatusCode.Accepted, "the canceled job released its hold: " + after.ToJsonString());
    }

    [Fact]
    public async Task An_idempotent_replay_is_not_charged_twice()
    {
        using var app = new OrchestratorApp(SlowModel(0));
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        var (hold, _) = await HoldOf(app, ops, "same");
        (await PutTenant(ops, "acme", new { limits = new { dailyTokenBudget = hold + hold / 2 } })).EnsureSuccessStatusCode();
        using var alice = app.ClientFor();
        var answers = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => alice.ActAsync(new { input = "same", mode = "async" }, idempotencyKey: "once")));
        answers.Should().OnlyContain(a => a.Response.StatusCode == HttpStatusCode.Accepted, "the same key is the same job, held once");
        answers.Select(a => a.Body.Str("jobId")).Distinct().Should().HaveCount(1);
    }

    [Fact]
    public async Task A_price_that_cannot_be_known_is_refused_under_a_cost_budget_and_overrides_clamp_the_request()
    {
        var settings = SlowModel(0);
        settings["Orchestrator:Models:1:Id"] = "unpriced";
        settings["Orchestrator:Models:1:Provider"] = "openai";
        settings["Orchestrator:Models:1:Endpoint"] = "http://127.0.0.1:9/v1";
        settings["Orchestrator:Models:1:ApiKey"] = "none";
        using var app = new OrchestratorApp(settings);
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        (await PutTenant(ops, "acme", new
        {
            limits = new { dailyCostBudgetUsd = 100.0, maxPriority = "low" },
            overrides = new { deadlineMs = new { min = 1000, max = 5000 } },
        })).EnsureSuccessStatusCode();
        using var alice = app.ClientFor();

        var (refused, problem) = await alice.ActAsync(new { input = "x", mode = "async", routing = new { models = new[] { "unpriced" } } });
        refused.StatusCode.Should().Be(HttpStatusCode.TooManyRequests, problem.ToJsonString());
        problem.Str("code").Should().Be("budget_exceeded");

        // Named beside a priced model, the unpriced one is still never reached.
        var (mixed, mixedJob) = await alice.ActAsync(new { input = "x", routing = new { models = new[] { "unpriced", "sim" }, strategy = "quality-first" } });
        mixed.StatusCode.Should().Be(HttpStatusCode.OK, mixedJob.ToJsonString());
        mixedJob["routing"]!.AsArray().SelectMany(r => r!["decision"]!["attempts"]!.AsArray()).Select(a => a.Str("modelId"))
            .Should().OnlyContain(m => m == "sim", "a cost budget narrows even the models a request names to priced ones");

        var (admitted, job) = await alice.ActAsync(new { input = "x", mode = "async", priority = "high", deadlineMs = 60_000 });
        admitted.StatusCode.Should().Be(HttpStatusCode.Accepted, job.ToJsonString());
        job.Str("priority").Should().Be("low", "a priority above maxPriority is lowered");
        job.Str("sla.deadlineMs").Should().Be("5000", "the deadline is clamped into the override's bounds");
        var done = await alice.WaitForEndAsync(job.Str("jobId"));
        done.Str("output.model").Should().Be("sim", "under a cost budget only priced models are reached");
    }

    [Fact]
    public async Task Keys_made_through_the_api_work_expire_and_are_refused_at_once_when_revoked()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 2, 10, 0, 0, TimeSpan.Zero));
        using var app = new OrchestratorApp(time: time);
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);

        var created = await ops.PostAsJsonAsync("/v1/admin/keys", new { tenant = "initech", principal = "peter", roles = new[] { "user", "auditor" } });
        var key = await Problem(created, HttpStatusCode.Created);
        key.Str("key").Should().StartWith("ork_");
        using var peter = app.ClientFor(key.Str("key"));
        var (acted, job) = await peter.ActAsync(new { input = "hello", mode = "async" });
        acted.StatusCode.Should().Be(HttpStatusCode.Accepted);
        job.Str("tenant").Should().Be("initech");
        job.Str("principal").Should().Be("peter");
        (await peter.GetAsync("/v1/audit")).StatusCode.Should().Be(HttpStatusCode.OK, "the key carries the auditor role");

        var listed = await Api.BodyOf(await ops.GetAsync("/v1/admin/keys?tenant=initech"));
        listed.ToJsonString().Should().NotContain(key.Str("key")).And.NotContain("hash");
        listed["items"]!.AsArray().Should().ContainSingle();
        var one = await ops.GetAsync(created.Headers.Location!);
        one.StatusCode.Should().Be(HttpStatusCode.OK, "the Location of a made key reads it");
        (await Api.BodyOf(one)).Str("principal").Should().Be("peter");
        (await ops.GetAsync("/v1/admin/keys/key_nothing")).StatusCode.Should().Be(HttpStatusCode.NotFound);

        (await ops.DeleteAsync($"/v1/admin/keys/{key.Str("id")}")).StatusCode.Should().Be(HttpStatusCode.NoContent);
        (await peter.GetAsync($"/v1/jobs/{job.Str("jobId")}")).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        (await ops.DeleteAsync("/v1/admin/keys/key_nothing")).StatusCode.Should().Be(HttpStatusCode.NotFound);

        var expiring = await Api.BodyOf(await ops.PostAsJsonAsync("/v1/admin/keys",
            new { tenant = "initech", principal = "milton", expiresAt = time.GetUtcNow().AddHours(1) }));
        using var milton = app.ClientFor(expiring.Str("key"));
        (await milton.GetAsync("/v1/jobs")).StatusCode.Should().Be(HttpStatusCode.OK);
        time.Advance(TimeSpan.FromHours(1));
        (await milton.GetAsync("/v1/jobs")).StatusCode.Should().Be(HttpStatusCode.Unauthorized, "an expired key is refused");

        var bad = await Problem(await ops.PostAsJsonAsync("/v1/admin/keys", new { tenant = "../x", roles = new[] { "root" } }), HttpStatusCode.BadRequest);
        bad["errors"]!.AsObject().Select(e => e.Key).Should().BeEquivalentTo("tenant", "principal", "roles");

        var audit = await Api.BodyOf(await ops.GetAsync("/v1/audit?tenant=initech"));
        audit["items"]!.AsArray().Select(i => i.Str("action")).Should().Contain(["key.create", "key.revoke"]);
        (await Api.BodyOf(await ops.GetAsync("/v1/audit/verify"))).Str("ok").Should().Be("True");
    }

    [Fact]
    public async Task Usage_is_the_callers_tenant_or_an_operators_and_another_tenant_is_404()
    {
        using var app = new OrchestratorApp(SlowModel(0));
        using var alice = app.ClientFor();
        var (_, job) = await alice.ActAsync(new { input = "count me", mode = "async" });
        await alice.WaitForEndAsync(job.Str("jobId"));
        (await alice.ActAsync(new { input = "", mode = "async" })).Response.StatusCode.Should().Be(HttpStatusCode.BadRequest);

        // Refusals are counted behind the answer: wait for the count to land.
        var usage = await Until(() => alice.GetAsync("/v1/tenants/acme/usage"), u => u.Str("requests") == "2");
        usage.Str("completed").Should().Be("1");
        usage.Str("rejected.validation_failed").Should().Be("1");
        long.Parse(usage.Str("tokens.input")).Should().BeGreaterThan(0);
        decimal.Parse(usage.Str("costUsd"), System.Globalization.CultureInfo.InvariantCulture).Should().BeGreaterThan(0);
        usage.Str("byPrincipal.alice.completed").Should().Be("1");
        usage["latency"]!["p50Ms"].Should().NotBeNull();

        (await alice.GetAsync("/v1/tenants/globex/usage")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        (await Api.BodyOf(await ops.GetAsync("/v1/tenants/acme/usage?principal=alice"))).Str("completed").Should().Be("1");
    }

    [Fact]
    public async Task Keys_without_the_user_role_may_not_act_and_values_the_store_cannot_keep_are_field_errors()
    {
        using var app = new OrchestratorApp();
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        var auditor = await Api.BodyOf(await ops.PostAsJsonAsync("/v1/admin/keys", new { tenant = "acme", principal = "audrey", roles = new[] { "auditor" } }));
        using var audrey = app.ClientFor(auditor.Str("key"));
        (await audrey.ActAsync(new { input = "x" })).Response.StatusCode.Should().Be(HttpStatusCode.Forbidden, "acting needs the user role");
        (await audrey.GetAsync("/v1/jobs")).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await audrey.GetAsync("/v1/audit")).StatusCode.Should().Be(HttpStatusCode.OK);
        using var alice = app.ClientFor();
        (await alice.GetAsync("/v1/audit")).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        var denied = await Api.BodyOf(await ops.GetAsync("/v1/audit?action=access.denied"));
        denied["items"]!.AsArray().Select(i => i.Str("principal")).Should().Contain(["audrey", "alice"], "every refused role is on record");

        (await Problem(await ops.PostAsJsonAsync("/v1/admin/keys", new { tenant = "acme", principal = "a\u0000b" }), HttpStatusCode.BadRequest))
            ["errors"]!["principal"].Should().NotBeNull();
        (await Problem(await ops.PostAsJsonAsync("/v1/admin/keys", new { tenant = "acme", principal = "p", roles = new string?[] { null } }), HttpStatusCode.BadRequest))
            ["errors"]!["roles"].Should().NotBeNull();
        (await alice.ActAsync(new { input = "x", session = "s\u0000" })).Response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await alice.ActAsync(new { input = "x\u0000y" })).Response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await alice.GetAsync("/v1/tenants/acme/usage?principal=a%00b")).StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await ops.GetAsync("/v1/audit?principal=a%00b")).StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await ops.GetAsync("/v1/jobs?principal=a%00b")).StatusCode.Should().NotBe(HttpStatusCode.InternalServerError);

        var deadline = await Problem(await PutTenant(ops, "acme", new { overrides = new { deadlineMs = new { min = 99_999_999_999 } } }), HttpStatusCode.BadRequest);
        deadline["errors"]!["overrides.deadlineMs.min"].Should().NotBeNull("an override cannot pass Orchestrator:Acting:MaxDeadline");
        var many = Enumerable.Range(0, 1001).ToDictionary(i => $"p{i}", _ => (object)new { requestsPerMinute = 1 });
        (await Problem(await PutTenant(ops, "acme", new { principals = many }), HttpStatusCode.BadRequest))["errors"]!["principals"].Should().NotBeNull();
    }

    [Fact]
    public async Task Chat_completions_obey_the_tenants_rate_limit_and_settle_their_budget_hold()
    {
        using var app = new OrchestratorApp(SlowModel(0));
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        (await PutTenant(ops, "acme", new { limits = new { requestsPerMinute = 1, dailyTokenBudget = 1_000_000 } })).EnsureSuccessStatusCode();
        using var alice = app.ClientFor();
        var body = new { model = "auto", messages = new[] { new { role = "user", content = "hello" } } };

        var first = await alice.PostAsJsonAsync("/v1/chat/completions", body);
        first.StatusCode.Should().Be(HttpStatusCode.OK, await first.Content.ReadAsStringAsync());
        var second = await alice.PostAsJsonAsync("/v1/chat/completions", body);
        second.StatusCode.Should().Be(HttpStatusCode.TooManyRequests);
        second.Headers.RetryAfter.Should().NotBeNull();
        (await Api.BodyOf(second)).Str("error.code").Should().Be("rate_limited", "errors keep OpenAI's shape with this contract's codes");

        var usage = await Until(() => alice.GetAsync("/v1/tenants/acme/usage"), u => u.Str("completed") == "1");
        usage.Str("completed").Should().Be("1");
        long.Parse(usage.Str("tokens.input")).Should().BeGreaterThan(0);
        usage.Str("reservedCostUsd").Should().Be("0", "the chat call's hold settled when its job was recorded");
    }
}
