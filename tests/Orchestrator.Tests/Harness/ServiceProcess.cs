using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Orchestrator.Tests.Harness;

/// <summary>
/// The real service as a child process (<c>dotnet Orchestrator.dll</c>) on 127.0.0.1, for tests where a
/// crash must be real: <see cref="Kill"/> sends SIGKILL, <see cref="PauseAsync"/> and <see cref="ResumeAsync"/> SIGSTOP and
/// SIGCONT. Settings are configuration keys, passed as environment variables (they override the defaults below, the
/// SQLite connection string included); the store and workspaces live in the folder the test gives. Several processes
/// may share one folder: each with its own <c>Orchestrator:Node:Id</c> logs to its own file.
/// </summary>
public sealed class ServiceProcess : IAsyncDisposable
{
    readonly Dictionary<string, string> _settings;
    readonly int _port = FreePort();
    Process? _process;

    /// <summary>
    /// The defaults (a SQLite file in <paramref name="folder"/>, the test keys) come first; <paramref name="settings"/>
    /// override them key by key, so a test runs the service on PostgreSQL with
    /// <c>["Orchestrator:Store:Provider"] = "Postgres"</c> and
    /// <c>["ConnectionStrings:Orchestrator"] = await postgres.NewDatabaseAsync()</c> (see <see cref="PostgresServer"/>).
    /// </summary>
    public ServiceProcess(string folder, IDictionary<string, string> settings)
    {
        _settings = new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{_port}",
            ["ConnectionStrings__Orchestrator"] = TestStore.ConnectionFor(folder),
            ["Orchestrator__Store__Provider"] = TestStore.Provider,
            ["Orchestrator__Effects__WorkspaceRoot"] = Path.Combine(folder, "workspaces"),
            ["Orchestrator__ApiKeys__0__Key"] = OrchestratorApp.AcmeKey,
            ["Orchestrator__ApiKeys__0__Tenant"] = "acme",
            ["Orchestrator__ApiKeys__0__Principal"] = "alice",
            ["Serilog__MinimumLevel__Default"] = "Warning",
        };
        foreach (var (key, value) in settings)
            _settings[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        NodeId = _settings.GetValueOrDefault("Orchestrator__Node__Id");
        Log = Path.Combine(folder, NodeId is null ? "service.log" : $"service-{NodeId}.log");
    }

    /// <summary>The node's name (<c>Orchestrator:Node:Id</c>) when the test gave one.</summary>
    public string? NodeId { get; }

    /// <summary>The process's working directory; the binary's folder unless a test says otherwise.</summary>
    public string WorkingDirectory { get; init; } = Path.GetDirectoryName(Binary())!;

    /// <summary>Where the service's console output goes, every start appended.</summary>
    public string Log { get; }

    public Uri BaseAddress => new($"http://127.0.0.1:{_port}");

    public HttpClient Client(string apiKey = OrchestratorApp.AcmeKey)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.Add("X-Api-Key", apiKey);
        return client;
    }

    public async Task StartAsync()
    {
        var start = new ProcessStartInfo("dotnet", [Binary()])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = WorkingDirectory,
        };
        foreach (var (key, value) in _settings)
            start.Environment[key] = value;
        _process = Process.Start(start)!;
        var log = new StreamWriter(Log, append: true) { AutoFlush = true };
        _process.OutputDataReceived += (_, e) => Write(log, e.Data);
        _process.ErrorDataReceived += (_, e) => Write(log, e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        using var probe = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(2) };
        var until = DateTime.UtcNow.AddSeconds(120);
        while (DateTime.UtcNow < until)
        {
            if (_process.HasExited)
            {
                _process.WaitForExit(); // the rest of its output reaches the log
                throw new InvalidOperationException($"The service exited with {_process.ExitCode} while starting; see {Log}:\n{ReadLog()}");
            }
            try
            {
                if ((await probe.GetAsync("/health/ready")).StatusCode == HttpStatusCode.OK)
                    return;
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"The service did not become ready; see {Log}:\n{ReadLog()}");
    }

    static void Write(StreamWriter log, string? line)
    {
        if (line is null)
            return;
        lock (log)
            log.WriteLine(line);
    }

    public string ReadLog()
    {
        try
        {
            using var stream = new FileStream(Log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            var text = reader.ReadToEnd();
            return text.Length > 8000 ? text[^8000..] : text;
        }
        catch (IOException)
        {
            return "";
        }
    }

    /// <summary>SIGKILL: no shutdown hooks, no flushes; whatever was committed is all there is.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill(entireProcessTree: false);
            process.WaitForExit();
        }
    }

    /// <summary>SIGSTOP: the process freezes as it is (timers, leases and all) until <see cref="ResumeAsync"/>, like a long GC pause or a stalled VM.</summary>
    public Task PauseAsync() => SignalAsync("STOP");

    /// <summary>SIGCONT: a paused process goes on from where it stopped.</summary>
    public Task ResumeAsync() => SignalAsync("CONT");

    async Task SignalAsync(string signal)
    {
        if (_process is not { HasExited: false } process)
            throw new InvalidOperationException($"The service is not running; cannot send SIG{signal}.");
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-" + signal, process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { UseShellExecute = false })!;
        await kill.WaitForExitAsync();
        if (kill.ExitCode != 0)
            throw new InvalidOperationException($"kill -{signal} {process.Id} exited with {kill.ExitCode}.");
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        _process?.Dispose();
        await Task.CompletedTask;
    }

    /// <summary>The service's own build output (the test project references it, so it is built in the same configuration).</summary>
    public static string Binary()
    {
        var testBin = AppContext.BaseDirectory;
        var configuration = testBin.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}") ? "Release" : "Debug";
        var root = new DirectoryInfo(testBin);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Orchestrator.sln")))
            root = root.Parent;
        if (root is null)
            throw new InvalidOperationException("Could not find the repository root (Orchestrator.sln) above " + testBin);
        var dll = Path.Combine(root.FullName, "src", "Orchestrator", "bin", configuration, "net10.0", "Orchestrator.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("Build the service first", dll);
    }

    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
