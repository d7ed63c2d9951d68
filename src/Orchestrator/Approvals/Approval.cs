using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace Orchestrator.Approvals;

/// <summary>
/// One effect call waiting for (or decided by) people: the exact capability and canonical arguments (secrets masked),
/// the model's reason, the rule that fired and its version, the job, node and trace, and every decision. The approval is
/// bound to a hash of (capability, canonical arguments, job, node, rule version); the effect runs only with what the
/// hash of the decision says.
/// </summary>
public sealed class Approval
{
    public string Id { get; set; } = "";
    public string JobId { get; set; } = "";

    /// <summary>The approval node in the job's graph; its effect node follows it.</summary>
    public string NodeId { get; set; } = "";
    public string TraceId { get; set; } = "";
    public string Tenant { get; set; } = "";

    /// <summary>The principal whose job asked.</summary>
    public string RequestedBy { get; set; } = "";
    public string Capability { get; set; } = "";

    /// <summary>Canonical JSON, secrets masked: what people see.</summary>
    public string Arguments { get; set; } = "";

    /// <summary>What the model said along with the call, if anything.</summary>
    public string? Reason { get; set; }

    public string Rule { get; set; } = "";
    public string RuleVersion { get; set; } = "";

    /// <summary>The rule as it fired (<see cref="RuleSnapshot"/>, JSON): who may decide, how many, when it times out and escalates.</summary>
    public string RuleSnapshot { get; set; } = "";

    /// <summary>Hash of (capability, canonical arguments as asked, job, node, rule version).</summary>
    public string BindingHash { get; set; } = "";

    public ApprovalStatus Status { get; set; }
    public DateTime RequestedAt { get; set; }
    public DateTime DeadlineAt { get; set; }

    /// <summary>The job's own deadline: past it the approval is canceled and the job fails <c>deadline_exceeded</c>.</summary>
    public DateTime JobDeadlineAt { get; set; }

    /// <summary>Escalation steps taken so far.</summary>
    public int EscalationLevel { get; set; }

    /// <summary><see cref="ApprovalEscalation"/> list as JSON.</summary>
    public string Escalations { get; set; } = "[]";

    /// <summary><see cref="ApprovalDecision"/> list as JSON.</summary>
    public string Decisions { get; set; } = "[]";

    /// <summary>Once approved: the canonical arguments that run (the call's own, or an approver's edit, unmasked).</summary>
    public string? ApprovedArguments { get; set; }

    /// <summary>Once approved: the binding hash over <see cref="ApprovedArguments"/>; the effect checks it before it runs.</summary>
    public string? ApprovedHash { get; set; }

    public DateTime? DecidedAt { get; set; }

    /// <summary>Raised by one on every change; every change is guarded on it, so two deciders (or nodes) never both win.</summary>
    public int Version { get; set; }

    internal Approval Snapshot() => (Approval)MemberwiseClone();

    internal RuleSnapshot RuleOf() => JsonSerializer.Deserialize(RuleSnapshot, ApprovalsJson.Default.RuleSnapshot)!;

    internal List<ApprovalDecision> DecisionList() => JsonSerializer.Deserialize(Decisions, ApprovalsJson.Default.ListApprovalDecision)!;

    internal List<ApprovalEscalation> EscalationList() => JsonSerializer.Deserialize(Escalations, ApprovalsJson.Default.ListApprovalEscalation)!;
}

public enum ApprovalStatus { Pending, Approved, Rejected, TimedOut, Canceled }

/// <summary>One person's decision: who (and through which role or name), when, why, and the arguments they edited.</summary>
public sealed record ApprovalDecision(
    string Decision, string Principal, string Tenant, string Via, DateTime At, string? Reason,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] JsonElement? Arguments = null);

/// <summary>An escalation step that was taken: from when, and whom it added.</summary>
public sealed record ApprovalEscalation(int Level, DateTime At, IReadOnlyList<string> Roles, IReadOnlyList<string> Principals);

public static class ApprovalStatuses
{
    public static string Of(ApprovalStatus status) => status switch
    {
        ApprovalStatus.Pending => "pending",
        ApprovalStatus.Approved => "approved",
        ApprovalStatus.Rejected => "rejected",
        ApprovalStatus.TimedOut => "timed_out",
        ApprovalStatus.Canceled => "canceled",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, null),
    };

    public static bool TryParse(string? value, out ApprovalStatus status)
    {
        status = value switch
        {
            "pending" => ApprovalStatus.Pending,
            "approved" => ApprovalStatus.Approved,
            "rejected" => ApprovalStatus.Rejected,
            "timed_out" => ApprovalStatus.TimedOut,
            "canceled" => ApprovalStatus.Canceled,
            _ => (ApprovalStatus)(-1),
        };
        return status >= 0;
    }

    internal static readonly ValueConverter<ApprovalStatus, string> Converter = new(s => Of(s), s => Parse(s));

    static ApprovalStatus Parse(string value) =>
        TryParse(value, out var status) ? status : throw new InvalidDataException($"Unknown approval status '{value}' in the store.");
}

internal sealed class ApprovalConfiguration : IEntityTypeConfiguration<Approval>
{
    public void Configure(EntityTypeBuilder<Approval> approval)
    {
        approval.ToTable("Approvals");
        approval.HasKey(a => a.Id);
        approval.Property(a => a.Id).HasMaxLength(40);
        approval.Property(a => a.JobId).HasMaxLength(40);
        approval.Property(a => a.NodeId).HasMaxLength(200);
        approval.Property(a => a.TraceId).HasMaxLength(32);
        approval.Property(a => a.Tenant).HasMaxLength(100);
        approval.Property(a => a.RequestedBy).HasMaxLength(200);
        approval.Property(a => a.Capability).HasMaxLength(100);
        approval.Property(a => a.Rule).HasMaxLength(200);
        approval.Property(a => a.RuleVersion).HasMaxLength(64);
        approval.Property(a => a.BindingHash).HasMaxLength(64);
        approval.Property(a => a.ApprovedHash).HasMaxLength(64);
        approval.Property(a => a.Status).HasConversion(ApprovalStatuses.Converter).HasMaxLength(20);
        approval.Property(a => a.Version).IsConcurrencyToken();
        approval.HasIndex(a => new { a.JobId, a.NodeId }).IsUnique();
        approval.HasIndex(a => new { a.Tenant, a.RequestedAt });
        // The sweep reads only what waits: the index holds pending rows only.
        approval.HasIndex(a => a.DeadlineAt).HasFilter("\"Status\" = 'pending'");
    }
}

/// <summary>
/// A webhook delivery waiting in the outbox: its single-use id, the event and its body, and how its tries went. Each
/// try is claimed with a guarded write on <see cref="Attempts"/>, so of several nodes exactly one sends it.
/// </summary>
public sealed class ApprovalWebhook
{
    public string Id { get; set; } = "";
    public string ApprovalId { get; set; } = "";
    public string Tenant { get; set; } = "";

    /// <summary><c>approval.requested</c>, <c>approval.escalated</c> or <c>approval.decided</c>.</summary>
    public string Event { get; set; } = "";
    public string Body { get; set; } = "";
    public DateTime CreatedAt { get; set; }
    public int Attempts { get; set; }

    /// <summary>When the next try is due; null once delivered or given up.</summary>
    public DateTime? NextAttemptAt { get; set; }
    public DateTime? DeliveredAt { get; set; }
    public DateTime? FailedAt { get; set; }
    public string? LastError { get; set; }
}

internal sealed class ApprovalWebhookConfiguration : IEntityTypeConfiguration<ApprovalWebhook>
{
    public void Configure(EntityTypeBuilder<ApprovalWebhook> webhook)
    {
        webhook.ToTable("ApprovalWebhooks");
        webhook.HasKey(w => w.Id);
        webhook.Property(w => w.Id).HasMaxLength(40);
        webhook.Property(w => w.ApprovalId).HasMaxLength(40);
        webhook.Property(w => w.Tenant).HasMaxLength(100);
        webhook.Property(w => w.Event).HasMaxLength(40);
        webhook.Property(w => w.Attempts).IsConcurrencyToken();
        webhook.HasIndex(w => w.ApprovalId);
        webhook.HasIndex(w => w.NextAttemptAt).HasFilter("\"NextAttemptAt\" IS NOT NULL");
    }
}
