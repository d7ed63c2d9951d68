using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Memory;

/// <summary>
/// The service with intents made for memory tests: each has its own <c>memory</c> block (small windows, caps and
/// summaries after few turns, so a test reaches them quickly). The responder is a simulated model tagged <c>chat</c>
/// that echoes, or with <c>/context</c> shows everything it was given; the summariser of <c>memory/lossy</c> is a
/// simulated model that drops every number.
/// </summary>
public sealed class MemoryApp : IDisposable
{
    public const string LossySummary = "The user shared several details about their setup.";
    public const string Claim = "Noted: your account number is 999-ASSIST-1.";

    static readonly Dictionary<string, string> Policies = new()
    {
        ["text-respond.json"] = """
            { "intent": "text/respond", "nodes": [ { "id": "respond", "kind": "model", "role": "responder", "requires": { "tags": ["chat"] } } ] }
            """,
        ["chat.json"] = """
            { "intent": "memory/chat",
              "nodes": [ { "id": "respond", "kind": "model", "role": "responder", "prompt": "Answer briefly.", "requires": { "tags": ["chat"] } } ],
              "memory": { "recall": { "recent": 2, "relevant": 3, "summary": true }, "budgetTokens": 4000,
                          "summarize": { "afterTurns": 4, "requires": { "tags": ["chat"] } }, "retention": { "maxItems": 200 } } }
            """,
        ["capped.json"] = """
            { "intent": "memory/capped",
              "nodes": [ { "id": "respond", "kind": "model", "role": "responder", "requires": { "tags": ["chat"] } } ],
              "memory": { "recall": { "recent": 1, "relevant": 0, "summary": false }, "budgetTokens": 200, "retention": { "maxItems": 100 } } }
            """,
        ["ttl.json"] = """
            { "intent": "memory/ttl",
              "nodes": [ { "id": "respond", "kind": "model", "role": "responder", "requires": { "tags": ["chat"] } } ],
              "memory": { "recall": { "recent": 4, "relevant": 4 }, "budgetTokens": 2000, "retention": { "ttl": "01:00:00" } } }
            """,
        ["lossy.json"] = """
            { "intent": "memory/lossy",
              "nodes": [ { "id": "respond", "kind": "model", "role": "responder", "requires": { "tags": ["chat"] } } ],
              "memory": { "recall": { "recent": 1, "relevant": 2, "summary": true }, "budgetTokens": 3000,
                          "summarize": { "afterTurns": 2, "requires": { "tags": ["lossy"] } } } }
            """,
        ["longterm.json"] = """
            { "intent": "memory/longterm",
              "nodes": [ { "id": "respond", "kind": "model", "role": "responder", "requires": { "tags": ["chat"] } } ],
              "memory": { "recall": { "recent": 2, "relevant": 4 }, "budgetTokens": 2000, "scope": "principal" } }
            """,
        ["claims.json"] = """
            { "intent": "memory/claims",
              "nodes": [ { "id": "respond", "kind": "model", "role": "responder" } ],
              "memory": { "recall": { "recent": 0, "relevant": 0, "summary": true }, "budgetTokens": 2000,
                          "summarize": { "afterTurns": 1, "requires": { "tags": ["lossy"] } } } }
            """,
        ["agent.json"] = """
            { "intent": "memory/agent", "capabilities": ["fs/write", "fs/read"],
              "nodes": [ { "id": "agent", "kind": "agent", "role": "agent", "requires": { "tags": ["chat"] } } ],
              "memory": { "recall": { "recent": 0, "relevant": 0, "summary": true }, "budgetTokens": 2000,
                          "summarize": { "afterTurns": 1, "requires": { "tags": ["lossy"] } } } }
            """,
        ["tight.json"] = """
            { "intent": "memory/tight",
              "nodes": [ { "id": "respond", "kind": "model", "role": "responder", "requires": { "tags": ["chat"] } } ],
              "memory": { "recall": { "recent": 10, "relevant": 10 }, "budgetTokens": 60 } }
            """,
    };

    public MemoryApp(FakeTimeProvider? time = null, IDictionary<string, string?>? settings = null)
    {
        var folder = Directory.CreateTempSubdirectory("orchestrator-memory-").FullName;
        var policies = Path.Combine(folder, "policies");
        Directory.CreateDirectory(policies);
        foreach (var (file, json) in Policies)
            File.WriteAllText(Path.Combine(policies, file), json);
        var all = new Dictionary<string, string?>
        {
            ["Orchestrator:Workflow:PoliciesPath"] = policies,
            ["Orchestrator:Models:0:Id"] = "simulated",
            ["Orchestrator:Models:0:Provider"] = "simulated",
            ["Orchestrator:Models:0:Tags:0"] = "chat",
            ["Orchestrator:Models:1:Id"] = "lossy",
            ["Orchestrator:Models:1:Provider"] = "simulated",
            ["Orchestrator:Models:1:Tags:0"] = "lossy",
            ["Orchestrator:Models:1:Reply"] = LossySummary,
            ["Orchestrator:Models:2:Id"] = "claimer",
            ["Orchestrator:Models:2:Provider"] = "simulated",
            ["Orchestrator:Models:2:Tags:0"] = "claims",
            ["Orchestrator:Models:2:Reply"] = Claim,
            // No sweep during a test unless it asks for one: TTL must hold on read alone.
            ["Orchestrator:Memory:SweepInterval"] = "7.00:00:00",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            all[key] = value;
        Host = new OrchestratorApp(all, time, folder);
        Folder = folder;
    }

    public OrchestratorApp Host { get; }

    string Folder { get; }

    public HttpClient ClientFor(string key = OrchestratorApp.AcmeKey) => Host.ClientFor(key);

    public void Dispose()
    {
        Host.Dispose();
        OrchestratorApp.TryDelete(Folder);
    }
}

/// <summary>Memory calls tests repeat.</summary>
public static class MemoryCalls
{
    public static async Task<JsonObject> TurnAsync(this HttpClient client, string intent, string session, string input)
    {
        var (response, job) = await client.ActAsync(new { intent, session, input });
        response.StatusCode.Should().Be(HttpStatusCode.OK, job.ToJsonString());
        return job;
    }

    public static async Task<JsonObject> MemoryOfAsync(this HttpClient client, string session)
    {
        var response = await client.GetAsync($"/v1/sessions/{Uri.EscapeDataString(session)}/memory");
        var body = await Api.BodyOf(response);
        response.StatusCode.Should().Be(HttpStatusCode.OK, body.ToJsonString());
        return body;
    }

    public static async Task<JsonArray> SearchAsync(this HttpClient client, string q, string? session = null, int? limit = null)
    {
        var url = $"/v1/memory/search?q={Uri.EscapeDataString(q)}" + (session is null ? "" : $"&session={Uri.EscapeDataString(session)}") +
                  (limit is null ? "" : $"&limit={limit}");
        var response = await client.GetAsync(url);
        var body = await Api.BodyOf(response);
        response.StatusCode.Should().Be(HttpStatusCode.OK, body.ToJsonString());
        return body["items"]!.AsArray();
    }

    public static IEnumerable<JsonNode> Items(this JsonObject memory, string? kind = null) =>
        memory["items"]!.AsArray().Select(i => i!).Where(i => kind is null || i.Str("kind") == kind);
}
