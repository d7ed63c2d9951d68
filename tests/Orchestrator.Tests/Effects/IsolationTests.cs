using System.Text.Json.Nodes;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Effects;

/// <summary>
/// The escape corpus: a model's tool calls that try to leave their scope, through the public API. Each is blocked
/// with <c>sandbox_violation</c> or <c>capability_denied</c> and the rule that fired, in the job, the audit trail and
/// the telemetry by tenant and tool; what the kernel view of a sandbox simply lacks (another tenant's files,
/// /etc/shadow) is absent inside it.
/// </summary>
public sealed class IsolationTests : IClassFixture<IsolationTests.App>
{
    public const string DeployToken = "tok-3f9a8b7c6d5e4f30";
    public const string ApiToken = "hdr-0a1b2c3d4e5f6a7b";

    public sealed class App : IAsyncLifetime
    {
        public FakeHttpServer Http { get; private set; } = null!;
        public OrchestratorApp Host { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            Http = await FakeHttpServer.StartAsync();
            Host = new OrchestratorApp(new Dictionary<string, string?>
            {
                ["Orchestrator:Effects:ProcessAllowList:0"] = "sh",
                ["Orchestrator:Effects:ProcessAllowList:1"] = "cat",
                ["Orchestrator:Effects:ProcessAllowList:2"] = "perl",
                ["Orchestrator:Effects:ProcessAllowList:3"] = "yes",
                ["Orchestrator:Effects:ProcessAllowList:4"] = "sleep",
                ["Orchestrator:Effects:ProcessAllowList:5"] = "ls",
                ["Orchestrator:Effects:ProcessAllowList:6"] = "ln",
                ["Orchestrator:Effects:Sandbox:CpuSeconds"] = "1",
                ["Orchestrator:Effects:Sandbox:MemoryMb"] = "128",
                ["Orchestrator:Effects:Sandbox:Processes"] = "32",
                ["Orchestrator:Effects:Sandbox:FileSizeMb"] = "1",
                ["Orchestrator:Effects:Sandbox:TmpMb"] = "4",
                ["Orchestrator:Effects:Sandbox:OpenFiles"] = "32",
                ["Orchestrator:Effects:Sandbox:WallMs"] = "60000",
                ["Orchestrator:Effects:Sandbox:OutputBytes"] = "10000",
                ["Orchestrator:Effects:HttpAllowList:0"] = "127.0.0.1",
                ["Orchestrator:Effects:HttpAllowList:1"] = "169.254.169.254",
                ["Orchestrator:Effects:HttpAllowList:2"] = "10.1.2.3",
                ["Orchestrator:Effects:HttpAllowList:3"] = "localhost",
                ["Orchestrator:Effects:HttpAllowList:4"] = "internal.test",
                ["Orchestrator:Effects:HttpRules:0:Host"] = "api.test",
                ["Orchestrator:Effects:HttpRules:0:AllowAddresses:0"] = "127.0.0.1/32",
                ["Orchestrator:Effects:HostAddresses:api.test"] = "127.0.0.1",
                ["Orchestrator:Effects:HostAddresses:internal.test"] = "10.1.2.3",
                ["Orchestrator:Secrets:0:Name"] = "DEPLOY_TOKEN",
                ["Orchestrator:Secrets:0:Value"] = DeployToken,
                ["Orchestrator:Secrets:0:Capabilities:0"] = "process/run",
                ["Orchestrator:Secrets:0:Tenants:0"] = "acme",
                ["Orchestrator:Secrets:0:Principals:0"] = "alice",
                ["Orchestrator:Secrets:0:As"] = "env:DEPLOY_TOKEN",
                ["Orchestrator:Secrets:1:Name"] = "API_TOKEN",
                ["Orchestrator:Secrets:1:Value"] = ApiToken,
                ["Orchestrator:Secrets:1:Capabilities:0"] = "http/fetch",
                ["Orchestrator:Secrets:1:Tenants:0"] = "acme",
                ["Orchestrator:Secrets:1:Hosts:0"] = "api.test",
                ["Orchestrator:Secrets:1:As"] = "header:X-Api-Token",
            });
        }

        public async Task DisposeAsync()
        {
            Host.Dispose();
            await Http.DisposeAsync();
        }
    }

    readonly App _fixture;
    readonly OrchestratorApp _app;

    public IsolationTests(App app) => (_fixture, _app) = (app, app.Host);

    string Workspace(string tenant) => Directory.CreateDirectory(Path.Combine(_app.Folder, "workspaces", tenant)).FullName;

    string Port => new Uri(_fixture.Http.BaseUrl).Port.ToString();

    static string Script(params string[] calls) => "Do the work.\n" + string.Join("\n", calls.Select(c => "/call " + c));

    async Task<JsonObject> Act(string call, string key = OrchestratorApp.AcmeKey)
    {
        using var client = _app.ClientFor(key);
        var (_, body) = await client.ActAsync(new { intent = "agent/run", input = Script(call) });
        return body;
    }

    /// <summary>The act failed with this code and rule, and the rule is in the effect node's error, one audit entry and the telemetry.</summary>
    async Task<JsonObject> Blocked(string call, string code, string rule, string tool, string key = OrchestratorApp.AcmeKey, string tenant = "acme")
    {
        var problem = await Act(call, key);
        problem.Str("code").Should().Be(code, problem.ToJsonString());
        problem.Str("detail").Should().Contain($"(rule {rule})", "the job's error names the rule that fired");
        problem.Str("rule").Should().Be(rule, "a sync act's problem carries the rule as a field");
        var jobId = problem.Str("jobId");

        using var client = _app.ClientFor(key);
        var graph = await Api.BodyOf(await client.GetAsync($"/v1/jobs/{jobId}/graph"));
        var node = graph["nodes"]!.AsArray().Single(n => n.Str("kind") == "effect");
        node.Str("error.code").Should().Be(code);
        node.Str("error.message").Should().Contain($"(rule {rule})");
        node.Str("error.rule").Should().Be(rule);
        (await client.GetJobAsync(jobId)).Str("error.rule").Should().Be(rule, "the job view's error names the rule");

        using var ops = _app.ClientFor(OrchestratorApp.OperatorKey);
        var audit = await Api.BodyOf(await ops.GetAsync($"/v1/audit?tenant={tenant}&action=effect.denied&limit=200"));
        var entry = audit["items"]!.AsArray().Should().ContainSingle(i => i.Str("resource").StartsWith($"jobs/{jobId}/"), "every block is one audit entry").Subject!;
        entry.Str("decision").Should().Be("denied");
        entry.ToJsonString().Should().Contain(rule).And.Contain(code);

        var telemetry = await Api.BodyOf(await ops.GetAsync($"/v1/diag/telemetry?tenant={tenant}"));
        telemetry.ToJsonString().Should().Contain($"effects.denied.{tool}.{rule}", "blocks are counted by tenant, tool and rule");
        return problem;
    }

    // ---- files ----

    [SkippableTheory]
    [InlineData("""fs_read {"path":"/etc/shadow"}""", "fs.absolute")]
    [InlineData("""fs_read {"path":"../../../../../../etc/shadow"}""", "fs.outside")]
    [InlineData("""fs_read {"path":"../globex/secret.txt"}""", "fs.outside")]
    [InlineData("""fs_list {"path":"../globex"}""", "fs.outside")]
    [InlineData("""fs_write {"path":"../escape.txt","content":"x"}""", "fs.outside")]
    [InlineData("""fs_append {"path":"a/../../../escape.txt","content":"x"}""", "fs.outside")]
    public async Task File_effects_outside_the_workspace_are_denied_and_audited(string call, string rule)
    {
        File.WriteAllText(Path.Combine(Workspace("globex"), "secret.txt"), "globex-only");

        var problem = await Blocked(call, "capability_denied", rule, call.StartsWith("fs_read") ? "fs/read" : call.StartsWith("fs_list") ? "fs/list" : call.StartsWith("fs_write") ? "fs/write" : "fs/append");

        problem.ToJsonString().Should().NotContain("globex-only");
        File.Exists(Path.Combine(_app.Folder, "workspaces", "escape.txt")).Should().BeFalse();
        File.Exists(Path.Combine(_app.Folder, "escape.txt")).Should().BeFalse();
    }

    [SkippableFact]
    public async Task A_symlink_out_of_the_workspace_is_denied_whoever_made_it()
    {
        Sandboxes.Require();
        File.WriteAllText(Path.Combine(Workspace("globex"), "secret.txt"), "globex-only");
        var link = $"out-{Guid.NewGuid():N}";
        File.CreateSymbolicLink(Path.Combine(Workspace("acme"), link), Path.Combine(Workspace("globex"), "secret.txt"));

        await Blocked($$"""fs_read {"path":"{{link}}"}""", "capability_denied", "fs.symlink", "fs/read");
        await Blocked($$"""fs_write {"path":"{{link}}","content":"overwrite"}""", "capability_denied", "fs.symlink", "fs/write");

        // A link made by a sandboxed program is no way out either.
        var made = $"made-{Guid.NewGuid():N}";
        (await Act($$"""process_run {"argv":["ln","-s","/etc/passwd","{{made}}"]}""")).Str("status").Should().Be("completed");
        await Blocked($$"""fs_read {"path":"{{made}}"}""", "capability_denied", "fs.symlink", "fs/read");
        File.ReadAllText(Path.Combine(Workspace("globex"), "secret.txt")).Should().Be("globex-only");
    }

    // ---- processes: what the sandbox does not contain ----

    [SkippableFact]
    public async Task A_sandboxed_program_sees_no_shadow_file_no_other_tenant_and_cannot_write_outside()
    {
        Sandboxes.Require();
        File.WriteAllText(Path.Combine(Workspace("globex"), "secret.txt"), "globex-only");
        var escape = Path.Combine(_app.Folder, $"escape-{Guid.NewGuid():N}");
        var script = "cat /etc/shadow; echo shadow=$?; " +
                     $"cat {Workspace("globex")}/secret.txt ../globex/secret.txt; echo tenant=$?; " +
                     $"echo x > {escape}; echo x > /usr/escape; echo x > /etc/escape; echo write=$?; " +
                     "ls /; id -u; echo x > inside.txt && echo inside=ok";

        var job = await Act($$"""process_run {"argv":["sh","-c","{{script}}"]}""");

        job.Str("status").Should().Be("completed", job.ToJsonString());
        var text = job.Str("output.text");
        text.Should().Contain("shadow=1").And.Contain("tenant=1").And.Contain("write=").And.Contain("inside=ok");
        text.Should().NotContain("root:").And.NotContain("globex-only");
        File.Exists(escape).Should().BeFalse();
        File.Exists("/usr/escape").Should().BeFalse();
        File.ReadAllText(Path.Combine(Workspace("acme"), "inside.txt")).Should().Be("x\n", "the workspace is the one writable place");
    }

    [SkippableFact]
    public async Task Files_a_program_writes_outside_the_workspace_cannot_hold_more_than_the_private_tmp()
    {
        Sandboxes.Require();
        // /tmp and the root bwrap builds are memory: a program filling them would hold host memory past MemoryMb.
        var script = "for i in 1 2 3 4 5 6; do head -c 900000 /dev/zero > /tmp/f$i || echo tmpfull; done; " +
                     "echo x > /escape; echo root=$?; echo x > /dev/shm/escape; echo shm=$?; echo ok > /dev/null; echo null=$?";

        var job = await Act($$"""process_run {"argv":["sh","-c","{{script}}"]}""");

        job.Str("status").Should().Be("completed", job.ToJsonString());
        var text = job.Str("output.text");
        text.Should().Contain("tmpfull", "/tmp is bounded by TmpMb (4 MiB here), below the 5.4 MB written in files each under FileSizeMb")
            .And.NotContain("root=0").And.NotContain("shm=0").And.Contain("null=0");
    }

    [SkippableFact]
    public async Task A_sandboxed_program_has_no_network()
    {
        Sandboxes.Require();

        var hits = _fixture.Http.Paths.Count(p => p == "/");
        var job = await Act($$"""process_run {"argv":["perl","-MSocket","-e","socket(S, PF_INET, SOCK_STREAM, 0) or die; print connect(S, pack_sockaddr_in({{Port}}, inet_aton('127.0.0.1'))) ? 'reached' : 'refused: '.$!"]}""");

        job.Str("status").Should().Be("completed", job.ToJsonString());
        job.Str("output.text").Should().Contain("refused").And.NotContain("reached");
        _fixture.Http.Paths.Count(p => p == "/").Should().Be(hits, "nothing reached the host's loopback from the sandbox");
    }

    // ---- processes: limits ----

    [SkippableTheory]
    [InlineData("""process_run {"argv":["sh","-c","f() { f | f & }; f; sleep 2"]}""", "sandbox.processes")]
    [InlineData("""process_run {"argv":["perl","-e","$x = 'a' x (512*1024*1024); print length $x"]}""", "sandbox.memory")]
    [InlineData("""process_run {"argv":["sh","-c","while :; do :; done"]}""", "sandbox.cpu")]
    [InlineData("""process_run {"argv":["yes"]}""", "sandbox.output")]
    [InlineData("""process_run {"argv":["sleep","30"],"timeoutMs":500}""", "sandbox.wall")]
    [InlineData("""process_run {"argv":["perl","-e","open(my $f, '>', 'big.bin') or die; print $f 'x' x (4*1024*1024); close $f or die 'close: '.$!"]}""", "sandbox.file-size")]
    [InlineData("""process_run {"argv":["perl","-e","for (1..100) { open(my $f, '<', '/dev/null') or die \"open: $!\\n\"; push @f, $f }"]}""", "sandbox.open-files")]
    public async Task A_program_past_a_limit_is_stopped_and_the_limit_named(string call, string rule)
    {
        Sandboxes.Require();

        await Blocked(call, "sandbox_violation", rule, "process/run");
    }

    [SkippableFact]
    public async Task The_same_attempt_gives_the_same_record()
    {
        Sandboxes.Require();
        const string call = """fs_read {"path":"../globex/secret.txt"}""";

        var first = await Blocked(call, "capability_denied", "fs.outside", "fs/read");
        var second = await Blocked(call, "capability_denied", "fs.outside", "fs/read");

        second.Str("detail").Should().Be(first.Str("detail"));
        using var ops = _app.ClientFor(OrchestratorApp.OperatorKey);
        var audit = await Api.BodyOf(await ops.GetAsync("/v1/audit?tenant=acme&action=effect.denied&limit=200"));
        var entries = audit["items"]!.AsArray().Where(i => i!.Str("resource").StartsWith($"jobs/{first.Str("jobId")}/") || i!.Str("resource").StartsWith($"jobs/{second.Str("jobId")}/")).ToList();
        entries.Should().HaveCount(2);
        entries[0].Str("reason").Should().Be(entries[1].Str("reason"));
        entries[0]!["details"]!.ToJsonString().Should().Be(entries[1]!["details"]!.ToJsonString());
    }

    // ---- network ----

    [SkippableTheory]
    [InlineData("http://127.0.0.1:{port}/", "http.address.loopback")]
    [InlineData("http://169.254.169.254/latest/meta-data/", "http.address.metadata")]
    [InlineData("http://10.1.2.3/", "http.address.private")]
    [InlineData("http://localhost:{port}/", "http.address.loopback")]
    [InlineData("http://internal.test/", "http.address.private")]
    [InlineData("http://api.test:{port}/redirect?to=http://169.254.169.254/latest/meta-data/", "http.address.metadata")]
    [InlineData("http://api.test:{port}/redirect?to=http://127.0.0.1:{port}/echo", "http.address.loopback")]
    [InlineData("http://api.test:{port}/redirect?to=http://internal.test/", "http.address.private")]
    [InlineData("http://api.test:{port}/redirect?to=http://elsewhere.example/", "http.host")]
    [InlineData("http://unlisted.example/", "http.host")]
    public async Task Fetches_of_internal_addresses_are_denied_directly_through_redirects_and_names(string url, string rule)
    {
        var before = _fixture.Http.Paths.Count(p => p.StartsWith("/echo"));
        var target = url.Replace("{port}", Port);

        await Blocked($$"""http_fetch {"url":"{{target}}"}""", "capability_denied", rule, "http/fetch");

        _fixture.Http.Paths.Count(p => p.StartsWith("/echo")).Should().Be(before, "the refused address was never connected to");
    }

    [SkippableFact]
    public async Task A_rule_that_names_an_address_lets_a_fetch_reach_it()
    {
        var job = await Act($$"""http_fetch {"url":"http://api.test:{{Port}}/echo"}""");

        job.Str("status").Should().Be("completed", job.ToJsonString());
        job.Str("output.text").Should().Contain("200");
        _fixture.Http.Paths.Should().Contain("/echo");
    }

    // ---- secrets ----

    [SkippableFact]
    public async Task A_secret_reaches_the_granted_program_and_is_scrubbed_from_everything_recorded()
    {
        Sandboxes.Require();
        using var client = _app.ClientFor();

        var (_, job) = await client.ActAsync(new { intent = "agent/run", input = Script("""process_run {"argv":["sh","-c","echo token=$DEPLOY_TOKEN; echo $DEPLOY_TOKEN >&2"],"secrets":["DEPLOY_TOKEN"]}""") });

        job.Str("status").Should().Be("completed", job.ToJsonString());
        job.Str("output.text").Should().Contain("token=[secret:DEPLOY_TOKEN]", "the program got the value; what comes back names it");
        var graph = await (await client.GetAsync($"/v1/jobs/{job.Str("jobId")}/graph")).Content.ReadAsStringAsync();
        var replay = await (await client.GetAsync($"/v1/replays/{job.Str("traceId")}")).Content.ReadAsStringAsync();
        foreach (var recorded in new[] { job.ToJsonString(), graph, replay })
            recorded.Should().NotContain(DeployToken).And.NotContain(DeployToken[4..]);
    }

    [SkippableFact]
    public async Task A_header_secret_goes_to_its_host_only_and_its_echo_is_scrubbed()
    {
        var job = await Act($$"""http_fetch {"url":"http://api.test:{{Port}}/echo","secrets":["API_TOKEN"]}""");

        job.Str("status").Should().Be("completed", job.ToJsonString());
        _fixture.Http.Requests.Should().Contain(r => r.Contains("x-api-token: " + ApiToken, StringComparison.OrdinalIgnoreCase), "the granted host got the header");
        job.ToJsonString().Should().NotContain(ApiToken).And.Contain("[secret:API_TOKEN]");

        await Blocked($$"""http_fetch {"url":"http://127.0.0.1:{{Port}}/echo","secrets":["API_TOKEN"]}""", "capability_denied", "secret.API_TOKEN", "http/fetch");
    }

    [SkippableTheory]
    [InlineData(OrchestratorApp.AcmeOtherKey, "acme")]
    [InlineData(OrchestratorApp.GlobexKey, "globex")]
    public async Task A_secret_asked_for_by_an_ungranted_principal_fails_closed(string key, string tenant)
    {
        Sandboxes.Require();

        var problem = await Blocked("""process_run {"argv":["sh","-c","echo $DEPLOY_TOKEN"],"secrets":["DEPLOY_TOKEN"]}""",
            "capability_denied", "secret.DEPLOY_TOKEN", "process/run", key, tenant);

        problem.ToJsonString().Should().NotContain(DeployToken);
    }

    [SkippableFact]
    public async Task An_unknown_secret_is_refused_the_same_way_as_an_ungranted_one()
    {
        var problem = await Blocked("""process_run {"argv":["sh","-c","true"],"secrets":["NO_SUCH"]}""", "capability_denied", "secret.NO_SUCH", "process/run");

        problem.Str("detail").Should().Contain("not granted");
    }

    [SkippableFact]
    public async Task Ready_health_names_the_sandbox()
    {
        Sandboxes.Require();
        using var client = _app.ClientFor(null);

        var health = await Api.BodyOf(await client.GetAsync("/health/ready"));

        health.Str("checks.sandbox.status").Should().Be("Healthy", health.ToJsonString());
        health.Str("checks.sandbox.description").Should().Contain("bubblewrap");
    }
}
