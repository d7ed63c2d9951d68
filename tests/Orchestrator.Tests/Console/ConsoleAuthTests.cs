using System.Net;
using System.Net.Http.Json;
using Orchestrator.Tests.Approvals;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Console;

/// <summary>
/// The console's sign-in, cookie, antiforgery, roles and tenant isolation, over HTTP without a browser: the cookie never
/// opens <c>/v1</c>, a form without its token is refused, a revoked key stops working, and roles and tenants decide what
/// a page or an action reaches, with the same audit entries as the API.
/// </summary>
public sealed class ConsoleAuthTests : IClassFixture<ConsoleAuthTests.Fixture>
{
    public sealed class Fixture : IAsyncLifetime
    {
        public OrchestratorApp App { get; } = ConsoleHost.Create(modelLatencyMs: 0);
        public Uri Address { get; private set; } = null!;

        public Task InitializeAsync()
        {
            Address = App.StartKestrel();
            return Task.CompletedTask;
        }

        public HttpClient Api(string key)
        {
            var client = new HttpClient { BaseAddress = Address };
            client.DefaultRequestHeaders.Add("X-Api-Key", key);
            return client;
        }

        public async Task<HttpClient> ConsoleAsync(string key)
        {
            var client = ConsoleHost.Browserless(Address);
            var signedIn = await client.SignInAsync(key);
            signedIn.StatusCode.Should().Be(HttpStatusCode.Redirect);
            signedIn.Headers.Location!.ToString().Should().Be("/console", "a known key signs in");
            return client;
        }

        public Task DisposeAsync() => App.DisposeAsync().AsTask();
    }

    readonly Fixture _fixture;

    public ConsoleAuthTests(Fixture fixture) => _fixture = fixture;

    [Fact]
    public async Task Pages_send_a_visitor_without_a_cookie_to_sign_in()
    {
        using var client = ConsoleHost.Browserless(_fixture.Address);
        var response = await client.GetAsync("/console/jobs");
        response.StatusCode.Should().Be(HttpStatusCode.Redirect);
        response.Headers.Location!.ToString().Should().Contain("/console/signin");
        (await client.GetAsync("/console/signin")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task The_cookie_is_HttpOnly_SameSite_and_scoped_to_the_console()
    {
        using var client = ConsoleHost.Browserless(_fixture.Address);
        var response = await client.SignInAsync(OrchestratorApp.AcmeKey);
        var cookie = response.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("orchestrator-console=", StringComparison.Ordinal));
        cookie.Should().Contain("httponly").And.Contain("samesite=strict").And.Contain("path=/console");
        cookie.Should().NotContain(OrchestratorApp.AcmeKey, "the key is inside the protected ticket, never in clear");
    }

    [Fact]
    public async Task Pages_load_their_own_assets_only_and_refuse_framing()
    {
        using var client = ConsoleHost.Browserless(_fixture.Address);
        var page = await client.GetAsync("/console/signin");
        page.Headers.GetValues("Content-Security-Policy").Single().Should().Contain("default-src 'self'").And.Contain("frame-ancestors 'none'");
        page.Headers.GetValues("X-Frame-Options").Single().Should().Be("DENY");
        var html = await page.Content.ReadAsStringAsync();
        html.Should().NotContainAny("http://", "https://", "//cdn");
        foreach (var (asset, type) in new[] { ("console.css", "text/css"), ("console.js", "text/javascript") })
        {
            var href = System.Text.RegularExpressions.Regex.Match(html, $"/console/assets/{asset.Replace(".", "\\.")}\\?v=[0-9a-f]+").Value;
            href.Should().NotBeEmpty($"the page links {asset}");
            var response = await client.GetAsync(href);
            response.StatusCode.Should().Be(HttpStatusCode.OK, $"{asset} is served from the service itself");
            response.Content.Headers.ContentType!.MediaType.Should().Be(type);
        }
    }

    [Fact]
    public async Task An_unknown_key_does_not_sign_in()
    {
        using var client = ConsoleHost.Browserless(_fixture.Address);
        var response = await client.SignInAsync("test-key-nobody-knows-this");
        response.Headers.Location!.ToString().Should().Be("/console/signin");
        (await client.GetAsync("/console")).StatusCode.Should().Be(HttpStatusCode.Redirect, "no cookie was issued");
    }

    [Fact]
    public async Task The_console_cookie_does_not_authenticate_the_api()
    {
        using var console = await _fixture.ConsoleAsync(OrchestratorApp.OperatorKey);
        (await console.GetAsync("/console/jobs")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await console.GetAsync("/v1/jobs")).StatusCode.Should().Be(HttpStatusCode.Unauthorized, "/v1 takes only X-Api-Key or Bearer");
        (await console.PostAsync("/v1/admin/models/sim/quarantine", null)).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task A_form_posted_without_its_antiforgery_token_is_refused_400()
    {
        using var anonymous = ConsoleHost.Browserless(_fixture.Address);
        var signIn = await anonymous.PostAsync("/console/signin", new FormUrlEncodedContent(new Dictionary<string, string> { ["key"] = OrchestratorApp.OperatorKey }));
        signIn.StatusCode.Should().Be(HttpStatusCode.BadRequest);

        using var olga = await _fixture.ConsoleAsync(OrchestratorApp.OperatorKey);
        using var alice = _fixture.Api(OrchestratorApp.AcmeKey);
        var jobId = await alice.ActAsync(ApprovalHelpers.Script($$"""fs_write {"path":"gated/{{Guid.NewGuid():N}}.txt","content":"x"}"""));
        await alice.AwaitingAsync(jobId);
        foreach (var action in new[] { $"/console/jobs/{jobId}/cancel", "/console/models/sim/quarantine", "/console/rollouts/routing/rollback", "/console/signout" })
        {
            var response = await olga.PostAsync(action, new FormUrlEncodedContent(new Dictionary<string, string>()));
            response.StatusCode.Should().Be(HttpStatusCode.BadRequest, $"{action} without the token is refused");
        }
        var forged = await olga.PostAsync($"/console/jobs/{jobId}/cancel", new FormUrlEncodedContent(new Dictionary<string, string> { ["__antiforgery"] = "forged" }));
        forged.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await alice.GetJobAsync(jobId)).Str("status").Should().Be("awaiting_approval", "nothing ran without a valid token");

        // With the page's token the same post goes through.
        var canceled = await olga.PostFormAsync($"/console/jobs/{jobId}", $"/console/jobs/{jobId}/cancel");
        canceled.StatusCode.Should().Be(HttpStatusCode.Redirect);
        (await alice.GetJobAsync(jobId)).Str("status").Should().Be("canceled");
    }

    [Fact]
    public async Task A_revoked_key_stops_working_in_the_console()
    {
        using var ops = _fixture.Api(OrchestratorApp.OperatorKey);
        var created = await ops.PostAsJsonAsync("/v1/admin/keys", new { tenant = "acme", principal = "kim", roles = new[] { "user" } });
        var key = await Api.BodyOf(created);
        using var kim = await _fixture.ConsoleAsync(key.Str("key"));
        (await kim.GetAsync("/console/jobs")).StatusCode.Should().Be(HttpStatusCode.OK);

        (await ops.DeleteAsync($"/v1/admin/keys/{key.Str("id")}")).IsSuccessStatusCode.Should().BeTrue();
        var after = await kim.GetAsync("/console/jobs");
        after.StatusCode.Should().Be(HttpStatusCode.Redirect, "the cookie's key is checked again on every request");
        after.Headers.Location!.ToString().Should().Contain("/console/signin");
    }

    [Fact]
    public async Task Roles_decide_what_a_key_reaches_and_a_refusal_is_audited()
    {
        using var alice = await _fixture.ConsoleAsync(OrchestratorApp.AcmeKey);
        var page = await alice.GetStringAsync("/console/models");
        page.Should().NotContain("Quarantine", "a user sees models but not the operator's controls");
        var denied = await alice.PostFormAsync("/console/models", "/console/models/sim/quarantine");
        denied.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await alice.GetAsync("/console/evaluations")).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await alice.GetAsync("/console/rollouts")).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await alice.PostFormAsync("/console/models", "/console/rollouts/routing/rollback", new() { ["reason"] = "not mine" })).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        using var ops = _fixture.Api(OrchestratorApp.OperatorKey);
        (await ops.AuditAsync("access.denied")).Select(e => e!.AsObject()).Should().Contain(e => e.Str("principal") == "alice" && e.Str("resource").Contains("/console/models/sim/quarantine"));

        using var erin = await _fixture.ConsoleAsync(ConsoleHost.ApproverOnlyKey);
        (await erin.GetAsync("/console/jobs")).StatusCode.Should().Be(HttpStatusCode.Forbidden, "an approver-only key does not read jobs, as in the API");
        (await erin.GetAsync("/console/approvals")).StatusCode.Should().Be(HttpStatusCode.OK);

        using var audrey = await _fixture.ConsoleAsync(ConsoleHost.AuditorKey);
        var audit = await audrey.GetStringAsync("/console/audit");
        audit.Should().Contain("data-testid=\"audit\"");
        audit.Should().NotContain(">ops<", "an auditor reads its own tenant's trail only");
        var refused = await alice.GetAsync("/console/audit");
        refused.StatusCode.Should().Be(HttpStatusCode.Forbidden, "a user may not read the trail, as in the API");
        (await refused.Content.ReadAsStringAsync()).Should().Contain("auditor").And.NotContain("data-testid=\"audit\"");
    }

    [Fact]
    public async Task Quarantine_from_the_console_is_the_api_s_quarantine_with_its_audit_entry()
    {
        using var olga = await _fixture.ConsoleAsync(OrchestratorApp.OperatorKey);
        using var ops = _fixture.Api(OrchestratorApp.OperatorKey);
        (await olga.PostFormAsync("/console/models", "/console/models/sim/quarantine")).StatusCode.Should().Be(HttpStatusCode.Redirect);
        var models = await Api.BodyOf(await ops.GetAsync("/v1/models"));
        models["items"]!.AsArray().Single(m => m!.Str("id") == "sim")!.Str("status").Should().Be("quarantined");
        (await ops.AuditAsync("model.quarantine")).Select(e => e!.AsObject()).Should().Contain(e => e.Str("principal") == "olga" && e.Str("resource") == "models/sim");

        (await olga.PostFormAsync("/console/models", "/console/models/sim/release")).StatusCode.Should().Be(HttpStatusCode.Redirect);
        models = await Api.BodyOf(await ops.GetAsync("/v1/models"));
        models["items"]!.AsArray().Single(m => m!.Str("id") == "sim")!.Str("status").Should().NotBe("quarantined");
        (await ops.AuditAsync("model.release")).Should().NotBeEmpty();
    }

    [Fact]
    public async Task Another_tenant_s_job_its_events_and_its_replay_are_not_found()
    {
        using var alice = _fixture.Api(OrchestratorApp.AcmeKey);
        var (_, job) = await alice.ActAsync(new { intent = "text/respond", input = "only for acme" });
        using var bob = await _fixture.ConsoleAsync(OrchestratorApp.GlobexKey);
        foreach (var path in new[] { $"/console/jobs/{job.Str("jobId")}", $"/console/jobs/{job.Str("jobId")}/events", $"/console/replays/{job.Str("traceId")}" })
        {
            var response = await bob.GetAsync(path);
            response.StatusCode.Should().Be(HttpStatusCode.NotFound, path);
            (await response.Content.ReadAsStringAsync()).Should().NotContain("only for acme").And.NotContain("acme");
        }
        var list = await bob.GetStringAsync("/console/jobs?tenant=acme");
        list.Should().NotContain(job.Str("jobId")).And.NotContain("acme");

        using var own = await _fixture.ConsoleAsync(OrchestratorApp.AcmeKey);
        (await own.GetStringAsync($"/console/jobs/{job.Str("jobId")}")).Should().Contain("only for acme");
    }
}
