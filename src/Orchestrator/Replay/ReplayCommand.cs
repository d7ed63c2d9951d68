using System.Text.Json;
using Orchestrator.Workflow;

namespace Orchestrator.Replay;

/// <summary>
/// <c>orchestrator replay &lt;package.json&gt; [--policy &lt;policy.json&gt;]</c>: the rerun of
/// <c>POST /v1/replays/{traceId}/rerun</c>, offline, on a file exported with <c>GET /v1/replays/{traceId}</c>.
/// Prints the report as JSON; exits 0 when the path is the same, 1 when it differs, 2 on bad input.
/// </summary>
internal static class ReplayCommand
{
    public const string Verb = "replay";

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error)
    {
        string? packageFile = null, policyFile = null;
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--policy" && i + 1 < args.Length)
                policyFile = args[++i];
            else if (args[i] is "-h" or "--help")
            {
                await output.WriteLineAsync(Usage);
                return 0;
            }
            else if (packageFile is null && !args[i].StartsWith('-'))
                packageFile = args[i];
            else
            {
                await error.WriteLineAsync($"Unexpected argument '{args[i]}'.\n{Usage}");
                return 2;
            }
        }
        if (packageFile is null)
        {
            await error.WriteLineAsync(Usage);
            return 2;
        }

        ReplayPackage package;
        IntentPolicy policy;
        string source;
        try
        {
            package = JsonSerializer.Deserialize(await File.ReadAllTextAsync(packageFile), ReplayJson.Default.ReplayPackage)
                ?? throw new InvalidDataException("the file is empty");
            if (package.Format != ReplayPackage.CurrentFormat)
                throw new InvalidDataException($"its format is '{package.Format}', not '{ReplayPackage.CurrentFormat}'");
            if (ReplayEngine.Invalid(package) is { } invalid)
                throw new InvalidDataException($"{invalid.Field}: {invalid.Message}");
            (policy, source) = policyFile is null
                ? (package.Policy with { ContentHash = package.Versions.Policy.Hash ?? "" }, "recorded")
                : (IntentCatalog.Parse(await File.ReadAllTextAsync(policyFile)), policyFile);
        }
        catch (Exception e) when (e is IOException or JsonException or InvalidDataException or UnauthorizedAccessException)
        {
            await error.WriteLineAsync($"Cannot replay: {e.Message}");
            return 2;
        }

        var report = await ReplayEngine.RerunAsync(package, policy, source, CancellationToken.None);
        await output.WriteLineAsync(JsonSerializer.Serialize(report, ReplayJson.Indented.RerunReport));
        await error.WriteLineAsync(report.PathDiff.Same
            ? $"Same path ({report.Path.Count} nodes){(report.Identical ? ", identical output." : ", but the output differs.")}"
            : $"The path differs at '{report.PathDiff.DivergedAt}' (node {report.PathDiff.Index}).");
        return report.PathDiff.Same ? 0 : 1;
    }

    const string Usage = "usage: orchestrator replay <package.json> [--policy <policy.json>]";
}
