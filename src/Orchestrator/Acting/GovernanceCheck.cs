using Orchestrator.Gateway;
using Orchestrator.Hosting;
using Orchestrator.Jobs;
using Orchestrator.Tenancy;
using Orchestrator.Workflow;

namespace Orchestrator.Acting;

/// <summary>
/// The tenant's rules for one request (Order 200): its overrides and <c>maxPriority</c> clamp what the request asks for,
/// then its requests-per-minute and daily budgets become takes from counter rows, committed in the same transaction
/// as the job (see <see cref="AdmitWithTakes"/>), so a refusal never creates a job and N requests on M nodes never pass
/// a limit. Only a take that can never pass (a hold above the whole budget, a limit of 0) is refused here.
/// </summary>
internal sealed class GovernanceCheck(TenantDirectory tenants, ModelGateway gateway, TimeProvider time) : AdmissionCheck
{
    public override int Order => 200;

    public override ValueTask<ActAnswer?> CheckAsync(Admitting admitting, CancellationToken cancellationToken)
    {
        var caller = admitting.Caller;
        var document = tenants.Find(caller.Tenant);
        var tenant = document.Limits;
        var principal = TenantDirectory.PrincipalLimits(document, caller.Principal);
        if (tenant is null or { IsEmpty: true } && principal is null or { IsEmpty: true } && document.Overrides is null)
            return ValueTask.FromResult<ActAnswer?>(null);

        if (Clamp(admitting.Act, document, tenant, principal) is not { } act)
            return Refuse(Problems.For(Problems.ValidationFailed,
                "None of the models in routing.models is allowed for this tenant.",
                new Dictionary<string, string[]> { ["routing.models"] = [$"This tenant may use only: {string.Join(", ", document.Overrides!.Routing!.Models!)}."] }));
        admitting.Act = act;

        var now = time.GetUtcNow().UtcDateTime;
        var takes = new List<CounterTake>();
        var minute = Ledger.Minute(now);
        if (tenant?.RequestsPerMinute is { } tenantRate)
            takes.Add(new CounterTake(caller.Tenant, "", CounterKinds.Requests, minute, 1, 0, tenantRate));
        if (principal?.RequestsPerMinute is { } principalRate)
            takes.Add(new CounterTake(caller.Tenant, caller.Principal, CounterKinds.Requests, minute, 1, 0, principalRate));

        if (tenant?.HasBudget == true || principal?.HasBudget == true)
        {
            var costBudget = tenant?.DailyCostBudgetUsd is not null || principal?.DailyCostBudgetUsd is not null;
            var reachable = Reachable(act, costBudget);
            if (reachable.Count == 0)
                return Refuse(Problems.For(Problems.BudgetExceeded,
                    "No model this request may reach has a price, so its cost cannot be metered against the tenant's cost budget; configure the models' CostPer1kInputUsd and CostPer1kOutputUsd.",
                    extensions: Extensions(costBudget && tenant?.DailyCostBudgetUsd is not null ? "tenant" : "principal", "dailyCostBudgetUsd", Ledger.NextDay(now))));
            // Under a cost budget the request reaches only priced models, whatever it (or the tenant's override) named.
            if (costBudget)
                admitting.Act = act = act with { Request = act.Request with { Routing = (act.Request.Routing ?? new ActRouting()) with { Models = reachable.Select(m => m.Id).ToList() } } };
            var (tokens, micros) = WorstCase(act, reachable);
            var day = Ledger.Day(now);
            foreach (var (scope, limits) in (ReadOnlySpan<(string, TenantLimits?)>)[("", tenant), (caller.Principal, principal)])
            {
                takes.Add(new CounterTake(caller.Tenant, scope, CounterKinds.Tokens, day, 0, tokens, limits?.DailyTokenBudget ?? long.MaxValue));
                takes.Add(new CounterTake(caller.Tenant, scope, CounterKinds.Cost, day, 0, micros,
                    limits?.DailyCostBudgetUsd is { } usd ? Ledger.MicrosDown(usd) : long.MaxValue));
            }
            admitting.Hold = new BudgetHold { Tenant = caller.Tenant, Principal = caller.Principal, Period = day, Tokens = tokens, Micros = micros };
        }

        if (takes.FirstOrDefault(t => t.Impossible) is { } impossible)
            return Refuse(Refusal(impossible, now, document));
        admitting.Takes = takes;
        return ValueTask.FromResult<ActAnswer?>(null);
    }

    static ValueTask<ActAnswer?> Refuse(ActAnswer answer) => ValueTask.FromResult<ActAnswer?>(answer);

    static ValueTask<ActAnswer?> Refuse(Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult problem) =>
        ValueTask.FromResult<ActAnswer?>(ActAnswer.Refused(problem) with { RefusedWith = (string)problem.ProblemDetails.Extensions["code"]! });

    /// <summary>The request as the tenant lets it run, or null when no model it asked for is allowed.</summary>
    static AdmittedAct? Clamp(AdmittedAct act, TenantDocument document, TenantLimits? tenant, TenantLimits? principal)
    {
        var priority = act.Priority;
        foreach (var max in (ReadOnlySpan<string?>)[tenant?.MaxPriority, principal?.MaxPriority])
            if (max is not null && WireNames.TryParsePriority(max, out var cap) && priority < cap)
                priority = cap;

        var deadlineMs = (long)act.DeadlineMs;
        if (document.Overrides?.DeadlineMs is { } bounds)
            deadlineMs = Math.Clamp(deadlineMs, bounds.Min ?? 1, Math.Max(bounds.Min ?? 1, bounds.Max ?? long.MaxValue));

        var routing = act.Request.Routing;
        if (document.Overrides?.Routing is { } forced)
        {
            routing ??= new ActRouting();
            if (forced.Strategy is not null)
                routing = routing with { Strategy = forced.Strategy };
            if (forced.Models is { Count: > 0 } allowed)
            {
                var models = routing.Models is { } asked ? asked.Where(allowed.Contains).ToList() : [.. allowed];
                if (models.Count == 0)
                    return null;
                routing = routing with { Models = models };
            }
        }

        return act with
        {
            Priority = priority,
            DeadlineMs = (int)Math.Min(int.MaxValue, deadlineMs),
            Request = act.Request with { Priority = WireNames.Of(priority), DeadlineMs = deadlineMs, Routing = routing },
        };
    }

    /// <summary>The catalog models the request may reach (its allow-list, or all); with a cost budget only priced ones.</summary>
    List<CatalogModel> Reachable(AdmittedAct act, bool costBudget) =>
        gateway.Models.Where(m => (act.Request.Routing?.Models is not { } allowed || allowed.Contains(m.Id)) && (!costBudget || m.Entry.Priced)).ToList();

    /// <summary>
    /// The most the request can use: for every model call the intent may make (a model node once, an agent node up to
    /// its step limit), the request (as UTF-8 JSON) and every prompt of the intent, at most a token a byte, plus what the
    /// calls before it may have answered, plus the intent's output ceiling; priced at the dearest reachable model.
    /// </summary>
    internal static (long Tokens, long Micros) WorstCase(AdmittedAct act, IReadOnlyList<CatalogModel> reachable)
    {
        var policy = act.Policy;
        // The request as UTF-8 JSON bounds its text from above, whatever carries it (input, messages, a chat transcript and
        // its tools), and a byte-level tokenizer never makes more tokens than bytes: a bound that holds for any language,
        // where four characters a token is an average that CJK text or emoji pass.
        long bytes = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(act.Request, WorkflowJson.Default.ActRequest).Length
                     + policy.Nodes.Sum(n => (long)System.Text.Encoding.UTF8.GetByteCount(n.Prompt ?? ""));
        // With a session, memory's recall adds up to its budget (about four characters a token) to each call's input.
        var memory = act.Request.Session is not null ? policy.Memory : null;
        var baseInput = bytes + 16 + (memory is null ? 0 : 4L * memory.BudgetTokens);
        var calls = policy.Nodes.Sum(n => n.Kind == NodeKinds.Agent ? policy.MaxSteps : n.Kind == NodeKinds.Model ? 1 : 0);
        long output = policy.MaxOutputTokens;
        long input = 0;
        for (var call = 0; call < calls; call++)
            input += baseInput + call * output;
        // A summary the turn may fold is one more call, over at most what the session keeps.
        if (memory?.Summarize is { } summarize)
        {
            input += memory.Retention.MaxBytes ?? 4L * (summarize.AfterTokens ?? policy.MaxOutputTokens);
            calls++;
        }
        var tokens = input + calls * output;
        var perInput = reachable.Max(m => m.Entry.CostPer1kInputUsd);
        var perOutput = reachable.Max(m => m.Entry.CostPer1kOutputUsd);
        return (tokens, Ledger.MicrosUp((input * perInput + calls * output * perOutput) / 1000m));
    }

    /// <summary>The 429 for a take that did not pass: which limit, at which scope, and when its period resets.</summary>
    public static ActAnswer Refusal(CounterTake take, DateTime now, TenantDocument document)
    {
        var (code, limit, resetAt, what) = take.Kind switch
        {
            CounterKinds.Requests => (Problems.RateLimited, "requestsPerMinute", Ledger.NextMinute(now), $"{take.Limit} requests per minute"),
            CounterKinds.Tokens => (Problems.QuotaExceeded, "dailyTokenBudget", Ledger.NextDay(now), $"a daily budget of {take.Limit} tokens"),
            _ => (Problems.BudgetExceeded, "dailyCostBudgetUsd", Ledger.NextDay(now), $"a daily budget of {take.Limit / (decimal)Ledger.MicrosPerUsd:0.######} USD"),
        };
        var who = take.Scope.Length == 0 ? $"Tenant '{take.Tenant}'" : $"Principal '{take.Scope}'";
        var detail = take.Kind == CounterKinds.Requests
            ? $"{who} is limited to {what}; retry after {resetAt:O}."
            : $"{who} has {what}, and this request could use {(take.Kind == CounterKinds.Tokens ? $"{take.Held} tokens" : $"{take.Held / (decimal)Ledger.MicrosPerUsd:0.######} USD")} " +
              $"on top of what is spent and held today (version {document.Version} of the tenant's limits); it resets at {resetAt:O}.";
        var seconds = (int)Math.Clamp(Math.Ceiling((resetAt - now).TotalSeconds), 1, int.MaxValue);
        return ActAnswer.Refused(Problems.For(code, detail, extensions: Extensions(take.ScopeName, limit, resetAt)), retryAfterSeconds: seconds)
            with { RefusedWith = code };
    }

    static KeyValuePair<string, object?>[] Extensions(string scope, string limit, DateTime resetAt) =>
        [new("scope", scope), new("limit", limit), new("resetAt", resetAt)];
}

/// <summary>
/// A job's admission with the takes the tenant's limits asked for, in one transaction: the job row first (a taken
/// idempotency key answers with the original job before anything is taken, so a repeat is never charged or refused),
/// then every take in order and the budget hold. A take that does not pass gives back those before it and removes the
/// row again, so nothing is stored (<see cref="RefusedBy"/> says which limit bound).
/// </summary>
internal sealed class AdmitWithTakes(Job job, IReadOnlyList<CounterTake> takes, BudgetHold? hold) : Storage.StoreWrite
{
    /// <summary>The take that did not pass, when the write answered false for a limit.</summary>
    public CounterTake? RefusedBy { get; private set; }

    public override object? Entity => null;

    public override int Execute(Storage.StoreSession session)
    {
        RefusedBy = null;
        if (session.Insert(job, null) == 0)
            return 0;
        if (CounterTake.TakeEach(takes, session) is { } refused)
        {
            RefusedBy = refused;
            var remove = session.Command("admit:undo", sql => $"DELETE FROM {sql.Table<Job>()} WHERE {sql.Column<Job>(nameof(Job.Id))} = {sql.Parameter("id")}",
                (typeof(Job), nameof(Job.Id), "id"));
            remove.Bind(0, job.Id);
            remove.Command.ExecuteNonQuery();
            return 0;
        }
        if (hold is not null)
            session.Insert(hold, null);
        return 1;
    }
}

/// <summary>
/// The takes of a job that is recorded after it ran (a chat completion), committed before it runs: every take in order
/// and the budget hold, or nothing (<see cref="RefusedBy"/> says which limit bound).
/// </summary>
internal sealed class TakeAll(IReadOnlyList<CounterTake> takes, BudgetHold? hold) : Storage.StoreWrite
{
    public CounterTake? RefusedBy { get; private set; }

    public override object? Entity => null;

    public override int Execute(Storage.StoreSession session)
    {
        RefusedBy = CounterTake.TakeEach(takes, session);
        if (RefusedBy is not null)
            return 0;
        if (hold is not null)
            session.Insert(hold, null);
        return 1;
    }
}

/// <summary>A tenant's overrides may name only strategies and models the gateway knows, and deadlines a request could ask for.</summary>
internal sealed class TenantRoutingCheck(ModelGateway gateway, Microsoft.Extensions.Options.IOptions<ActingOptions> acting) : ITenantDocumentCheck
{
    public void Check(TenantDocument document, IDictionary<string, string[]> errors)
    {
        var maxDeadline = (long)acting.Value.MaxDeadline.TotalMilliseconds;
        if (document.Overrides?.DeadlineMs is { } bounds)
            foreach (var (name, value) in (ReadOnlySpan<(string, long?)>)[("min", bounds.Min), ("max", bounds.Max)])
                if (value > maxDeadline)
                    errors[$"overrides.deadlineMs.{name}"] = [$"{name} must be at most Orchestrator:Acting:MaxDeadline ({maxDeadline} ms)."];
        if (document.Overrides?.Routing is not { } routing)
            return;
        if (routing.Strategy is { } strategy && !RoutingStrategies.IsKnown(strategy))
            errors["overrides.routing.strategy"] = [$"overrides.routing.strategy must be one of {string.Join(", ", RoutingStrategies.All)}."];
        if (routing.Models?.Where(m => gateway.Models.All(c => c.Id != m)).ToList() is { Count: > 0 } unknown)
            errors["overrides.routing.models"] = [$"Unknown model(s): {string.Join(", ", unknown)}; see GET /v1/models."];
    }
}
