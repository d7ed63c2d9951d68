using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.AI.Evaluation;
using Microsoft.Extensions.Options;
using Orchestrator.Acting;
using Orchestrator.Gateway;
using Orchestrator.Jobs;
using Orchestrator.Replay;
using Orchestrator.Storage;
using Orchestrator.Tenancy;
using Orchestrator.Workflow;

namespace Orchestrator.Evaluation;

/// <summary>
/// Runs an evaluation's plan: case by case, repeat by repeat, the baseline's run and then the candidate's with the same
/// seed, so whatever the machine does to one it does to the other. Each case run is a real job through admission, the
/// queue, the workflow and the gateway (so it has a graph and a replay), keyed by an idempotency key made of the
/// evaluation, case, repeat and side: after a crash the run that was in flight is found again, not run twice, and a
/// case run whose row is written is skipped. Replay cases rerun a recorded run instead, nothing live applied.
/// </summary>
internal sealed class EvaluationRunner(
    Admission admission,
    JobQueries queries,
    JobCompletions completions,
    IDbContextFactory<OrchestratorDb> dbs,
    ModelGateway gateway,
    ReplayStore replays,
    IOptions<EvaluationOptions> options,
    TimeProvider time,
    ILogger<EvaluationRunner> log)
{
    /// <summary>Runs what is left of the evaluation; answers its verdict, or null when it was canceled or the lease was lost (<paramref name="stillOurs"/>).</summary>
    public async Task<Verdict?> RunAsync(EvaluationRun row, Func<CancellationToken, Task<bool>> stillOurs, CancellationToken cancellationToken)
    {
        var plan = JsonSerializer.Deserialize(row.Plan, EvaluationJson.Default.EvaluationPlan)!;
        var sides = new Dictionary<string, IntentPolicy>
        {
            [Verdicts.Baseline] = IntentCatalog.Parse(plan.Baseline.PolicySource),
            [Verdicts.Candidate] = IntentCatalog.Parse(plan.Candidate.PolicySource),
        };
        var caller = new Caller(row.Tenant, row.Principal, row.Operator) { Roles = row.Operator ? [Roles.User, Roles.Operator] : [Roles.User] };
        var done = await LoadAsync(row.Id, cancellationToken);
        var have = done.Select(r => (r.CaseId, r.Repeat, r.Arm)).ToHashSet();

        async Task<bool> RunPairAsync(PlanCase c, int repeat)
        {
            foreach (var arm in new[] { Verdicts.Baseline, Verdicts.Candidate })
            {
                if (have.Contains((c.Id, repeat, arm)))
                    continue;
                if (!await stillOurs(cancellationToken))
                    return false;
                var result = await RunCaseAsync(row, plan, c, repeat, arm, sides[arm], caller, cancellationToken);
                if (!await SaveAsync(result, cancellationToken))
                    return false;
                done.Add(result);
                have.Add((c.Id, repeat, arm));
            }
            return true;
        }

        foreach (var c in plan.Cases)
            for (var repeat = 1; repeat <= c.Repeats; repeat++)
                if (!await RunPairAsync(c, repeat))
                    return null;

        // Extra repeats go where the first k runs disagree (some passed, some failed) on either side: there the verdict is
        // least certain; cases that passed or failed every run keep k. The budget counts extra case runs, both sides.
        if (plan.ExtraMax > 0 && plan.ExtraBudget > 0)
        {
            var spent = done.Count(r => r.Repeat > plan.Cases.First(c => c.Id == r.CaseId).Repeats);
            foreach (var c in plan.Cases)
            {
                bool Disagree() => new[] { Verdicts.Baseline, Verdicts.Candidate }.Any(arm =>
                    done.Where(r => r.CaseId == c.Id && r.Arm == arm).Select(r => r.Passed).Distinct().Count() > 1);
                for (var repeat = c.Repeats + 1; repeat <= c.Repeats + plan.ExtraMax && Disagree(); repeat++)
                {
                    if (!have.Contains((c.Id, repeat, Verdicts.Baseline)) || !have.Contains((c.Id, repeat, Verdicts.Candidate)))
                    {
                        if (spent + 2 > plan.ExtraBudget)
                            break;
                        spent += 2;
                    }
                    if (!await RunPairAsync(c, repeat))
                        return null;
                }
            }
        }
        return Verdicts.Of(plan, done);
    }

    public async Task<List<EvaluationCaseRun>> LoadAsync(string evaluationId, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.Set<EvaluationCaseRun>().AsNoTracking().Where(r => r.EvaluationId == evaluationId)
            .OrderBy(r => r.CaseId).ThenBy(r => r.Repeat).ThenBy(r => r.Arm).ToListAsync(cancellationToken);
    }

    async Task<bool> SaveAsync(EvaluationCaseRun result, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        db.Add(result);
        try
        {
            await db.SaveChangesAsync(cancellationToken);
            return true;
        }
        catch (DbUpdateException error) when (error.InnerException is System.Data.Common.DbException inner && StoreErrors.IsKeyConflict(inner))
        {
            // Another node holds the evaluation now and wrote this case run: it runs the rest.
            log.LogInformation("Evaluation {Id}: case run {Case}/{Repeat}/{Arm} was written by another node", result.EvaluationId, result.CaseId, result.Repeat, result.Arm);
            return false;
        }
    }

    async Task<EvaluationCaseRun> RunCaseAsync(
        EvaluationRun row, EvaluationPlan plan, PlanCase c, int repeat, string arm, IntentPolicy side, Caller caller, CancellationToken cancellationToken)
    {
        var result = new EvaluationCaseRun { EvaluationId = row.Id, CaseId = c.Id, Repeat = repeat, Arm = arm, CreatedAt = time.GetUtcNow().UtcDateTime };
        RunFacts facts;
        if (c.Replay is { } traceId)
            facts = await ReplayedAsync(caller, traceId, side, result, cancellationToken);
        else
            facts = await LiveAsync(row, plan, c, repeat, arm, side, caller, result, cancellationToken);
        result.Status = facts.Status;
        result.ErrorCode = facts.ErrorCode;
        result.LatencyMs = facts.LatencyMs;
        result.CostUsd = facts.CostUsd;
        result.Model = facts.Model;
        result.Output = facts.Text is { Length: > 4000 } text ? text[..4000] + "…" : facts.Text;

        var judge = plan.JudgeModel is { } judgeModel ? new JudgeClient(gateway, judgeModel, result.TraceId ?? row.Id, Seeds.For($"{plan.Seed}/{c.Id}/{repeat}", "judge")) : null;
        var chat = judge is null ? null : new ChatConfiguration(judge);
        var response = new ChatResponse(new ChatMessage(ChatRole.Assistant, facts.Text ?? ""));
        var outcomes = new List<AssertionOutcome>();
        for (var i = 0; i < c.Assertions.Count; i++)
        {
            var assertion = c.Assertions[i];
            var metricName = $"{assertion.Type}[{i}]";
            EvaluationResult evaluated;
            try
            {
                evaluated = await new AssertionEvaluator(assertion, metricName).EvaluateAsync([], response, chat, [facts], cancellationToken);
            }
            catch (Exception error) when (error is ModelUnavailableException or ModelCallException)
            {
                outcomes.Add(new AssertionOutcome(assertion.Type!, false, "The judge could not be asked: " + error.Message));
                continue;
            }
            var metric = evaluated.Metrics[metricName];
            outcomes.Add(new AssertionOutcome(assertion.Type!, metric.Interpretation?.Failed == false, metric.Reason ?? "", (metric as NumericMetric)?.Value));
        }
        result.JudgeCostUsd = (double)(judge?.CostUsd ?? 0);
        result.Passed = outcomes.All(o => o.Passed);
        result.Score = outcomes.Where(o => o.Score is not null).Select(o => o.Score!.Value).DefaultIfEmpty(double.NaN).Average() is var mean && double.IsNaN(mean) ? null : mean;
        result.Assertions = JsonSerializer.Serialize(outcomes, EvaluationJson.Default.ListAssertionOutcome);
        return result;
    }

    async Task<RunFacts> LiveAsync(
        EvaluationRun row, EvaluationPlan plan, PlanCase c, int repeat, string arm, IntentPolicy side, Caller caller, EvaluationCaseRun result,
        CancellationToken cancellationToken)
    {
        var act = c.Act!;
        var underSide = (act.Intent ?? side.Intent) == side.Intent;
        act = act with
        {
            Intent = underSide ? side.Intent : act.Intent,
            Mode = "async",
            // The same seed for both sides and for the same evaluation run again: the draws (jitter, failures) repeat.
            Seed = $"{plan.Seed}/{c.Id}/{repeat}",
        };
        var key = $"eval/{row.Id}/{c.Id}/{repeat}/{arm}";
        ActAnswer answer;
        var tries = 0;
        while (true)
        {
            answer = await admission.ActAsync(act, key, caller, cancellationToken, policy: underSide ? side : null);
            // A full queue or a rate limit is load, not the case's fault: wait and ask again.
            if (answer.View is not null || answer.RefusedWith is not (Hosting.Problems.QueueFull or Hosting.Problems.RateLimited) || ++tries > 600)
                break;
            await Task.Delay(options.Value.RetryDelay, time, cancellationToken);
        }
        if (answer.View is not { } view)
        {
            var code = answer.Problem?.ProblemDetails.Extensions.TryGetValue("code", out var value) == true ? value?.ToString() : answer.RefusedWith;
            return new RunFacts(null, "refused", code ?? "refused", [], [], null, 0, null);
        }
        result.JobId = view.JobId;
        result.TraceId = view.TraceId;
        var job = await EndOfAsync(view.JobId, cancellationToken);
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var nodes = await db.Set<JobNode>().AsNoTracking().Where(n => n.JobId == job.Id).OrderBy(n => n.Seq).ToListAsync(cancellationToken);
        var output = job.Output is null ? null : JsonSerializer.Deserialize(job.Output, JobsJson.Default.JobOutput);
        var path = output?.Path ?? nodes.Where(n => n.Status == NodeStatus.Succeeded).Select(n => n.NodeId).ToList();
        var tools = nodes.Where(n => n.Kind == NodeKinds.Effect).Select(n => n.Name).Distinct().ToList();
        return new RunFacts(output?.Text, WireNames.Of(job.Status), job.ErrorCode, path, tools, Latency(nodes, job), (job.CostMicros ?? 0) / 1_000_000.0, output?.Model);
    }

    /// <summary>
    /// A run's latency: for each model node, the simulated latency of its call when a simulated model answered (what the
    /// model was configured to take, seeded like the call), else the node's measured time. Wall-clock time on a shared
    /// machine is noise; the simulated figure is what makes an evaluation on the simulated provider repeat exactly.
    /// </summary>
    double? Latency(List<JobNode> nodes, Job job)
    {
        // A run that did not complete has no latency to compare (it stopped early, or waited for a retry).
        if (job.Status != JobStatus.Completed)
            return null;
        double total = 0;
        var any = false;
        foreach (var node in nodes.Where(n => n.Kind == NodeKinds.Model && n.Status == NodeStatus.Succeeded && n.Output is not null))
        {
            any = true;
            var checkpoint = JsonSerializer.Deserialize(node.Output!, WorkflowJson.Default.ModelCheckpoint)!;
            var input = node.Input is null ? null : JsonSerializer.Deserialize(node.Input, WorkflowJson.Default.ModelInput);
            var model = gateway.Models.FirstOrDefault(m => m.Id == checkpoint.Model)?.Entry;
            if (model is { IsSimulated: true } && input is not null)
                total += SimulatedChatClient.LatencyOf(model, input.Seed);
            else if (node.StartedAt is { } started && node.CompletedAt is { } completed)
                total += (completed - started).TotalMilliseconds;
        }
        return any ? total : job.RunMs;
    }

    async Task<Job> EndOfAsync(string jobId, CancellationToken cancellationToken)
    {
        var watch = completions.Watch(jobId);
        try
        {
            while (true)
            {
                if (await queries.FindByIdAsync(jobId, cancellationToken) is { IsTerminal: true } ended)
                    return ended;
                try
                {
                    // This node's end of the job fires the watch; another node's is seen at the next read.
                    return await watch.WaitAsync(options.Value.PollInterval, time, cancellationToken);
                }
                catch (TimeoutException)
                {
                }
            }
        }
        finally
        {
            completions.Forget(jobId, watch);
        }
    }

    /// <summary>A replay case: the recorded run walked again under this side's policy, every model and effect answered from the recording.</summary>
    async Task<RunFacts> ReplayedAsync(Caller caller, string traceId, IntentPolicy side, EvaluationCaseRun result, CancellationToken cancellationToken)
    {
        var found = await replays.FindAsync(caller, traceId, cancellationToken);
        if (found.Package is not { } package)
            return new RunFacts(null, "failed", found.IsExpired ? "replay_expired" : Hosting.Problems.NotFound, [], [], null, 0, null);
        result.TraceId = traceId;
        var policy = side.Intent == package.Intent ? side : package.Policy with { ContentHash = package.Versions.Policy.Hash ?? "" };
        var rerun = await ReplayEngine.RerunAsync(package, policy, "evaluation", cancellationToken);
        var names = package.Nodes.ToDictionary(n => n.Id, n => (n.Kind, n.Name));
        var tools = rerun.Path.Where(id => names.TryGetValue(id, out var n) && n.Kind == NodeKinds.Effect).Select(id => names[id].Name).Distinct().ToList();
        var model = package.Outcome.Output?.Model;
        return new RunFacts(rerun.Output, rerun.Status, rerun.Error?.Code, rerun.Path, tools, null, 0, model);
    }
}
