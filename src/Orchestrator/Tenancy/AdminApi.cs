using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Orchestrator.Hosting;

namespace Orchestrator.Tenancy;

/// <summary>
/// <c>/v1/admin</c> (operator): tenants' limits, versioned with <c>ETag</c> / <c>If-Match</c>, and API keys. Every
/// allowed call is in the audit trail, changes with what changed.
/// </summary>
public static class AdminApi
{
    static readonly HashSet<string> KnownRoles = [Roles.User, Roles.Operator, Roles.Approver, Roles.Auditor];

    public static RouteGroupBuilder MapAdmin(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/v1/admin").WithTags("Admin").RequireAuthorization(TenancySetup.OperatorPolicy)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden);
        admin.MapGet("/tenants", ListTenants).WithSummary("Every tenant with limits of its own.");
        admin.MapGet("/tenants/{tenant}", GetTenant).WithSummary("A tenant's limits, per-principal limits and overrides, with its version as ETag.");
        admin.MapPut("/tenants/{tenant}", PutTenant)
            .WithSummary("Replace a tenant's limits; with If-Match only if its version is still the one given (else 412).")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status412PreconditionFailed);
        admin.MapPost("/keys", CreateKey).WithSummary("Make an API key; the key is in this answer only, the store keeps its hash.")
            .ProducesProblem(StatusCodes.Status400BadRequest);
        admin.MapGet("/keys", ListKeys).WithSummary("API keys made through the API (never the keys themselves).");
        admin.MapGet("/keys/{id}", GetKey).WithSummary("One API key made through the API (never the key itself); revoked keys stay listed as revoked.");
        admin.MapDelete("/keys/{id}", RevokeKey).WithSummary("Revoke a key: refused at once on this node, on every node within the propagation interval.")
            .ProducesProblem(StatusCodes.Status404NotFound);
        return admin;
    }

    internal static async Task<Ok<TenantPage>> ListTenants(Caller caller, TenantDirectory tenants, AuditTrail audit, CancellationToken cancellationToken)
    {
        var items = await tenants.ListAsync(cancellationToken);
        await audit.RecordAsync(caller, "tenant.list", "tenants", allowed: true);
        return TypedResults.Ok(new TenantPage(items));
    }

    internal static async Task<Results<Ok<TenantDocument>, ProblemHttpResult>> GetTenant(
        string tenant, Caller caller, TenantDirectory tenants, AuditTrail audit, HttpContext http, CancellationToken cancellationToken)
    {
        if (!Identifiers.IsValid(tenant))
            return Problems.Validation(new Dictionary<string, string[]> { ["tenant"] = [Identifiers.TenantRule] });
        var document = await tenants.GetAsync(tenant, cancellationToken);
        await audit.RecordAsync(caller, "tenant.read", $"tenants/{tenant}", allowed: true, tenant: tenant);
        http.Response.Headers.ETag = ETagOf(document.Version);
        return TypedResults.Ok(document);
    }

    static async Task<Results<Ok<TenantDocument>, ProblemHttpResult>> PutTenant(
        string tenant, TenantDocument document, [FromHeader(Name = "If-Match")] string? ifMatch, Caller caller,
        TenantDirectory tenants, IEnumerable<ITenantDocumentCheck> checks, AuditTrail audit, HttpContext http, CancellationToken cancellationToken)
    {
        var errors = TenantDocumentRules.Check(tenant, document, checks);
        long? expected = null;
        var anyExisting = false;
        if (ifMatch is not null)
        {
            if (ifMatch.Trim() == "*")
                anyExisting = true;
            else if (ParseETag(ifMatch) is { } version)
                expected = version;
            else
                errors["If-Match"] = ["If-Match must be the ETag a GET answered (e.g. \"3\"), or *."];
        }
        if (errors.Count > 0)
            return Problems.Validation(errors);

        if (await tenants.PutAsync(tenant, document, expected, anyExisting, caller.Principal, cancellationToken) is not { } saved)
        {
            var current = await tenants.GetAsync(tenant, cancellationToken);
            await audit.RecordAsync(caller, "tenant.update", $"tenants/{tenant}", allowed: false,
                $"If-Match {ifMatch} is not the current version {current.Version}.", tenant: tenant);
            http.Response.Headers.ETag = ETagOf(current.Version);
            return Problems.For(Problems.PreconditionFailed,
                $"Tenant '{tenant}' is at version {current.Version}, not the one If-Match named ({ifMatch}); GET it again and reapply the change.",
                extensions: [new("version", current.Version)]);
        }
        await audit.RecordAsync(caller, "tenant.update", $"tenants/{tenant}", allowed: true, tenant: tenant,
            details: new { version = saved.Version, limits = saved.Limits, principals = saved.Principals, overrides = saved.Overrides });
        http.Response.Headers.ETag = ETagOf(saved.Version);
        return TypedResults.Ok(saved);
    }

    static async Task<Results<Created<CreatedKey>, ProblemHttpResult>> CreateKey(
        KeyRequest request, Caller caller, ManagedKeys keys, AuditTrail audit, TimeProvider time)
    {
        var errors = new Dictionary<string, string[]>();
        if (!Identifiers.IsValid(request.Tenant))
            errors["tenant"] = ["tenant is required: 1-100 characters of letters, digits, '-', '_' or '.'."];
        if (!Identifiers.IsPrincipal(request.Principal))
            errors["principal"] = ["principal is required: 1-200 characters, no control characters."];
        var roles = request.Roles is { Count: > 0 } asked ? asked.Distinct().ToList() : [Roles.User];
        if (roles.Any(r => r is null || !KnownRoles.Contains(r)))
            errors["roles"] = [$"Unknown role '{roles.First(r => r is null || !KnownRoles.Contains(r)) ?? "null"}'; roles are 'user', 'operator', 'approver' and 'auditor'."];
        if (request.ExpiresAt is { } expires && expires.ToUniversalTime() <= time.GetUtcNow().UtcDateTime)
            errors["expiresAt"] = ["expiresAt must be in the future."];
        if (errors.Count > 0)
            return Problems.Validation(errors);

        var (row, key) = await keys.CreateAsync(request.Tenant!, request.Principal!, roles, request.ExpiresAt, caller.Principal);
        await audit.RecordAsync(caller, "key.create", $"keys/{row.Id}", allowed: true, tenant: row.Tenant,
            details: new { principal = row.Principal, roles, expiresAt = row.ExpiresAt, prefix = row.Prefix });
        return TypedResults.Created($"/v1/admin/keys/{row.Id}", new CreatedKey(row.Id, key, row.Tenant, row.Principal, roles, row.ExpiresAt));
    }

    static async Task<Results<Ok<KeyPage>, ProblemHttpResult>> ListKeys(
        string? tenant, Caller caller, ManagedKeys keys, AuditTrail audit, CancellationToken cancellationToken)
    {
        if (tenant is not null && !Identifiers.IsValid(tenant))
            return Problems.Validation(new Dictionary<string, string[]> { ["tenant"] = [Identifiers.TenantRule] });
        var rows = await keys.ListAsync(tenant, cancellationToken);
        await audit.RecordAsync(caller, "key.list", tenant is null ? "keys" : $"keys?tenant={tenant}", allowed: true, tenant: tenant);
        return TypedResults.Ok(new KeyPage(rows.Select(KeyView.Of).ToList()));
    }

    static async Task<Results<Ok<KeyView>, ProblemHttpResult>> GetKey(
        string id, Caller caller, ManagedKeys keys, AuditTrail audit, CancellationToken cancellationToken)
    {
        if (await keys.GetAsync(id, cancellationToken) is not { } row)
            return Problems.For(Problems.NotFound, $"No API key '{id}' was made through the API.");
        await audit.RecordAsync(caller, "key.read", $"keys/{row.Id}", allowed: true, tenant: row.Tenant);
        return TypedResults.Ok(KeyView.Of(row));
    }

    static async Task<Results<NoContent, ProblemHttpResult>> RevokeKey(
        string id, Caller caller, ManagedKeys keys, AuditTrail audit, CancellationToken cancellationToken)
    {
        if (await keys.GetAsync(id, cancellationToken) is not { } row)
            return Problems.For(Problems.NotFound, $"No API key '{id}' was made through the API.");
        if (!row.Revoked)
        {
            await keys.RevokeAsync(row, caller.Principal);
            await audit.RecordAsync(caller, "key.revoke", $"keys/{row.Id}", allowed: true, tenant: row.Tenant,
                details: new { principal = row.Principal, prefix = row.Prefix });
        }
        return TypedResults.NoContent();
    }

    static string ETagOf(long version) => $"\"{version.ToString(CultureInfo.InvariantCulture)}\"";

    static long? ParseETag(string value)
    {
        var tag = value.Trim();
        if (tag.StartsWith("W/", StringComparison.Ordinal))
            tag = tag[2..];
        tag = tag.Trim('"');
        return long.TryParse(tag, NumberStyles.None, CultureInfo.InvariantCulture, out var version) ? version : null;
    }
}
