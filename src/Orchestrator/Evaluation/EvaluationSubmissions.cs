using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Orchestrator.Acting;
using Orchestrator.Replay;
using Orchestrator.Storage;
using Orchestrator.Tenancy;
using Orchestrator.Workflow;

namespace Orchestrator.Evaluation;

/// <summary>Checks a submission into a plan, stores the sides' policy snapshots and the evaluation row, and wakes the worker.</summary>
internal sealed class EvaluationSubmissions(
    ActValidator validator,
    SnapshotPolicies snapshots,
    IDbContextFactory<OrchestratorDb> dbs,
    EvaluationSignal signal,
    IOptions<EvaluationOptions> options,
    AuditTrail audit,
    TimeProvider time)
{
    /// <summary>The stored evaluation, or the field errors that refused it.</summary>
    public async Task<(EvaluationRun? Run, Dictionary<string, string[]>? Errors)> SubmitAsync(
        EvaluationRequest request, Caller caller, CancellationToken cancellationToken, EvalSuite? suite = null)
    {
        var errors = new Dictionary<string, string[]>();
        if (suite is null)
        {
            if (request.Suite is not { } body)
                errors["suite"] = ["suite is required: the suite itself, as a suite file holds it."];
            else
                suite = SuiteReader.Parse(body, errors);
        }
        var baseline = SuiteReader.Side(request.Baseline, "baseline", errors);
        var candidate = SuiteReader.Side(request.Candidate, "candidate", errors);
        var plan = SuiteReader.Plan(suite, baseline, candidate, request.Repeats, request.Gates, request.Seed, options.Value.JudgeModel, Check, errors);
        if (plan is null)
        {
            if (errors.Count == 0)
                errors["suite"] = ["The suite could not be read."];
            return (null, errors);
        }
        var now = StoreTime.Microseconds(time.GetUtcNow().UtcDateTime);
        // Jobs name the policy they run under by content hash; its snapshot is stored first, so any node can run them.
        await snapshots.StoreAsync(IntentCatalog.Parse(plan.Baseline.PolicySource), now, cancellationToken);
        await snapshots.StoreAsync(IntentCatalog.Parse(plan.Candidate.PolicySource), now, cancellationToken);
        var run = new EvaluationRun
        {
            Id = "ev_" + Guid.CreateVersion7().ToString("N"),
            Tenant = caller.Tenant,
            Principal = caller.Principal,
            Operator = caller.IsOperator,
            Suite = plan.Suite.Length > 200 ? plan.Suite[..200] : plan.Suite,
            SuiteHash = plan.SuiteHash,
            BaselineHash = plan.Baseline.PolicyHash,
            CandidateHash = plan.Candidate.PolicyHash,
            Seed = plan.Seed,
            Plan = JsonSerializer.Serialize(plan, EvaluationJson.Default.EvaluationPlan),
            CreatedAt = now,
        };
        await using (var db = await dbs.CreateDbContextAsync(cancellationToken))
        {
            db.Add(run);
            await db.SaveChangesAsync(cancellationToken);
        }
        await audit.RecordAsync(caller, "evaluation.create", $"evaluations/{run.Id}", allowed: true,
            details: new { suite = run.Suite, suiteHash = run.SuiteHash, baseline = run.BaselineHash, candidate = run.CandidateHash });
        signal.Submitted();
        return (run, null);

        IEnumerable<(string, string)> Check(ActRequest act, PlanSide? side)
        {
            var check = validator.Check(act, null, side is null ? null : IntentCatalog.Parse(side.PolicySource));
            if (check.Errors is { } found)
                foreach (var (field, messages) in found)
                    yield return (field, messages[0]);
            if (check.CapabilityDenied is { } denied)
                yield return ("tools", denied);
        }
    }
}
