using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Orchestrator.Hosting;
using Orchestrator.Storage;

namespace Orchestrator.Tenancy;

/// <summary><c>GET /v1/audit</c> and <c>GET /v1/audit/verify</c>: operators read every tenant's entries, auditors their own tenant's.</summary>
public static class AuditApi
{
    const int MaxPage = 500;

    public static RouteGroupBuilder MapAudit(this IEndpointRouteBuilder app)
    {
        var audit = app.MapGroup("/v1/audit").WithTags("Audit");
        audit.MapGet("/", List).WithSummary("The audit trail, newest first, paged; filter by tenant, principal, action and time.");
        audit.MapGet("/verify", Verify).WithSummary("Recompute the hash chain: ok, entries checked, and the first broken entry.");
        return audit;
    }

    internal static async Task<Results<Ok<AuditPage>, ProblemHttpResult>> List(
        Caller caller, OrchestratorDb db, AuditTrail audit, HttpContext http, string? tenant, string? principal, string? action,
        DateTime? from, DateTime? to, int? limit, string? cursor, CancellationToken cancellationToken)
    {
        if (!caller.Has(Roles.Auditor))
            return await DeniedAsync(audit, caller, http, "Reading the audit trail needs the 'operator' or 'auditor' role.");
        if (tenant is not null && !caller.IsOperator && tenant != caller.Tenant)
            return await DeniedAsync(audit, caller, http, "An auditor reads its own tenant's audit trail only.");
        var errors = new Dictionary<string, string[]>();
        if (tenant is not null && !Identifiers.IsValid(tenant))
            errors["tenant"] = [Identifiers.TenantRule];
        if (principal is not null && !Identifiers.IsPrincipal(principal))
            errors["principal"] = [Identifiers.PrincipalRule];
        if (action is not null && (action.Length is 0 or > 100 || action.Any(char.IsControl)))
            errors["action"] = ["An action is a dotted name such as tenant.update, 1-100 characters."];
        if (from is { } f0 && to is { } t0 && f0 > t0)
            errors["from"] = ["from must not be after to."];
        if (limit is < 1 or > MaxPage)
            errors["limit"] = [$"limit must be between 1 and {MaxPage}."];
        long before = long.MaxValue;
        if (cursor is not null && (!long.TryParse(cursor, out before) || before < 1))
            errors["cursor"] = ["cursor must be the nextCursor of a previous page."];
        if (errors.Count > 0)
            return Problems.Validation(errors);

        var query = db.Set<AuditEntry>().AsNoTracking().Where(e => e.Seq < before);
        var scope = tenant ?? (caller.IsOperator ? null : caller.Tenant);
        if (scope is not null)
            query = query.Where(e => e.Tenant == scope);
        if (principal is not null)
            query = query.Where(e => e.Principal == principal);
        if (action is not null)
            query = query.Where(e => e.Action == action);
        if (from is { } f)
        {
            var since = f.ToUniversalTime();
            query = query.Where(e => e.At >= since);
        }
        if (to is { } t)
        {
            var until = t.ToUniversalTime();
            query = query.Where(e => e.At < until);
        }
        var take = limit ?? 50;
        var rows = await query.OrderByDescending(e => e.Seq).Take(take + 1).ToListAsync(cancellationToken);
        var items = rows.Take(take).Select(AuditView.Of).ToList();
        return TypedResults.Ok(new AuditPage(items, rows.Count > take ? items[^1].Seq.ToString(System.Globalization.CultureInfo.InvariantCulture) : null));
    }

    internal static async Task<Results<Ok<AuditVerification>, ProblemHttpResult>> Verify(
        Caller caller, AuditVerifier verifier, AuditTrail audit, HttpContext http, CancellationToken cancellationToken) =>
        caller.Has(Roles.Auditor)
            ? TypedResults.Ok(await verifier.VerifyAsync(cancellationToken))
            : await DeniedAsync(audit, caller, http, "Verifying the audit trail needs the 'operator' or 'auditor' role.");

    /// <summary>A refused read of the trail is itself on record, as every denial of a role is.</summary>
    static async Task<ProblemHttpResult> DeniedAsync(AuditTrail audit, Caller caller, HttpContext http, string reason)
    {
        await audit.RecordAsync(caller, "access.denied", $"{http.Request.Method} {http.Request.Path}{http.Request.QueryString}", allowed: false, reason);
        return Problems.For(Problems.Forbidden, reason);
    }
}

/// <summary>An audit entry as <c>GET /v1/audit</c> shows it; <c>details</c> is the JSON object the decision rested on.</summary>
public sealed record AuditView(
    long Seq, DateTime At, string Tenant, string Principal, string Action, string? Resource, string Decision, string? Reason,
    string? TraceId, System.Text.Json.JsonElement? Details, string Hash)
{
    internal static AuditView Of(AuditEntry e) => new(e.Seq, e.At, e.Tenant, e.Principal, e.Action, e.Resource, e.Decision, e.Reason, e.TraceId,
        e.Details is null ? null : System.Text.Json.JsonDocument.Parse(e.Details).RootElement.Clone(), e.Hash);
}

public sealed record AuditPage(IReadOnlyList<AuditView> Items, string? NextCursor);
