using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Orchestrator.Tests.Harness;
using static Orchestrator.Tests.Evaluation.EvaluationApp;

namespace Orchestrator.Tests.Evaluation;

public sealed class EvaluationTests : IDisposable
{
    readonly OrchestratorApp _app = new(Settings());
    readonly HttpClient _operator;

    public EvaluationTests() => _operator = _app.ClientFor(OrchestratorApp.OperatorKey);

    public void Dispose() => _app.Dispose();

    static JsonObject OrderSuite(JsonObject? gates = null) => Suite("orders", gates ?? new JsonObject { ["minPassRate"] = 1.0 },
        new JsonObject
        {
            ["name"] = "keeps-order-id", ["mustPass"] = true, ["repeats"] = 2,
            ["act"] = new JsonObject { ["intent"] = "text/respond", ["input"] = "/context Where is A-1042?" },
            // The simulated model shows its whole conversation for /context: the prompt decides whether this holds.
            ["assertions"] = new JsonArray(Contains("Always keep order ids"), Contains("A-1042")),
        },
        Case("says-hello", "hello", Contains("hello"), new JsonObject { ["type"] = "path", ["nodes"] = new JsonArray("respond") }));

    [Fact]
    public async Task An_identical_candidate_passes()
    {
        var id = await _operator.SubmitAsync(OrderSuite(), Policy("fast"), Policy("fast"));
        var view = await _operator.EvaluatedAsync(id);

        view["verdict"]!.GetValue<string>().Should().Be("pass", view.ToJsonString());
        view["gates"]!.AsArray().Should().OnlyContain(g => g!["passed"]!.GetValue<bool>());
        view.CaseNamed("keeps-order-id")["candidate"]!["verdict"]!.GetValue<string>().Should().Be("stable_pass");
        view["pins"]!["candidatePolicyHash"]!.GetValue<string>().Should().Be(view["pins"]!["baselinePolicyHash"]!.GetValue<string>());
        view["progress"]!["caseRuns"]!.GetValue<int>().Should().Be(6, "2 repeats + 1 of two cases, on both sides");
    }

    [Fact]
    public async Task A_candidate_prompt_that_breaks_a_must_pass_case_is_blocked_naming_it()
    {
        var id = await _operator.SubmitAsync(OrderSuite(), Policy("fast"), Policy("fast", "You are terse."));
        var view = await _operator.EvaluatedAsync(id);

        view["verdict"]!.GetValue<string>().Should().Be("fail");
        var mustPass = view.Gate("noMustPassFailure");
        mustPass["passed"]!.GetValue<bool>().Should().BeFalse();
        mustPass["cases"]!.AsArray().Select(c => c!.GetValue<string>()).Should().Equal("keeps-order-id");
        view.Gate("minPassRate")["cases"]!.AsArray().Select(c => c!.GetValue<string>()).Should().Equal("keeps-order-id");
        var broken = view.CaseNamed("keeps-order-id");
        broken["baseline"]!["verdict"]!.GetValue<string>().Should().Be("stable_pass");
        broken["candidate"]!["verdict"]!.GetValue<string>().Should().Be("stable_fail");
        broken["candidate"]!["failures"]!.AsArray().Should().Contain(f => f!.GetValue<string>().Contains("Always keep order ids"));
    }

    [Fact]
    public async Task A_slower_candidate_is_blocked_by_the_latency_gate()
    {
        var suite = OrderSuite(new JsonObject { ["maxP95LatencyRatio"] = 1.5 });
        var id = await _operator.SubmitAsync(suite, Policy("fast"), Policy("slow"));
        var view = await _operator.EvaluatedAsync(id);

        view["verdict"]!.GetValue<string>().Should().Be("fail");
        var latency = view.Gate("maxP95LatencyRatio");
        latency["passed"]!.GetValue<bool>().Should().BeFalse();
        // The simulated models' configured latencies (2 ms, 40 ms) are the figures: reproducible, not wall-clock noise.
        latency["value"]!.GetValue<double>().Should().Be(20);
        view["baseline"]!["p95LatencyMs"]!.GetValue<double>().Should().Be(2);
        view["candidate"]!["p95LatencyMs"]!.GetValue<double>().Should().Be(40);
        latency["cases"]!.AsArray().Select(c => c!.GetValue<string>()).Should().BeEquivalentTo(["keeps-order-id", "says-hello"]);
    }

    [Fact]
    public async Task A_case_that_fails_half_its_runs_is_flaky()
    {
        var suite = Suite("flaky", new JsonObject(), Case("coin", "heads or tails", Contains("heads")));
        suite["cases"]![0]!["repeats"] = 12;
        var id = await _operator.SubmitAsync(suite, Policy("flaky"), Policy("flaky"));
        var view = await _operator.EvaluatedAsync(id);

        var coin = view.CaseNamed("coin")["candidate"]!;
        coin["verdict"]!.GetValue<string>().Should().Be("flaky", coin.ToJsonString());
        coin["runs"]!.GetValue<int>().Should().Be(12);
        coin["passed"]!.GetValue<int>().Should().BeInRange(2, 10);
        coin["wilsonLow"]!.GetValue<double>().Should().BeLessThan(coin["passRate"]!.GetValue<double>());
        coin["wilsonHigh"]!.GetValue<double>().Should().BeGreaterThan(coin["passRate"]!.GetValue<double>());
    }

    [Fact]
    public async Task Paired_pass_rates_of_80_and_80_pass_and_80_and_65_fail()
    {
        // n = 80 pairs: one case, 80 repeats, each with its own seed, the same seed on both sides. Failure rates 0.20 and
        // 0.35 draw from the same number per seed, so about 12 pairs are discordant, all against the candidate:
        // exact McNemar one-sided p = 0.5^12, far below 0.05, and a drop of ~15% is over the 5% margin.
        var suite = Suite("paired", new JsonObject { ["maxPassRateDrop"] = 0.05, ["confidence"] = 0.95 }, Case("answers", "ping", Contains("ping")));
        suite["cases"]![0]!["repeats"] = 80;

        var same = await _operator.EvaluatedAsync(await _operator.SubmitAsync(suite, Policy("p80"), Policy("p80")), TimeSpan.FromSeconds(120));
        var worse = await _operator.EvaluatedAsync(await _operator.SubmitAsync(suite, Policy("p80"), Policy("p65")), TimeSpan.FromSeconds(120));

        same["verdict"]!.GetValue<string>().Should().Be("pass", same.Gate("pairedPassRate").ToJsonString());
        same["baseline"]!["passRate"]!.GetValue<double>().Should().BeInRange(0.68, 0.92);
        worse["verdict"]!.GetValue<string>().Should().Be("fail", worse.Gate("pairedPassRate").ToJsonString());
        worse["candidate"]!["passRate"]!.GetValue<double>().Should().BeInRange(0.5, 0.8);
        worse.Gate("pairedPassRate")["cases"]!.AsArray().Select(c => c!.GetValue<string>()).Should().Equal("answers");
    }

    [Fact]
    public async Task The_same_evaluation_twice_gives_the_same_verdict_and_figures()
    {
        var suite = OrderSuite(new JsonObject { ["maxP95LatencyRatio"] = 1.5, ["minPassRate"] = 0.5 });
        suite["cases"]![1]!["repeats"] = 4;
        var first = await _operator.EvaluatedAsync(await _operator.SubmitAsync(suite, Policy("flaky"), Policy("slow")));
        var second = await _operator.EvaluatedAsync(await _operator.SubmitAsync(suite, Policy("flaky"), Policy("slow")));

        foreach (var part in new[] { "verdict", "gates", "cases", "pins" })
            second[part]!.ToJsonString().Should().Be(first[part]!.ToJsonString(), $"{part} of a hermetic evaluation repeats");
        second["baseline"]!["latenciesMs"]!.ToJsonString().Should().Be(first["baseline"]!["latenciesMs"]!.ToJsonString());
    }

    [Fact]
    public async Task A_judge_scores_through_the_gateway_with_its_cost_apart_and_never_judges_its_own_model()
    {
        var judged = Suite("judged", new JsonObject { ["minJudgeScore"] = 0.8 },
            Case("judged", "Where is A-1042?", new JsonObject { ["type"] = "judge", ["rubric"] = "Names the order id.", ["minScore"] = 0.7 }));
        var view = await _operator.EvaluatedAsync(await _operator.SubmitAsync(judged, Policy("fast"), Policy("fast")));

        view["verdict"]!.GetValue<string>().Should().Be("pass", view.ToJsonString());
        view.CaseNamed("judged")["candidate"]!["meanScore"]!.GetValue<double>().Should().Be(0.9);
        view["candidate"]!["judgeCostUsd"]!.GetValue<double>().Should().BeGreaterThan(0, "the judge is priced");
        view["candidate"]!["meanCostUsd"]!.GetValue<double>().Should().Be(0, "the case's own model is free; the judge's cost is kept apart");

        var own = Suite("own", new JsonObject(), new JsonObject
        {
            ["name"] = "self", ["act"] = new JsonObject { ["input"] = "x", ["routing"] = new JsonObject { ["models"] = new JsonArray("judge") } },
            ["assertions"] = new JsonArray(new JsonObject { ["type"] = "judge", ["rubric"] = "good" }),
        });
        var refused = await _operator.PostAsJsonAsync("/v1/admin/evaluations", new JsonObject
        {
            ["suite"] = own, ["baseline"] = new JsonObject { ["policy"] = Policy("fast") }, ["candidate"] = new JsonObject { ["policy"] = Policy("judge") },
        });
        var problem = await Api.BodyOf(refused);
        refused.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        problem["errors"]!["suite.cases[0].act.routing.models"]!.ToJsonString().Should().Contain("judge");

        // A candidate routed to the judge model anyway is not scored by it: the judge assertion fails, saying why.
        var routed = Suite("routed", new JsonObject(), Case("routed", "x", new JsonObject { ["type"] = "judge", ["rubric"] = "good" }));
        var self = await _operator.EvaluatedAsync(await _operator.SubmitAsync(routed, Policy("fast"), Policy("judge")));
        self.CaseNamed("routed")["candidate"]!["failures"]!.ToJsonString().Should().Contain("Refused: the judge");
    }

    [Fact]
    public async Task Json_schema_equals_and_text_assertions_judge_the_output()
    {
        // The model tagged judge always answers {"score": 0.9, "reason": "names the order"}.
        var schema = JsonNode.Parse("""{ "type": "object", "required": ["score"], "properties": { "score": { "type": "number", "maximum": 1 } } }""");
        var strict = JsonNode.Parse("""{ "type": "object", "required": ["verdict"] }""");
        var suite = Suite("shapes", new JsonObject(),
            Case("schema", "x", new JsonObject { ["type"] = "json-schema", ["schema"] = schema }),
            Case("strict", "y", new JsonObject { ["type"] = "json-schema", ["schema"] = strict }),
            Case("equals", "z", new JsonObject { ["type"] = "equals", ["value"] = """{"score": 0.9, "reason": "names the order"}""" },
                new JsonObject { ["type"] = "not-contains", ["value"] = "SCORE", ["ignoreCase"] = false },
                new JsonObject { ["type"] = "regex", ["value"] = "\"score\":\\s*0\\.9" }));
        var view = await _operator.EvaluatedAsync(await _operator.SubmitAsync(suite, Policy("judge"), Policy("judge")));

        view.CaseNamed("schema")["candidate"]!["verdict"]!.GetValue<string>().Should().Be("stable_pass", view.ToJsonString());
        view.CaseNamed("equals")["candidate"]!["verdict"]!.GetValue<string>().Should().Be("stable_pass", view.ToJsonString());
        var failed = view.CaseNamed("strict")["candidate"]!;
        failed["verdict"]!.GetValue<string>().Should().Be("stable_fail");
        failed["failures"]!.ToJsonString().Should().Contain("does not satisfy the schema");
    }

    [Fact]
    public async Task A_bad_suite_or_a_versions_side_answers_400_with_field_errors()
    {
        var suite = new JsonObject
        {
            ["name"] = "bad",
            ["cases"] = new JsonArray(
                new JsonObject { ["name"] = "no-input", ["assertions"] = new JsonArray(Contains("x")) },
                new JsonObject { ["act"] = new JsonObject { ["input"] = "x" }, ["assertions"] = new JsonArray(new JsonObject { ["type"] = "smells-good" }) },
                new JsonObject { ["act"] = new JsonObject { ["input"] = "x" }, ["assertions"] = new JsonArray(new JsonObject { ["type"] = "regex", ["value"] = "(" }) }),
            ["gates"] = new JsonObject { ["minPassRate"] = 2 },
        };
        var response = await _operator.PostAsJsonAsync("/v1/admin/evaluations", new JsonObject
        {
            ["suite"] = suite,
            ["baseline"] = new JsonObject { ["policy"] = Policy("fast") },
            ["candidate"] = new JsonObject { ["versions"] = new JsonObject { ["prompts"] = "v2" } },
        });
        var problem = await Api.BodyOf(response);
        response.StatusCode.Should().Be(HttpStatusCode.BadRequest, problem.ToJsonString());
        problem["code"]!.GetValue<string>().Should().Be("validation_failed");
        var errors = problem["errors"]!.AsObject().Select(e => e.Key).ToList();
        errors.Should().Contain(["suite.cases[0].act", "suite.cases[1].assertions[0].type", "suite.cases[2].assertions[0].value", "suite.gates.minPassRate", "candidate.versions.prompts"]);
        problem["errors"]!["candidate.versions.prompts"]!.ToJsonString().Should().Contain("Unknown prompts version");
    }

    [Fact]
    public async Task Evaluations_are_for_operators_and_a_renamed_case_keeps_its_id()
    {
        var user = _app.ClientFor();
        (await user.GetAsync("/v1/admin/evaluations/ev_x")).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await _operator.GetAsync("/v1/admin/evaluations/ev_missing")).StatusCode.Should().Be(HttpStatusCode.NotFound);

        var a = await _operator.EvaluatedAsync(await _operator.SubmitAsync(Suite("s", new JsonObject(), Case("first-name", "hi", Contains("hi"))), Policy("fast"), Policy("fast")));
        var b = await _operator.EvaluatedAsync(await _operator.SubmitAsync(Suite("s", new JsonObject(), Case("renamed", "hi", Contains("hi"))), Policy("fast"), Policy("fast")));
        b["cases"]![0]!["id"]!.GetValue<string>().Should().Be(a["cases"]![0]!["id"]!.GetValue<string>());
        var changed = await _operator.EvaluatedAsync(await _operator.SubmitAsync(Suite("s", new JsonObject(), Case("first-name", "hi", Contains("h"))), Policy("fast"), Policy("fast")));
        changed["cases"]![0]!["id"]!.GetValue<string>().Should().NotBe(a["cases"]![0]!["id"]!.GetValue<string>());

        // A rollout's question: is there a passing evaluation of this candidate's content hash?
        var hash = a["pins"]!["candidatePolicyHash"]!.GetValue<string>();
        var list = await Api.BodyOf(await _operator.GetAsync($"/v1/admin/evaluations?candidateHash={hash}&verdict=pass"));
        list["items"]!.AsArray().Should().HaveCount(3, "all three ran the same candidate policy and passed");
    }

    [Fact]
    public async Task The_report_is_markdown_or_html_with_pictures()
    {
        var id = await _operator.SubmitAsync(OrderSuite(new JsonObject { ["maxP95LatencyRatio"] = 1.5 }), Policy("fast"), Policy("slow"));
        await _operator.EvaluatedAsync(id);

        var markdown = await _operator.GetAsync($"/v1/admin/evaluations/{id}/report");
        markdown.Content.Headers.ContentType!.MediaType.Should().Be("text/markdown");
        var md = await markdown.Content.ReadAsStringAsync();
        md.Should().Contain("| maxP95LatencyRatio | **FAIL** |").And.Contain("keeps-order-id").And.Contain("<svg").And.Contain("seed 0");

        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/admin/evaluations/{id}/report");
        request.Headers.Accept.ParseAdd("text/html");
        var html = await _operator.SendAsync(request);
        html.Content.Headers.ContentType!.MediaType.Should().Be("text/html");
        var page = await html.Content.ReadAsStringAsync();
        page.Should().StartWith("<!doctype html>").And.Contain("<svg").And.Contain("Latency per run").And.NotContain("src=").And.NotContain("href=", "nothing is fetched");
    }
}
