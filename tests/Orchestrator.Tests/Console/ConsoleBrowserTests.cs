using System.Net;
using System.Net.Http.Json;
using Microsoft.Playwright;
using Orchestrator.Tests.Approvals;
using Orchestrator.Tests.Harness;
using static Microsoft.Playwright.Assertions;

namespace Orchestrator.Tests.Console;

/// <summary>
/// The console in a real browser (the system's Chromium through Playwright) against the service on a real port: an
/// operator follows a job live to its end, an approver approves an edited call, another tenant's user finds nothing of
/// the first tenant; every page is kept as a screenshot (<see cref="ConsoleBrowser.Screenshots"/>).
/// </summary>
public sealed class ConsoleBrowserTests : IClassFixture<ConsoleBrowserTests.Fixture>
{
    public sealed class Fixture : IAsyncLifetime
    {
        public OrchestratorApp App { get; } = ConsoleHost.Create();
        public ConsoleBrowser Browser { get; } = new();
        public Uri Address { get; private set; } = null!;

        public Task InitializeAsync()
        {
            Address = App.StartKestrel();
            return Task.CompletedTask;
        }

        /// <summary>A client of the API on the same real port, with a key.</summary>
        public HttpClient Api(string key)
        {
            var client = new HttpClient { BaseAddress = Address };
            client.DefaultRequestHeaders.Add("X-Api-Key", key);
            return client;
        }

        public async Task DisposeAsync()
        {
            await Browser.DisposeAsync();
            await App.DisposeAsync();
        }
    }

    readonly Fixture _fixture;

    public ConsoleBrowserTests(Fixture fixture) => _fixture = fixture;

    async Task<IPage> SignedInAsync(string key, bool phone = false)
    {
        var page = await _fixture.Browser.NewPageAsync(_fixture.Address, phone);
        await page.GotoAsync("/console");
        // Not signed in: the console sends the browser to its sign-in form.
        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/console/signin"));
        if (!phone)
            await ConsoleBrowser.ShotAsync(page, "signin");
        await page.GetByLabel("API key").FillAsync(key);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Sign out" })).ToBeVisibleAsync();
        return page;
    }

    [SkippableFact]
    public async Task An_operator_sees_a_job_run_live_to_its_end_and_its_graph()
    {
        await _fixture.Browser.RequireAsync();
        var page = await SignedInAsync(OrchestratorApp.OperatorKey);
        using var alice = _fixture.Api(OrchestratorApp.AcmeKey);
        var (response, accepted) = await alice.ActAsync(new { intent = "text/respond", mode = "async", input = "watch me run" });
        response.StatusCode.Should().Be(HttpStatusCode.Accepted, accepted.ToJsonString());
        var jobId = accepted.Str("jobId");

        await page.GotoAsync($"/console/jobs/{jobId}");
        var status = page.GetByTestId("job-status");
        (await status.TextContentAsync()).Should().NotBe("completed", "the model takes 1.2 s, so the page opens on an unfinished job");
        await page.EvaluateAsync("() => { window.__notReloaded = true; document.getElementById('summary').__kept = true; document.getElementById('timeline').__kept = true; }");

        // The page's script follows the events stream and redraws: the job ends on this page, without a reload.
        await Expect(status).ToHaveTextAsync("completed", new() { Timeout = 20_000 });
        (await page.EvaluateAsync<bool>("() => window.__notReloaded === true")).Should().BeTrue("the status changed live, not by reloading the page");
        (await page.EvaluateAsync<bool>("() => document.getElementById('summary').__kept === true && document.getElementById('timeline').__kept === true"))
            .Should().BeTrue("only what changed is updated: the page's headings are the same elements as before");
        await Expect(page.GetByTestId("attempts")).ToHaveTextAsync("1");
        await Expect(page.Locator("[data-testid=timeline] li[data-status=succeeded]")).Not.ToHaveCountAsync(0);
        await Expect(page.GetByTestId("output")).ToContainTextAsync("watch me run");
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Cancel job" })).ToHaveCountAsync(0);
        await ConsoleBrowser.ShotAsync(page, "job");

        // The graph in the page is the API's graph.
        var graph = await Api.BodyOf(await alice.GetAsync($"/v1/jobs/{jobId}/graph"));
        var nodes = graph["nodes"]!.AsArray();
        await Expect(page.Locator("[data-testid=timeline] li")).ToHaveCountAsync(nodes.Count);
        foreach (var node in nodes)
            await Expect(page.Locator($"[data-testid=timeline] li[data-node='{node!.Str("id")}']")).ToHaveAttributeAsync("data-status", node.Str("status"));
        await page.Context.CloseAsync();
    }

    [SkippableFact]
    public async Task An_approver_approves_an_edited_call_and_sees_the_job_finish()
    {
        await _fixture.Browser.RequireAsync();
        using var alice = _fixture.Api(OrchestratorApp.AcmeKey);
        var path = $"gated/{Guid.NewGuid():N}.txt";
        var jobId = await alice.ActAsync(ApprovalHelpers.Script($$"""fs_write {"path":"{{path}}","content":"as the model wrote it"}"""));
        await alice.AwaitingAsync(jobId);

        var page = await SignedInAsync(ConsoleHost.ApproverKey);
        await page.GetByRole(AriaRole.Link, new() { Name = "Approvals" }).ClickAsync();
        var card = page.Locator("article[data-testid=approval]", new() { HasText = jobId });
        await Expect(card).ToContainTextAsync("fs/write");
        await Expect(card.GetByTestId("arguments")).ToContainTextAsync("as the model wrote it");
        await ConsoleBrowser.ShotAsync(page, "approvals");

        await card.GetByLabel("Arguments to run").FillAsync($$"""{"path":"{{path}}","content":"as the approver edited it"}""");
        await card.GetByLabel("Reason (optional)").FillAsync("tone it down");
        await card.GetByRole(AriaRole.Button, new() { Name = "Approve" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("with edited arguments");

        await page.GotoAsync($"/console/jobs/{jobId}");
        await Expect(page.GetByTestId("job-status")).ToHaveTextAsync("completed", new() { Timeout = 20_000 });
        var file = Path.Combine(_fixture.App.Folder, "workspaces", "acme", path);
        (await File.ReadAllTextAsync(file)).Should().Be("as the approver edited it", "the edited arguments are what ran");

        // On record exactly as an approval through the API: who decided, and the edit.
        using var olga = _fixture.Api(OrchestratorApp.OperatorKey);
        (await olga.AuditAsync("approval.approve")).Select(e => e!.AsObject()).Should().Contain(
            e => e.Str("principal") == "dave" && e.ToJsonString().Contains(jobId), "the console's approval is on record as the approver's");
        (await olga.AuditAsync("approval.edit")).Select(e => e!.AsObject()).Should().Contain(
            e => e.Str("principal") == "dave" && e.ToJsonString().Contains("as the approver edited it"), "the edit is on record as an edit, as through the API");
        await page.Context.CloseAsync();
    }

    [SkippableFact]
    public async Task A_user_of_another_tenant_finds_nothing_of_the_first()
    {
        await _fixture.Browser.RequireAsync();
        using var alice = _fixture.Api(OrchestratorApp.AcmeKey);
        var (_, acmeJob) = await alice.ActAsync(new { intent = "text/respond", input = "acme's secret plan" });
        var jobId = acmeJob.Str("jobId");
        var traceId = acmeJob.Str("traceId");

        var page = await SignedInAsync(OrchestratorApp.GlobexKey);
        foreach (var path in new[] { "/console", "/console/jobs", $"/console/jobs?tenant=acme", "/console/approvals", "/console/tenants", "/console/models" })
        {
            await page.GotoAsync(path);
            var html = await page.ContentAsync();
            html.Should().NotContain("acme", $"{path} renders nothing of tenant acme to a globex user");
            html.Should().NotContain(jobId);
        }
        var job = await page.GotoAsync($"/console/jobs/{jobId}");
        job!.Status.Should().Be(404);
        (await page.ContentAsync()).Should().NotContain("secret plan").And.NotContain("acme");
        var replay = await page.GotoAsync($"/console/replays/{traceId}");
        replay!.Status.Should().Be(404);
        (await page.ContentAsync()).Should().NotContain("secret plan").And.NotContain("acme");
        await page.GotoAsync("/console/audit");
        (await page.ContentAsync()).Should().NotContain("acme");
        await page.Context.CloseAsync();
    }

    [SkippableFact]
    public async Task An_operator_sets_a_canary_sees_it_rolls_it_back_and_reads_the_history()
    {
        await _fixture.Browser.RequireAsync();
        using var olga = _fixture.Api(OrchestratorApp.OperatorKey);
        var routing = new { routing = new Dictionary<string, object> { ["text/respond"] = new { strategy = "cost-first", models = new[] { "sim" }, hedge = false } } };
        var created = await Api.BodyOf(await olga.PostAsJsonAsync("/v1/admin/artifacts/routing", routing));
        var version = created.Str("version");
        var hash = created.Str("contentHash");

        var page = await SignedInAsync(OrchestratorApp.OperatorKey);
        await page.GetByRole(AriaRole.Link, new() { Name = "Rollouts" }).ClickAsync();
        await Expect(page.Locator("h1")).ToHaveTextAsync("Rollouts");
        var section = page.GetByTestId("rollout-routing");
        await Expect(section.GetByTestId("versions-routing")).ToContainTextAsync(hash); // the versions list shows each content hash

        // Set the canary: the form's fields by their labels, as a keyboard or screen reader user reaches them.
        var set = section.GetByTestId("set-routing");
        await set.GetByLabel("Candidate version").SelectOptionAsync(version);
        await set.GetByLabel("Mode").SelectOptionAsync("canary");
        await set.GetByLabel("Percent of callers").FillAsync("10");
        await set.GetByLabel("Reason (optional)").FillAsync("try cost-first");
        await set.GetByRole(AriaRole.Button, new() { Name = "Set candidate" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync($"candidate is {version}");
        await Expect(section.GetByTestId("candidate-routing")).ToContainTextAsync(version);
        await Expect(section.GetByTestId("mode-routing")).ToHaveTextAsync("canary");
        await Expect(section.GetByTestId("percent-routing")).ToHaveTextAsync("10%");
        await Expect(section.GetByTestId("arms-routing")).ToContainTextAsync(version); // the arms, as the API compares them
        var api = await Api.BodyOf(await olga.GetAsync("/v1/admin/rollouts/routing"));
        api.Str("candidate.version").Should().Be(version, "the page's change is the API's state");
        api.Str("mode").Should().Be("canary");
        api.Str("percent").Should().Be("10");

        // Promote without a passing evaluation: refused, with the API's problem shown.
        await section.GetByTestId("promote-routing").GetByRole(AriaRole.Button, new() { Name = "Promote" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("needs a passing evaluation");
        await Expect(section.GetByTestId("candidate-routing")).ToContainTextAsync(version); // still the candidate
        await ConsoleBrowser.ShotAsync(page, "rollouts");

        var rollback = section.GetByTestId("rollback-routing");
        await rollback.GetByLabel("Reason for rolling back").FillAsync("not today");
        await rollback.GetByRole(AriaRole.Button, new() { Name = "Roll back" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("rolled back");
        await Expect(section.GetByTestId("candidate-routing")).ToHaveTextAsync("none");
        var latest = section.GetByTestId("history-routing").Locator("tbody tr").First;
        await Expect(latest).ToContainTextAsync("rollback");
        await Expect(latest).ToContainTextAsync("olga");
        await Expect(latest).ToContainTextAsync("not today");
        await Expect(section.GetByTestId("history-routing")).ToContainTextAsync("try cost-first");
        await ConsoleBrowser.ShotAsync(page, "rollouts-history");
        await page.Context.CloseAsync();

        // On record exactly as through the API: the change, the refused promotion, the rollback, each as olga.
        foreach (var action in new[] { "rollout.update", "rollout.promote", "rollout.rollback" })
            (await olga.AuditAsync(action)).Select(e => e!.AsObject()).Should().Contain(e => e.Str("principal") == "olga" && e.Str("resource") == "routing", action);
        (await olga.AuditAsync("rollout.promote")).Select(e => e!.AsObject()).Should().Contain(e => e.Str("decision") == "denied", "the refused promotion is on record as refused");

        // Not an operator: no Rollouts in the nav, and the page is refused.
        var user = await SignedInAsync(OrchestratorApp.AcmeKey);
        await Expect(user.GetByRole(AriaRole.Navigation, new() { Name = "Console" }).GetByRole(AriaRole.Link, new() { Name = "Rollouts" })).ToHaveCountAsync(0);
        var refused = await user.GotoAsync("/console/rollouts");
        refused!.Status.Should().Be(403);
        (await user.ContentAsync()).Should().NotContain(hash);
        await user.Context.CloseAsync();
    }

    [SkippableFact]
    public async Task Every_page_renders_for_an_operator_at_1280_px_and_on_a_phone()
    {
        await _fixture.Browser.RequireAsync();
        using var alice = _fixture.Api(OrchestratorApp.AcmeKey);
        var (_, done) = await alice.ActAsync(new { intent = "text/respond", input = "for the screenshots" });
        var page = await SignedInAsync(OrchestratorApp.OperatorKey);
        var pages = new (string Name, string Path)[]
        {
            ("overview", "/console"), ("jobs", "/console/jobs"), ("models", "/console/models"), ("tenants", "/console/tenants"),
            ("audit", "/console/audit?verify=1"), ("replay", $"/console/replays/{done.Str("traceId")}?against={done.Str("traceId")}"),
            ("evaluations", "/console/evaluations"), ("rollouts-overview", "/console/rollouts"),
        };
        foreach (var (name, path) in pages)
        {
            var response = await page.GotoAsync(path);
            response!.Status.Should().Be(200, $"{path} renders for an operator");
            await Expect(page.Locator("h1")).ToBeVisibleAsync();
            if (name == "audit")
                await Expect(page.GetByTestId("verify")).ToContainTextAsync("The chain holds");
            await ConsoleBrowser.ShotAsync(page, name);
        }
        await page.GotoAsync($"/console/replays/{done.Str("traceId")}");
        await page.GetByRole(AriaRole.Button, new() { Name = "Rerun" }).ClickAsync();
        await Expect(page.GetByTestId("rerun-result")).ToContainTextAsync("Identical");
        await Expect(page.GetByTestId("side-by-side")).ToBeVisibleAsync();
        await ConsoleBrowser.ShotAsync(page, "replay-rerun");

        // Keyboard: the first Tab reaches the skip link, which is focusable and visible.
        await page.GotoAsync("/console/jobs");
        await page.Keyboard.PressAsync("Tab");
        (await page.EvaluateAsync<string>("() => document.activeElement.className")).Should().Be("skip");
        await page.Context.CloseAsync();

        var phone = await SignedInAsync(OrchestratorApp.OperatorKey, phone: true);
        await phone.GotoAsync($"/console/jobs/{done.Str("jobId")}");
        await ConsoleBrowser.ShotAsync(phone, "job-phone");
        var width = await phone.EvaluateAsync<int>("() => document.documentElement.scrollWidth");
        width.Should().BeLessThanOrEqualTo(390, "the page fits a phone's width without scrolling sideways");
        await phone.GotoAsync("/console");
        await ConsoleBrowser.ShotAsync(phone, "overview-phone");
        await phone.Context.CloseAsync();
    }
}
