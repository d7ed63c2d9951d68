using System.Net;
using System.Text.Json.Nodes;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Memory;

/// <summary>Long conversations through <c>/v1/act</c> with a session: recall, summaries that keep facts, caps, isolation, forgetting.</summary>
public sealed class MemoryTests(MemoryTests.App app) : IClassFixture<MemoryTests.App>
{
    public sealed class App : IDisposable
    {
        public MemoryApp Memory { get; } = new();
        public void Dispose() => Memory.Dispose();
    }

    readonly MemoryApp _app = app.Memory;

    static string Session() => "s-" + Guid.NewGuid().ToString("N")[..12];

    [Fact]
    public async Task A_fact_from_turn_1_is_in_the_models_context_at_turn_20_after_summaries()
    {
        using var client = _app.ClientFor();
        var session = Session();
        await client.TurnAsync("memory/chat", session, "Hello. My locker code is 4711 and my badge id is BX-7781.");
        for (var turn = 2; turn < 20; turn++)
            await client.TurnAsync("memory/chat", session, $"Tell me something about topic number {turn}.");

        var last = await client.TurnAsync("memory/chat", session, "What is my locker code? /context");

        var context = last.Str("output.text");
        context.Should().Contain("The user said: My locker code is 4711 and my badge id is BX-7781.",
            "the fact the user gave in turn 1 is recalled, attributed to the user, after the turn itself was summarised away");
        var memory = await client.MemoryOfAsync(session);
        memory.Items("summary").Should().ContainSingle("one summary stands for every folded turn");
        memory.Items("turn").Should().NotContain(i => i.Str("text").Contains("4711") && i.Str("role") == "user",
            "turn 1 was folded into the summary");
        memory.Items("fact").Should().Contain(i => i.Str("role") == "user" && i.Str("text").Contains("4711"));
        memory.Items("turn").Select(i => i["source"]!.Str("jobId")).Distinct().Count().Should().BeLessThanOrEqualTo(5,
            "at most afterTurns turns stay unsummarised");
    }

    [Fact]
    public async Task A_summariser_that_drops_numbers_still_leaves_all_8_planted_facts_recallable()
    {
        using var client = _app.ClientFor();
        var session = Session();
        string[] facts =
        [
            "The invoice number is INV-20417.", "My server is at 10.4.22.7 on port 8443.", "The config lives in /etc/orchestrator/app.json.",
            "Our project manager is Henrietta Quarles.", "The budget is 48250 euros.", "Ticket OPS-3391 is the blocker.",
            "Deploy window opens at 02:30 UTC.", "The backup key id is kb_77f3a91.",
        ];
        foreach (var fact in facts)
            await client.TurnAsync("memory/lossy", session, fact);
        await client.TurnAsync("memory/lossy", session, "Let us continue.");

        var last = await client.TurnAsync("memory/lossy", session, "Summarise what you know. /context");

        var memory = await client.MemoryOfAsync(session);
        memory.Items("summary").Single().Str("text").Should().Be(MemoryApp.LossySummary, "the summariser kept no number at all");
        var context = last.Str("output.text");
        foreach (var fact in facts)
            context.Should().Contain("The user said: " + fact, "a planted fact survives a lossy summary verbatim, attributed to the user");
        memory.Items("fact").Where(i => facts.Contains(i.Str("text"))).Should().OnlyContain(i => i.Str("role") == "user");
    }

    [Fact]
    public async Task A_thousand_turns_with_a_cap_of_100_leave_at_most_100_items_and_count_the_evictions()
    {
        using var client = _app.ClientFor(OrchestratorApp.AcmeOtherKey);
        using var operatorClient = _app.ClientFor(OrchestratorApp.OperatorKey);
        var session = Session();
        long Counter(JsonNode telemetry, string name) => telemetry["counters"]![name]?.GetValue<long>() ?? 0;
        const string Carol = "/v1/diag/telemetry?tenant=acme&principal=carol";
        var before = await Api.BodyOf(await operatorClient.GetAsync(Carol));
        // Four callers at once in one session: the cap holds under concurrent writes too.
        await Task.WhenAll(Enumerable.Range(0, 4).Select(async worker =>
        {
            for (var turn = 0; turn < 250; turn++)
                await client.TurnAsync("memory/capped", session, $"worker {worker} turn {turn}");
        }));

        var memory = await client.MemoryOfAsync(session);
        var items = long.Parse(memory.Str("totals.items"));
        items.Should().BeInRange(2, 100);
        memory.Items().Count().Should().Be((int)items);
        var after = await Api.BodyOf(await operatorClient.GetAsync(Carol));
        (Counter(after, "memory.written") - Counter(before, "memory.written")).Should().Be(2000, "each turn writes the user's words and the reply");
        (Counter(after, "memory.evicted") - Counter(before, "memory.evicted")).Should().Be(2000 - items,
            "every item written and no longer kept was evicted, and counted");
    }

    [Fact]
    public async Task A_canary_of_one_principal_is_found_by_no_other_principal_with_any_session_or_query()
    {
        using var alice = _app.ClientFor();
        var session = "shared-" + Guid.NewGuid().ToString("N")[..6];
        const string canary = "canary zq7x4k marmalade";
        await alice.TurnAsync("memory/chat", session, $"Remember the {canary}.");
        (await alice.SearchAsync("zq7x4k")).Should().NotBeEmpty("the owner finds its own item");

        foreach (var key in new[] { OrchestratorApp.AcmeOtherKey, OrchestratorApp.GlobexKey })
        {
            using var other = _app.ClientFor(key);
            (await other.MemoryOfAsync(session)).Items().Should().BeEmpty("the same session id of another principal is another, empty session");
            foreach (var q in new[] { "zq7x4k", "canary", "marmalade", "Remember the canary", canary, "zq7x4k OR canary" })
            {
                (await other.SearchAsync(q)).Should().BeEmpty();
                (await other.SearchAsync(q, session)).Should().BeEmpty();
            }
            var turn = await other.TurnAsync("memory/chat", session, "What canary zq7x4k marmalade? /context");
            turn.Str("output.text").Split("\nuser: What canary")[0].Should().NotContain("zq7x4k", "nothing of another principal is recalled");
            (await other.MemoryOfAsync(session)).Items().Should().OnlyContain(i => i["source"]!.Str("jobId") == turn.Str("jobId"));
        }
    }

    [Fact]
    public async Task Forgetting_a_session_or_everything_leaves_other_sessions_and_principals_untouched()
    {
        using var alice = _app.ClientFor();
        using var carol = _app.ClientFor(OrchestratorApp.AcmeOtherKey);
        var (one, two) = (Session(), Session());
        await alice.TurnAsync("memory/chat", one, "Session one word is quokka81.");
        await alice.TurnAsync("memory/chat", two, "Session two word is wombat92.");
        await carol.TurnAsync("memory/chat", one, "Carol word is quokka81 too.");

        (await alice.DeleteAsync($"/v1/sessions/{one}")).StatusCode.Should().Be(HttpStatusCode.NoContent);

        (await alice.MemoryOfAsync(one)).Items().Should().BeEmpty();
        (await alice.SearchAsync("quokka81")).Should().BeEmpty("a forgotten item is gone from the search index at once");
        (await alice.MemoryOfAsync(two)).Items().Should().NotBeEmpty();
        (await carol.SearchAsync("quokka81")).Should().NotBeEmpty("another principal's items are untouched");

        (await alice.DeleteAsync("/v1/memory")).StatusCode.Should().Be(HttpStatusCode.NoContent);

        (await alice.MemoryOfAsync(two)).Items().Should().BeEmpty();
        (await alice.SearchAsync("wombat92")).Should().BeEmpty();
        (await carol.MemoryOfAsync(one)).Items().Should().HaveCount(2);
    }

    [Fact]
    public async Task Search_ranks_the_callers_items_and_names_their_source()
    {
        using var client = _app.ClientFor();
        var session = Session();
        var job = await client.TurnAsync("memory/chat", session, "The heron nests by the heron lake near the old mill.");
        await client.TurnAsync("memory/chat", session, "A heron flew past.");

        var hits = await client.SearchAsync("heron lake", session, limit: 10);

        hits.Should().NotBeEmpty();
        hits[0]!.Str("text").Should().Contain("heron lake");
        hits[0]!["source"]!.Str("jobId").Should().Be(job.Str("jobId"));
        hits[0]!["source"]!.Str("nodeId").Should().Be("memory/write");
        hits.Select(h => h!["score"]!.GetValue<double>()).Should().BeInDescendingOrder();
    }

    [Fact]
    public async Task The_graph_shows_memory_nodes_with_what_was_recalled_and_the_budget_holds()
    {
        using var client = _app.ClientFor();
        var session = Session();
        for (var turn = 0; turn < 6; turn++)
            await client.TurnAsync("memory/tight", session, $"Turn {turn} says something fairly long about gardening and tomatoes.");
        var job = await client.TurnAsync("memory/tight", session, "What about tomatoes?");

        job["output"]!["path"]!.AsArray().Select(p => p!.GetValue<string>()).Should().Equal("memory/recall", "respond", "memory/write");
        var graph = await Api.BodyOf(await client.GetAsync($"/v1/jobs/{job.Str("jobId")}/graph"));
        var recall = graph["nodes"]!.AsArray().Single(n => n!.Str("id") == "memory/recall")!;
        recall.Str("kind").Should().Be("memory");
        var view = recall["memory"]!;
        int.Parse(view.Str("tokens")).Should().BeGreaterThan(0).And.BeLessThanOrEqualTo(60, "the injected context never exceeds budgetTokens");
        int.Parse(view.Str("dropped")).Should().BeGreaterThan(0, "more was remembered than fits");
        view["itemIds"]!.AsArray().Should().NotBeEmpty();
        graph["nodes"]!.AsArray().Single(n => n!.Str("id") == "memory/write")!["memory"]!["itemIds"]!.AsArray().Should().HaveCount(2);
    }

    [Fact]
    public async Task A_rerun_after_the_store_changed_reads_the_recorded_recall_and_is_identical()
    {
        using var client = _app.ClientFor();
        var session = Session();
        await client.TurnAsync("memory/chat", session, "My favourite colour is teal, code 5521.");
        var job = await client.TurnAsync("memory/chat", session, "Which colour do I like? /context");
        job.Str("output.text").Should().Contain("5521");

        (await client.DeleteAsync("/v1/memory")).StatusCode.Should().Be(HttpStatusCode.NoContent);
        var response = await client.PostAsync($"/v1/replays/{job.Str("traceId")}/rerun", null);
        var report = await Api.BodyOf(response);

        response.StatusCode.Should().Be(HttpStatusCode.OK, report.ToJsonString());
        report["identical"]!.GetValue<bool>().Should().BeTrue(report.ToJsonString());
        report["nodes"]!.AsArray().Should().Contain(n => n!.Str("id") == "memory/recall" && n.Str("source") == "recorded");
        (await client.MemoryOfAsync(session)).Items().Should().BeEmpty("a rerun writes nothing to memory");
    }

    [Theory]
    [InlineData("/v1/memory/search")]
    [InlineData("/v1/memory/search?q=")]
    [InlineData("/v1/memory/search?q=the")]
    [InlineData("/v1/memory/search?q=heron&limit=0")]
    [InlineData("/v1/memory/search?q=heron&limit=abc")]
    [InlineData("/v1/sessions/x/memory?limit=100000")]
    public async Task Bad_memory_requests_answer_validation_failed(string url)
    {
        using var client = _app.ClientFor();
        var response = await client.GetAsync(url);
        var problem = await Api.BodyOf(response);
        response.StatusCode.Should().Be(HttpStatusCode.BadRequest, problem.ToJsonString());
        problem.Str("code").Should().Be("validation_failed");
    }

    [Fact]
    public async Task A_session_id_that_is_too_long_is_refused()
    {
        using var client = _app.ClientFor();
        var longSession = new string('s', 201);
        var response = await client.GetAsync($"/v1/sessions/{longSession}/memory");
        (await Api.BodyOf(response)).Str("code").Should().Be("validation_failed");
        (await client.DeleteAsync($"/v1/sessions/{longSession}")).StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await client.GetAsync("/v1/memory/search?q=7")).StatusCode.Should().Be(HttpStatusCode.OK, "a number is a word, however short");
    }

    [Fact]
    public async Task Memory_needs_a_key()
    {
        using var anonymous = _app.Host.CreateClient();
        (await anonymous.GetAsync("/v1/memory/search?q=heron")).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        (await anonymous.DeleteAsync("/v1/memory")).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
    }
}
