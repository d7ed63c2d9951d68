using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Gateway;

/// <summary>The gateway against real OpenAI-compatible HTTP servers (and simulated models) on 127.0.0.1.</summary>
public sealed class GatewayTests
{
    static readonly DateTimeOffset Start = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    sealed class Catalog
    {
        readonly Dictionary<string, string?> _settings = new()
        {
            ["Orchestrator:Gateway:MaxRetries"] = "0",
            ["Orchestrator:Jobs:Retry:MaxAttempts"] = "1",
        };
        int _next;

        public Catalog Remote(string id, FakeModelServer server, double quality = 0.5, decimal costIn = 0, decimal costOut = 0) =>
            Add(id, "openai", quality, costIn, costOut, ("Endpoint", server.BaseUrl), ("Model", id + "-model"));

        public Catalog Simulated(string id, double quality = 0.5, decimal costIn = 0, decimal costOut = 0, int latencyMs = 0) =>
            Add(id, "simulated", quality, costIn, costOut, ("LatencyMs", latencyMs.ToString(System.Globalization.CultureInfo.InvariantCulture)));

        public Catalog With(string key, string value)
        {
            _settings[key] = value;
            return this;
        }

        Catalog Add(string id, string provider, double quality, decimal costIn, decimal costOut, params (string Key, string Value)[] extra)
        {
            var at = $"Orchestrator:Models:{_next++}";
            _settings[$"{at}:Id"] = id;
            _settings[$"{at}:Provider"] = provider;
            _settings[$"{at}:Quality"] = quality.ToString(System.Globalization.CultureInfo.InvariantCulture);
            _settings[$"{at}:CostPer1kInputUsd"] = costIn.ToString(System.Globalization.CultureInfo.InvariantCulture);
            _settings[$"{at}:CostPer1kOutputUsd"] = costOut.ToString(System.Globalization.CultureInfo.InvariantCulture);
            foreach (var (key, value) in extra)
                _settings[$"{at}:{key}"] = value;
            return this;
        }

        public OrchestratorApp Build(FakeTimeProvider? time = null) => new(_settings, time);
    }

    static async Task<JsonObject> ActOk(HttpClient client, object request)
    {
        var (response, job) = await client.ActAsync(request);
        response.StatusCode.Should().Be(HttpStatusCode.OK, job.ToJsonString());
        return job;
    }

    static JsonObject Decision(JsonObject job) => job["routing"]![0]!["decision"]!.AsObject();

    static async Task<JsonObject> Model(HttpClient client, string id)
    {
        var list = await Api.BodyOf(await client.GetAsync("/v1/models"));
        return list["items"]!.AsArray().Single(m => m.Str("id") == id)!.AsObject();
    }

    [Fact]
    public async Task Quality_first_picks_the_best_model_and_cost_first_the_cheapest()
    {
        using var app = new Catalog()
            .Simulated("cheap", quality: 0.3, costIn: 0.0001m, costOut: 0.0002m)
            .Simulated("smart", quality: 0.95, costIn: 0.01m, costOut: 0.03m)
            .Simulated("middle", quality: 0.6, costIn: 0.001m, costOut: 0.002m)
            .Build();
        using var client = app.ClientFor();

        var quality = await ActOk(client, new { input = "think", routing = new { strategy = "quality-first" } });
        var cost = await ActOk(client, new { input = "save", routing = new { strategy = "cost-first" } });

        quality.Str("output.model").Should().Be("smart");
        Decision(quality).Str("strategy").Should().Be("quality-first");
        cost.Str("output.model").Should().Be("cheap");
        var ranks = Decision(cost)["candidates"]!.AsArray().OrderBy(c => c!["rank"]!.GetValue<int>()).Select(c => c.Str("modelId"));
        ranks.Should().Equal("cheap", "middle", "smart");
        decimal.Parse(cost.Str("output.usage.costUsd"), System.Globalization.CultureInfo.InvariantCulture).Should().BePositive();
    }

    [Fact]
    public async Task Latency_first_learns_which_model_is_faster()
    {
        await using var slow = await FakeModelServer.StartAsync();
        await using var fast = await FakeModelServer.StartAsync();
        slow.Default = FakeModelServer.Behavior.Reply("slow answer", TimeSpan.FromMilliseconds(150));
        fast.Default = FakeModelServer.Behavior.Reply("fast answer");
        using var app = new Catalog().Remote("slow", slow, quality: 0.9).Remote("fast", fast, quality: 0.5).Build();
        using var client = app.ClientFor();

        // Neither has history: both get tried (the higher quality first), then latency decides.
        var picks = new List<string>();
        for (var i = 0; i < 6; i++)
            picks.Add((await ActOk(client, new { input = $"q{i}", routing = new { strategy = "latency-first" } })).Str("output.model"));

        picks.Take(2).Should().Contain("slow", "a model without history is tried so it gets some");
        picks.Skip(2).Should().OnlyContain(m => m == "fast", $"once measured, the faster model wins; picks were {string.Join(",", picks)}");
    }

    [Fact]
    public async Task Strategy_comes_from_the_request_then_the_policy_then_the_default()
    {
        using var app = new Catalog()
            .Simulated("cheap", quality: 0.2, costIn: 0.0001m)
            .Simulated("smart", quality: 0.9, costIn: 0.05m)
            .With("Orchestrator:Gateway:DefaultStrategy", "cost-first")
            .Build();
        using var client = app.ClientFor();

        // text/respond's policy says latency-first; the request can override it.
        var fromPolicy = await ActOk(client, new { input = "a" });
        var fromRequest = await ActOk(client, new { input = "b", routing = new { strategy = "quality-first" } });

        Decision(fromPolicy).Str("strategy").Should().Be("latency-first");
        Decision(fromRequest).Str("strategy").Should().Be("quality-first");
        fromRequest.Str("output.model").Should().Be("smart");
    }

    [Fact]
    public async Task Falls_back_in_rank_order_and_records_every_attempt()
    {
        await using var first = await FakeModelServer.StartAsync();
        await using var second = await FakeModelServer.StartAsync();
        await using var third = await FakeModelServer.StartAsync();
        first.Default = FakeModelServer.Behavior.Fail(500);
        second.Default = FakeModelServer.Behavior.Junk();
        third.Default = FakeModelServer.Behavior.Reply("third saves the day");
        using var app = new Catalog()
            .Remote("first", first, quality: 0.9).Remote("second", second, quality: 0.8).Remote("third", third, quality: 0.7)
            .Build();
        using var client = app.ClientFor();

        var job = await ActOk(client, new { input = "help", routing = new { strategy = "quality-first" } });

        job.Str("output.text").Should().Be("third saves the day");
        var attempts = Decision(job)["attempts"]!.AsArray();
        attempts.Select(a => (a.Str("modelId"), a.Str("outcome"))).Should().Equal(
            ("first", "failed"), ("second", "failed"), ("third", "succeeded"));
        attempts[0].Str("failure").Should().Be("server_error");
        attempts[1].Str("failure").Should().Be("malformed", "garbage from a model is a quality failure, not a transport one");
        Decision(job).Str("chosen").Should().Be("third");
    }

    [Fact]
    public async Task A_failure_burst_quarantines_a_model_and_a_half_open_probe_brings_it_back()
    {
        var time = new FakeTimeProvider(Start);
        await using var flaky = await FakeModelServer.StartAsync();
        flaky.Default = FakeModelServer.Behavior.Fail(503);
        using var app = new Catalog()
            .Remote("flaky", flaky, quality: 0.9)
            .Simulated("steady", quality: 0.5)
            .With("Orchestrator:Gateway:BreakerMinimumThroughput", "2")
            .With("Orchestrator:Gateway:BreakDuration", "00:00:30")
            .Build(time);
        using var client = app.ClientFor();
        object Ask(int i) => new { input = $"q{i}", routing = new { strategy = "quality-first" } };

        // Two failures in a row open the circuit; each call still succeeds through the fallback.
        (await ActOk(client, Ask(1))).Str("output.model").Should().Be("steady");
        (await ActOk(client, Ask(2))).Str("output.model").Should().Be("steady");
        var quarantined = await Model(client, "flaky");
        quarantined.Str("status").Should().Be("quarantined");
        quarantined.Str("circuit").Should().Be("open");

        // While open, the model is skipped without a call.
        var callsWhileOpen = flaky.Calls;
        var skipped = await ActOk(client, Ask(3));
        flaky.Calls.Should().Be(callsWhileOpen);
        Decision(skipped)["candidates"]!.AsArray().Single(c => c.Str("modelId") == "flaky").Str("reason").Should().Contain("circuit open");

        // The model recovers; after the break a probe goes through and closes the circuit.
        flaky.Default = FakeModelServer.Behavior.Reply("back again");
        time.Advance(TimeSpan.FromSeconds(31));
        (await Model(client, "flaky")).Str("circuit").Should().Be("half-open");
        var probe = await ActOk(client, Ask(4));

        probe.Str("output.model").Should().Be("flaky");
        var recovered = await Model(client, "flaky");
        recovered.Str("circuit").Should().Be("closed");
        recovered.Str("status").Should().NotBe("quarantined");
    }

    [Fact]
    public async Task Hedging_cuts_a_slow_primary_and_cancels_it()
    {
        await using var slow = await FakeModelServer.StartAsync();
        await using var quick = await FakeModelServer.StartAsync();
        slow.Default = FakeModelServer.Behavior.Reply("too late", TimeSpan.FromSeconds(20));
        quick.Default = FakeModelServer.Behavior.Reply("hedge wins");
        using var app = new Catalog()
            .Remote("slow", slow, quality: 0.9, costIn: 0.001m).Remote("quick", quick, quality: 0.5, costIn: 0.001m)
            .With("Orchestrator:Gateway:HedgeDefaultDelay", "00:00:00.050")
            .Build();
        using var client = app.ClientFor();

        var job = await ActOk(client, new { input = "race", routing = new { strategy = "quality-first", hedge = true } });

        job.Str("output.text").Should().Be("hedge wins");
        var decision = Decision(job);
        decision["hedged"]!.GetValue<bool>().Should().BeTrue();
        decision["attempts"]!.AsArray().Select(a => (a.Str("modelId"), a.Str("outcome"))).Should().BeEquivalentTo(
            [("slow", "canceled"), ("quick", "succeeded")]);
        long.Parse(job.Str("output.usage.inputTokens")).Should().BeGreaterThan(11, "the canceled primary's prompt is accounted too");
        long.Parse(job.Str("sla.runMs")).Should().BeLessThan(10_000, "the hedge answered long before the primary would have");
    }

    [Fact]
    public async Task A_429_is_retried_on_the_same_model_after_its_retry_after()
    {
        var time = new FakeTimeProvider(Start);
        await using var limited = await FakeModelServer.StartAsync();
        limited.Then(FakeModelServer.Behavior.Fail(429, retryAfter: "5"));
        limited.Default = FakeModelServer.Behavior.Reply("after the wait");
        using var app = new Catalog().Remote("limited", limited).With("Orchestrator:Gateway:MaxRetries", "2").Build(time);
        using var client = app.ClientFor();

        var act = client.ActAsync(new { input = "patience", mode = "sync" });
        while (limited.Calls < 1)
            await Task.Delay(5);
        // Time moves in small steps until the retry arrives; it cannot arrive before the 5 s asked for.
        var advanced = TimeSpan.Zero;
        while (limited.Calls < 2 && advanced < TimeSpan.FromSeconds(20))
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            advanced += TimeSpan.FromMilliseconds(100);
            await Task.Delay(5);
        }
        var (response, job) = await act;

        advanced.Should().BeGreaterThanOrEqualTo(TimeSpan.FromSeconds(5), "the retry waits the whole Retry-After");

        response.StatusCode.Should().Be(HttpStatusCode.OK, job.ToJsonString());
        job.Str("output.text").Should().Be("after the wait");
        limited.Calls.Should().Be(2);
    }

    [Fact]
    public async Task Nothing_healthy_is_503_model_unavailable_with_retry_after()
    {
        using var app = new Catalog().Simulated("a").Simulated("b").Build();
        using var client = app.ClientFor();
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        (await ops.PostAsync("/v1/admin/models/a/quarantine", null)).StatusCode.Should().Be(HttpStatusCode.OK);
        (await ops.PostAsync("/v1/admin/models/b/quarantine", null)).StatusCode.Should().Be(HttpStatusCode.OK);

        var (response, problem) = await client.ActAsync(new { input = "anyone?" });

        response.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable, problem.ToJsonString());
        problem.Str("code").Should().Be("model_unavailable");
        response.Headers.RetryAfter.Should().NotBeNull();
        var job = await client.GetJobAsync(problem.Str("jobId"));
        Decision(job)["candidates"]!.AsArray().Should().OnlyContain(c => c.Str("reason").Contains("quarantined by an operator"));

        (await ops.PostAsync("/v1/admin/models/a/release", null)).StatusCode.Should().Be(HttpStatusCode.OK);
        (await ActOk(client, new { input = "now?" })).Str("output.model").Should().Be("a");
    }

    [Fact]
    public async Task Models_list_shows_health_and_admin_is_for_operators()
    {
        await using var server = await FakeModelServer.StartAsync();
        using var app = new Catalog().Remote("remote", server, quality: 0.7, costIn: 0.5m, costOut: 1.5m).Simulated("local").Build();
        using var client = app.ClientFor();
        await ActOk(client, new { input = "warm", routing = new { models = new[] { "remote" } } });

        var remote = await Model(client, "remote");

        remote.Str("provider").Should().Be("openai");
        remote.Str("status").Should().Be("healthy");
        remote.Str("circuit").Should().Be("closed");
        double.Parse(remote.Str("score"), System.Globalization.CultureInfo.InvariantCulture).Should().BeInRange(0.01, 1);
        remote["latencyP50Ms"].Should().NotBeNull();
        remote["latencyP95Ms"].Should().NotBeNull();
        remote.Str("errorRate").Should().Be("0");
        remote.Str("costPer1kInputUsd").Should().Be("0.5");
        remote.Str("costPer1kOutputUsd").Should().Be("1.5");
        remote.Str("quality").Should().Be("0.7");
        (await client.PostAsync("/v1/admin/models/remote/quarantine", null)).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        (await ops.PostAsync("/v1/admin/models/nope/quarantine", null)).StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Requests_go_over_the_openai_wire_format()
    {
        await using var server = await FakeModelServer.StartAsync();
        using var app = new Catalog().Remote("remote", server).Build();
        using var client = app.ClientFor();

        var job = await ActOk(client, new { input = "what is on the wire?" });

        job.Str("output.text").Should().Be("fake answer");
        server.Requests.Should().ContainSingle();
        var sent = server.Requests.Single();
        sent.Str("model").Should().Be("remote-model");
        sent["messages"]!.AsArray().Select(m => m.Str("role")).Should().Equal("system", "user");
        job.Str("output.usage.inputTokens").Should().Be("11");
        job.Str("output.usage.outputTokens").Should().Be("7");
    }

    [Fact]
    public async Task A_model_that_never_answered_is_not_kept_first_by_latency_first()
    {
        await using var wrong = await FakeModelServer.StartAsync();
        wrong.Default = FakeModelServer.Behavior.Fail(404);
        using var app = new Catalog().Remote("wrong", wrong, quality: 0.9).Simulated("right", quality: 0.5).Build();
        using var client = app.ClientFor();

        var first = await ActOk(client, new { input = "one", routing = new { strategy = "latency-first" } });
        var second = await ActOk(client, new { input = "two", routing = new { strategy = "latency-first" } });

        Decision(first)["attempts"]!.AsArray().Select(a => (a.Str("modelId"), a.Str("outcome"))).Should().Equal(("wrong", "failed"), ("right", "succeeded"));
        Decision(first)["attempts"]![0]!.Str("failure").Should().Be("misconfigured", "a 404 says the model is configured wrong, not that the request is");
        Decision(second)["attempts"]!.AsArray().Select(a => a.Str("modelId")).Should().Equal(["right"], "a model that was called and never answered ranks last");
        Decision(second)["candidates"]!.AsArray().Single(c => c.Str("modelId") == "wrong").Str("reason").Should().Contain("never answered");
    }

    [Fact]
    public async Task A_model_refused_for_every_request_is_quarantined()
    {
        await using var wrong = await FakeModelServer.StartAsync();
        wrong.Default = FakeModelServer.Behavior.Fail(401);
        using var app = new Catalog().Remote("wrong", wrong, quality: 0.9).Simulated("right", quality: 0.5)
            .With("Orchestrator:Gateway:BreakerMinimumThroughput", "2").Build();
        using var client = app.ClientFor();

        for (var i = 0; i < 2; i++)
            await ActOk(client, new { input = $"q{i}", routing = new { strategy = "quality-first" } });

        (await Model(client, "wrong")).Str("status").Should().Be("quarantined", "a wrong key fails every call: it is the model, not the request");
    }

    [Fact]
    public async Task A_content_filtered_answer_fails_that_request_only()
    {
        await using var filtered = await FakeModelServer.StartAsync();
        filtered.Default = FakeModelServer.Behavior.Filtered();
        using var app = new Catalog().Remote("only", filtered, quality: 0.9)
            .With("Orchestrator:Gateway:BreakerMinimumThroughput", "2").Build();
        using var client = app.ClientFor();

        for (var i = 0; i < 3; i++)
        {
            var (response, problem) = await client.ActAsync(new { input = $"q{i}" });
            response.StatusCode.Should().Be(HttpStatusCode.BadGateway, problem.ToJsonString());
            problem.Str("code").Should().Be("model_failed");
            problem.Str("detail").Should().Contain("content filter");
        }

        filtered.Calls.Should().Be(3, "a filtered answer is not retried, neither by the gateway nor by the job");
        var model = await Model(client, "only");
        model.Str("status").Should().Be("healthy", "one caller's filtered request says nothing about the model");
        model["errorRate"]!.GetValue<double>().Should().Be(0);
        model.Str("errorsByClass.rejected").Should().Be("3");
    }

    [Fact]
    public async Task An_empty_answer_is_an_answer()
    {
        await using var terse = await FakeModelServer.StartAsync();
        terse.Default = FakeModelServer.Behavior.Reply("");
        using var app = new Catalog().Remote("terse", terse, quality: 0.9).Build();
        using var client = app.ClientFor();

        var job = await ActOk(client, new { input = "say nothing" });

        job.Str("output.text").Should().BeEmpty();
        terse.Calls.Should().Be(1);
    }

    [Fact]
    public async Task A_misconfigured_model_is_not_retried_as_a_job()
    {
        await using var wrong = await FakeModelServer.StartAsync();
        wrong.Default = FakeModelServer.Behavior.Fail(404);
        using var app = new Catalog().Remote("wrong", wrong, quality: 0.9).Build();
        using var client = app.ClientFor();

        var (response, problem) = await client.ActAsync(new { input = "anyone there?" });

        response.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable, problem.ToJsonString());
        problem.Str("code").Should().Be("model_unavailable");
        (await client.GetJobAsync(problem.Str("jobId"))).Str("attempts").Should().Be("1", "waiting does not fix a wrong model name");
        wrong.Calls.Should().Be(1);
    }

    [Fact]
    public async Task A_providers_long_Retry_After_is_kept_until_it_passes()
    {
        await using var limited = await FakeModelServer.StartAsync();
        limited.Default = FakeModelServer.Behavior.Fail(429, retryAfter: "60");
        using var app = new Catalog().Remote("limited", limited, quality: 0.9).Build();
        using var client = app.ClientFor();

        var (first, problem) = await client.ActAsync(new { input = "now?" });
        var (second, again) = await client.ActAsync(new { input = "and now?" });

        first.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable, problem.ToJsonString());
        problem.Str("code").Should().Be("model_unavailable");
        first.Headers.RetryAfter!.Delta!.Value.TotalSeconds.Should().BeInRange(55, 60, "the provider asked for 60 s");
        (await client.GetJobAsync(problem.Str("jobId"))).Str("attempts").Should().Be("1", "a retry after 60 s would end past the 30 s deadline");
        second.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        limited.Calls.Should().Be(1, "within its Retry-After the provider is not called again");
        var job = await client.GetJobAsync(again.Str("jobId"));
        job["routing"]![0]!["decision"]!["candidates"]![0]!.Str("reason").Should().Contain("Retry-After");
    }

    [Fact]
    public async Task A_rate_limited_model_is_passed_over_while_its_provider_asks_to_wait()
    {
        await using var limited = await FakeModelServer.StartAsync();
        limited.Default = FakeModelServer.Behavior.Fail(429, retryAfter: "60");
        using var app = new Catalog().Remote("limited", limited, quality: 0.9).Simulated("steady", quality: 0.5).Build();
        using var client = app.ClientFor();

        for (var i = 0; i < 3; i++)
            (await ActOk(client, new { input = $"q{i}", routing = new { strategy = "quality-first" } })).Str("output.model").Should().Be("steady");

        limited.Calls.Should().Be(1, "after its 429 the preferred model is skipped, not asked first every time");
    }

    [Fact]
    public async Task A_failed_half_open_probe_falls_back_at_once_without_a_retry_backoff()
    {
        var time = new FakeTimeProvider(Start);
        await using var flaky = await FakeModelServer.StartAsync();
        flaky.Default = FakeModelServer.Behavior.Fail(503);
        using var app = new Catalog()
            .Remote("flaky", flaky, quality: 0.9).Simulated("steady", quality: 0.5)
            .With("Orchestrator:Gateway:MaxRetries", "2")
            .With("Orchestrator:Gateway:BreakerMinimumThroughput", "2")
            .Build(time);
        using var client = app.ClientFor();
        object Ask(int i) => new { input = $"q{i}", routing = new { strategy = "quality-first" } };

        // Two failures open the circuit (the second retry would go into the open circuit, so it is not made).
        var opening = client.ActAsync(Ask(1));
        while (!opening.IsCompleted)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            await Task.WhenAny(opening, Task.Delay(10));
        }
        (await opening).Body.Str("output.model").Should().Be("steady");
        (await Model(client, "flaky")).Str("circuit").Should().Be("open");

        time.Advance(TimeSpan.FromSeconds(31));
        // The probe fails and reopens the circuit; with time frozen, a retry backoff would never end.
        var probe = await client.ActAsync(Ask(2)).WaitAsync(TimeSpan.FromSeconds(20));

        probe.Body.Str("output.model").Should().Be("steady");
        (await Model(client, "flaky")).Str("circuit").Should().Be("open");
    }

    [Fact]
    public async Task Hedged_is_recorded_only_when_a_hedge_was_sent()
    {
        await using var quick = await FakeModelServer.StartAsync();
        await using var other = await FakeModelServer.StartAsync();
        using var app = new Catalog().Remote("quick", quick, quality: 0.9).Remote("other", other, quality: 0.5)
            .With("Orchestrator:Gateway:HedgeDefaultDelay", "00:00:05").Build();
        using var client = app.ClientFor();

        var job = await ActOk(client, new { input = "no need", routing = new { strategy = "quality-first", hedge = true } });

        Decision(job)["hedged"]!.GetValue<bool>().Should().BeFalse("the primary answered before the hedge delay");
        other.Calls.Should().Be(0);
    }

    [Theory]
    [InlineData("Orchestrator:Models:0:Provider", "bedrock", "Orchestrator:Models:0:Provider")]
    [InlineData("Orchestrator:Models:0:Endpoint", "not a url", "Orchestrator:Models:0:Endpoint")]
    [InlineData("Orchestrator:Models:0:Quality", "7", "Orchestrator:Models:0:Quality")]
    public void Bad_model_configuration_stops_start_up_naming_the_key(string key, string value, string named)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Orchestrator:Models:0:Id"] = "m",
            ["Orchestrator:Models:0:Provider"] = "openai",
            ["Orchestrator:Models:0:Endpoint"] = "http://127.0.0.1:9/v1",
            [key] = value,
        };
        using var app = new OrchestratorApp(settings);

        var start = () => app.CreateClient();

        start.Should().Throw<Exception>().Where(e => e.ToString().Contains(named));
    }
}
