using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Orchestrator.Hosting;
using Orchestrator.Storage;
using Orchestrator.Telemetry;
using Orchestrator.Tenancy;

namespace Orchestrator.Approvals;

/// <summary>
/// What the job side does for approvals, implemented by <c>Jobs</c> (which sits above): a parked job goes on once its
/// approvals are decided, or ends when its own deadline passes while it waits.
/// </summary>
public interface IParkedJobs
{
    /// <summary><c>awaiting_approval</c> -> <c>accepted</c>, due now: any node's worker takes it. No-op for a job in another state.</summary>
    Task<bool> ResumeAsync(string jobId, CancellationToken cancellationToken);

    /// <summary>Fails a job still waiting for approval whose deadline passed (<c>deadline_exceeded</c>).</summary>
    Task ExpireAsync(string jobId, string message, CancellationToken cancellationToken);

    /// <summary>Jobs waiting for approval, oldest first.</summary>
    Task<IReadOnlyList<string>> WaitingAsync(int limit, CancellationToken cancellationToken);

    /// <summary>Which of these jobs ended (completed, failed, canceled).</summary>
    Task<IReadOnlySet<string>> EndedAsync(IReadOnlyCollection<string> jobIds, CancellationToken cancellationToken);
}

/// <summary>How a decision went: the approval, or why it was not taken (a problem code and message).</summary>
internal sealed record DecisionOutcome(Approval? Approval, string? Code = null, string? Message = null, string? Field = null);

/// <summary>
/// Approvals in the store: requested by the approval node, decided through the API, timed out and escalated by the
/// sweeper. Every change is a write guarded on the row's <see cref="Approval.Version"/>, so of two deciders, or two
/// nodes sweeping, exactly one wins; every request, escalation, decision and edit is an audit entry and a webhook.
/// </summary>
internal sealed class ApprovalStore(
    IDbContextFactory<OrchestratorDb> dbs,
    StoreWriter writer,
    ApprovalRules rules,
    AuditTrail audit,
    IOptions<ApprovalsOptions> options,
    IOptions<ApiKeyOptions> keys,
    OrchestratorTelemetry telemetry,
    IServiceProvider services,
    TimeProvider time,
    ILogger<ApprovalStore> log)
{
    public const string Requested = "approval.requested";
    public const string Escalated = "approval.escalated";
    public const string Decided = "approval.decided";

    readonly Counter<long> _requested = telemetry.Counter("orchestrator.approvals.requested", "{approval}", "Effect calls that waited for approval.");
    readonly Counter<long> _decided = telemetry.Counter("orchestrator.approvals.decided", "{approval}", "Approvals that ended, by status.");

    DateTime Now => time.GetUtcNow().UtcDateTime;

    /// <summary>Resolved late: Jobs implements it and sits above, and a host without Jobs (a tool) has none.</summary>
    IParkedJobs? Parked => services.GetService<IParkedJobs>();

    public ApprovalRules Rules => rules;

    /// <summary>An approval's id, the same for the same job and node, so a resumed run finds the one it asked.</summary>
    public static string IdFor(string jobId, string nodeId) =>
        "apr_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(jobId + "/" + nodeId)))[..24];

    public async Task<Approval?> FindAsync(string id, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.Set<Approval>().AsNoTracking().FirstOrDefaultAsync(a => a.Id == id, cancellationToken);
    }

    /// <summary>A new pending approval for an effect call the gate stopped (the caller writes it, fenced by its run's lease).</summary>
    public Approval New(ApprovalGate gate, string jobId, string nodeId, string traceId, string tenant, string principal, string capability,
        JsonElement arguments, string? reason, DateTime jobDeadline)
    {
        var now = StoreTime.Microseconds(Now);
        return new Approval
        {
            Id = IdFor(jobId, nodeId),
            JobId = jobId,
            NodeId = nodeId,
            TraceId = traceId,
            Tenant = tenant,
            RequestedBy = principal,
            Capability = capability,
            Arguments = ApprovalArguments.Masked(arguments),
            Reason = reason is { Length: > 2000 } ? reason[..2000] : reason,
            Rule = gate.Rule.Name,
            RuleVersion = gate.RuleVersion,
            RuleSnapshot = JsonSerializer.Serialize(gate.Rule, ApprovalsJson.Default.RuleSnapshot),
            BindingHash = ApprovalArguments.Binding(capability, ApprovalArguments.Canonical(arguments), jobId, nodeId, gate.RuleVersion),
            Status = ApprovalStatus.Pending,
            RequestedAt = now,
            // The job's own deadline ends the wait too (the approval is then canceled, not timed out): shown as the
            // sooner of the two, so nobody is told they may decide after the job is gone.
            DeadlineAt = Min(now + TimeSpan.FromMilliseconds(gate.Rule.TimeoutMs), jobDeadline),
            JobDeadlineAt = jobDeadline,
        };
    }

    /// <summary>After the approval row committed: on record, counted, and announced.</summary>
    public async Task RequestedAsync(Approval approval)
    {
        _requested.Add(1, new KeyValuePair<string, object?>("tenant", approval.Tenant), new KeyValuePair<string, object?>("capability", approval.Capability));
        telemetry.Count(approval.Tenant, approval.RequestedBy, "approvals.requested");
        await audit.RecordAsync(new Caller(approval.Tenant, approval.RequestedBy, false), "approval.request", Resource(approval), allowed: true,
            $"{approval.Capability} waits for approval under rule {approval.Rule}", approval.TraceId,
            new { approval = approval.Id, job = approval.JobId, node = approval.NodeId, capability = approval.Capability, arguments = approval.Arguments,
                  rule = approval.Rule, ruleVersion = approval.RuleVersion, failClosed = approval.RuleOf().FailClosed });
        await AnnounceAsync(approval, Requested);
    }

    public async Task<(List<Approval> Items, string? NextCursor)> ListAsync(
        Caller caller, ApprovalStatus? status, string? tenant, string? capability, int limit, string? cursor, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var query = db.Set<Approval>().AsNoTracking();
        var scope = caller.IsOperator ? tenant : caller.Tenant;
        if (scope is not null)
            query = query.Where(a => a.Tenant == scope);
        if (status is { } wanted)
            query = query.Where(a => a.Status == wanted);
        if (capability is not null)
            query = query.Where(a => a.Capability == capability);
        if (Cursor.Parse(cursor) is { } after)
            query = query.Where(a => a.RequestedAt < after.At || (a.RequestedAt == after.At && string.Compare(a.Id, after.Id) < 0));
        var items = await query.OrderByDescending(a => a.RequestedAt).ThenByDescending(a => a.Id).Take(limit + 1).ToListAsync(cancellationToken);
        var next = items.Count > limit ? Cursor.Of(items[limit - 1]) : null;
        return (items.Take(limit).ToList(), next);
    }

    public async Task<Dictionary<string, WebhookState>> WebhooksOfAsync(IReadOnlyCollection<string> approvalIds, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(options.Value.Webhook.Url) || approvalIds.Count == 0)
            return [];
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var rows = await db.Set<ApprovalWebhook>().AsNoTracking().Where(w => approvalIds.Contains(w.ApprovalId)).ToListAsync(cancellationToken);
        return rows.GroupBy(w => w.ApprovalId).ToDictionary(g => g.Key, g => new WebhookState(
            g.Count(w => w.NextAttemptAt is not null), g.Count(w => w.DeliveredAt is not null), g.Count(w => w.FailedAt is not null),
            g.OrderByDescending(w => w.CreatedAt).Select(w => w.LastError).FirstOrDefault(e => e is not null)));
    }

    /// <summary>
    /// A decision by <paramref name="caller"/>: an operator, or (of the approval's tenant) an approver the rule names by role
    /// or principal, escalations so far included; the requester only if the rule allows it. Another tenant's approval is
    /// not found; a decided one is a conflict.
    /// </summary>
    /// <summary>A decision the caller may not make: <c>403</c>, and on record as every refusal of authority is (<c>access.denied</c>).</summary>
    async Task<DecisionOutcome> RefusedAsync(Caller caller, Approval approval, bool approve, string message)
    {
        await audit.RecordAsync(caller, "access.denied", Resource(approval), allowed: false, message, approval.TraceId,
            new { approval = approval.Id, job = approval.JobId, capability = approval.Capability, asked = approve ? "approve" : "reject" },
            tenant: approval.Tenant);
        return new DecisionOutcome(null, Problems.Forbidden, message);
    }

    public async Task<DecisionOutcome> DecideAsync(Caller caller, string id, bool approve, string? reason, JsonElement? edited, CancellationToken cancellationToken)
    {
        for (var round = 0; round < 3; round++)
        {
            var approval = await FindAsync(id, cancellationToken);
            if (approval is null || !caller.CanSee(approval.Tenant))
                return new DecisionOutcome(null, Problems.NotFound, $"Approval {id} was not found.");
            if (approval.Status != ApprovalStatus.Pending)
                return new DecisionOutcome(null, Problems.Conflict, $"Approval {id} is already {ApprovalStatuses.Of(approval.Status)}.");
            var rule = approval.RuleOf();
            if (caller.Tenant == approval.Tenant && caller.Principal == approval.RequestedBy && !rule.AllowSelfApproval)
                return await RefusedAsync(caller, approval, approve, "The principal whose job asked may not decide its own approval (the rule does not allow self-approval).");
            if (Authority(caller, approval, rule) is not { } via)
                return await RefusedAsync(caller, approval, approve,
                    $"This key may not decide approvals of rule {approval.Rule}: an operator, or an approver it names ({Names(Eligible(approval, rule))}), may.");
            var decisions = approval.DecisionList();
            if (decisions.Any(d => d.Tenant == caller.Tenant && d.Principal == caller.Principal))
                return new DecisionOutcome(null, Problems.Conflict, $"{caller.Principal} already decided approval {id}; another approver must.");
            var now = StoreTime.Microseconds(Now);
            JsonElement? canonicalEdit = edited is { } e ? JsonDocument.Parse(ApprovalArguments.Canonical(e)).RootElement.Clone() : null;
            decisions.Add(new ApprovalDecision(approve ? "approved" : "rejected", caller.Principal, caller.Tenant, via, now, reason, canonicalEdit));
            var before = approval.Snapshot();
            approval.Decisions = JsonSerializer.Serialize(decisions, ApprovalsJson.Default.ListApprovalDecision);
            approval.Version++;
            if (!approve)
            {
                approval.Status = ApprovalStatus.Rejected;
                approval.DecidedAt = now;
            }
            else if (decisions.Count(d => d.Decision == "approved") >= rule.Required)
            {
                approval.Status = ApprovalStatus.Approved;
                approval.DecidedAt = now;
                var lastEdit = decisions.LastOrDefault(d => d.Arguments is not null)?.Arguments;
                approval.ApprovedArguments = lastEdit?.GetRawText();
                approval.ApprovedHash = lastEdit is { } args
                    ? ApprovalArguments.Binding(approval.Capability, args.GetRawText(), approval.JobId, approval.NodeId, approval.RuleVersion)
                    : approval.BindingHash;
            }
            if (!await writer.WriteAsync(Changed(approval, before.Version,
                    nameof(Approval.Decisions), nameof(Approval.Status), nameof(Approval.DecidedAt), nameof(Approval.ApprovedArguments), nameof(Approval.ApprovedHash))))
                continue;
            await audit.RecordAsync(caller, approve ? "approval.approve" : "approval.reject", Resource(approval), allowed: true, reason, approval.TraceId,
                new { approval = approval.Id, job = approval.JobId, capability = approval.Capability, via, status = ApprovalStatuses.Of(approval.Status) },
                tenant: approval.Tenant);
            if (canonicalEdit is { } edit)
                await audit.RecordAsync(caller, "approval.edit", Resource(approval), allowed: true, reason, approval.TraceId,
                    new { approval = approval.Id, job = approval.JobId, capability = approval.Capability, asked = approval.Arguments, approved = ApprovalArguments.Masked(edit) },
                    tenant: approval.Tenant);
            await AnnounceAsync(approval, Decided);
            if (approval.Status != ApprovalStatus.Pending)
            {
                Ended(approval);
                await SettleAsync(approval.JobId, cancellationToken);
            }
            return new DecisionOutcome(approval);
        }
        return new DecisionOutcome(null, Problems.Conflict, $"Approval {id} changed while it was being decided; read it again.");
    }

    /// <summary>How the caller may decide (<c>operator</c>, <c>principal</c>, <c>role:NAME</c>), or null.</summary>
    static string? Authority(Caller caller, Approval approval, RuleSnapshot rule)
    {
        if (caller.IsOperator)
            return "operator";
        if (caller.Tenant != approval.Tenant)
            return null;
        var (roles, principals) = Eligible(approval, rule);
        if (principals.Contains(caller.Principal))
            return "principal";
        return caller.Roles.FirstOrDefault(roles.Contains) is { } role ? "role:" + role : null;
    }

    /// <summary>Who the rule names by now: its approvers and those of every escalation step taken.</summary>
    internal static (HashSet<string> Roles, HashSet<string> Principals) Eligible(Approval approval, RuleSnapshot rule)
    {
        var roles = rule.Roles.ToHashSet(StringComparer.Ordinal);
        var principals = rule.Principals.ToHashSet(StringComparer.Ordinal);
        foreach (var step in rule.Escalation.Take(approval.EscalationLevel))
        {
            roles.UnionWith(step.Roles);
            principals.UnionWith(step.Principals);
        }
        return (roles, principals);
    }

    static string Names((HashSet<string> Roles, HashSet<string> Principals) eligible) =>
        eligible.Roles.Count + eligible.Principals.Count == 0
            ? "none: operators only"
            : string.Join(", ", eligible.Roles.Select(r => "role " + r).Concat(eligible.Principals.Select(p => "principal " + p)));

    /// <summary>
    /// Checked at the moment the effect runs: the approval is approved, its rule is unchanged, the arguments about to run
    /// hash to what was approved, and every approver may still decide (a revoked key, a removed role). Null when all hold;
    /// otherwise the code and why.
    /// </summary>
    public async Task<(string Code, string Message)?> VerifyAsync(string id, string capability, JsonElement arguments, CancellationToken cancellationToken)
    {
        var approval = await FindAsync(id, cancellationToken);
        if (approval is not { Status: ApprovalStatus.Approved })
            return (ApprovalCodes.Invalid, $"Approval {id} is not approved in the store ({(approval is null ? "missing" : ApprovalStatuses.Of(approval.Status))}).");
        if (rules.VersionOf(approval.Tenant, approval.Rule) != approval.RuleVersion)
            return (ApprovalCodes.Invalid, $"Rule {approval.Rule} changed since approval {id} was asked; the approval no longer binds this call.");
        var hash = ApprovalArguments.Binding(capability, ApprovalArguments.Canonical(arguments), approval.JobId, approval.NodeId, approval.RuleVersion);
        if (capability != approval.Capability || hash != approval.ApprovedHash)
            return (ApprovalCodes.Invalid, $"The call about to run is not the one approval {id} approved (its binding hash differs).");
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        foreach (var decision in approval.DecisionList().Where(d => d.Decision == "approved"))
            if (!await StillMayAsync(db, approval, decision, cancellationToken))
                return (ApprovalCodes.Revoked,
                    $"{decision.Principal} ({decision.Tenant}) approved {approval.Capability} through {decision.Via}, but holds no live key with that authority any more; the effect did not run.");
        return null;
    }

    async Task<bool> StillMayAsync(OrchestratorDb db, Approval approval, ApprovalDecision decision, CancellationToken cancellationToken)
    {
        var tenant = decision.Via == "operator" ? decision.Tenant : approval.Tenant;
        string? role = decision.Via switch
        {
            "operator" => Roles.Operator,
            "principal" => null,
            var via when via.StartsWith("role:", StringComparison.Ordinal) => via["role:".Length..],
            _ => Roles.Operator,
        };
        bool Grants(IEnumerable<string> keyRoles) => role is null || keyRoles.Contains(role) || keyRoles.Contains(Roles.Operator);
        if (keys.Value.ApiKeys.Any(k => k.Tenant == tenant && k.Principal == decision.Principal && Grants(k.Roles.Count == 0 ? [Roles.User] : k.Roles)))
            return true;
        var now = Now;
        var principal = decision.Principal;
        var managed = await db.Set<ManagedKey>().AsNoTracking()
            .Where(k => k.Tenant == tenant && k.Principal == principal && !k.Revoked)
            .ToListAsync(cancellationToken);
        return managed.Any(k => (k.ExpiresAt is null || k.ExpiresAt > now) && Grants(k.Roles.Split(',', StringSplitOptions.RemoveEmptyEntries)));
    }

    /// <summary>A job whose approvals are all decided goes on (its run reads each decision); one still pending waits.</summary>
    public async Task SettleAsync(string jobId, CancellationToken cancellationToken)
    {
        if (Parked is not { } parked)
            return;
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        if (await db.Set<Approval>().AnyAsync(a => a.JobId == jobId && a.Status == ApprovalStatus.Pending, cancellationToken))
            return;
        if (await parked.ResumeAsync(jobId, cancellationToken))
            log.LogInformation("Job {JobId}: its approvals are decided; it goes on", jobId);
    }

    /// <summary>The next escalation step, if one is due: its approvers may decide from now on.</summary>
    public async Task<bool> EscalateAsync(Approval approval, CancellationToken cancellationToken)
    {
        var rule = approval.RuleOf();
        if (approval.EscalationLevel >= rule.Escalation.Count)
            return false;
        var step = rule.Escalation[approval.EscalationLevel];
        var at = approval.RequestedAt + TimeSpan.FromMilliseconds(step.AfterMs);
        if (Now < at)
            return false;
        var before = approval.Version;
        var escalations = approval.EscalationList();
        escalations.Add(new ApprovalEscalation(approval.EscalationLevel + 1, StoreTime.Microseconds(Now), step.Roles, step.Principals));
        approval.Escalations = JsonSerializer.Serialize(escalations, ApprovalsJson.Default.ListApprovalEscalation);
        approval.EscalationLevel++;
        approval.Version++;
        if (!await writer.WriteAsync(Changed(approval, before, nameof(Approval.Escalations), nameof(Approval.EscalationLevel))))
            return false;
        await audit.RecordAsync(new Caller(approval.Tenant, SystemPrincipal, false), "approval.escalate", Resource(approval), allowed: true,
            $"No decision within {TimeSpan.FromMilliseconds(step.AfterMs)}; escalation step {approval.EscalationLevel} may decide too",
            approval.TraceId, new { approval = approval.Id, job = approval.JobId, level = approval.EscalationLevel, roles = step.Roles, principals = step.Principals });
        await AnnounceAsync(approval, Escalated);
        return true;
    }

    /// <summary>pending -> timed_out (never a rejection) or canceled (the job ended or ran out of time), then the job is told.</summary>
    public async Task<bool> EndAsync(Approval approval, ApprovalStatus status, string reason, CancellationToken cancellationToken)
    {
        var before = approval.Version;
        approval.Status = status;
        approval.DecidedAt = StoreTime.Microseconds(Now);
        approval.Version++;
        if (!await writer.WriteAsync(Changed(approval, before, nameof(Approval.Status), nameof(Approval.DecidedAt))))
            return false;
        await audit.RecordAsync(new Caller(approval.Tenant, SystemPrincipal, false),
            status == ApprovalStatus.TimedOut ? "approval.timeout" : "approval.cancel", Resource(approval), allowed: false, reason, approval.TraceId,
            new { approval = approval.Id, job = approval.JobId, capability = approval.Capability, status = ApprovalStatuses.Of(status) });
        await AnnounceAsync(approval, Decided);
        Ended(approval);
        return true;
    }

    static DateTime Min(DateTime a, DateTime b) => a <= b ? a : b;

    /// <summary>Approvals that still wait, soonest deadline first.</summary>
    public async Task<List<Approval>> PendingAsync(int limit, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.Set<Approval>().AsNoTracking().Where(a => a.Status == ApprovalStatus.Pending)
            .OrderBy(a => a.DeadlineAt).Take(limit).ToListAsync(cancellationToken);
    }

    /// <summary>Which of these jobs still have an approval pending (one query for the sweep, not one per job).</summary>
    public async Task<HashSet<string>> WithPendingAsync(IReadOnlyCollection<string> jobIds, CancellationToken cancellationToken)
    {
        if (jobIds.Count == 0)
            return [];
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var pending = await db.Set<Approval>().AsNoTracking().Where(a => jobIds.Contains(a.JobId) && a.Status == ApprovalStatus.Pending)
            .Select(a => a.JobId).Distinct().ToListAsync(cancellationToken);
        return pending.ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Who decided, as the job's error tells an operator.</summary>
    public static string Describe(Approval approval)
    {
        var asked = $"{approval.Capability} {approval.Arguments} (approval {approval.Id}, rule {approval.Rule})";
        var decisions = approval.DecisionList();
        return approval.Status switch
        {
            ApprovalStatus.Rejected when decisions.LastOrDefault(d => d.Decision == "rejected") is { } d =>
                $"{asked} was rejected by {d.Principal} ({d.Tenant}) at {d.At:O}" + (d.Reason is { Length: > 0 } r ? $": {r}" : "."),
            ApprovalStatus.Approved => $"{asked} was approved by {string.Join(", ", decisions.Where(d => d.Decision == "approved").Select(d => $"{d.Principal} ({d.Tenant})"))}" +
                                       (approval.ApprovedArguments is { } edit ? $" with edited arguments {edit}." : "."),
            ApprovalStatus.TimedOut => $"{asked} timed out at {approval.DecidedAt:O} with no decision" +
                                       (decisions.Count > 0 ? $" ({decisions.Count} approval(s) of the {approval.RuleOf().Required} required)." : "."),
            ApprovalStatus.Canceled => $"{asked} was canceled: the job ended while it waited.",
            _ => $"{asked} waits for a decision until {approval.DeadlineAt:O}.",
        };
    }

    const string SystemPrincipal = "system";

    static string Resource(Approval approval) => $"approvals/{approval.Id}";

    void Ended(Approval approval)
    {
        _decided.Add(1, new KeyValuePair<string, object?>("tenant", approval.Tenant), new KeyValuePair<string, object?>("status", ApprovalStatuses.Of(approval.Status)));
        telemetry.Count(approval.Tenant, approval.RequestedBy, "approvals." + ApprovalStatuses.Of(approval.Status));
    }

    static GuardedUpdate<Approval> Changed(Approval approval, int expectedVersion, params string[] properties) =>
        new(approval.Snapshot(), [new Guard(nameof(Approval.Version), expectedVersion)], [.. properties, nameof(Approval.Version)]);

    /// <summary>Queues the webhook delivery of an event (when a webhook is configured); the sender tries it until it lands or gives up.</summary>
    async Task AnnounceAsync(Approval approval, string @event)
    {
        if (string.IsNullOrEmpty(options.Value.Webhook.Url))
            return;
        var id = Guid.NewGuid().ToString("N");
        var now = StoreTime.Microseconds(Now);
        var body = JsonSerializer.Serialize(new WebhookBody(id, @event, now, ApprovalView.Of(approval, null)), ApprovalsJson.Default.WebhookBody);
        var row = new ApprovalWebhook { Id = id, ApprovalId = approval.Id, Tenant = approval.Tenant, Event = @event, Body = body, CreatedAt = now, NextAttemptAt = now };
        try
        {
            if (!await writer.WriteAsync(new Insert<ApprovalWebhook>(row)))
                log.LogError("Webhook {Event} of approval {ApprovalId} was not queued", @event, approval.Id);
        }
        catch (Exception error)
        {
            log.LogError(error, "Webhook {Event} of approval {ApprovalId} was not queued", @event, approval.Id);
        }
    }

    /// <summary>The list's cursor: the last item's request time and id.</summary>
    static class Cursor
    {
        public static string Of(Approval approval) => $"{approval.RequestedAt.Ticks}.{approval.Id}";

        public static (DateTime At, string Id)? Parse(string? cursor) =>
            cursor?.Split('.', 2) is [var ticks, var id] && long.TryParse(ticks, out var t) && t > 0 && t < DateTime.MaxValue.Ticks
                ? (new DateTime(t, DateTimeKind.Utc), id)
                : null;
    }
}

/// <summary>Codes a job fails with when an approval does not hold when its effect runs (beside API.md's <c>approval_rejected</c> and <c>approval_timeout</c>).</summary>
public static class ApprovalCodes
{
    public const string Rejected = "approval_rejected";
    public const string Timeout = "approval_timeout";

    /// <summary>The call about to run is not what was approved (arguments, job, node, or the rule changed).</summary>
    public const string Invalid = "approval_invalid";

    /// <summary>An approver lost the authority (key revoked, role removed) between approving and the effect running.</summary>
    public const string Revoked = "approval_revoked";
}
