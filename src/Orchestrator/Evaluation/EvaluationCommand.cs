using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Orchestrator.Storage;
using Orchestrator.Tenancy;

namespace Orchestrator.Evaluation;

/// <summary>
/// <c>orchestrator eval --suite &lt;file&gt; --baseline &lt;policy file&gt; --candidate &lt;policy file&gt; [--repeats N] [--seed S]
/// [--tenant T] [--report out.md|out.html]</c>: runs the evaluation in this process on the configured store and models
/// (no HTTP listener), prints a short summary, and exits 0 when every gate passed, 1 when a gate failed, 2 on bad input
/// (or when the evaluation could not finish).
/// </summary>
internal static class EvaluationCommand
{
    public const string Verb = "eval";

    public static async Task<int> RunAsync(WebApplication app, string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        output ??= System.Console.Out;
        error ??= System.Console.Error;
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] is "--suite" or "--baseline" or "--candidate" or "--repeats" or "--seed" or "--report" or "--tenant" && i + 1 < args.Length)
                options[args[i][2..]] = args[++i];
            else if (args[i].StartsWith("--", StringComparison.Ordinal) && i + 1 < args.Length && args[i].Contains(':', StringComparison.Ordinal))
                i++; // a configuration key (--Orchestrator:Models:0:Id x), read by the host already
            else
                return Usage(error, $"Unknown argument '{args[i]}'.");
        }
        if (!options.TryGetValue("suite", out var suiteFile) || !options.TryGetValue("baseline", out var baselineFile) || !options.TryGetValue("candidate", out var candidateFile))
            return Usage(error, "--suite, --baseline and --candidate are required.");

        var errors = new Dictionary<string, string[]>();
        EvalSuite? suite = null;
        string? baseline = null, candidate = null;
        try
        {
            using var document = JsonDocument.Parse(await File.ReadAllTextAsync(suiteFile), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            suite = SuiteReader.Parse(document.RootElement, errors, "suite");
            baseline = await File.ReadAllTextAsync(baselineFile);
            candidate = await File.ReadAllTextAsync(candidateFile);
        }
        catch (Exception problem) when (problem is IOException or UnauthorizedAccessException or JsonException)
        {
            return Bad(error, problem is JsonException ? $"{suiteFile} is not JSON: {problem.Message}" : problem.Message);
        }
        int? repeats = options.TryGetValue("repeats", out var r) ? int.TryParse(r, out var n) ? n : -1 : null;
        long? seed = options.TryGetValue("seed", out var s) ? long.TryParse(s, out var v) ? v : null : null;
        if (options.ContainsKey("seed") && seed is null)
            return Bad(error, "--seed must be an integer.");
        if (options.TryGetValue("report", out var reportFile) && !reportFile.EndsWith(".md", StringComparison.OrdinalIgnoreCase) && !reportFile.EndsWith(".html", StringComparison.OrdinalIgnoreCase))
            return Bad(error, "--report names a .md or .html file.");
        var tenant = options.GetValueOrDefault("tenant", "eval");
        if (!Identifiers.IsValid(tenant))
            return Bad(error, $"--tenant '{tenant}' is not a valid tenant name.");

        using var baselineDoc = TryParse(baseline!);
        using var candidateDoc = TryParse(candidate!);
        if (baselineDoc is null)
            errors["baseline"] = [$"{baselineFile} is not JSON."];
        if (candidateDoc is null)
            errors["candidate"] = [$"{candidateFile} is not JSON."];
        if (errors.Count > 0)
            return Bad(error, errors);

        await app.StartAsync();
        try
        {
            var caller = new Caller(tenant, "eval-cli", IsOperator: true) { Roles = [Roles.User, Roles.Operator] };
            var request = new EvaluationRequest
            {
                Baseline = new EvalSide { Policy = baselineDoc!.RootElement },
                Candidate = new EvalSide { Policy = candidateDoc!.RootElement },
                Repeats = repeats,
                Seed = seed,
            };
            var (run, refused) = await app.Services.GetRequiredService<EvaluationSubmissions>().SubmitAsync(request, caller, CancellationToken.None, suite);
            if (run is null)
                return Bad(error, refused!);
            output.WriteLine($"evaluation {run.Id}: suite {run.Suite}, {suite!.Cases!.Count} case(s)");
            var dbs = app.Services.GetRequiredService<IDbContextFactory<OrchestratorDb>>();
            var time = app.Services.GetRequiredService<TimeProvider>();
            EvaluationView view;
            while (true)
            {
                view = (await EvaluationApi.FindAsync(run.Id, caller, dbs, CancellationToken.None))!;
                if (EvaluationStatus.IsTerminal(view.Status))
                    break;
                await Task.Delay(TimeSpan.FromMilliseconds(100), time);
            }
            if (view.Verdict is null)
            {
                error.WriteLine($"evaluation {run.Id} ended {view.Status}{(view.Error is null ? "" : ": " + view.Error)}");
                return 2;
            }
            foreach (var gate in view.Gates!)
                output.WriteLine($"  {(gate.Passed ? "pass" : "FAIL")} {gate.Name}: {gate.Detail}{(gate.Passed || gate.Cases.Count == 0 ? "" : " Cases: " + string.Join(", ", gate.Cases))}");
            output.WriteLine($"verdict: {view.Verdict} (suite {view.Pins.SuiteHash[..12]}, candidate {view.Pins.CandidatePolicyHash[..12]}, seed {view.Pins.Seed})");
            if (reportFile is not null)
            {
                await File.WriteAllTextAsync(reportFile, reportFile.EndsWith(".html", StringComparison.OrdinalIgnoreCase) ? EvaluationReport.Html(view) : EvaluationReport.Markdown(view));
                output.WriteLine($"report: {reportFile}");
            }
            return view.Verdict == "pass" ? 0 : 1;
        }
        finally
        {
            await app.StopAsync();
        }
    }

    static JsonDocument? TryParse(string text)
    {
        try
        {
            return JsonDocument.Parse(text, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException)
        {
            return null;
        }
    }

    static int Usage(TextWriter error, string message)
    {
        error.WriteLine(message);
        error.WriteLine("usage: orchestrator eval --suite <suite.json> --baseline <policy.json> --candidate <policy.json> [--repeats N] [--seed S] [--tenant T] [--report out.md|out.html]");
        return 2;
    }

    static int Bad(TextWriter error, string message)
    {
        error.WriteLine(message);
        return 2;
    }

    static int Bad(TextWriter error, Dictionary<string, string[]> errors)
    {
        foreach (var (field, messages) in errors)
            error.WriteLine($"{field}: {string.Join(" ", messages)}");
        return 2;
    }
}
