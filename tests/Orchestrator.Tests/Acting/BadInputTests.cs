using System.Net;
using System.Text;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Acting;

public sealed class BadInputTests : IClassFixture<BadInputTests.App>, IDisposable
{
    public sealed class App : IDisposable
    {
        public OrchestratorApp Host { get; } = new(new Dictionary<string, string?> { ["Orchestrator:Acting:MaxBodyBytes"] = "4096" });
        public void Dispose() => Host.Dispose();
    }

    readonly App _app;
    readonly HttpClient _client;

    public BadInputTests(App app)
    {
        _app = app;
        _client = app.Host.ClientFor();
    }

    public void Dispose() => _client.Dispose();

    async Task<(HttpResponseMessage Response, System.Text.Json.Nodes.JsonObject Problem)> PostRaw(string body, string contentType = "application/json")
    {
        var response = await _client.PostAsync("/v1/act", new StringContent(body, Encoding.UTF8, contentType));
        return (response, await Api.BodyOf(response));
    }

    [Theory]
    [InlineData("{not json", "body")]
    [InlineData("{\"input\": \"x\", \"deadlineMs\": \"soon\"}", "deadlineMs")]
    [InlineData("{\"input\": \"x\", \"deadlineMs\": \"100\"}", "deadlineMs")]
    [InlineData("{\"input\": 42}", "input")]
    [InlineData("{\"input\": \"x\", \"messages\": {\"role\": \"user\"}}", "messages")]
    [InlineData("{\"input\": \"x\", \"deadlineMs\": 99999999999999999999999}", "deadlineMs")]
    [InlineData("[]", "body")]
    public async Task Unreadable_bodies_are_400_validation_failed_naming_the_field(string body, string field)
    {
        var (response, problem) = await PostRaw(body);

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest, problem.ToJsonString());
        response.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
        problem.Str("code").Should().Be("validation_failed");
        problem.Str("traceId").Should().MatchRegex("^[0-9a-f]{32}$");
        problem["errors"]!.AsObject().Select(e => e.Key).Should().Contain(k => k.StartsWith(field, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("{\"intent\": \"no/such\", \"input\": \"x\"}", "intent")]
    [InlineData("{\"input\": \"x\", \"priority\": \"urgent\"}", "priority")]
    [InlineData("{\"input\": \"x\", \"mode\": \"later\"}", "mode")]
    [InlineData("{\"input\": \"x\", \"deadlineMs\": -5}", "deadlineMs")]
    [InlineData("{\"input\": \"x\", \"deadlineMs\": 0}", "deadlineMs")]
    [InlineData("{\"input\": \"x\", \"deadlineMs\": 86400000000}", "deadlineMs")]
    [InlineData("{\"input\": \"   \"}", "input")]
    [InlineData("{}", "input")]
    [InlineData("{\"messages\": [{\"role\": \"wizard\", \"content\": \"x\"}]}", "messages[0].role")]
    [InlineData("{\"input\": \"x\", \"routing\": {\"strategy\": \"fastest\"}}", "routing.strategy")]
    [InlineData("{\"input\": \"x\", \"routing\": {\"models\": [\"gpt-99\"]}}", "routing.models")]
    [InlineData("{\"input\": \"x\", \"tools\": [\"rm/rf\"]}", "tools")]
    public async Task Invalid_fields_are_400_with_field_errors(string body, string field)
    {
        var (response, problem) = await PostRaw(body);

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest, problem.ToJsonString());
        problem.Str("code").Should().Be("validation_failed");
        problem["errors"]![field].Should().NotBeNull($"the error should name '{field}': {problem.ToJsonString()}");
    }

    [Fact]
    public async Task A_tool_the_intent_does_not_allow_is_capability_denied()
    {
        var (response, problem) = await PostRaw("{\"intent\": \"text/respond\", \"input\": \"x\", \"tools\": [\"fs/write\"]}");

        response.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        problem.Str("code").Should().Be("capability_denied");
    }

    [Fact]
    public async Task Oversized_body_is_413_payload_too_large()
    {
        var big = "{\"input\": \"" + new string('a', 10_000) + "\"}";

        var (response, problem) = await PostRaw(big);

        response.StatusCode.Should().Be(HttpStatusCode.RequestEntityTooLarge);
        problem.Str("code").Should().Be("payload_too_large");
    }

    [Fact]
    public async Task Wrong_content_type_is_415_problem()
    {
        var (response, problem) = await PostRaw("input=x", "application/x-www-form-urlencoded");

        response.StatusCode.Should().Be(HttpStatusCode.UnsupportedMediaType);
        problem.Str("code").Should().Be("unsupported_media_type");
    }

    [Fact]
    public async Task Unknown_job_is_404_problem()
    {
        var response = await _client.GetAsync("/v1/jobs/job_00000000000000000000000000");
        var problem = await Api.BodyOf(response);

        response.StatusCode.Should().Be(HttpStatusCode.NotFound);
        problem.Str("code").Should().Be("not_found");
    }

    [Theory]
    [InlineData("/v1/jobs?limit=0")]
    [InlineData("/v1/jobs?limit=abc")]
    [InlineData("/v1/jobs?status=sleeping")]
    [InlineData("/v1/jobs?cursor=nope")]
    [InlineData("/v1/jobs?intent=a%00b")]
    [InlineData("/v1/jobs?principal=%00")]
    [InlineData("/v1/jobs/job_00000000000000000000000000/result?waitMs=-1")]
    public async Task Bad_query_parameters_are_400(string url)
    {
        var response = await _client.GetAsync(url);
        var problem = await Api.BodyOf(response);

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest, problem.ToJsonString());
        problem.Str("code").Should().Be("validation_failed");
        problem["errors"]!.AsObject().Should().NotBeEmpty("the problem names the parameter");
    }

    [Fact]
    public async Task A_long_poll_longer_than_the_cap_waits_the_cap_and_is_not_refused()
    {
        var (_, job) = await _client.ActAsync(new { input = "hi", mode = "async" });
        var response = await _client.GetAsync($"/v1/jobs/{job.Str("jobId")}/result?waitMs=99999999999999");
        response.StatusCode.Should().BeOneOf(HttpStatusCode.OK, HttpStatusCode.Accepted);
    }

    [Fact]
    public async Task A_query_value_of_the_wrong_type_names_the_parameter_not_the_framework()
    {
        var problem = await Api.BodyOf(await _client.GetAsync("/v1/jobs?limit=abc"));

        problem.Str("detail").Should().Be("'limit' cannot be 'abc': it must be a whole number.");
        problem["errors"]!.AsObject().Select(e => e.Key).Should().Equal("limit");
    }

    [Fact]
    public async Task Rejections_are_counted_by_code_for_operators_only()
    {
        await PostRaw("{\"input\": \"x\", \"priority\": \"urgent\"}");
        using var operatorClient = _app.Host.ClientFor(OrchestratorApp.OperatorKey);

        var forUser = await _client.GetAsync("/v1/diag/telemetry");
        var forOperator = await Api.BodyOf(await operatorClient.GetAsync("/v1/diag/telemetry?tenant=acme"));

        forUser.StatusCode.Should().Be(HttpStatusCode.Forbidden, "diagnostics are for operators");
        forOperator["counters"]!["jobs.rejected.validation_failed"]!.GetValue<long>().Should().BePositive();
    }
}
