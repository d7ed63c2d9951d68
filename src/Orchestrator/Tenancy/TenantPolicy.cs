using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Orchestrator.Tenancy;

/// <summary>
/// A tenant's limits, per-principal limits and overrides: the body of <c>PUT /v1/admin/tenants/{tenant}</c> and what
/// <c>GET</c> answers. Every limit left out is unlimited.
/// </summary>
public sealed record TenantDocument
{
    public string? Tenant { get; init; }
    public TenantLimits? Limits { get; init; }
    public Dictionary<string, TenantLimits>? Principals { get; init; }
    public TenantOverrides? Overrides { get; init; }

    /// <summary>The tenant's own approval rules, checked after the configured ones (Approvals validates them).</summary>
    public TenantApprovals? Approvals { get; init; }

    /// <summary>Raised by one on every change; the <c>ETag</c>. 0 for a tenant that has only the configured defaults.</summary>
    public long Version { get; init; }

    public DateTime? UpdatedAt { get; init; }
    public string? UpdatedBy { get; init; }
}

/// <summary>Limits of a tenant, or of one principal inside it. Null is unlimited.</summary>
public sealed record TenantLimits
{
    /// <summary>Requests admitted per UTC minute (a fixed window).</summary>
    public int? RequestsPerMinute { get; init; }

    /// <summary>Jobs running at once, on all nodes together; more wait in the queue.</summary>
    public int? MaxConcurrentJobs { get; init; }

    /// <summary>Input plus output tokens per UTC day.</summary>
    public long? DailyTokenBudget { get; init; }

    public decimal? DailyCostBudgetUsd { get; init; }

    /// <summary><c>high</c>, <c>normal</c> or <c>low</c>: a request asking for more is lowered to it.</summary>
    public string? MaxPriority { get; init; }

    internal bool HasBudget => DailyTokenBudget is not null || DailyCostBudgetUsd is not null;

    internal bool IsEmpty => RequestsPerMinute is null && MaxConcurrentJobs is null && !HasBudget && MaxPriority is null;
}

/// <summary>What a tenant's requests may ask for: the routing they get and the deadlines they may set.</summary>
public sealed record TenantOverrides
{
    public RoutingOverride? Routing { get; init; }
    public DeadlineBounds? DeadlineMs { get; init; }
}

/// <summary>A strategy every request of the tenant uses, and the only models it may reach.</summary>
public sealed record RoutingOverride
{
    public string? Strategy { get; init; }
    public IReadOnlyList<string>? Models { get; init; }
}

/// <summary>A request's <c>deadlineMs</c> is clamped into these bounds.</summary>
public sealed record DeadlineBounds
{
    public long? Min { get; init; }
    public long? Max { get; init; }
}

/// <summary>
/// A tenant's approval rules (<c>approvals.rules</c>): the same rules as <c>Orchestrator:Approvals:Rules</c>, for this
/// tenant's calls only, with durations in milliseconds. They come after the configured rules: a tenant's document can
/// add gates, never loosen one the deployment configured.
/// </summary>
public sealed record TenantApprovals
{
    public IReadOnlyList<TenantApprovalRule>? Rules { get; init; }
}

/// <summary>One rule of a tenant; fields as in <c>Orchestrator:Approvals:Rules:N</c>, with <c>timeoutMs</c> and <c>afterMs</c>.</summary>
public sealed record TenantApprovalRule
{
    public string? Name { get; init; }
    public string? Capability { get; init; }
    public string? Risk { get; init; }
    public string? PathGlob { get; init; }
    public IReadOnlyList<string>? Hosts { get; init; }
    public IReadOnlyList<string>? Program { get; init; }
    public TenantApprovers? Approvers { get; init; }
    public int? Required { get; init; }
    public long? TimeoutMs { get; init; }
    public IReadOnlyList<TenantEscalation>? Escalation { get; init; }
    public bool? AllowSelfApproval { get; init; }
}

public sealed record TenantApprovers
{
    public IReadOnlyList<string>? Roles { get; init; }
    public IReadOnlyList<string>? Principals { get; init; }
}

public sealed record TenantEscalation
{
    public long? AfterMs { get; init; }
    public TenantApprovers? Approvers { get; init; }
}

/// <summary>The page of <c>GET /v1/admin/tenants</c>: every tenant with a row of its own.</summary>
public sealed record TenantPage(IReadOnlyList<TenantDocument> Items);

/// <summary>
/// Section <c>Orchestrator:Tenancy</c>. <c>Defaults</c> is what a tenant without a row of its own gets: its limits may be
/// written directly under <c>Defaults</c> (<c>Defaults:RequestsPerMinute</c>) or under <c>Defaults:Limits</c>.
/// </summary>
public sealed class TenancyOptions
{
    public TenantDefaults Defaults { get; set; } = new();
}

public sealed class TenantDefaults
{
    public int? RequestsPerMinute { get; set; }
    public int? MaxConcurrentJobs { get; set; }
    public long? DailyTokenBudget { get; set; }
    public decimal? DailyCostBudgetUsd { get; set; }
    public string? MaxPriority { get; set; }
    public TenantLimits? Limits { get; set; }
    public Dictionary<string, TenantLimits>? Principals { get; set; }
    public TenantOverrides? Overrides { get; set; }

    /// <summary>The defaults as a document for <paramref name="tenant"/> (version 0); limits under <c>Limits</c> win over those beside it.</summary>
    internal TenantDocument For(string tenant) => new()
    {
        Tenant = tenant,
        Limits = new TenantLimits
        {
            RequestsPerMinute = Limits?.RequestsPerMinute ?? RequestsPerMinute,
            MaxConcurrentJobs = Limits?.MaxConcurrentJobs ?? MaxConcurrentJobs,
            DailyTokenBudget = Limits?.DailyTokenBudget ?? DailyTokenBudget,
            DailyCostBudgetUsd = Limits?.DailyCostBudgetUsd ?? DailyCostBudgetUsd,
            MaxPriority = Limits?.MaxPriority ?? MaxPriority,
        },
        Principals = Principals ?? [],
        Overrides = Overrides,
        Version = 0,
    };
}

/// <summary>A tenant's document as a row (<c>Tenants</c>): the JSON as it was put, and its version.</summary>
public sealed class TenantRow
{
    public string Tenant { get; set; } = "";

    /// <summary>The <see cref="TenantDocument"/> as JSON (limits, principals, overrides).</summary>
    public string Document { get; set; } = "";

    /// <summary>Concurrency token: a change applies only to the version it read (<c>If-Match</c>).</summary>
    public long Version { get; set; }

    public DateTime UpdatedAt { get; set; }
    public string UpdatedBy { get; set; } = "";
}

internal sealed class TenantRowConfiguration : IEntityTypeConfiguration<TenantRow>
{
    public void Configure(EntityTypeBuilder<TenantRow> row)
    {
        row.ToTable("Tenants");
        row.HasKey(t => t.Tenant);
        row.Property(t => t.Tenant).HasMaxLength(100);
        row.Property(t => t.UpdatedBy).HasMaxLength(200);
    }
}

/// <summary>
/// Checks a tenant document for what Tenancy cannot know by itself (strategy names, model ids): registered by the
/// features that own those names, so Tenancy depends on none of them.
/// </summary>
public interface ITenantDocumentCheck
{
    void Check(TenantDocument document, IDictionary<string, string[]> errors);
}

internal static class TenantDocumentRules
{
    /// <summary>Every node reads every tenant's document each propagation interval; this keeps one small.</summary>
    public const int MaxPrincipals = 1000;

    static readonly string[] Priorities = ["high", "normal", "low"];

    static string Printable(string value) => new(value.Select(c => char.IsControl(c) ? '?' : c).ToArray());

    /// <summary>Field errors of a document put for <paramref name="tenant"/>, keyed by the JSON path of the field.</summary>
    public static Dictionary<string, string[]> Check(string tenant, TenantDocument document, IEnumerable<ITenantDocumentCheck> checks)
    {
        var errors = new Dictionary<string, string[]>();
        if (!Identifiers.IsValid(tenant))
            errors["tenant"] = [Identifiers.TenantRule];
        else if (document.Tenant is not null && document.Tenant != tenant)
            errors["tenant"] = [$"The body names tenant '{document.Tenant}' but the path names '{tenant}'."];
        if (document.Limits is { } limits)
            CheckLimits("limits", limits, errors);
        if (document.Principals is { Count: > MaxPrincipals } many)
            errors["principals"] = [$"A tenant may set limits for at most {MaxPrincipals} principals ({many.Count} given); use the tenant's limits for the rest."];
        else if (document.Principals is { } principals)
            foreach (var (principal, principalLimits) in principals)
            {
                if (!Identifiers.IsPrincipal(principal))
                    errors[$"principals.{Printable(principal)}"] = [Identifiers.PrincipalRule];
                else if (principalLimits is null)
                    errors[$"principals.{principal}"] = ["Give the principal's limits as an object."];
                else
                    CheckLimits($"principals.{principal}", principalLimits, errors);
            }
        if (document.Overrides?.DeadlineMs is { } deadline)
        {
            if (deadline.Min is < 1)
                errors["overrides.deadlineMs.min"] = ["min must be at least 1 millisecond."];
            if (deadline.Max is < 1)
                errors["overrides.deadlineMs.max"] = ["max must be at least 1 millisecond."];
            if (deadline is { Min: { } min, Max: { } max } && min > max)
                errors["overrides.deadlineMs"] = [$"min ({min}) is above max ({max})."];
        }
        if (document.Overrides?.Routing?.Models is { Count: 0 })
            errors["overrides.routing.models"] = ["An empty model list would refuse every request; leave it out to allow every model."];
        foreach (var check in checks)
            check.Check(document, errors);
        return errors;
    }

    static void CheckLimits(string at, TenantLimits limits, Dictionary<string, string[]> errors)
    {
        if (limits.RequestsPerMinute is < 0)
            errors[$"{at}.requestsPerMinute"] = ["requestsPerMinute must not be negative (0 admits nothing)."];
        if (limits.MaxConcurrentJobs is < 1)
            errors[$"{at}.maxConcurrentJobs"] = ["maxConcurrentJobs must be at least 1."];
        if (limits.DailyTokenBudget is < 0)
            errors[$"{at}.dailyTokenBudget"] = ["dailyTokenBudget must not be negative."];
        if (limits.DailyCostBudgetUsd is < 0)
            errors[$"{at}.dailyCostBudgetUsd"] = ["dailyCostBudgetUsd must not be negative."];
        else if (limits.DailyCostBudgetUsd is > 1_000_000_000m)
            errors[$"{at}.dailyCostBudgetUsd"] = ["dailyCostBudgetUsd is above 1,000,000,000."];
        if (limits.MaxPriority is { } priority && !Priorities.Contains(priority))
            errors[$"{at}.maxPriority"] = ["maxPriority is 'high', 'normal' or 'low'."];
    }
}
