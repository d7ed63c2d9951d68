using System.Net;
using Orchestrator.Tests.Harness;

namespace Orchestrator.Tests.Hosting;

/// <summary>How the real binary starts when an operator runs it as <c>dotnet path/to/Orchestrator.dll</c> from another folder.</summary>
public sealed class StartupTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("orchestrator-startup-").FullName;

    public void Dispose() => OrchestratorApp.TryDelete(_folder);

    [Fact]
    public async Task Started_from_another_folder_it_reads_the_settings_beside_the_binary()
    {
        await using var service = new ServiceProcess(_folder, new Dictionary<string, string> { ["ASPNETCORE_ENVIRONMENT"] = "Development" })
        {
            WorkingDirectory = _folder,
        };
        await service.StartAsync();
        // The harness sets key 0 itself; the second development key comes only from appsettings.Development.json.
        using var developer = service.Client("dev-user-key-0000000002");

        var response = await developer.GetAsync("/v1/jobs");

        response.StatusCode.Should().Be(HttpStatusCode.OK, "appsettings.Development.json beside the binary holds this key");
        File.Exists(Path.Combine(_folder, "appsettings.json")).Should().BeFalse("the working directory had no settings of its own");
    }
}
