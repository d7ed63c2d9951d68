using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Gateway;

/// <summary>
/// The gateway recovers by itself: a model that failed a burst and came back gets traffic again, without an operator.
/// Latencies are made with a fake clock that each model server advances as it answers (fast 10 ms, slow 20 ms).
/// </summary>
public sealed class GatewayRecoveryTests
{
    static readonly DateTimeOffset Start = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    sealed class Pair : IAsyncDisposable
    {
        public required FakeModelServer Fast { get; init; }
        public required FakeModelServer Slow { get; init; }
        public required OrchestratorApp App { get; init; }
        public required HttpClient Client { get; init; }

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            App.Dispose();
            await Fast.DisposeAsync();
            await Slow.DisposeAsync();
        }
    }

    static async Task<Pair> StartAsync(FakeTimeProvider time, params (string Key, string Value)[] gateway)
    {
        var fast = await FakeModelServer.StartAsync();
        var slow = await FakeModelServer.StartAsync();
        fast.OnCall = () => time.Advance(TimeSpan.FromMilliseconds(10));
        slow.OnCall = () => time.Advance(TimeSpan.FromMilliseconds(20));
        fast.Default = FakeModelServer.Behavior.Reply("fast");
        slow.Default = FakeModelServer.Behavior.Reply("slow");
        var settings = new Dictionary<string, string?>
        {
            ["Orchestrator:Gateway:MaxRetries"] = "0",
            ["Orchestrator:Jobs:Retry:MaxAttempts"] = "1",
            ["Orchestrator:Gateway:DefaultStrategy"] = "latency-first",
            ["Orchestrator:Models:0:Id"] = "fast",
            ["Orchestrator:Models:0:Provider"] = "openai",
            ["Orchestrator:Models:0:Endpoint"] = fast.BaseUrl,
            ["Orchestrator:Models:1:Id"] = "slow",
            ["Orchestrator:Models:1:Provider"] = "openai",
            ["Orchestrator:Models:1:Endpoint"] = slow.BaseUrl,
        };
        foreach (var (key, value) in gateway)
            settings[$"Orchestrator:Gateway:{key}"] = value;
        var app = new OrchestratorApp(settings, time);
        return new Pair { Fast = fast, Slow = slow, App = app, Client = app.ClientFor() };
    }

    static async Task<JsonObject> Ask(HttpClient client, string input, string[]? only = null)
    {
        var (_, job) = await client.ActAsync(only is null ? new { input } : new { input, routing = new { models = only } });
        return job;
    }

    static async Task<JsonObject> Model(HttpClient client, string id) =>
        (await Api.BodyOf(await client.GetAsync("/v1/models")))["items"]!.AsArray().Single(m => m.Str("id") == id)!.AsObject();

    /// <summary>Both models known (fast 10 ms, slow 20 ms), then a burst of failures of the fast one (three of its five calls).</summary>
    static async Task FailABurstAsync(Pair pair)
    {
        for (var i = 0; i < 2; i++)
        {
            (await Ask(pair.Client, $"warm fast {i}", ["fast"])).Str("output.model").Should().Be("fast");
            (await Ask(pair.Client, $"warm slow {i}", ["slow"])).Str("output.model").Should().Be("slow");
        }
        pair.Fast.Default = FakeModelServer.Behavior.Fail(503);
        for (var i = 0; i < 3; i++)
            (await Ask(pair.Client, $"burst {i}", ["fast"])).Str("code").Should().Be("model_unavailable");
        pair.Fast.Default = FakeModelServer.Behavior.Reply("fast");
    }

    [Fact]
    public async Task A_half_open_model_gets_its_probe_from_live_traffic_even_when_it_ranks_last()
    {
        var time = new FakeTimeProvider(Start);
        // No decay here, so only the probe can bring the model back: ranked by its error share it stays behind "slow".
        await using var pair = await StartAsync(time, ("BreakerMinimumThroughput", "5"), ("BreakerFailureRatio", "0.5"),
            ("BreakDuration", "00:00:30"), ("ErrorHalfLife", "1.00:00:00"));
        await FailABurstAsync(pair);
        (await Model(pair.Client, "fast")).Str("circuit").Should().Be("open");

        time.Advance(TimeSpan.FromSeconds(31));
        (await Model(pair.Client, "fast")).Str("circuit").Should().Be("half-open");
        var probe = await Ask(pair.Client, "who answers?");

        var decision = probe["routing"]![0]!["decision"]!;
        decision["attempts"]![0]!.Str("modelId").Should().Be("fast", "the half-open model is probed first, whatever its rank");
        decision["candidates"]!.AsArray().Single(c => c.Str("modelId") == "fast").Str("reason").Should().StartWith("probe");
        probe.Str("output.model").Should().Be("fast");
        (await Model(pair.Client, "fast")).Str("circuit").Should().Be("closed", "a successful probe closes the circuit");
    }

    [Fact]
    public async Task A_recovered_model_returns_to_first_choice_as_its_failures_fade_with_time()
    {
        var time = new FakeTimeProvider(Start);
        // The breaker never opens here: only the error share ranks the model, and it fades by half every 10 s.
        await using var pair = await StartAsync(time, ("BreakerMinimumThroughput", "1000"), ("ErrorHalfLife", "00:00:10"));
        await FailABurstAsync(pair);

        (await Ask(pair.Client, "right after the burst")).Str("output.model").Should().Be("slow",
            "three failures in five calls make the fast model's expected latency worse than the slow one's");
        var degraded = await Model(pair.Client, "fast");
        degraded.Str("status").Should().Be("degraded");

        time.Advance(TimeSpan.FromSeconds(30));

        (await Ask(pair.Client, "three half-lives later")).Str("output.model").Should().Be("fast",
            "with its failures faded the fast model is the best again, without having been called meanwhile");
        (await Model(pair.Client, "fast")).Str("status").Should().Be("healthy");
    }
}
