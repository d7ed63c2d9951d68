using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using System.Text.Json;

// The model server of bench/gateway.sh: POST /v1/chat/completions answering like OpenAI, on 127.0.0.1.
// Settings come from the command line (--Port 7101 --LatencyMs 20) or FAKEMODEL_* environment variables:
//   Port            port on 127.0.0.1 (default 7100)
//   LatencyMs       latency of an ordinary call (default 0: answer at once)
//   TailPercent     share of calls, 0..100, that take TailLatencyMs instead (default 0)
//   TailLatencyMs   latency of a tail call (default 1000)
//   FailPercent     share of calls, 0..100, answered with FailStatus (default 0)
//   FailStatus      status of a failed call (default 500)
//   Seed            seed of the draws (tail, failure); default 1
//   Name            put in the reply text, to tell servers apart (default "fake")
// A request with "stream": true is answered as server-sent chunks, as OpenAI streams.
// GET /stats answers the counts so far: calls, ok, failed, tail, aborted (the caller went away first).
var builder = WebApplication.CreateSlimBuilder(args);
builder.Configuration.AddEnvironmentVariables("FAKEMODEL_").AddCommandLine(args);
builder.Logging.ClearProviders();
var settings = FakeSettings.From(builder.Configuration);
builder.WebHost.ConfigureKestrel(k =>
{
    k.AddServerHeader = false;
    k.Listen(IPAddress.Loopback, settings.Port);
});
var app = builder.Build();
var fake = new FakeModel(settings);
app.MapPost("/v1/chat/completions", fake.CompleteAsync);
app.MapGet("/stats", fake.Stats);
app.Run();

/// <summary>What the server does; read once at start.</summary>
sealed record FakeSettings(int Port, int LatencyMs, double TailPercent, int TailLatencyMs, double FailPercent, int FailStatus, int Seed, string Name)
{
    public static FakeSettings From(IConfiguration c) => new(
        c.GetValue("Port", 7100), c.GetValue("LatencyMs", 0), c.GetValue("TailPercent", 0.0), c.GetValue("TailLatencyMs", 1000),
        c.GetValue("FailPercent", 0.0), c.GetValue("FailStatus", 500), c.GetValue("Seed", 1), c.GetValue("Name", "fake") ?? "fake");
}

sealed class FakeModel(FakeSettings settings)
{
    static readonly byte[] FailureBody = Encoding.UTF8.GetBytes("""{"error":{"message":"fake failure","type":"server_error","param":null,"code":null}}""");

    readonly Random _random = new(settings.Seed);
    readonly Lock _gate = new();
    readonly string _content = $"fake answer from {settings.Name}";
    long _calls, _ok, _failed, _tail, _aborted, _ids;

    public async Task CompleteAsync(HttpContext context)
    {
        Interlocked.Increment(ref _calls);
        // Read the whole body (the caller's connection stays reusable) and pick out "model".
        var (model, stream, promptBytes) = await ReadAsync(context.Request.BodyReader, context.RequestAborted);

        bool tail, fail;
        lock (_gate)
        {
            tail = settings.TailPercent > 0 && _random.NextDouble() * 100 < settings.TailPercent;
            fail = settings.FailPercent > 0 && _random.NextDouble() * 100 < settings.FailPercent;
        }
        var latency = tail ? settings.TailLatencyMs : settings.LatencyMs;
        if (tail)
            Interlocked.Increment(ref _tail);
        if (latency > 0)
        {
            try
            {
                await Task.Delay(latency, context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                Interlocked.Increment(ref _aborted);
                return;
            }
        }

        var response = context.Response;
        response.ContentType = "application/json";
        if (fail)
        {
            Interlocked.Increment(ref _failed);
            response.StatusCode = settings.FailStatus;
            await response.Body.WriteAsync(FailureBody, context.RequestAborted);
            return;
        }
        Interlocked.Increment(ref _ok);
        var promptTokens = Math.Max(1, promptBytes / 4);
        const int completionTokens = 5;
        if (stream)
        {
            await StreamAsync(response, model ?? "fake", promptTokens, completionTokens, context.RequestAborted);
            return;
        }
        using (var json = new Utf8JsonWriter(response.BodyWriter))
        {
            json.WriteStartObject();
            json.WriteString("id", "chatcmpl-" + Interlocked.Increment(ref _ids));
            json.WriteString("object", "chat.completion");
            json.WriteNumber("created", 1_700_000_000);
            json.WriteString("model", model ?? "fake");
            json.WriteStartArray("choices");
            json.WriteStartObject();
            json.WriteNumber("index", 0);
            json.WriteStartObject("message");
            json.WriteString("role", "assistant");
            json.WriteString("content", _content);
            json.WriteEndObject();
            json.WriteString("finish_reason", "stop");
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteStartObject("usage");
            json.WriteNumber("prompt_tokens", promptTokens);
            json.WriteNumber("completion_tokens", completionTokens);
            json.WriteNumber("total_tokens", promptTokens + completionTokens);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        await response.BodyWriter.FlushAsync(context.RequestAborted);
    }

    /// <summary>"stream": true: the answer as OpenAI streams it (role, the text in two chunks, the finish, usage, [DONE]), each chunk flushed.</summary>
    async Task StreamAsync(HttpResponse response, string model, long promptTokens, int completionTokens, CancellationToken cancellationToken)
    {
        response.ContentType = "text/event-stream";
        var id = "chatcmpl-" + Interlocked.Increment(ref _ids);
        var half = _content.Length / 2;
        var head = "data: {\"id\":\"" + id + "\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"" + model + "\",";
        string Chunk(string delta, string finish) => head + "\"choices\":[{\"index\":0,\"delta\":" + delta + ",\"finish_reason\":" + finish + "}]}\n\n";
        foreach (var part in new[]
        {
            Chunk("{\"role\":\"assistant\",\"content\":\"\"}", "null"),
            Chunk("{\"content\":\"" + _content[..half] + "\"}", "null"),
            Chunk("{\"content\":\"" + _content[half..] + "\"}", "null"),
            Chunk("{}", "\"stop\""),
            head + "\"choices\":[],\"usage\":{\"prompt_tokens\":" + promptTokens + ",\"completion_tokens\":" + completionTokens +
                ",\"total_tokens\":" + (promptTokens + completionTokens) + "}}\n\n",
            "data: [DONE]\n\n",
        })
        {
            await response.WriteAsync(part, cancellationToken);
            await response.Body.FlushAsync(cancellationToken);
        }
    }

    public IResult Stats() => Results.Text(
        $$"""{"name":"{{settings.Name}}","calls":{{Interlocked.Read(ref _calls)}},"ok":{{Interlocked.Read(ref _ok)}},"failed":{{Interlocked.Read(ref _failed)}},"tail":{{Interlocked.Read(ref _tail)}},"aborted":{{Interlocked.Read(ref _aborted)}}}""",
        "application/json");

    static async Task<(string? Model, bool Stream, long Bytes)> ReadAsync(PipeReader reader, CancellationToken cancellationToken)
    {
        while (true)
        {
            var read = await reader.ReadAsync(cancellationToken);
            if (read.IsCompleted || read.IsCanceled)
            {
                var (model, stream) = Read(read.Buffer);
                var length = read.Buffer.Length;
                reader.AdvanceTo(read.Buffer.End);
                return (model, stream, length);
            }
            reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }

    /// <summary>The top-level "model" string of the request (or null) and whether it asks for a stream.</summary>
    static (string? Model, bool Stream) Read(ReadOnlySequence<byte> body)
    {
        string? model = null;
        var stream = false;
        try
        {
            var json = new Utf8JsonReader(body);
            if (!json.Read() || json.TokenType != JsonTokenType.StartObject)
                return (null, false);
            while (json.Read() && json.TokenType == JsonTokenType.PropertyName)
            {
                var isModel = json.ValueTextEquals("model"u8);
                var isStream = json.ValueTextEquals("stream"u8);
                json.Read();
                if (isModel && json.TokenType == JsonTokenType.String)
                    model = json.GetString();
                else if (isStream)
                    stream = json.TokenType == JsonTokenType.True;
                json.Skip();
            }
        }
        catch (JsonException)
        {
        }
        return (model, stream);
    }
}
