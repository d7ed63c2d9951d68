namespace Orchestrator.Evaluation;

/// <summary><c>GET /v1/admin/evaluations/{id}</c>: state, and once completed the verdict, its gates and per-case results.</summary>
public sealed record EvaluationView(
    string Id,
    string Status,
    string Tenant,
    string Suite,
    string? Verdict,
    IReadOnlyList<GateResult>? Gates,
    IReadOnlyList<CaseResult>? Cases,
    ArmSummary? Baseline,
    ArmSummary? Candidate,
    Pins Pins,
    EvaluationProgress Progress,
    string? Error,
    DateTime CreatedAt,
    DateTime? StartedAt,
    DateTime? CompletedAt,
    EvaluationLinks Links)
{
    public static EvaluationView Of(EvaluationRun run, Verdict? verdict, int doneRuns, int plannedRuns) => new(
        run.Id, run.Status, run.Tenant, run.Suite, run.Verdict, verdict?.Gates, verdict?.Cases, verdict?.Baseline, verdict?.Candidate,
        verdict?.Pins ?? new Pins(run.SuiteHash, run.BaselineHash, run.CandidateHash, run.Seed, ""),
        new EvaluationProgress(doneRuns, plannedRuns), run.Error, run.CreatedAt, run.StartedAt, run.CompletedAt, EvaluationLinks.For(run.Id));
}

/// <summary>Case runs written so far and planned (extra repeats may add to the plan).</summary>
public sealed record EvaluationProgress(int CaseRuns, int Planned);

public sealed record EvaluationLinks(string Self, string Report, string Cancel)
{
    public static EvaluationLinks For(string id) => new($"/v1/admin/evaluations/{id}", $"/v1/admin/evaluations/{id}/report", $"/v1/admin/evaluations/{id}/cancel");
}

/// <summary>What <c>POST /v1/admin/evaluations</c> answers (202).</summary>
public sealed record EvaluationAccepted(string Id, string Status, EvaluationLinks Links);

/// <summary>The body of <c>POST /v1/admin/evaluations/suites/from-traces</c>: recorded runs to make a replay-backed suite of.</summary>
public sealed record SuiteFromTraces(string? Name, IReadOnlyList<string>? TraceIds);
