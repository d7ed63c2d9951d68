using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Orchestrator.Hosting;
using Orchestrator.Replay;
using Orchestrator.Storage;
using Orchestrator.Tenancy;

namespace Orchestrator.Evaluation;

/// <summary><c>/v1/admin/evaluations</c> (operator): submit, follow, read the verdict and the report, cancel; build a suite from recorded runs.</summary>
public static class EvaluationApi
{
    public static RouteGroupBuilder MapEvaluation(this IEndpointRouteBuilder app)
    {
        var evaluations = app.MapGroup("/v1/admin/evaluations").WithTags("Evaluation")
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden);
        evaluations.MapPost("/", Submit).WithSummary("Run a suite for a baseline and a candidate, paired case by case; 202 with the evaluation to follow.")
            .ProducesProblem(StatusCodes.Status400BadRequest);
        evaluations.MapGet("/", List).WithSummary("Evaluations, newest first; candidateHash= and verdict= find a passing evaluation of a content hash.");
        evaluations.MapGet("/{id}", Get).WithSummary("The evaluation: status, verdict, gates with the cases that failed them, per-case results.")
            .ProducesProblem(StatusCodes.Status404NotFound);
        evaluations.MapGet("/{id}/report", Report).WithSummary("The report, text/markdown or text/html by Accept: per-case table, gate table, latency and cost pictures.")
            .Produces<string>(StatusCodes.Status200OK, "text/markdown", "text/html")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        evaluations.MapPost("/{id}/cancel", Cancel).WithSummary("Cancel: the evaluation stops before its next case run.")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        evaluations.MapPost("/suites/from-traces", FromTraces).WithSummary("A replay-backed suite from recorded runs: each case reruns a trace, effects answered from the recording.")
            .ProducesProblem(StatusCodes.Status400BadRequest);
        return evaluations;
    }

    static async Task<Results<Accepted<EvaluationAccepted>, ProblemHttpResult>> Submit(
        EvaluationRequest request, Caller caller, EvaluationSubmissions submissions, CancellationToken cancellationToken)
    {
        var (run, errors) = await submissions.SubmitAsync(request, caller, cancellationToken);
        if (run is null)
            return Problems.Validation(errors!);
        var links = EvaluationLinks.For(run.Id);
        return TypedResults.Accepted(links.Self, new EvaluationAccepted(run.Id, run.Status, links));
    }

    internal static async Task<Ok<EvaluationList>> List(
        string? candidateHash, string? verdict, int? limit, Caller caller, IDbContextFactory<OrchestratorDb> dbs, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var query = db.Set<EvaluationRun>().AsNoTracking().Where(e => caller.IsOperator || e.Tenant == caller.Tenant);
        if (candidateHash is not null)
            query = query.Where(e => e.CandidateHash == candidateHash);
        if (verdict is not null)
            query = query.Where(e => e.Verdict == verdict);
        var rows = await query.OrderByDescending(e => e.Id).Take(Math.Clamp(limit ?? 50, 1, 200))
            .Select(e => new EvaluationListItem(e.Id, e.Status, e.Suite, e.Verdict, e.SuiteHash, e.BaselineHash, e.CandidateHash, e.CreatedAt, e.CompletedAt))
            .ToListAsync(cancellationToken);
        return TypedResults.Ok(new EvaluationList(rows));
    }

    internal static async Task<Results<Ok<EvaluationView>, ProblemHttpResult>> Get(
        string id, Caller caller, IDbContextFactory<OrchestratorDb> dbs, CancellationToken cancellationToken) =>
        await FindAsync(id, caller, dbs, cancellationToken) is { } view ? TypedResults.Ok(view) : Missing(id);

    static async Task<Results<ContentHttpResult, ProblemHttpResult>> Report(
        string id, Caller caller, IDbContextFactory<OrchestratorDb> dbs, HttpContext http, CancellationToken cancellationToken)
    {
        if (await FindAsync(id, caller, dbs, cancellationToken) is not { } view)
            return Missing(id);
        if (view.Verdict is null)
            return Problems.For(Problems.Conflict, $"Evaluation {id} is {view.Status}; its report exists once it has completed.");
        var html = http.Request.Headers.Accept.Any(a => a?.Contains("text/html", StringComparison.OrdinalIgnoreCase) == true);
        return html
            ? TypedResults.Content(EvaluationReport.Html(view), "text/html; charset=utf-8")
            : TypedResults.Content(EvaluationReport.Markdown(view), "text/markdown; charset=utf-8");
    }

    static async Task<Results<Accepted<EvaluationView>, ProblemHttpResult>> Cancel(
        string id, Caller caller, IDbContextFactory<OrchestratorDb> dbs, AuditTrail audit, TimeProvider time, CancellationToken cancellationToken)
    {
        await using (var db = await dbs.CreateDbContextAsync(cancellationToken))
        {
            var row = await db.Set<EvaluationRun>().AsNoTracking().FirstOrDefaultAsync(e => e.Id == id, cancellationToken);
            if (row is null || !caller.CanSee(row.Tenant))
                return Missing(id);
            if (EvaluationStatus.IsTerminal(row.Status))
                return Problems.For(Problems.Conflict, $"Evaluation {id} is already {row.Status}.");
            // Not yet started: it ends at once; running: its node sees the request before its next case run.
            var now = StoreTime.Microseconds(time.GetUtcNow().UtcDateTime);
            await db.Set<EvaluationRun>().Where(e => e.Id == id && e.Status == EvaluationStatus.Accepted && e.Owner == null)
                .ExecuteUpdateAsync(s => s.SetProperty(e => e.Status, EvaluationStatus.Canceled).SetProperty(e => e.CancelRequested, true).SetProperty(e => e.CompletedAt, now), cancellationToken);
            await db.Set<EvaluationRun>().Where(e => e.Id == id).ExecuteUpdateAsync(s => s.SetProperty(e => e.CancelRequested, true), cancellationToken);
            await audit.RecordAsync(caller, "evaluation.cancel", $"evaluations/{id}", allowed: true, tenant: row.Tenant);
        }
        var view = await FindAsync(id, caller, dbs, cancellationToken);
        return TypedResults.Accepted(view!.Links.Self, view);
    }

    static async Task<Results<Ok<EvalSuite>, ProblemHttpResult>> FromTraces(
        SuiteFromTraces request, Caller caller, ReplayStore replays, CancellationToken cancellationToken)
    {
        if (request.TraceIds is not { Count: > 0 and <= 1000 } traces)
            return Problems.Validation("traceIds", "Name 1-1000 recorded runs by trace id.");
        var cases = new List<SuiteCase>();
        for (var i = 0; i < traces.Count; i++)
        {
            var found = await replays.FindAsync(caller, traces[i] ?? "", cancellationToken);
            if (found.Package is not { } package)
                return Problems.Validation($"traceIds[{i}]", $"No recorded run with trace id {traces[i]} here.");
            var assertions = new List<SuiteAssertion>
            {
                new() { Type = AssertionTypes.Path, Nodes = ReplayEngine.OriginalPath(package).ToList() },
            };
            if (package.Outcome.Output?.Text is { } text)
                assertions.Add(new SuiteAssertion { Type = AssertionTypes.EqualsText, Value = JsonSerializer.SerializeToElement(text) });
            cases.Add(new SuiteCase { Name = $"{package.Intent} {package.TraceId[..8]}", Tags = ["replay", package.Intent], Replay = package.TraceId, Assertions = assertions });
        }
        return TypedResults.Ok(new EvalSuite { Name = request.Name ?? "from-traces", Cases = cases });
    }

    internal static async Task<EvaluationView?> FindAsync(string id, Caller caller, IDbContextFactory<OrchestratorDb> dbs, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var row = await db.Set<EvaluationRun>().AsNoTracking().FirstOrDefaultAsync(e => e.Id == id, cancellationToken);
        if (row is null || !caller.CanSee(row.Tenant))
            return null;
        var done = await db.Set<EvaluationCaseRun>().CountAsync(r => r.EvaluationId == id, cancellationToken);
        var plan = JsonSerializer.Deserialize(row.Plan, EvaluationJson.Default.EvaluationPlan)!;
        var verdict = row.Result is null ? null : JsonSerializer.Deserialize(row.Result, EvaluationJson.Default.Verdict);
        return EvaluationView.Of(row, verdict, done, plan.Cases.Sum(c => c.Repeats) * 2);
    }

    static ProblemHttpResult Missing(string id) => Problems.For(Problems.NotFound, $"No evaluation {id} here.");
}

public sealed record EvaluationList(IReadOnlyList<EvaluationListItem> Items);

public sealed record EvaluationListItem(
    string Id, string Status, string Suite, string? Verdict, string SuiteHash, string BaselineHash, string CandidateHash, DateTime CreatedAt, DateTime? CompletedAt);
