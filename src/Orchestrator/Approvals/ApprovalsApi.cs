using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Orchestrator.Hosting;
using Orchestrator.Tenancy;

namespace Orchestrator.Approvals;

/// <summary><c>/v1/approvals</c>: list and read approvals, approve (optionally with edited arguments) or reject one.</summary>
public static class ApprovalsApi
{
    const int DefaultLimit = 50;
    const int MaxLimit = 200;
    const int MaxReason = 2000;

    public static RouteGroupBuilder MapApprovals(this IEndpointRouteBuilder app)
    {
        var approvals = app.MapGroup("/v1/approvals").WithTags("Approvals").ProducesProblem(StatusCodes.Status401Unauthorized);
        approvals.MapGet("/", List).WithSummary("Approvals of the caller's tenant (operators: any, or ?tenant=), newest first, paged.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status403Forbidden);
        approvals.MapGet("/{id}", Get).WithSummary("One approval: what was asked, the rule, every decision and escalation.")
            .ProducesProblem(StatusCodes.Status404NotFound);
        approvals.MapPost("/{id}/approve", Approve)
            .WithSummary("Approve (an operator, or an approver the rule names); arguments, when given, replace the call's and are what runs.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        approvals.MapPost("/{id}/reject", Reject).WithSummary("Reject with a reason; the call does not run.")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        return approvals;
    }

    internal static async Task<Results<Ok<ApprovalList>, ProblemHttpResult>> List(
        string? status, string? tenant, string? capability, int? limit, string? cursor, Caller caller, ApprovalStore store, CancellationToken cancellationToken)
    {
        ApprovalStatus? wanted = null;
        if (status is not null)
        {
            if (!ApprovalStatuses.TryParse(status, out var parsed))
                return Problems.Validation("status", "status is one of pending, approved, rejected, timed_out, canceled.");
            wanted = parsed;
        }
        if (limit is < 1 or > MaxLimit)
            return Problems.Validation("limit", $"limit is from 1 to {MaxLimit}.");
        if (tenant is not null && !caller.IsOperator && tenant != caller.Tenant)
            return Problems.For(Problems.Forbidden, "Only operators may list another tenant's approvals.");
        var (items, next) = await store.ListAsync(caller, wanted, tenant, capability, limit ?? DefaultLimit, cursor, cancellationToken);
        var webhooks = await store.WebhooksOfAsync(items.Select(a => a.Id).ToList(), cancellationToken);
        return TypedResults.Ok(new ApprovalList(items.Select(a => ApprovalView.Of(a, webhooks.GetValueOrDefault(a.Id))).ToList(), next));
    }

    internal static async Task<Results<Ok<ApprovalView>, ProblemHttpResult>> Get(string id, Caller caller, ApprovalStore store, CancellationToken cancellationToken)
    {
        if (await store.FindAsync(id, cancellationToken) is not { } approval || !caller.CanSee(approval.Tenant))
            return Problems.For(Problems.NotFound, $"Approval {id} was not found.");
        var webhooks = await store.WebhooksOfAsync([approval.Id], cancellationToken);
        return TypedResults.Ok(ApprovalView.Of(approval, webhooks.GetValueOrDefault(approval.Id)));
    }

    internal static async Task<Results<Ok<ApprovalView>, ProblemHttpResult>> Approve(
        string id, ApproveRequest? body, Caller caller, ApprovalStore store, CancellationToken cancellationToken)
    {
        if (body?.Reason is { Length: > MaxReason })
            return Problems.Validation("reason", $"reason is at most {MaxReason} characters.");
        if (body?.Arguments is { } arguments && arguments.ValueKind != JsonValueKind.Object)
            return Problems.Validation("arguments", "arguments, when given, is a JSON object: the effect's arguments as they should run.");
        if (body?.Reason?.Contains('\0') == true)
            return Problems.Validation("reason", "reason must not contain NUL characters.");
        return Answer(await store.DecideAsync(caller, id, approve: true, body?.Reason, body?.Arguments, cancellationToken));
    }

    internal static async Task<Results<Ok<ApprovalView>, ProblemHttpResult>> Reject(
        string id, RejectRequest? body, Caller caller, ApprovalStore store, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(body?.Reason))
            return Problems.Validation("reason", "A rejection says why: reason is required.");
        if (body.Reason.Length > MaxReason || body.Reason.Contains('\0'))
            return Problems.Validation("reason", $"reason is at most {MaxReason} characters, without NUL characters.");
        return Answer(await store.DecideAsync(caller, id, approve: false, body.Reason, null, cancellationToken));
    }

    static Results<Ok<ApprovalView>, ProblemHttpResult> Answer(DecisionOutcome outcome) =>
        outcome.Approval is { } approval
            ? TypedResults.Ok(ApprovalView.Of(approval, null))
            : Problems.For(outcome.Code!, outcome.Message);
}
