using System.Net;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Tenancy;

public sealed class IdentityTests : IClassFixture<IdentityTests.App>
{
    public sealed class App : IDisposable
    {
        public OrchestratorApp Host { get; } = new();
        public void Dispose() => Host.Dispose();
    }

    readonly OrchestratorApp _app;

    public IdentityTests(App app) => _app = app.Host;

    [Fact]
    public async Task No_key_is_401_unauthorized_problem()
    {
        using var client = _app.ClientFor(apiKey: null);

        var response = await client.GetAsync("/v1/jobs");
        var problem = await Api.BodyOf(response);

        response.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        problem.Str("code").Should().Be("unauthorized");
        response.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
    }

    [Fact]
    public async Task Unknown_key_is_401()
    {
        using var client = _app.ClientFor("not-a-key-we-know-of");

        var response = await client.PostAsync("/v1/act", null);

        response.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        (await Api.BodyOf(response)).Str("code").Should().Be("unauthorized");
    }

    [Fact]
    public async Task Bearer_token_works_like_the_header()
    {
        using var client = _app.ClientFor(apiKey: null);
        client.DefaultRequestHeaders.Authorization = new("Bearer", OrchestratorApp.AcmeKey);

        var response = await client.GetAsync("/v1/jobs");

        response.StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Operator_endpoints_are_403_for_users()
    {
        using var client = _app.ClientFor();

        var response = await client.GetAsync("/v1/diag/telemetry");

        response.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await Api.BodyOf(response)).Str("code").Should().Be("forbidden");
    }

    [Fact]
    public async Task Another_tenants_job_is_404_for_every_job_endpoint()
    {
        using var acme = _app.ClientFor(OrchestratorApp.AcmeKey);
        using var globex = _app.ClientFor(OrchestratorApp.GlobexKey);
        var (_, job) = await acme.ActAsync(new { input = "acme secret" });
        var id = job.Str("jobId");

        (await globex.GetAsync($"/v1/jobs/{id}")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await globex.GetAsync($"/v1/jobs/{id}/result")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await globex.PostAsync($"/v1/jobs/{id}/cancel", null)).StatusCode.Should().Be(HttpStatusCode.NotFound);
        var list = await Api.BodyOf(await globex.GetAsync("/v1/jobs?limit=200"));
        list["items"]!.AsArray().Should().NotContain(j => j.Str("jobId") == id);
        (await globex.GetAsync("/v1/jobs?tenant=acme")).StatusCode.Should().Be(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task Operators_see_any_tenants_jobs()
    {
        using var acme = _app.ClientFor(OrchestratorApp.AcmeKey);
        using var ops = _app.ClientFor(OrchestratorApp.OperatorKey);
        var (_, job) = await acme.ActAsync(new { input = "visible to ops" });

        (await ops.GetAsync($"/v1/jobs/{job.Str("jobId")}")).StatusCode.Should().Be(HttpStatusCode.OK);
        var list = await Api.BodyOf(await ops.GetAsync("/v1/jobs?tenant=acme&limit=200"));
        list["items"]!.AsArray().Should().Contain(j => j.Str("jobId") == job.Str("jobId"));
    }

    [Fact]
    public async Task Health_openapi_and_swagger_need_no_key()
    {
        using var client = _app.ClientFor(apiKey: null);

        (await client.GetAsync("/health/live")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await client.GetAsync("/health/ready")).StatusCode.Should().Be(HttpStatusCode.OK);
        var openapi = await client.GetStringAsync("/openapi/v1.json");
        openapi.Should().Contain("/v1/act").And.Contain("X-Api-Key");
        var schemes = System.Text.Json.Nodes.JsonNode.Parse(openapi)!["components"]!["securitySchemes"]!.AsObject();
        schemes.Select(s => s.Value!.Str("type")).Should().BeEquivalentTo(["apiKey", "http"], "the key works as X-Api-Key and as a bearer token");
        (await client.GetAsync("/swagger/index.html")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Every_problem_has_the_same_kind_of_type_link()
    {
        using var anonymous = _app.ClientFor(apiKey: null);
        using var client = _app.ClientFor();

        var unauthorized = await Api.BodyOf(await anonymous.GetAsync("/v1/jobs"));
        var missing = await Api.BodyOf(await client.GetAsync("/v1/jobs/job_00000000000000000000000000"));
        var unreadable = await Api.BodyOf(await client.PostAsync("/v1/act", new StringContent("{bad", System.Text.Encoding.UTF8, "application/json")));

        unauthorized.Str("type").Should().Be("https://httpstatuses.io/401");
        missing.Str("type").Should().Be("https://httpstatuses.io/404");
        unreadable.Str("type").Should().Be("https://httpstatuses.io/400");
    }
}
