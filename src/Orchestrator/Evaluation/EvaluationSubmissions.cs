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
    TimeProvider time,
    IntentCatalog catalog,
    IVersionChooser? versions = null)
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
        var resolve = versions is null ? null : (ResolveVersions)Resolve;
        var baseline = SuiteReader.Side(request.Baseline, "baseline", errors, resolve);
        var candidate = SuiteReader.Side(request.Candidate, "candidate", errors, resolve);
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
            BaselineHash = plan.Baseline.Recorded,
            CandidateHash = plan.Candidate.Recorded,
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

        // A side given as versions is the suite's intent (its first case's, else the default) composed of those versions,
        // every kind it does not name at its stable version. Pinning one kind records that version's content hash.
        PlanSide? Resolve(ActVersions pins, out string? field, out string? error)
        {
            var intent = suite?.Cases?.Select(c => c?.Act is { ValueKind: JsonValueKind.Object } act && act.TryGetProperty("intent", out var i) && i.ValueKind == JsonValueKind.String ? i.GetString() : null)
                .FirstOrDefault(i => i is not null) ?? catalog.DefaultIntent;
            if (versions!.Pinned(intent, pins, out field, out error) is not { } choice)
                return null;
            var pinned = new[] { (pins.Prompts, choice.Versions.Prompts), (pins.Policy, choice.Versions.Policy), (pins.Routing, choice.Versions.Routing) }
                .Where(p => p.Item1 is not null).Select(p => p.Item2.Hash).ToList();
            var policy = choice.Policy;
            return new PlanSide(policy.Intent, policy.Version, policy.ContentHash, policy.Source) { RecordedHash = pinned.Count == 1 ? pinned[0] : null };
        }

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
