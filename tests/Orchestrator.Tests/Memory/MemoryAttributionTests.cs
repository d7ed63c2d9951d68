using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Orchestrator.Memory;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Memory;

/// <summary>Who said what: the user's words are the user's, an assistant's claim or a tool result keeps its own role.</summary>
public sealed class MemoryAttributionTests(MemoryTests.App app) : IClassFixture<MemoryTests.App>
{
    readonly MemoryApp _app = app.Memory;

    static string Session() => "a-" + Guid.NewGuid().ToString("N")[..12];

    [Fact]
    public async Task An_assistants_claim_is_never_recalled_as_something_the_user_said()
    {
        using var client = _app.ClientFor();
        var session = Session();
        var (response, claimed) = await client.ActAsync(new { intent = "memory/claims", session, input = "Hi there.", routing = new { models = new[] { "claimer" } } });
        response.StatusCode.Should().Be(HttpStatusCode.OK, claimed.ToJsonString());
        claimed.Str("output.text").Should().Be(MemoryApp.Claim);
        await client.TurnAsync("memory/claims", session, "Thanks.");

        var (_, shown) = await client.ActAsync(new { intent = "memory/claims", session, input = "Which account number? /context", routing = new { models = new[] { "simulated" } } });

        var context = shown.Str("output.text");
        context.Should().Contain("You (the assistant) said: " + MemoryApp.Claim);
        context.Should().NotContain("The user said: " + MemoryApp.Claim);
        var facts = (await client.MemoryOfAsync(session)).Items("fact").Where(i => i.Str("text").Contains("999-ASSIST-1")).ToList();
        facts.Should().NotBeEmpty().And.OnlyContain(i => i.Str("role") == "assistant", "only the user's own words become user facts");
    }

    [Fact]
    public async Task A_tool_call_and_its_result_are_one_item_kept_or_folded_together()
    {
        using var client = _app.ClientFor();
        var session = Session();
        var file = $"memo-{Guid.NewGuid():N}.txt";
        var first = await client.TurnAsync("memory/agent", session,
            $"Write it down.\n/call fs_write {{\"path\":\"{file}\",\"content\":\"kiwi 314\"}}\n/call fs_read {{\"path\":\"{file}\"}}");

        var tools = (await client.MemoryOfAsync(session)).Items("turn").Where(i => i.Str("role") == "tool").ToList();
        tools.Should().HaveCount(2);
        tools[0].Str("text").Should().StartWith("fs_write ").And.Contain(file).And.Contain("->");
        tools[1].Str("text").Should().StartWith("fs_read ").And.Contain("kiwi 314");

        await client.TurnAsync("memory/agent", session, "Thanks, that is all.");

        var memory = await client.MemoryOfAsync(session);
        memory.Items("summary").Should().ContainSingle();
        memory.Items("turn").Where(i => i["source"]!.Str("jobId") == first.Str("jobId")).Should().BeEmpty("the first turn was folded whole, calls with their results");
        // The user typed the calls (so they are the user's facts); what the read returned is the tool's.
        memory.Items("fact").Should().Contain(i => i.Str("role") == "tool" && i.Str("text").StartsWith("fs_read ") && i.Str("text").Contains("kiwi 314"), memory.ToJsonString());
    }

    [Fact]
    public async Task Principal_scope_recalls_what_the_user_said_in_another_session()
    {
        using var client = _app.ClientFor();
        await client.TurnAsync("memory/longterm", Session(), "My dog is called Biscuit.");

        var other = await client.TurnAsync("memory/longterm", Session(), "What is my dog called? /context");

        other.Str("output.text").Should().Contain("The user said: My dog is called Biscuit.");
        using var carol = _app.ClientFor(OrchestratorApp.AcmeOtherKey);
        var carolTurn = await carol.TurnAsync("memory/longterm", Session(), "What is my dog called? /context");
        carolTurn.Str("output.text").Should().NotContain("Biscuit", "principal scope is the caller's principal, never the tenant");
    }

    [Fact]
    public async Task An_operator_reads_another_principals_session_only_through_an_audited_call()
    {
        using var alice = _app.ClientFor();
        using var carol = _app.ClientFor(OrchestratorApp.AcmeOtherKey);
        using var operatorClient = _app.ClientFor(OrchestratorApp.OperatorKey);
        var session = Session();
        await alice.TurnAsync("memory/chat", session, "Operator test words.");

        (await carol.GetAsync($"/v1/sessions/{session}/memory?tenant=acme&principal=alice")).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        var read = await Api.BodyOf(await operatorClient.GetAsync($"/v1/sessions/{session}/memory?tenant=acme&principal=alice"));

        read.Items().Should().HaveCount(2);
        var audit = await Api.BodyOf(await operatorClient.GetAsync("/v1/audit?action=memory.read&tenant=acme"));
        audit["items"]!.AsArray().Should().Contain(e => e!.Str("resource") == $"sessions/{session}/memory" && e.Str("principal") == "olga");
    }

    [Fact]
    public async Task A_write_run_again_for_the_same_node_stores_nothing_twice()
    {
        var store = _app.Host.Services.GetRequiredService<MemoryStore>();
        var key = new MemoryKey("acme", "alice", Session());
        var policy = new MemoryPolicy();
        NewMemoryItem[] items = [new(MemoryKinds.Turn, MemoryRoles.User, "once"), new(MemoryKinds.Turn, MemoryRoles.Assistant, "only")];

        var first = await store.RememberAsync(key, "job_resumed", "memory/write", items, policy);
        var again = await store.RememberAsync(key, "job_resumed", "memory/write", items, policy);

        again.ItemIds.Should().Equal(first.ItemIds, "a resumed run's write finds what the first attempt stored");
        using var client = _app.ClientFor();
        (await client.MemoryOfAsync(key.Session)).Items().Should().HaveCount(2);
    }

    [Fact]
    public async Task A_summary_that_fails_replaces_nothing_and_the_turn_still_completes()
    {
        using var client = _app.ClientFor();
        var session = Session();
        // The request's allow-list leaves the summariser (tag lossy) no model: the summary fails where it is made.
        var routing = new { models = new[] { "simulated" } };
        var lastJob = "";
        for (var turn = 1; turn <= 3; turn++)
        {
            var (response, job) = await client.ActAsync(new { intent = "memory/lossy", session, input = $"Turn {turn} mentions the number {turn * 111}.", routing });
            response.StatusCode.Should().Be(HttpStatusCode.OK, job.ToJsonString());
            lastJob = job.Str("jobId");
        }

        var memory = await client.MemoryOfAsync(session);
        memory.Items("summary").Should().BeEmpty();
        memory.Items("turn").Should().HaveCount(6, "a failed summary never replaces the turns it was to summarise");
        var graph = await Api.BodyOf(await client.GetAsync($"/v1/jobs/{lastJob}/graph"));
        graph["nodes"]!.AsArray().Single(n => n!.Str("id") == "memory/summarize")!.Str("status").Should().Be("failed");
        graph["nodes"]!.AsArray().Should().NotContain(n => n!.Str("id") == "memory/summary");
    }

}
