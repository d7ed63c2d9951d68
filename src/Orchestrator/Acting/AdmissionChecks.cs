using Orchestrator.Hosting;
using Orchestrator.Jobs;
using Orchestrator.Tenancy;

namespace Orchestrator.Acting;

/// <summary>
/// A validated act on its way in: the request as admitted (a check may clamp it), who sent it, and what the checks ask
/// the job's admission to take from the tenant's counters in its own transaction.
/// </summary>
internal sealed class Admitting(AdmittedAct act, Caller caller)
{
    public AdmittedAct Act { get; set; } = act;
    public Caller Caller { get; } = caller;

    /// <summary>Takes from counter rows (requests per minute, budget holds), committed with the job or not at all.</summary>
    public IReadOnlyList<Tenancy.CounterTake> Takes { get; set; } = [];

    /// <summary>The job's budget hold, stored with it and settled when it ends.</summary>
    public Tenancy.BudgetHold? Hold { get; set; }

    /// <summary>
    /// False for a job that runs on the request that asked for it (a chat completion): it takes no place in the queue,
    /// so checks of the queue let it pass; checks of the caller (limits, budgets) hold for it as for any act.
    /// </summary>
    public bool Queued { get; init; } = true;

    /// <summary>What the audit trail names as refused: <c>act</c>, or <c>chat/completions</c>.</summary>
    public string Resource { get; init; } = "act";
}

/// <summary>
/// One small step of admission after validation, in the order of <see cref="Order"/>: it passes (null) or answers the
/// request itself (a refusal, or the original job of a repeated idempotency key). A check that takes something (a
/// queue place, a budget hold) gives it back in <see cref="Undo"/> when a later check refuses the request, so a
/// refusal never keeps a reservation and never creates a job. Tenancy's limits and budgets join as more checks.
/// </summary>
internal abstract class AdmissionCheck
{
    /// <summary>Where the check runs: idempotency 100, tenant limits and budgets 200-299, queue capacity 900 (last: it is the cheapest to undo).</summary>
    public abstract int Order { get; }

    public abstract ValueTask<ActAnswer?> CheckAsync(Admitting admitting, CancellationToken cancellationToken);

    public virtual void Undo(Admitting admitting)
    {
    }
}

/// <summary>The same idempotency key from the same tenant answers with the original job, never a second one.</summary>
internal sealed class IdempotencyCheck(JobQueries queries, Func<Job, bool, CancellationToken, Task<ActAnswer>> replay) : AdmissionCheck
{
    public override int Order => 100;

    public override async ValueTask<ActAnswer?> CheckAsync(Admitting admitting, CancellationToken cancellationToken) =>
        admitting.Act.IdempotencyKey is { } key &&
        await queries.FindByIdempotencyKeyAsync(admitting.Caller.Tenant, key, cancellationToken) is { } original
            ? await replay(original, admitting.Act.Sync, cancellationToken)
            : null;
}

/// <summary>
/// A place in the queue, taken last: an interlocked counter, so a full queue answers <c>429 queue_full</c> at once
/// without touching the store, with a <c>Retry-After</c> from the observed drain rate.
/// </summary>
internal sealed class CapacityCheck(JobQueue queue) : AdmissionCheck
{
    public override int Order => 900;

    public override ValueTask<ActAnswer?> CheckAsync(Admitting admitting, CancellationToken cancellationToken) =>
        !admitting.Queued ? ValueTask.FromResult<ActAnswer?>(null) : ValueTask.FromResult(queue.TryReserve()
            ? null
            : ActAnswer.Refused(
                Problems.For(Problems.QueueFull, $"The queue holds {queue.Capacity} jobs, its capacity; retry later."),
                retryAfterSeconds: queue.RetryAfterSeconds()) with { RefusedWith = Problems.QueueFull });

    public override void Undo(Admitting admitting)
    {
        if (admitting.Queued)
            queue.Unreserve();
    }
}
