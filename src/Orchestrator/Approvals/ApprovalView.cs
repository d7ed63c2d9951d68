using System.Text.Json;
using System.Text.Json.Serialization;

namespace Orchestrator.Approvals;

/// <summary><c>GET /v1/approvals/{id}</c> (API.md, Approvals), with what the rule asks and how its webhook fared.</summary>
public sealed record ApprovalView(
    string Id, string JobId, string TraceId, string Tenant, string RequestedBy, string Capability, JsonElement Arguments, string? Reason,
    string Rule, string RuleVersion, string Status, DateTime RequestedAt, DateTime DeadlineAt,
    IReadOnlyList<ApprovalEscalation> Escalations, IReadOnlyList<ApprovalDecision> Decisions,
    string NodeId, ApprovalRequirement Approvers, JsonElement? ApprovedArguments, string BindingHash, DateTime? DecidedAt,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] WebhookState? Webhook)
{
    public static ApprovalView Of(Approval approval, WebhookState? webhook)
    {
        var rule = approval.RuleOf();
        var (roles, principals) = ApprovalStore.Eligible(approval, rule);
        return new ApprovalView(approval.Id, approval.JobId, approval.TraceId, approval.Tenant, approval.RequestedBy, approval.Capability,
            Parse(approval.Arguments)!.Value, approval.Reason, approval.Rule, approval.RuleVersion, ApprovalStatuses.Of(approval.Status),
            approval.RequestedAt, approval.DeadlineAt, approval.EscalationList(), approval.DecisionList(), approval.NodeId,
            new ApprovalRequirement(roles.Order().ToList(), principals.Order().ToList(), rule.Required, rule.AllowSelfApproval, rule.FailClosed),
            Parse(approval.ApprovedArguments), approval.BindingHash, approval.DecidedAt, webhook);
    }

    static JsonElement? Parse(string? json) => json is null ? null : JsonDocument.Parse(json).RootElement.Clone();
}

/// <summary>Who may decide now (escalations included, operators always), how many must approve, and why the rule failed closed if it did.</summary>
public sealed record ApprovalRequirement(IReadOnlyList<string> Roles, IReadOnlyList<string> Principals, int Required, bool AllowSelfApproval, string? FailClosed);

/// <summary>How the approval's webhook deliveries stand: waiting to be tried, delivered, given up, the last error.</summary>
public sealed record WebhookState(int Pending, int Delivered, int Failed, string? LastError);

public sealed record ApprovalList(IReadOnlyList<ApprovalView> Items, string? NextCursor);

/// <summary><c>POST /v1/approvals/{id}/approve</c>: <c>arguments</c>, when given, replace the call's and are what runs.</summary>
public sealed record ApproveRequest(string? Reason, JsonElement? Arguments);

public sealed record RejectRequest(string? Reason);

/// <summary>The webhook's body: its single-use id, the event, when, and the approval as <c>GET /v1/approvals/{id}</c> shows it.</summary>
public sealed record WebhookBody(string Id, string Event, DateTime At, ApprovalView Approval);

/// <summary>Approvals' JSON (camelCase, as the API is written), source-generated; chained into the host's serializer.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(ApprovalRuleOptions))]
[JsonSerializable(typeof(RuleSnapshot))]
[JsonSerializable(typeof(List<ApprovalDecision>))]
[JsonSerializable(typeof(List<ApprovalEscalation>))]
[JsonSerializable(typeof(ApprovalView))]
[JsonSerializable(typeof(ApprovalList))]
[JsonSerializable(typeof(ApproveRequest))]
[JsonSerializable(typeof(RejectRequest))]
[JsonSerializable(typeof(WebhookBody))]
internal sealed partial class ApprovalsJson : JsonSerializerContext
{
}
