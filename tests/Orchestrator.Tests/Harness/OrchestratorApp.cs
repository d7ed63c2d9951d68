using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Orchestrator.Tests.Harness;

/// <summary>
/// The real service over a fresh SQLite file in a temp folder, with test API keys. Settings are
/// configuration keys exactly as operators write them; a <see cref="FakeTimeProvider"/> can replace time.
/// </summary>
public sealed class OrchestratorApp : WebApplicationFactory<Program>
{
    public const string AcmeKey = "test-key-acme-user-0001";
    public const string AcmeOtherKey = "test-key-acme-user-0002";
    public const string GlobexKey = "test-key-globex-user-01";
    public const string OperatorKey = "test-key-operator-00001";

    readonly Dictionary<string, string?> _settings;
    readonly bool _ownsFolder;

    public OrchestratorApp(IDictionary<string, string?>? settings = null, FakeTimeProvider? time = null, string? folder = null)
    {
        _ownsFolder = folder is null;
        Folder = folder ?? Directory.CreateTempSubdirectory("orchestrator-test-").FullName;
        // Searchable by the sandbox's user (process/run's bubblewrap runs as nobody when tests run as root), as a
        // service's workspace root is; the temp folder is made 0700.
        if (!OperatingSystem.IsWindows() && _ownsFolder)
            File.SetUnixFileMode(Folder, File.GetUnixFileMode(Folder) | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        Time = time;
        _settings = new Dictionary<string, string?>
        {
            ["ConnectionStrings:Orchestrator"] = TestStore.ConnectionFor(Folder),
            ["Orchestrator:Store:Provider"] = TestStore.Provider,
            ["Orchestrator:ApiKeys:0:Key"] = AcmeKey,
            ["Orchestrator:ApiKeys:0:Tenant"] = "acme",
            ["Orchestrator:ApiKeys:0:Principal"] = "alice",
            ["Orchestrator:ApiKeys:1:Key"] = AcmeOtherKey,
            ["Orchestrator:ApiKeys:1:Tenant"] = "acme",
            ["Orchestrator:ApiKeys:1:Principal"] = "carol",
            ["Orchestrator:ApiKeys:2:Key"] = GlobexKey,
            ["Orchestrator:ApiKeys:2:Tenant"] = "globex",
            ["Orchestrator:ApiKeys:2:Principal"] = "bob",
            ["Orchestrator:ApiKeys:3:Key"] = OperatorKey,
            ["Orchestrator:ApiKeys:3:Tenant"] = "ops",
            ["Orchestrator:ApiKeys:3:Principal"] = "olga",
            ["Orchestrator:ApiKeys:3:Roles:0"] = "operator",
            ["Orchestrator:Effects:WorkspaceRoot"] = Path.Combine(Folder, "workspaces"),
            ["Serilog:MinimumLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            _settings[key] = value;
    }

    /// <summary>The temp folder holding the store (and workspaces); a second app on it sees the same store.</summary>
    public string Folder { get; }

    public FakeTimeProvider? Time { get; }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        foreach (var (key, value) in _settings)
            builder.UseSetting(key, value);
        if (Time is not null)
            builder.ConfigureServices(services => services.AddSingleton<TimeProvider>(Time));
    }

    public HttpClient ClientFor(string? apiKey = AcmeKey)
    {
        var client = CreateClient();
        if (apiKey is not null)
            client.DefaultRequestHeaders.Add("X-Api-Key", apiKey);
        return client;
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing && _ownsFolder)
            TryDelete(Folder);
    }

    public static void TryDelete(string folder)
    {
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>
/// The store every test runs on: SQLite files by default; with <c>ORCHESTRATOR_TEST_STORE=Postgres</c> (as <c>.ci/run</c>
/// runs the suite a second time) a PostgreSQL database per test folder, so two apps on one folder share one store
/// exactly as two apps on one SQLite file do.
/// </summary>
public static class TestStore
{
    public const string EnvironmentVariable = "ORCHESTRATOR_TEST_STORE";

    public static bool IsPostgres => string.Equals(Environment.GetEnvironmentVariable(EnvironmentVariable), "Postgres", StringComparison.OrdinalIgnoreCase);

    public static string Provider => IsPostgres ? "Postgres" : "Sqlite";

    /// <summary>The store of a test folder: its SQLite file, or its own PostgreSQL database, made on first use.</summary>
    public static string ConnectionFor(string folder)
    {
        if (!IsPostgres)
            return $"Data Source={Path.Combine(folder, "orchestrator.db")}";
        var marker = Path.Combine(folder, "postgres-store");
        lock (Gate)
        {
            if (File.Exists(marker))
                return File.ReadAllText(marker);
            var connection = PostgresServer.RequireAsync().GetAwaiter().GetResult().NewDatabaseAsync().GetAwaiter().GetResult();
            Directory.CreateDirectory(folder);
            File.WriteAllText(marker, connection);
            return connection;
        }
    }

    static readonly Lock Gate = new();
}

/// <summary>Calls of the public API that tests repeat.</summary>
public static class Api
{
    public static async Task<(HttpResponseMessage Response, JsonObject Body)> ActAsync(this HttpClient client, object request, string? idempotencyKey = null)
    {
        using var message = new HttpRequestMessage(HttpMethod.Post, "/v1/act") { Content = JsonContent.Create(request) };
        if (idempotencyKey is not null)
            message.Headers.Add("Idempotency-Key", idempotencyKey);
        var response = await client.SendAsync(message);
        return (response, await BodyOf(response));
    }

    public static async Task<JsonObject> GetJobAsync(this HttpClient client, string jobId)
    {
        var response = await client.GetAsync($"/v1/jobs/{jobId}");
        response.StatusCode.Should().Be(System.Net.HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        return await BodyOf(response);
    }

    /// <summary>Long-polls the job until it is terminal (or the wait gives up) and returns its view.</summary>
    public static async Task<JsonObject> WaitForEndAsync(this HttpClient client, string jobId, int waitMs = 20_000)
    {
        var response = await client.GetAsync($"/v1/jobs/{jobId}/result?waitMs={waitMs}");
        var body = await BodyOf(response);
        response.StatusCode.Should().Be(System.Net.HttpStatusCode.OK, $"job {jobId} should have ended within {waitMs} ms; it is {body["status"]}");
        return body;
    }

    /// <summary>Polls until <paramref name="condition"/> holds for the job view (no fixed sleeps: each poll is a long-poll slice).</summary>
    public static async Task<JsonObject> WaitForAsync(this HttpClient client, string jobId, Func<JsonObject, bool> condition, TimeSpan? timeout = null)
    {
        var until = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        while (true)
        {
            var job = await client.GetJobAsync(jobId);
            if (condition(job))
                return job;
            if (DateTime.UtcNow > until)
                throw new TimeoutException($"Job {jobId} never met the condition; last view: {job.ToJsonString()}");
            await Task.Yield();
            await client.GetAsync($"/v1/jobs/{jobId}/result?waitMs=50");
        }
    }

    /// <summary>
    /// Waits until a job is recorded and <paramref name="condition"/> holds for its view: for jobs whose row is committed
    /// behind their answer (a chat completion), which may be a moment away when the answer arrives.
    /// </summary>
    public static async Task<JsonObject> WaitForRecordAsync(this HttpClient client, string jobId, Func<JsonObject, bool>? condition = null, TimeSpan? timeout = null)
    {
        var until = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        while (true)
        {
            var response = await client.GetAsync($"/v1/jobs/{jobId}/result?waitMs=200");
            if (response.StatusCode != System.Net.HttpStatusCode.NotFound && await BodyOf(response) is var job && (condition ?? (_ => true))(job))
                return job;
            if (DateTime.UtcNow > until)
                throw new TimeoutException($"Job {jobId} was not recorded as expected; last answer: {response.StatusCode}");
            // A job not recorded yet is 404 at once: give the writer its commit (it takes a few milliseconds).
            if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
                await Task.Delay(10);
        }
    }

    public static async Task<JsonObject> BodyOf(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        if (string.IsNullOrWhiteSpace(text))
            return [];
        return JsonNode.Parse(text) as JsonObject ?? throw new InvalidDataException("Expected a JSON object: " + text);
    }

    public static string Str(this JsonNode? node, string path)
    {
        var current = node;
        foreach (var part in path.Split('.'))
            current = current?[part];
        return current?.GetValue<object>()?.ToString() ?? throw new KeyNotFoundException($"No '{path}' in {node?.ToJsonString()}");
    }

    public static JsonSerializerOptions Json { get; } = new(JsonSerializerDefaults.Web);
}
