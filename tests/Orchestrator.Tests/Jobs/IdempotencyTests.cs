using System.Net;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Jobs;

public sealed class IdempotencyTests : IClassFixture<IdempotencyTests.App>
{
    public sealed class App : IDisposable
    {
        public OrchestratorApp Host { get; } = new();
        public void Dispose() => Host.Dispose();
    }

    readonly OrchestratorApp _app;

    public IdempotencyTests(App app) => _app = app.Host;

    [Fact]
    public async Task The_same_header_key_returns_the_original_job()
    {
        using var client = _app.ClientFor();
        var key = Guid.NewGuid().ToString();

        var (first, original) = await client.ActAsync(new { input = "once" }, idempotencyKey: key);
        var (second, again) = await client.ActAsync(new { input = "once" }, idempotencyKey: key);

        first.StatusCode.Should().Be(HttpStatusCode.OK);
        second.StatusCode.Should().Be(HttpStatusCode.OK);
        again.Str("jobId").Should().Be(original.Str("jobId"));
        second.Headers.GetValues("Idempotent-Replayed").Should().Equal("true");
    }

    [Fact]
    public async Task The_body_key_works_and_async_replays_are_202()
    {
        using var client = _app.ClientFor();
        var key = Guid.NewGuid().ToString();

        var (_, original) = await client.ActAsync(new { input = "once", mode = "async", idempotencyKey = key });
        var (second, again) = await client.ActAsync(new { input = "once", mode = "async", idempotencyKey = key });

        second.StatusCode.Should().Be(HttpStatusCode.Accepted);
        again.Str("jobId").Should().Be(original.Str("jobId"));
    }

    [Fact]
    public async Task Concurrent_requests_with_one_key_make_one_job()
    {
        using var client = _app.ClientFor();
        var key = Guid.NewGuid().ToString();

        var results = await Task.WhenAll(Enumerable.Range(0, 12)
            .Select(_ => client.ActAsync(new { input = "race", mode = "async" }, idempotencyKey: key)));

        results.Should().OnlyContain(r => r.Response.StatusCode == HttpStatusCode.Accepted);
        results.Select(r => r.Body.Str("jobId")).Distinct().Should().ContainSingle();
    }

    [Fact]
    public async Task The_same_key_from_another_tenant_is_another_job()
    {
        using var acme = _app.ClientFor(OrchestratorApp.AcmeKey);
        using var globex = _app.ClientFor(OrchestratorApp.GlobexKey);
        var key = Guid.NewGuid().ToString();

        var (_, a) = await acme.ActAsync(new { input = "x" }, idempotencyKey: key);
        var (_, b) = await globex.ActAsync(new { input = "x" }, idempotencyKey: key);

        b.Str("jobId").Should().NotBe(a.Str("jobId"));
        b.Str("tenant").Should().Be("globex");
    }

    [Fact]
    public async Task Header_and_body_keys_that_differ_are_400()
    {
        using var client = _app.ClientFor();

        var (response, problem) = await client.ActAsync(new { input = "x", idempotencyKey = "a" }, idempotencyKey: "b");

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        problem["errors"]!["idempotencyKey"].Should().NotBeNull();
    }
}
