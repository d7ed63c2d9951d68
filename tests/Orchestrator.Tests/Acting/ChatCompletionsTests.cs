using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Acting;

/// <summary><c>POST /v1/chat/completions</c> over HTTP: OpenAI's wire format whole and streamed, tools, errors, and the job behind each call.</summary>
public sealed class ChatCompletionsTests
{
    static OrchestratorApp Remote(FakeModelServer primary, FakeModelServer? second = null, params (string Key, string Value)[] extra)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Orchestrator:Gateway:MaxRetries"] = "0",
            ["Orchestrator:Models:0:Id"] = "primary",
            ["Orchestrator:Models:0:Provider"] = "openai",
            ["Orchestrator:Models:0:Endpoint"] = primary.BaseUrl,
            ["Orchestrator:Models:0:Model"] = "primary-model",
            ["Orchestrator:Models:0:Quality"] = "0.9",
        };
        if (second is not null)
        {
            settings["Orchestrator:Models:1:Id"] = "second";
            settings["Orchestrator:Models:1:Provider"] = "openai";
            settings["Orchestrator:Models:1:Endpoint"] = second.BaseUrl;
            settings["Orchestrator:Models:1:Model"] = "second-model";
            settings["Orchestrator:Models:1:Quality"] = "0.5";
        }
        foreach (var (key, value) in extra)
            settings[key] = value;
        return new OrchestratorApp(settings);
    }

    static HttpClient Bearer(OrchestratorApp app, string key = OrchestratorApp.AcmeKey)
    {
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    static async Task<(HttpResponseMessage Response, JsonObject Body)> ChatAsync(HttpClient client, object request)
    {
        var response = await client.PostAsJsonAsync("/v1/chat/completions", request);
        return (response, await Api.BodyOf(response));
    }

    /// <summary>The data of each server-sent event, in order.</summary>
    static async Task<List<string>> EventsAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        return text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Select(e => string.Join("\n", e.Split('\n').Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).Select(l => l["data: ".Length..])))
            .Where(d => d.Length > 0)
            .ToList();
    }

    [Fact]
    public async Task A_plain_call_answers_in_openai_shape_and_is_a_listed_replayable_job()
    {
        using var app = new OrchestratorApp();
        using var client = Bearer(app);

        var (response, completion) = await ChatAsync(client, new
        {
            model = "auto",
            messages = new object[] { new { role = "system", content = "Be brief." }, new { role = "user", content = "hello there" } },
        });

        response.StatusCode.Should().Be(HttpStatusCode.OK, completion.ToJsonString());
        completion.Str("object").Should().Be("chat.completion");
        var choice = completion["choices"]![0]!;
        choice.Str("message.role").Should().Be("assistant");
        choice.Str("message.content").Should().Contain("hello there");
        choice.Str("finish_reason").Should().Be("stop");
        long.Parse(completion.Str("usage.total_tokens")).Should().BeGreaterThan(0);
        var jobId = response.Headers.GetValues("X-Job-Id").Single();
        completion.Str("job_id").Should().Be(jobId);
        completion.Str("id").Should().Be("chatcmpl-" + jobId);

        // The record lands behind the answer: wait for it, then it is listed, has its graph and replays identically.
        var job = await client.WaitForRecordAsync(jobId);
        job.Str("intent").Should().Be("chat/completions");
        job.Str("status").Should().Be("completed");
        job.Str("output.text").Should().Be(choice.Str("message.content"));
        var list = await Api.BodyOf(await client.GetAsync("/v1/jobs?intent=chat/completions"));
        list["items"]!.AsArray().Select(j => j.Str("jobId")).Should().Contain(jobId);
        var rerun = await Api.BodyOf(await client.PostAsync($"/v1/replays/{job.Str("traceId")}/rerun", null));
        rerun["identical"]!.GetValue<bool>().Should().BeTrue(rerun.ToJsonString());
    }

    [Fact]
    public async Task A_streamed_call_sends_chunks_ending_done_with_usage_when_asked()
    {
        using var app = new OrchestratorApp();
        using var client = Bearer(app);

        var response = await client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = "latency-first",
            stream = true,
            stream_options = new { include_usage = true },
            messages = new[] { new { role = "user", content = "tell me four words please" } },
        });

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        response.Content.Headers.ContentType!.MediaType.Should().Be("text/event-stream");
        var events = await EventsAsync(response);
        events[^1].Should().Be("[DONE]");
        var chunks = events[..^1].Select(e => JsonNode.Parse(e)!.AsObject()).ToList();
        chunks.Should().OnlyContain(c => c.Str("object") == "chat.completion.chunk");
        chunks[0]["choices"]![0]!.Str("delta.role").Should().Be("assistant");
        var text = string.Concat(chunks.Where(c => c["choices"]!.AsArray().Count > 0)
            .Select(c => c["choices"]![0]!["delta"]!["content"]?.GetValue<string>() ?? ""));
        text.Should().Contain("tell me four words please");
        chunks.Count(c => c["choices"]!.AsArray().Count > 0 && c["choices"]![0]!["delta"]!["content"] is not null)
            .Should().BeGreaterThan(1, "the simulated model streams its reply in pieces");
        chunks[^2]["choices"]![0]!.Str("finish_reason").Should().Be("stop");
        chunks[^1]["choices"]!.AsArray().Should().BeEmpty("usage comes in a chunk of its own, last");
        long.Parse(chunks[^1].Str("usage.completion_tokens")).Should().BeGreaterThan(0);

        var job = await client.WaitForRecordAsync(response.Headers.GetValues("X-Job-Id").Single(), j => j.Str("status") == "completed");
        job.Str("output.text").Should().Be(text);
    }

    [Fact]
    public async Task Tools_and_settings_reach_the_model_and_its_tool_calls_come_back_to_the_caller()
    {
        await using var model = await FakeModelServer.StartAsync();
        model.Then(FakeModelServer.Behavior.CallTool("get_weather", new { city = "Oslo" }));
        model.Default = FakeModelServer.Behavior.Reply("It is sunny in Oslo.");
        using var app = Remote(model);
        using var client = Bearer(app);
        var tools = new[]
        {
            new
            {
                type = "function",
                function = new
                {
                    name = "get_weather", description = "The weather in a city.",
                    parameters = new { type = "object", properties = new { city = new { type = "string" } }, required = new[] { "city" } },
                },
            },
        };

        var (response, first) = await ChatAsync(client, new
        {
            model = "primary",
            messages = new[] { new { role = "user", content = "Weather in Oslo?" } },
            tools,
            temperature = 0.25,
            max_tokens = 77,
            stop = new[] { "END" },
            user = "end-user-7",
            response_format = new { type = "json_object" },
        });

        response.StatusCode.Should().Be(HttpStatusCode.OK, first.ToJsonString());
        var call = first["choices"]![0]!["message"]!["tool_calls"]![0]!;
        first["choices"]![0]!.Str("finish_reason").Should().Be("tool_calls");
        call.Str("type").Should().Be("function");
        call.Str("function.name").Should().Be("get_weather");
        JsonNode.Parse(call.Str("function.arguments"))!.Str("city").Should().Be("Oslo");
        var sent = model.Requests.Last();
        sent["tools"]![0]!.Str("function.name").Should().Be("get_weather");
        sent["temperature"]!.GetValue<double>().Should().BeApproximately(0.25, 1e-6);
        (sent["max_completion_tokens"] ?? sent["max_tokens"])!.GetValue<int>().Should().Be(77);
        sent["stop"]![0]!.GetValue<string>().Should().Be("END");
        sent.Str("user").Should().Be("end-user-7");
        sent.Str("response_format.type").Should().Be("json_object");

        // The caller runs the tool and sends its result back, as OpenAI SDKs do.
        var (_, second) = await ChatAsync(client, new
        {
            model = "primary",
            tools,
            messages = new object[]
            {
                new { role = "user", content = "Weather in Oslo?" },
                new { role = "assistant", content = (string?)null, tool_calls = new[] { new { id = call.Str("id"), type = "function", function = new { name = "get_weather", arguments = call.Str("function.arguments") } } } },
                new { role = "tool", tool_call_id = call.Str("id"), content = "sunny, 21C" },
            },
        });

        second["choices"]![0]!.Str("message.content").Should().Be("It is sunny in Oslo.");
        var turn = model.Requests.Last()["messages"]!.AsArray();
        turn[1]!["tool_calls"]![0]!.Str("id").Should().Be(call.Str("id"));
        turn[2]!.Str("role").Should().Be("tool");
        turn[2]!.Str("tool_call_id").Should().Be(call.Str("id"));
        turn[2]!.Str("content").Should().Contain("sunny, 21C");
    }

    [Fact]
    public async Task A_streamed_tool_call_comes_back_in_a_chunk()
    {
        await using var model = await FakeModelServer.StartAsync();
        model.Default = FakeModelServer.Behavior.CallTool("lookup", new { q = "x" });
        using var app = Remote(model);
        using var client = Bearer(app);

        var response = await client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = "auto", stream = true,
            messages = new[] { new { role = "user", content = "look it up" } },
            tools = new[] { new { type = "function", function = new { name = "lookup", parameters = new { type = "object" } } } },
        });

        var chunks = (await EventsAsync(response))[..^1].Select(e => JsonNode.Parse(e)!).ToList();
        var call = chunks.Select(c => c["choices"]![0]!["delta"]!["tool_calls"]).Single(t => t is not null)![0]!;
        call.Str("function.name").Should().Be("lookup");
        call.Str("index").Should().Be("0");
        chunks[^1]["choices"]![0]!.Str("finish_reason").Should().Be("tool_calls");
    }

    [Fact]
    public async Task A_stream_falls_back_before_its_first_token_and_ends_with_an_error_event_after_it()
    {
        await using var primary = await FakeModelServer.StartAsync();
        await using var second = await FakeModelServer.StartAsync();
        primary.Then(FakeModelServer.Behavior.Fail(503));
        second.Default = FakeModelServer.Behavior.Reply("from the fallback model");
        using var app = Remote(primary, second);
        using var client = Bearer(app);
        object Ask() => new { model = "quality-first", stream = true, messages = new[] { new { role = "user", content = "hi" } } };

        var fallen = await client.PostAsJsonAsync("/v1/chat/completions", Ask());
        var events = await EventsAsync(fallen);
        events[^1].Should().Be("[DONE]");
        string.Concat(events[..^1].Select(e => JsonNode.Parse(e)!["choices"]![0]!["delta"]!["content"]?.GetValue<string>() ?? ""))
            .Should().Be("from the fallback model");
        var fallenJob = await client.WaitForRecordAsync(fallen.Headers.GetValues("X-Job-Id").Single(), j => j.Str("status") == "completed");
        fallenJob["routing"]![0]!["decision"]!["attempts"]!.AsArray().Select(a => a.Str("outcome")).Should().Equal("failed", "succeeded");

        // Once a token is out, a failure cannot change the status: the stream ends with an error event, not [DONE].
        primary.Then(FakeModelServer.Behavior.Cut("this answer breaks off half way", chunks: 1));
        var cut = await client.PostAsJsonAsync("/v1/chat/completions", Ask());
        var cutEvents = await EventsAsync(cut);
        cut.StatusCode.Should().Be(HttpStatusCode.OK);
        cutEvents.Should().NotContain("[DONE]");
        var error = JsonNode.Parse(cutEvents[^1])!;
        error.Str("error.code").Should().Be("model_failed");
        error.Str("error.message").Should().NotBeNullOrEmpty();
        var failed = await client.WaitForRecordAsync(cut.Headers.GetValues("X-Job-Id").Single(), j => j.Str("status") != "running");
        failed.Str("status").Should().Be("failed");
        failed.Str("error.code").Should().Be("model_failed");
    }

    [Fact]
    public async Task Errors_come_in_openai_shape_with_the_contract_status_and_code()
    {
        using var app = new OrchestratorApp();
        using var client = Bearer(app);
        using var anonymous = app.CreateClient();
        using var ops = app.ClientFor(OrchestratorApp.OperatorKey);
        var ask = new { model = "auto", messages = new[] { new { role = "user", content = "hi" } } };

        var (noKey, unauthorized) = await ChatAsync(anonymous, ask);
        noKey.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        unauthorized.Str("error.code").Should().Be("unauthorized");
        unauthorized.Str("error.type").Should().Be("authentication_error");

        var (bad, invalid) = await ChatAsync(client, new { model = "no-such-model", messages = Array.Empty<object>() });
        bad.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        invalid.Str("error.code").Should().Be("validation_failed");
        invalid.Str("error.type").Should().Be("invalid_request_error");
        invalid.Str("error.message").Should().Contain("no-such-model");

        var malformed = await client.PostAsync("/v1/chat/completions", new StringContent("{\"model\": \"auto\", \"messages\": [", Encoding.UTF8, "application/json"));
        malformed.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await Api.BodyOf(malformed)).Str("error.code").Should().Be("validation_failed");

        var plain = await client.PostAsync("/v1/chat/completions", new StringContent("{}", Encoding.UTF8, "text/plain"));
        plain.StatusCode.Should().Be(HttpStatusCode.UnsupportedMediaType);
        plain.Content.Headers.ContentType!.MediaType.Should().Be("application/json");
        (await Api.BodyOf(plain)).Str("error.type").Should().Be("invalid_request_error");
        var get = await client.GetAsync("/v1/chat/completions");
        get.StatusCode.Should().Be(HttpStatusCode.MethodNotAllowed);
        (await Api.BodyOf(get)).Str("error.code").Should().NotBeNullOrEmpty();
        var (nul, withNul) = await ChatAsync(client, new { model = "auto", messages = new[] { new { role = "user", content = "a\0b" } } });
        nul.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        withNul.Str("error.param").Should().Be("messages[0].content");

        (await ops.PostAsync("/v1/admin/models/simulated/quarantine", null)).StatusCode.Should().Be(HttpStatusCode.OK);
        var (none, unavailable) = await ChatAsync(client, ask);
        none.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        none.Headers.RetryAfter.Should().NotBeNull();
        unavailable.Str("error.code").Should().Be("model_unavailable");
        unavailable.Str("error.type").Should().Be("server_error");
        var job = await client.WaitForRecordAsync(unavailable.Str("error.job_id"), j => j.Str("status") != "running");
        job.Str("status").Should().Be("failed");
        job.Str("error.code").Should().Be("model_unavailable");
    }

    [Theory]
    [InlineData("""{"messages":[{"role":"user","content":"x"}]}""", "model")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":"x"},{"role":"tool","content":"r"}]}""", "messages[1].tool_call_id")]
    [InlineData("""{"model":"auto","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://x"}}]}]}""", "messages[0].content")]
    [InlineData("""{"model":"auto","messages":[{"role":"wizard","content":"x"}]}""", "messages[0].role")]
    [InlineData("""{"model":"auto","n":2,"messages":[{"role":"user","content":"x"}]}""", "n")]
    [InlineData("""{"model":"auto","stop":["a","b","c","d","e"],"messages":[{"role":"user","content":"x"}]}""", "stop")]
    [InlineData("""{"model":"auto","temperature":3,"messages":[{"role":"user","content":"x"}]}""", "temperature")]
    [InlineData("""{"model":"auto","tool_choice":{"type":"function","function":{"name":"nope"}},"messages":[{"role":"user","content":"x"}]}""", "tool_choice")]
    [InlineData("""{"model":"auto","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"not json"}}]}]}""", "messages[0].tool_calls[0].function.arguments")]
    public async Task A_bad_request_is_400_naming_the_field_at_fault(string body, string param)
    {
        using var app = new OrchestratorApp();
        using var client = Bearer(app);

        var response = await client.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        var error = await Api.BodyOf(response);
        error.Str("error.code").Should().Be("validation_failed");
        error.Str("error.param").Should().Be(param, error.ToJsonString());
    }
}
